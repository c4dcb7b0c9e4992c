//! The UserInfo read (OIDC Core §5.3): a live access token, its grant, app,
//! org, user and the user's membership, in one indexed query.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// Only a token that would pass the bearer check (the same
/// `live_access_token!` clause): a removed member's tokens release nothing.
const USERINFO_SQL: &str = concat!(
    "SELECT t.scopes, g.app_id, g.actor, g.org_id, o.slug AS org_slug, o.name AS org_name, \
     g.user_id, u.email, u.name, u.preferred_username, u.email_verified, \
     COALESCE(u.updated_at, u.created_at) AS updated_at, \
     a.redirect_uris AS app_redirect_uris, a.sector_identifier_uri AS app_sector_identifier_uri, t.jkt",
    super::bearer::live_access_token!()
);

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
    /// The DPoP key the token is bound to (RFC 9449 §7).
    #[serde(default)]
    pub jkt: Option<String>,
}

impl<D: Driver> Store<D> {
    /// The user behind a live access token (by its storage hash), or `None`.
    pub async fn userinfo(&self, hash: &str, now: i64) -> Result<Option<UserinfoRow>, StoreError> {
        self.one(Stmt::new(USERINFO_SQL, params![hash, now])).await
    }
}
