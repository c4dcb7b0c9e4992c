//! Storage, named after the protocol acts it serves. The statements here run
//! unchanged on D1 and on the native SQLite driver.
//!
//! The contract (what makes single use and rotation safe under concurrency):
//! - [`Store::redeem_code`] and [`Store::rotate_refresh`] are one transaction
//!   whose first statement is a conditional `UPDATE … RETURNING`: exactly one
//!   of any number of concurrent callers matches the row; the inserts that
//!   follow select from the row *this* caller marked, so the losers issue
//!   nothing. A read-then-write would let two callers both succeed.
//! - Revocation is by grant (token family, RFC 9700 §4.14.2): revoking the grant
//!   kills every access and refresh token issued under it at once, because the
//!   bearer check joins the grant.
//! - Nothing expires by itself; reads compare against `now`, and the scheduled
//!   sweep deletes what is past its time.

pub mod driver;
mod health;
mod platform;
pub use platform::*;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod provisioning;

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use driver::{Driver, Row, Stmt, Value};

use crate::error::StoreError;
use crate::params;

/// Client authentication restated as a SQL condition, so that the statement
/// which acts (redeem, rotate, revoke) carries it and the client's read and
/// the act share one D1 round trip. It holds exactly when
/// `client_auth::verify` passes, which still decides the response (with a
/// constant-time comparison); if they ever disagreed, the act would simply
/// not happen. Parameters ?20..?24 (see [`ClientGuard::bind`]).
macro_rules! client_ok {
    () => {
        "EXISTS (SELECT 1 FROM apps ca WHERE ca.id = ?20 AND ca.status = 'active' AND CASE WHEN ?21 IS NULL \
         THEN ca.client_type = 'public' ELSE ca.client_type = 'confidential' AND ca.secret_hash = ?21 \
         AND (ca.secret_expires_at IS NULL OR ca.secret_expires_at > ?22) \
         AND COALESCE((SELECT r.count FROM rate_limits r WHERE r.key = 'client:' || ca.id AND r.window_start > ?23), 0) < ?24 \
         END)"
    };
}

/// What [`client_ok!`] checks: the client, the SHA-256 of the presented
/// secret (`None`: a public client), the clock, the rate-limit window start
/// and the failure limit.
#[derive(Debug, Clone)]
pub struct ClientGuard {
    pub app_id: String,
    pub secret_hash: Option<String>,
    pub now: i64,
    pub since: i64,
    pub max_failures: i64,
}

impl ClientGuard {
    /// A statement's own parameters (at most ?19), then the guard's at ?20..?24.
    fn bind(&self, mut params: Vec<Value>) -> Vec<Value> {
        params.resize(19, Value::Null);
        params.extend([
            Value::from(&self.app_id),
            Value::from(self.secret_hash.clone()),
            Value::from(self.now),
            Value::from(self.since),
            Value::from(self.max_failures),
        ]);
        params
    }

    /// The client's row, read at the head of the batch for `verify`.
    fn lookup(&self) -> Stmt {
        app_for_auth_stmt(&self.app_id, self.since)
    }
}

/// The client's row and its recent authentication failures (rate limit).
pub(crate) fn app_for_auth_stmt(id: &str, since: i64) -> Stmt {
    Stmt::new(
        "SELECT a.*, COALESCE((SELECT r.count FROM rate_limits r WHERE r.key = 'client:' || a.id AND r.window_start > ?2), 0) \
         AS auth_failures FROM apps a WHERE a.id = ?1",
        params![id, since],
    )
}

fn first_app(rows: Vec<Row>) -> Result<Option<AppRow>, StoreError> {
    Ok(decode::<AppRow>(rows)?.into_iter().next())
}

pub struct Store<D: Driver> {
    pub db: D,
}

