//! Access and refresh tokens after issuance: refresh rotation (OAuth 2.1 §4.3.1),
//! revocation (RFC 7009) and lookups for introspection.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// A token joined with its grant.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenRow {
    pub hash: String,
    pub kind: String,
    pub grant_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub app_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    pub grant_revoked_at: Option<i64>,
    /// JSON array of resources (RFC 8707); NULL before migration 0012.
    #[serde(default)]
    pub audience: Option<String>,
    /// The app's redirect URIs and `sector_identifier_uri` (`oidc::subject`).
    #[serde(default)]
    pub app_redirect_uris: Option<String>,
    #[serde(default)]
    pub app_sector_identifier_uri: Option<String>,
    /// The DPoP key the token is bound to (migration 0020).
    #[serde(default)]
    pub jkt: Option<String>,
}

pub(super) const TOKEN_SQL: &str =
    "SELECT t.hash, t.kind, t.grant_id, t.scopes, t.created_at, t.expires_at, t.used_at, \
     t.revoked_at, g.app_id, g.org_id, g.user_id, g.actor, g.revoked_at AS grant_revoked_at, t.audience, \
     a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri, t.jkt \
     FROM tokens t JOIN grants g ON g.id = t.grant_id LEFT JOIN apps a ON a.id = g.app_id WHERE t.hash = ?1";

/// What a presented token is, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// New token to store: its hash and expiry (`None`: until revoked).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: String,
    pub expires_at: Option<i64>,
    /// The DPoP key it is bound to (RFC 9449 §6); `None`: a bearer token.
    pub jkt: Option<String>,
}

pub struct Rotation<'a> {
    pub old_hash: &'a str,
    pub app_id: &'a str,
    /// JSON array of a narrower scope set, or `None` to keep the old one.
    pub scopes: Option<&'a str>,
    pub now: i64,
    pub access: &'a NewToken,
    pub refresh: &'a NewToken,
    /// `REFRESH_REUSE_GRACE_SECONDS`: 0 = any reuse fails (and the caller
    /// then revokes the family).
    pub grace: i64,
    /// `resource` (JSON array): the new access token's audience, which must
    /// be within the refresh token's (the grant's); `None` keeps it.
    pub audience: Option<&'a str>,
    /// The default audience (JSON array), for tokens stored before 0012.
    pub default_audience: &'a str,
    /// The DPoP proof of the request, if any (`dpop_ok!`).
    pub dpop: Option<&'a DpopUse>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rotated {
    pub grant_id: String,
    pub scopes: String,
    /// The family's org, user and actor: the claims of a JWT access token.
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    /// The new access token's audience (JSON array).
    pub audience: String,
    /// The grant's OpenID Connect facts, for the refresh's ID token (OIDC
    /// Core §12.2: the same `auth_time`), as the code carried them.
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
}

