//! Token exchange (RFC 8693): the reads that find a subject (or actor) token's
//! live grant, and the batch that issues the exchanged token into a grant of
//! its own, chained to the subject's (migration 0023).

use serde::Deserialize;

use super::bearer::live_access_token;
use super::*;
use crate::error::StoreError;
use crate::params;

/// A subject or actor token's grant, live: what an exchange narrows from.
#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeSource {
    pub grant_id: String,
    /// The client the token was issued to.
    pub app_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    /// JSON arrays: the token's scopes and audience (the grant's for an ID
    /// token); audience NULL: a token from before migration 0012.
    pub scopes: String,
    #[serde(default)]
    pub audience: Option<String>,
    /// The access token's expiry; `None` for an ID token's grant (the ID
    /// token's own `exp` bounds the exchange then).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The `act` of a grant that came from an exchange (JSON).
    #[serde(default)]
    pub act: Option<String>,
    /// `/id/…/` of the grant's ancestors: its depth in an exchange chain.
    #[serde(default)]
    pub lineage: Option<String>,
    /// The client's pairwise sector inputs (`oidc::subject`).
    #[serde(default)]
    pub app_redirect_uris: Option<String>,
    #[serde(default)]
    pub app_sector_identifier_uri: Option<String>,
}

macro_rules! source_columns {
    () => {
        "SELECT g.id AS grant_id, g.app_id, g.org_id, g.user_id, g.actor, "
    };
}

/// The issuing batch of one exchange ([`Store::issue_exchanged`]).
pub struct Exchanged<'a> {
    pub grant_id: &'a str,
    /// The exchanging client.
    pub app_id: &'a str,
    /// The subject token's grant: the new grant's parent.
    pub parent_grant_id: &'a str,
    /// JSON arrays.
    pub scopes: &'a str,
    pub audience: &'a str,
    /// The new grant's `act` claim (JSON).
    pub act: &'a str,
    pub access: &'a NewToken,
    pub now: i64,
    /// Live exchanged grants per (client, subject grant), this one included.
    pub max_live: i64,
    pub dpop: Option<&'a DpopUse>,
    pub audit: &'a Audit,
}

impl<D: Driver> Store<D> {
    /// A live access token by the SHA-256 of its handle: unexpired,
    /// unrevoked, its grant live, its app active, its user still a member
    /// (the bearer check's and introspection's conditions).
    pub fn exchange_access_stmt(hash: &str, now: i64) -> Stmt {
        Stmt::new(
            concat!(
                source_columns!(),
                "t.scopes, t.audience, t.expires_at, g.act, g.lineage, \
                 a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri",
                live_access_token!()
            ),
            params![hash, now],
        )
    }

    /// The live grants an ID token of `app_id` may stand for: the user's
    /// grants to that client in the token's org, from the session its `sid`
    /// names, newest first (the caller keeps the one whose user is the
    /// token's `sub`).
    pub fn exchange_id_token_stmt(app_id: &str, org_id: &str, sid: &str) -> Stmt {
        Stmt::new(
            concat!(
                source_columns!(),
                "g.scopes, g.audience, NULL AS expires_at, g.act, g.lineage, \
                 a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri \
                 FROM grants g JOIN apps a ON a.id = g.app_id \
                 JOIN memberships m ON m.org_id = g.org_id AND m.user_id = g.user_id \
                 WHERE g.app_id = ?1 AND g.org_id = ?2 AND g.sid = ?3 AND g.actor = 'self' \
                 AND g.revoked_at IS NULL AND a.status = 'active' \
                 ORDER BY g.created_at DESC, g.rowid DESC LIMIT 8"
            ),
            params![app_id, org_id, sid],
        )
    }

    /// The exchange's reads in one round trip: the client's row (for
    /// `client_auth::verify`), the subject's candidates and the actor's.
    pub async fn exchange_reads(
        &self,
        guard: &ClientGuard,
        subject: Stmt,
        actor: Option<Stmt>,
    ) -> Result<(Option<AppRow>, Vec<ExchangeSource>, Vec<ExchangeSource>), StoreError> {
        let mut stmts = vec![guard.lookup(), subject];
        stmts.extend(actor);
        let mut results = self.db.batch(stmts).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let subject = decode(results.next().unwrap_or_default())?;
        let actor = decode(results.next().unwrap_or_default())?;
        Ok((app, subject, actor))
    }

    /// Issue an exchanged access token in one batch: the oldest live
    /// exchanges of this client from the same subject grant beyond the cap
    /// end; the new grant is written only while the subject grant is live
    /// (a revocation racing the exchange wins) and the DPoP proof unused;
    /// its audit record, used proof and token follow only if it was.
    /// `false`: nothing was issued.
    pub async fn issue_exchanged(&self, e: &Exchanged<'_>) -> Result<bool, StoreError> {
        let replay = e.dpop.map(|d| d.replay_key.clone());
        let stmts = vec![
            Stmt::new(
                "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT id FROM grants WHERE parent_grant_id = ?2 \
                 AND app_id = ?1 AND source = 'token_exchange' AND revoked_at IS NULL \
                 ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?4 - 1)",
                params![e.app_id, e.parent_grant_id, e.now, e.max_live.max(1)],
            ),
            Stmt::new(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, source, audience, \
                 parent_grant_id, root_grant_id, lineage, act) \
                 SELECT ?1, ?2, p.org_id, p.user_id, p.actor, ?4, ?5, 'token_exchange', ?6, p.id, \
                 COALESCE(p.root_grant_id, p.id), COALESCE(p.lineage, '/') || p.id || '/', ?7 \
                 FROM grants p WHERE p.id = ?3 AND p.revoked_at IS NULL \
                 AND (?8 IS NULL OR NOT EXISTS (SELECT 1 FROM dpop_jtis WHERE hash = ?8))",
                params![
                    e.grant_id,
                    e.app_id,
                    e.parent_grant_id,
                    e.scopes,
                    e.now,
                    e.audience,
                    e.act,
                    replay
                ],
            ),
            used_proof!("grants", "id = ?1 AND ?2 IS NOT NULL", e.grant_id, e.grant_id, e.dpop),
            e.audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM grants WHERE id = ?8)"),
                params![e.grant_id],
            ),
            super::access_token_stmt(e.access, e.grant_id, e.now),
        ];
        let out = self.db.batch(stmts).await?;
        Ok(out.last().is_some_and(|rows| !rows.is_empty()))
    }
}