fn decode<T: DeserializeOwned>(rows: Vec<Row>) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|r| serde_json::from_value(serde_json::Value::Object(r)).map_err(|e| StoreError(format!("decode: {e}"))))
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionUser {
    pub user_id: String,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MembershipRow {
    pub org_id: String,
    pub slug: String,
    pub org_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyRow {
    pub org_id: String,
    pub role: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AppRow {
    pub id: String,
    pub owner_org_id: String,
    pub name: String,
    pub description: String,
    pub homepage_url: Option<String>,
    pub terms_url: Option<String>,
    pub privacy_url: Option<String>,
    pub icon: Option<String>,
    pub redirect_uris: String,
    pub scopes: String,
    pub client_type: String,
    pub actor_modes: String,
    pub secret_hash: Option<String>,
    pub secret_expires_at: Option<i64>,
    pub webhook_url: Option<String>,
    pub webhook_events: String,
    pub status: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default = "yes")]
    pub bot_public: i64,
    #[serde(default)]
    pub bot_require_code_grant: i64,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Recent failed authentications of this client (rate limiting); only
    /// filled by [`Store::app_for_auth`].
    #[serde(default)]
    pub auth_failures: i64,
}

fn yes() -> i64 {
    1
}

impl AppRow {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        crate::scope::from_json(&self.redirect_uris)
    }
    pub fn scope_list(&self) -> Vec<String> {
        crate::scope::from_json(&self.scopes)
    }
    /// Allowed actor modes, `self` first: the consent screen's default is
    /// the narrower identity, never the bot.
    pub fn actor_mode_list(&self) -> Vec<String> {
        let mut modes: Vec<String> = crate::scope::from_json(&self.actor_modes);
        modes.sort_by_key(|m| m != "self");
        modes
    }
    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CodeRow {
    pub hash: String,
    pub app_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    pub scopes: String,
    pub redirect_uri: String,
    pub challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub grant_id: Option<String>,
}

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
}

const TOKEN_SQL: &str = "SELECT t.hash, t.kind, t.grant_id, t.scopes, t.created_at, t.expires_at, t.used_at, \
     t.revoked_at, g.app_id, g.org_id, g.user_id, g.actor, g.revoked_at AS grant_revoked_at \
     FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?1";

/// The bearer check: one indexed read joining the token, its grant, app, org,
/// user and the user's current role and its permissions.
const BEARER_SQL: &str = "SELECT t.scopes, t.expires_at, t.created_at, g.id AS grant_id, g.app_id, \
     a.name AS app_name, a.scopes AS app_scopes, g.org_id, o.slug AS org_slug, g.user_id, u.email AS user_email, \
     g.actor, m.role, \
     (SELECT group_concat(rp.permission, ' ') FROM role_permissions rp WHERE rp.role = m.role) AS role_permissions \
     FROM tokens t JOIN grants g ON g.id = t.grant_id JOIN apps a ON a.id = g.app_id \
     JOIN orgs o ON o.id = g.org_id \
     LEFT JOIN users u ON u.id = g.user_id \
     LEFT JOIN memberships m ON m.org_id = g.org_id AND m.user_id = g.user_id \
     WHERE t.hash = ?1 AND t.kind = 'access' AND t.revoked_at IS NULL AND t.expires_at > ?2 \
     AND g.revoked_at IS NULL AND a.status = 'active' \
     AND (g.actor = 'app' OR m.role IS NOT NULL)";

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
}

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
}

pub struct Redemption<'a> {
    pub code_hash: &'a str,
    pub app_id: &'a str,
    pub redirect_uri: &'a str,
    /// S256 of the presented verifier; `None` when none was presented.
    pub challenge: Option<&'a str>,
    pub now: i64,
    pub grant_id: &'a str,
    pub access: &'a NewToken,
    pub refresh: Option<&'a NewToken>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Redeemed {
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    pub scopes: String,
    /// The app was not installed (live) in the org before this redemption.
    #[serde(default)]
    pub new_install: bool,
}

pub struct Rotation<'a> {
    pub old_hash: &'a str,
    pub app_id: &'a str,
    /// JSON array of a narrower scope set, or `None` to keep the old one.
    pub scopes: Option<&'a str>,
    pub now: i64,
    pub access: &'a NewToken,
    pub refresh: &'a NewToken,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rotated {
    pub grant_id: String,
    pub scopes: String,
}

impl<D: Driver> Store<D> {
    pub fn new(db: D) -> Self {
        Self { db }
    }

