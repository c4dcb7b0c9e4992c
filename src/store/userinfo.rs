//! The UserInfo read (OIDC Core §5.3): a live access token, its grant, app,
//! org, user and the user's membership, in one indexed query.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// Only a token that would pass the bearer check (`BEARER_SQL`): live,
/// its grant unrevoked, its app active, and a user who still holds a role in
/// the grant's org (a removed member's tokens release nothing).
const USERINFO_SQL: &str = "SELECT t.scopes, g.app_id, g.actor, g.org_id, o.slug AS org_slug, o.name AS org_name, \
     g.user_id, u.email, u.name, u.preferred_username, u.email_verified, \
     COALESCE(u.updated_at, u.created_at) AS updated_at, \
     a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri \
     FROM tokens t JOIN grants g ON g.id = t.grant_id JOIN apps a ON a.id = g.app_id \
     JOIN orgs o ON o.id = g.org_id \
     LEFT JOIN users u ON u.id = g.user_id \
     LEFT JOIN memberships m ON m.org_id = g.org_id AND m.user_id = g.user_id \
     WHERE t.hash = ?1 AND t.kind = 'access' AND t.revoked_at IS NULL AND t.expires_at > ?2 \
     AND g.revoked_at IS NULL AND a.status = 'active' \
     AND (g.actor = 'app' OR m.role IS NOT NULL)";

/// What UserInfo may release about the user of a live access token.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct UserinfoRow {
    /// The token's granted scopes (JSON array).
    pub scopes: String,
    pub app_id: String,
    pub actor: String,
    pub org_id: String,
    pub org_slug: String,
    pub org_name: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub email_verified: Option<i64>,
    pub updated_at: Option<i64>,
    pub app_redirect_uris: Option<String>,
    pub app_sector_identifier_uri: Option<String>,
}

impl<D: Driver> Store<D> {
    /// The user behind a live access token (by its storage hash), or `None`.
    pub async fn userinfo(&self, hash: &str, now: i64) -> Result<Option<UserinfoRow>, StoreError> {
        self.one(Stmt::new(USERINFO_SQL, params![hash, now])).await
    }
}