/// The rotating UPDATE of [`Store::rotate_refresh`], with the client named by
/// `$client` (?4, or the grant's own `app_id` for the assertion grant) and
/// guarded by `$guard` (a [`client_ok!`]). Parameters: [`rotate_params`].
macro_rules! rotate_update {
    ($client:literal, $($guard:tt)*) => {
        concat!(
            "UPDATE tokens SET used_at = COALESCE(used_at, ?1), rotated_to = ?2 \
             WHERE hash = ?3 AND kind = 'refresh' AND revoked_at IS NULL \
             AND ((used_at IS NULL AND NOT EXISTS (SELECT 1 FROM tokens sib \
               WHERE sib.parent = tokens.parent AND sib.hash <> tokens.hash AND sib.used_at IS NOT NULL)) \
               OR (?6 > 0 AND used_at + ?6 > ?1 \
               AND NOT EXISTS (SELECT 1 FROM tokens s WHERE s.grant_id = tokens.grant_id AND s.kind = 'refresh' \
                 AND s.used_at IS NOT NULL AND s.rowid > tokens.rowid))) \
             AND (expires_at IS NULL OR expires_at > ?1) \
             AND grant_id IN (SELECT g.id FROM grants g JOIN apps a ON a.id = g.app_id \
               WHERE g.app_id = ",
            $client,
            " AND g.revoked_at IS NULL AND a.status = 'active' \
               AND (g.actor = 'app' OR EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = g.org_id AND m.user_id = g.user_id))) \
             AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?5) r \
               WHERE r.value NOT IN (SELECT value FROM json_each(tokens.scopes)))) \
             AND (?7 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?7) r \
               WHERE r.value NOT IN (SELECT value FROM json_each(COALESCE(tokens.audience, ?8))))) AND ",
            dpop_ok!("tokens.jkt", "(SELECT g.app_id FROM grants g WHERE g.id = tokens.grant_id)"),
            " AND ",
            $($guard)*,
            " RETURNING grant_id, COALESCE(?5, scopes) AS scopes, \
             (SELECT org_id FROM grants g WHERE g.id = tokens.grant_id) AS org_id, \
             (SELECT user_id FROM grants g WHERE g.id = tokens.grant_id) AS user_id, \
             (SELECT actor FROM grants g WHERE g.id = tokens.grant_id) AS actor, \
             COALESCE(?7, audience, ?8) AS audience, \
             (SELECT auth_time FROM grants g WHERE g.id = tokens.grant_id) AS auth_time, \
             (SELECT acr FROM grants g WHERE g.id = tokens.grant_id) AS acr, \
             (SELECT amr FROM grants g WHERE g.id = tokens.grant_id) AS amr, \
             (SELECT sid FROM grants g WHERE g.id = tokens.grant_id) AS sid"
        )
    };
}

pub(super) fn rotate_params(r: &Rotation<'_>, guard: &ClientGuard) -> Vec<Value> {
    guard.bind(params![
        r.now,
        &r.refresh.hash,
        r.old_hash,
        r.app_id,
        r.scopes,
        r.grace,
        r.audience,
        r.default_audience,
        Value::Null,
        r.dpop.map(|d| d.jkt.clone()),
        r.dpop.map(|d| d.replay_key.clone())
    ])
}