    pub(crate) async fn one<T: DeserializeOwned>(&self, stmt: Stmt) -> Result<Option<T>, StoreError> {
        Ok(decode::<T>(self.db.query(stmt).await?)?.into_iter().next())
    }

    pub(crate) async fn all<T: DeserializeOwned>(&self, stmt: Stmt) -> Result<Vec<T>, StoreError> {
        decode(self.db.query(stmt).await?)
    }

    pub(crate) async fn exec(&self, stmt: Stmt) -> Result<(), StoreError> {
        self.db.query(stmt).await.map(|_| ())
    }

    // ---- identity -------------------------------------------------------

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        self.one(Stmt::new(
            "SELECT id, email, name, password_hash FROM users WHERE email = ?1",
            params![email],
        ))
        .await
    }

    pub async fn create_session(&self, hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, user_id, now, expires_at],
        ))
        .await
    }

    pub async fn session_user(&self, hash: &str, now: i64) -> Result<Option<SessionUser>, StoreError> {
        self.one(Stmt::new(
            "SELECT u.id AS user_id, u.email, u.name FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.hash = ?1 AND s.expires_at > ?2",
            params![hash, now],
        ))
        .await
    }

    pub async fn delete_session(&self, hash: &str) -> Result<(), StoreError> {
        self.exec(Stmt::new("DELETE FROM sessions WHERE hash = ?1", params![hash]))
            .await
    }

    pub async fn memberships(&self, user_id: &str) -> Result<Vec<MembershipRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT m.org_id, o.slug, o.name AS org_name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = ?1 ORDER BY o.name",
            params![user_id],
        ))
        .await
    }

    pub async fn api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.one(Stmt::new(
            "SELECT org_id, role, name FROM api_keys WHERE hash = ?1",
            params![hash],
        ))
        .await
    }

    pub async fn role_permissions(&self, role: &str) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct P {
            permission: String,
        }
        let rows: Vec<P> = self
            .all(Stmt::new(
                "SELECT permission FROM role_permissions WHERE role = ?1 ORDER BY permission",
                params![role],
            ))
            .await?;
        Ok(rows.into_iter().map(|p| p.permission).collect())
    }

    pub async fn scope_catalogue(&self) -> Result<Vec<ScopeRow>, StoreError> {
        self.all(Stmt::new("SELECT name, description FROM scopes ORDER BY name", vec![]))
            .await
    }

    pub async fn org(&self, id: &str) -> Result<Option<OrgRow>, StoreError> {
        self.one(Stmt::new("SELECT id, slug, name FROM orgs WHERE id = ?1", params![id]))
            .await
    }

    // ---- apps -----------------------------------------------------------

    pub async fn insert_app(&self, a: &AppRow) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO apps (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon, \
             redirect_uris, scopes, client_type, actor_modes, secret_hash, secret_expires_at, webhook_url, \
             webhook_events, status, version, created_by, created_at, updated_at, bot_public, bot_require_code_grant, \
             webhook_secret) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            params![
                &a.id,
                &a.owner_org_id,
                &a.name,
                &a.description,
                a.homepage_url.clone(),
                a.terms_url.clone(),
                a.privacy_url.clone(),
                a.icon.clone(),
                &a.redirect_uris,
                &a.scopes,
                &a.client_type,
                &a.actor_modes,
                a.secret_hash.clone(),
                a.secret_expires_at,
                a.webhook_url.clone(),
                &a.webhook_events,
                &a.status,
                a.version,
                a.created_by.clone(),
                a.created_at,
                a.updated_at,
                a.bot_public,
                a.bot_require_code_grant,
                a.webhook_secret.clone()
            ],
        ))
        .await
    }

    pub async fn app(&self, id: &str) -> Result<Option<AppRow>, StoreError> {
        self.one(Stmt::new("SELECT * FROM apps WHERE id = ?1", params![id]))
            .await
    }

    pub async fn apps_of_org(&self, org_id: &str) -> Result<Vec<AppRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT * FROM apps WHERE owner_org_id = ?1 ORDER BY created_at DESC, id",
            params![org_id],
        ))
        .await
    }

    // ---- authorization codes -------------------------------------------

    pub async fn insert_code(&self, c: &CodeRow) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO codes (hash, app_id, org_id, user_id, actor, scopes, redirect_uri, challenge, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                &c.hash,
                &c.app_id,
                &c.org_id,
                c.user_id.clone(),
                &c.actor,
                &c.scopes,
                &c.redirect_uri,
                c.challenge.clone(),
                c.created_at,
                c.expires_at
            ],
        ))
        .await
    }

    /// Consume a code and issue its tokens in one transaction. The code must
    /// be unused, unexpired and bound to this client, redirect URI and PKCE
    /// challenge (RFC 6749 §4.1.3, RFC 7636 §4.6; `challenge IS ?` also refuses
    /// a verifier for a code that had no challenge, RFC 9700 §2.1.1).
    /// Returns `None` if any condition fails; nothing is changed then.
    ///
    /// One round trip: the client's row comes first in the batch (for
    /// `client_auth::verify`), and the redeeming UPDATE also requires the
    /// client's credentials to hold ([`client_ok!`]) and, for a public client,
    /// a verifier.
    pub async fn redeem_code(
        &self,
        r: &Redemption<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Redeemed>), StoreError> {
        // Statements after the UPDATE select from the code row *this* call
        // marked (grant_id = ours), so they do nothing unless it won.
        let mut stmts = vec![
            guard.lookup(),
            Stmt::new(
                concat!(
                    "UPDATE codes SET used_at = ?1, grant_id = ?2 \
                     WHERE hash = ?3 AND app_id = ?4 AND redirect_uri = ?5 AND challenge IS ?6 \
                     AND used_at IS NULL AND expires_at > ?1 AND (?6 IS NOT NULL OR ?21 IS NOT NULL) AND ",
                    client_ok!(),
                    " RETURNING org_id, user_id, actor, scopes"
                ),
                guard.bind(params![r.now, r.grant_id, r.code_hash, r.app_id, r.redirect_uri, r.challenge]),
            ),
            // Was the app already installed in this org? (For the installed event.)
            Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM installs i JOIN codes c ON c.app_id = i.app_id AND c.org_id = i.org_id \
                 WHERE c.hash = ?1 AND c.grant_id = ?2 AND i.revoked_at IS NULL) AS existed",
                params![r.code_hash, r.grant_id],
            ),
            // One live token set per (app, org, actor[, user]) (FeatureOS): the
            // new authorization replaces the previous one.
            Stmt::new(
                "UPDATE grants SET revoked_at = ?3 WHERE revoked_at IS NULL AND source = 'authorization_code' \
                 AND id IN (SELECT g.id FROM grants g JOIN codes c ON c.app_id = g.app_id AND c.org_id = g.org_id \
                   AND c.actor = g.actor AND (c.actor = 'app' OR c.user_id IS g.user_id) \
                   WHERE c.hash = ?1 AND c.grant_id = ?2 AND g.revoked_at IS NULL)",
                params![r.code_hash, r.grant_id, r.now],
            ),
            Stmt::new(
                "INSERT INTO installs (app_id, org_id, app_actor, scopes, installed_by, created_at, updated_at) \
                 SELECT app_id, org_id, actor = 'app', CASE WHEN actor = 'app' THEN scopes ELSE '[]' END, user_id, used_at, used_at \
                 FROM codes WHERE hash = ?1 AND grant_id = ?2 \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET \
                   app_actor = CASE WHEN installs.revoked_at IS NULL THEN MAX(installs.app_actor, excluded.app_actor) ELSE excluded.app_actor END, \
                   scopes = CASE WHEN excluded.app_actor = 1 THEN excluded.scopes WHEN installs.revoked_at IS NULL THEN installs.scopes ELSE '[]' END, \
                   created_at = CASE WHEN installs.revoked_at IS NULL THEN installs.created_at ELSE excluded.created_at END, \
                   installed_by = CASE WHEN installs.revoked_at IS NULL THEN installs.installed_by ELSE excluded.installed_by END, \
                   updated_at = excluded.updated_at, revoked_at = NULL",
                params![r.code_hash, r.grant_id],
            ),
            Stmt::new(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at) \
                 SELECT grant_id, app_id, org_id, user_id, actor, scopes, used_at FROM codes \
                 WHERE hash = ?1 AND grant_id = ?2",
                params![r.code_hash, r.grant_id],
            ),
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at) \
                 SELECT ?3, 'access', grant_id, scopes, used_at, ?4 FROM codes WHERE hash = ?1 AND grant_id = ?2",
                params![r.code_hash, r.grant_id, &r.access.hash, r.access.expires_at],
            ),
        ];
        if let Some(rt) = r.refresh {
            stmts.push(Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at) \
                 SELECT ?3, 'refresh', grant_id, scopes, used_at, ?4 FROM codes WHERE hash = ?1 AND grant_id = ?2",
                params![r.code_hash, r.grant_id, &rt.hash, rt.expires_at],
            ));
        }
        let mut results = self.db.batch(stmts).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let first = results.next().unwrap_or_default();
        let existed = results
            .next()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.get("existed").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        let redeemed = decode::<Redeemed>(first)?.into_iter().next().map(|mut r| {
            r.new_install = existed == 0;
            r
        });
        Ok((app, redeemed))
    }

    pub async fn code(&self, hash: &str) -> Result<Option<CodeRow>, StoreError> {
        self.one(Stmt::new("SELECT * FROM codes WHERE hash = ?1", params![hash]))
            .await
    }

    // ---- tokens ---------------------------------------------------------

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
    pub async fn rotate_refresh(
        &self,
        r: &Rotation<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Rotated>), StoreError> {
        let stmts = vec![
            guard.lookup(),
            Stmt::new(
                concat!(
                    "UPDATE tokens SET used_at = ?1, rotated_to = ?2 \
                     WHERE hash = ?3 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > ?1) \
                     AND grant_id IN (SELECT g.id FROM grants g JOIN apps a ON a.id = g.app_id \
                       WHERE g.app_id = ?4 AND g.revoked_at IS NULL AND a.status = 'active' \
                       AND (g.actor = 'app' OR EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = g.org_id AND m.user_id = g.user_id))) \
                     AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?5) r \
                       WHERE r.value NOT IN (SELECT value FROM json_each(tokens.scopes)))) AND ",
                    client_ok!(),
                    " RETURNING grant_id, COALESCE(?5, scopes) AS scopes"
                ),
                guard.bind(params![r.now, &r.refresh.hash, r.old_hash, r.app_id, r.scopes]),
            ),
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at) \
                 SELECT ?3, 'access', grant_id, COALESCE(?5, scopes), ?6, ?4 FROM tokens WHERE hash = ?1 AND rotated_to = ?2",
                params![r.old_hash, &r.refresh.hash, &r.access.hash, r.access.expires_at, r.scopes, r.now],
            ),
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at) \
                 SELECT ?2, 'refresh', grant_id, COALESCE(?4, scopes), ?5, ?3 FROM tokens WHERE hash = ?1 AND rotated_to = ?2",
                params![r.old_hash, &r.refresh.hash, r.refresh.expires_at, r.scopes, r.now],
            ),
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

    /// A read together with the client's row: one round trip (introspection).
    pub async fn read_for_client<T: DeserializeOwned>(
        &self,
        guard: &ClientGuard,
        stmt: Stmt,
    ) -> Result<(Option<AppRow>, Option<T>), StoreError> {
        let mut results = self.db.batch(vec![guard.lookup(), stmt]).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let row = decode::<T>(results.next().unwrap_or_default())?.into_iter().next();
        Ok((app, row))
    }

    /// Like [`Store::read_for_client`], every row.
    pub async fn read_all_for_client<T: DeserializeOwned>(
        &self,
        guard: &ClientGuard,
        stmt: Stmt,
    ) -> Result<(Option<AppRow>, Vec<T>), StoreError> {
        let mut results = self.db.batch(vec![guard.lookup(), stmt]).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        Ok((app, decode::<T>(results.next().unwrap_or_default())?))
    }

    pub fn bearer_stmt(hash: &str, now: i64) -> Stmt {
        Stmt::new(BEARER_SQL, params![hash, now])
    }

    pub fn token_stmt(hash: &str) -> Stmt {
        Stmt::new(TOKEN_SQL, params![hash])
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
