//! The bearer check's read (RFC 6750): one indexed query for everything the resource
//! side needs, and the edge mode's mirror and eviction queue.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// The FROM and WHERE of every read of a live access token (the bearer
/// check, UserInfo): the token (`?1` its hash, `?2` now) unexpired and
/// unrevoked, its grant unrevoked, its app active, and a user who still
/// holds a role in the grant's org (`m`), joined with `g`, `a`, `o`, `u`.
macro_rules! live_access_token {
    () => {
        " FROM tokens t JOIN grants g ON g.id = t.grant_id JOIN apps a ON a.id = g.app_id \
     JOIN orgs o ON o.id = g.org_id \
     LEFT JOIN users u ON u.id = g.user_id \
     LEFT JOIN memberships m ON m.org_id = g.org_id AND m.user_id = g.user_id \
     WHERE t.hash = ?1 AND t.kind = 'access' AND t.revoked_at IS NULL AND t.expires_at > ?2 \
     AND g.revoked_at IS NULL AND a.status = 'active' \
     AND (g.actor = 'app' OR m.role IS NOT NULL)"
    };
}
pub(super) use live_access_token;

/// The bearer check: one indexed read joining the token, its grant, app, org,
/// user and the user's current role and its permissions.
pub(super) const BEARER_SQL: &str = concat!(
    "SELECT t.scopes, t.expires_at, t.created_at, g.id AS grant_id, g.app_id, \
     a.name AS app_name, a.scopes AS app_scopes, g.org_id, o.slug AS org_slug, g.user_id, u.email AS user_email, \
     g.actor, m.role, \
     (SELECT group_concat(rp.permission, ' ') FROM role_permissions rp WHERE rp.role = m.role) AS role_permissions, \
     t.audience, a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri, t.jkt, g.act",
    live_access_token!()
);

/// Everything the resource side needs about a live access token, in one read.
/// Serialize: edge mode keeps a copy of it in KV.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct BearerRow {
    pub scopes: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub grant_id: String,
    pub app_id: String,
    pub app_name: String,
    pub app_scopes: String,
    pub org_id: String,
    pub org_slug: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub actor: String,
    pub role: Option<String>,
    /// Space-separated permissions of the user's current role in the org.
    pub role_permissions: Option<String>,
    /// JSON array of the resources the token is for (RFC 8707); NULL for
    /// tokens from before migration 0012 (and KV copies written before it):
    /// the default audience.
    #[serde(default)]
    pub audience: Option<String>,
    /// The app's redirect URIs (JSON array) and `sector_identifier_uri`:
    /// its pairwise sector (`oidc::subject`). `None` in a KV copy written
    /// before they were read (the sector then falls back to the client).
    #[serde(default)]
    pub app_redirect_uris: Option<String>,
    #[serde(default)]
    pub app_sector_identifier_uri: Option<String>,
    /// The DPoP key the token is bound to (RFC 9449 §6): it is honoured only
    /// with a proof by that key. Read in every mode (D1, KV copy, cache, JWT `cnf`).
    #[serde(default)]
    pub jkt: Option<String>,
    /// RFC 8693 §4.1: who acts for the subject (JSON), on a token from an
    /// exchange (`grants::token_exchange`); `None` otherwise.
    #[serde(default)]
    pub act: Option<String>,
}

impl<D: Driver> Store<D> {
    pub fn bearer_stmt(hash: &str, now: i64) -> Stmt {
        Stmt::new(BEARER_SQL, params![hash, now])
    }

    /// The bearer check (RFC 6750), one indexed read: token, grant, app, org,
    /// and the user's *current* role and its permissions, so a revocation, a
    /// role change or a removal from the org counts on the very next request.
    pub async fn bearer(&self, hash: &str, now: i64) -> Result<Option<BearerRow>, StoreError> {
        self.one(Stmt::new(BEARER_SQL, params![hash, now])).await
    }

    /// Edge mode: mark an access token as copied to KV (so the eviction
    /// triggers of migration 0003 watch it) and read the record to copy, in
    /// one batch. Marking first means a revocation racing the copy is queued.
    pub async fn bearer_mirror(&self, hash: &str, now: i64) -> Result<Option<BearerRow>, StoreError> {
        let mut out = self
            .db
            .batch(vec![
                Stmt::new(
                    "UPDATE tokens SET mirrored = 1 WHERE hash = ?1 AND kind = 'access' AND revoked_at IS NULL",
                    params![hash],
                ),
                Stmt::new(BEARER_SQL, params![hash, now]),
            ])
            .await?;
        Ok(decode(out.pop().unwrap_or_default())?.into_iter().next())
    }

    /// KV keys queued for deletion by the eviction triggers, oldest first.
    pub async fn queued_evictions(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct H {
            hash: String,
        }
        let rows: Vec<H> = self
            .all(Stmt::new(
                "SELECT hash FROM bearer_evictions ORDER BY queued_at LIMIT ?1",
                params![limit],
            ))
            .await?;
        Ok(rows.into_iter().map(|h| h.hash).collect())
    }

    /// Forget evictions that were carried out.
    pub async fn evicted(&self, hashes: &[String]) -> Result<(), StoreError> {
        let stmts = hashes
            .iter()
            .map(|h| Stmt::new("DELETE FROM bearer_evictions WHERE hash = ?1", params![h]))
            .collect::<Vec<_>>();
        if stmts.is_empty() {
            return Ok(());
        }
        self.db.batch(stmts).await.map(|_| ())
    }
}