impl<D: Driver> Store<D> {
    /// Revoke a whole token family. Idempotent.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![grant_id, now],
        ))
        .await
    }

    pub async fn revoke_token(&self, hash: &str, now: i64) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
            params![hash, now],
        ))
        .await
    }

    pub async fn token(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        self.one(Self::token_stmt(hash)).await
    }

    /// Rotate a refresh token (OAuth 2.1 §4.3.1): the old one is marked used
    /// and pointed at its successor, and the new pair is inserted only by the
    /// caller whose successor hash was written, in one transaction. A narrower
    /// scope must be a subset of the old token's (RFC 6749 §6), checked in SQL
    /// so the whole act stays one round trip. A self-actor grant whose user has
    /// left the org cannot be refreshed.
    /// Like [`Store::redeem_code`], the client's row leads the batch and the
    /// rotating UPDATE carries [`client_ok!`]: one round trip.
    ///
    /// Reuse grace (`r.grace` > 0): a token already rotated may rotate again
    /// while its first rotation is less than `grace` seconds old and no later
    /// refresh token of its family has been used (it is the just-rotated
    /// one; rowid orders a family's tokens by issue). Its `used_at` keeps the
    /// first rotation, so replays do not stretch the window; `rotated_to`
    /// names the latest successor, which the inserts below select on.
    /// Those successors are siblings (`parent`, migration 0008): once one of
    /// them has been used, the others never rotate ([`Store::superseded`]),
    /// so a replayed copy cannot fork a chain of its own.
    pub async fn rotate_refresh(
        &self,
        r: &Rotation<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Rotated>), StoreError> {
        let update = Stmt::new(rotate_update!("?4", client_ok!()), rotate_params(r, guard));
        self.rotate(r, guard.lookup(), update).await
    }

    /// The rotation batch after its first two statements: the client's row
    /// and the rotating UPDATE (`rotate_update!`), which differ only in how
    /// the client is named (`store::assertion`).
    pub(super) async fn rotate(
        &self,
        r: &Rotation<'_>,
        lookup: Stmt,
        update: Stmt,
    ) -> Result<(Option<AppRow>, Option<Rotated>), StoreError> {
        let stmts = vec![
            lookup,
            update,
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, audience, jkt) \
                 SELECT ?3, 'access', grant_id, COALESCE(?5, scopes), ?6, ?4, COALESCE(?7, audience, ?8), ?9 FROM tokens \
                 WHERE hash = ?1 AND rotated_to = ?2",
                params![
                    r.old_hash,
                    &r.refresh.hash,
                    &r.access.hash,
                    r.access.expires_at,
                    r.scopes,
                    r.now,
                    r.audience,
                    r.default_audience,
                    r.access.jkt.clone()
                ],
            ),
            Stmt::new(
                // The successor keeps the whole audience: only access
                // tokens narrow it (RFC 8707 §2.2).
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, parent, audience, jkt) \
                 SELECT ?2, 'refresh', grant_id, COALESCE(?4, scopes), ?5, ?3, hash, COALESCE(audience, ?6), ?7 FROM tokens \
                 WHERE hash = ?1 AND rotated_to = ?2",
                params![
                    r.old_hash,
                    &r.refresh.hash,
                    r.refresh.expires_at,
                    r.scopes,
                    r.now,
                    r.default_audience,
                    r.refresh.jkt.clone()
                ],
            ),
            used_proof!("tokens", "hash = ?1 AND rotated_to = ?2", r.old_hash, &r.refresh.hash, r.dpop),
        ];
        let mut results = self.db.batch(stmts).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let rotated = decode::<Rotated>(results.next().unwrap_or_default())?
            .into_iter()
            .next();
        Ok((app, rotated))
    }

    /// RFC 7009 in one round trip: a refresh token ends its grant, an access
    /// token only itself, and only when it belongs to the (verified) client.
    /// The token's prefix says which table to touch, so one guarded statement
    /// follows the client's row; a token of neither kind touches nothing.
    pub async fn revoke_for_client(
        &self,
        hash: &str,
        kind: Option<TokenKind>,
        guard: &ClientGuard,
    ) -> Result<Option<AppRow>, StoreError> {
        let mut stmts = vec![guard.lookup()];
        match kind {
            Some(TokenKind::Refresh) => stmts.push(Stmt::new(
                concat!(
                    "UPDATE grants SET revoked_at = ?2 WHERE revoked_at IS NULL AND app_id = ?3 \
                     AND id = (SELECT grant_id FROM tokens WHERE hash = ?1 AND kind = 'refresh') AND ",
                    client_ok!()
                ),
                guard.bind(params![hash, guard.now, &guard.app_id]),
            )),
            Some(TokenKind::Access) => stmts.push(Stmt::new(
                concat!(
                    "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND kind = 'access' AND revoked_at IS NULL \
                     AND grant_id IN (SELECT id FROM grants WHERE app_id = ?3) AND ",
                    client_ok!()
                ),
                guard.bind(params![hash, guard.now, &guard.app_id]),
            )),
            None => {}
        }
        let mut results = self.db.batch(stmts).await?.into_iter();
        first_app(results.next().unwrap_or_default())
    }

    /// A refresh token minted by a grace-window replay whose sibling (another
    /// successor of the same token) has since been used: the family moved on
    /// without it, so presenting it is reuse.
    pub async fn superseded(&self, hash: &str) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct S {
            superseded: i64,
        }
        let s: Option<S> = self
            .one(Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM tokens t JOIN tokens sib ON sib.parent = t.parent \
                 WHERE t.hash = ?1 AND sib.hash <> t.hash AND sib.used_at IS NOT NULL) AS superseded",
                params![hash],
            ))
            .await?;
        Ok(s.is_some_and(|s| s.superseded != 0))
    }

    pub fn token_stmt(hash: &str) -> Stmt {
        Stmt::new(TOKEN_SQL, params![hash])
    }
}

/// The access token of a grant issued in the same batch: its scopes and
/// audience are the grant's, and it is written only if the grant was
/// (`RETURNING 1`: the batch's last result says whether it issued).
pub(super) fn access_token_stmt(access: &NewToken, grant_id: &str, now: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, audience, jkt) \
         SELECT ?1, 'access', id, scopes, ?3, ?4, audience, ?5 FROM grants WHERE id = ?2 RETURNING 1 AS ok",
        params![&access.hash, grant_id, now, access.expires_at, access.jkt.clone()],
    )
}
