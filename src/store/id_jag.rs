//! The ID-JAG grant's storage: one read (the trusted issuer named by `iss`,
//! its cached JWK set, and the user the assertion names with their role in
//! the issuer's org), and one issuing batch that spends the `jti` and issues
//! the grant, its access token and the audit record together (migration 0024).

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// What the token endpoint needs to judge an ID-JAG, read before its
/// signature is checked (the `sub`/`email` used to find the user is acted
/// on only once it verified).
#[derive(Debug, Clone, Deserialize)]
pub struct IdJagIssuer {
    pub org_id: String,
    pub name: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub allowed_clients: String,
    pub subject_claim: String,
    pub default_role: Option<String>,
    pub resources: String,
    pub scopes: String,
    /// The cached set of `jwks_uri` (`client_jwks`), when there is one.
    pub jwks_uri_cached: Option<String>,
    pub jwks: Option<String>,
    pub jwks_fetched_at: Option<i64>,
    pub jwks_expires_at: Option<i64>,
    /// The platform user the subject maps to, and their role in the org.
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub role_permissions: Option<String>,
    /// The permissions of `default_role` (`None`: no default role, or no permission).
    pub default_permissions: Option<String>,
}

impl IdJagIssuer {
    pub fn cached_jwks(&self) -> Option<CachedJwks> {
        Some(CachedJwks {
            uri: self.jwks_uri_cached.clone()?,
            jwks: self.jwks.clone(),
            fetched_at: self.jwks_fetched_at?,
            expires_at: self.jwks_expires_at?,
        })
    }
}

/// An access token issued for an ID-JAG: a grant with actor `self` for the
/// mapped user, no refresh token (the draft's §"Refresh Token": the client
/// presents a fresh ID-JAG instead).
pub struct IdJagToken<'a> {
    pub grant_id: &'a str,
    pub app_id: &'a str,
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub issuer: &'a str,
    pub jti_hash: &'a str,
    /// Until when the `jti` stays spent: the ID-JAG's `exp` (plus skew).
    pub jti_until: i64,
    pub scopes: &'a str,
    pub audience: &'a str,
    pub access: &'a NewToken,
    pub now: i64,
    /// Live ID-JAG grants per (app, org, user), this one included.
    pub max_live: i64,
    pub dpop: Option<&'a DpopUse>,
    pub audit: &'a Audit,
}

impl<D: Driver> Store<D> {
    /// The read of [`IdJagIssuer`] for `iss`, the subject looked up by
    /// `sub` (the user's `external_id`) or `email`, as the issuer says.
    pub fn id_jag_issuer_stmt(iss: &str, sub: &str, email: &str) -> Stmt {
        Stmt::new(
            "SELECT ti.org_id, ti.name, ti.issuer, ti.jwks_uri, ti.allowed_clients, ti.subject_claim, ti.default_role, \
             ti.resources, ti.scopes, c.uri AS jwks_uri_cached, c.jwks, c.fetched_at AS jwks_fetched_at, \
             c.expires_at AS jwks_expires_at, u.id AS user_id, m.role, \
             (SELECT group_concat(permission, ' ') FROM role_permissions WHERE role = m.role) AS role_permissions, \
             (SELECT group_concat(permission, ' ') FROM role_permissions WHERE role = ti.default_role) AS default_permissions \
             FROM trusted_issuers ti LEFT JOIN client_jwks c ON c.uri = ti.jwks_uri \
             LEFT JOIN users u ON u.id = CASE ti.subject_claim \
               WHEN 'sub' THEN (SELECT id FROM users WHERE external_id = ?2) \
               ELSE (SELECT id FROM users WHERE email = ?3) END \
             LEFT JOIN memberships m ON m.org_id = ti.org_id AND m.user_id = u.id \
             WHERE ti.issuer = ?1",
            params![iss, sub, email],
        )
    }

    /// Spend the `jti` and issue, in one batch: every statement after the
    /// first runs only if the `jti` row is this grant's (a replay, even a
    /// concurrent one, issues nothing), the issuer is still the org's, the
    /// user still a member, the app active and the DPoP proof unused. `false`: nothing was issued.
    pub async fn issue_id_jag_token(&self, t: &IdJagToken<'_>) -> Result<bool, StoreError> {
        // ?1 issuer, ?2 jti hash, ?3 grant id: the `jti` row each later
        // statement requires (`EXISTS … grant_id = ?3`).
        let won = |sql: &'static str, rest: Vec<Value>| {
            let mut p = params![t.issuer, t.jti_hash, t.grant_id];
            p.extend(rest);
            Stmt::new(sql, p)
        };
        let mut stmts = vec![
            Stmt::new(
                "INSERT INTO id_jag_jtis (issuer, jti_hash, expires_at, grant_id) SELECT ?1, ?2, ?4, ?3 \
                 WHERE EXISTS (SELECT 1 FROM trusted_issuers WHERE issuer = ?1 AND org_id = ?6) \
                 AND EXISTS (SELECT 1 FROM memberships WHERE org_id = ?6 AND user_id = ?7) \
                 AND EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status = 'active') \
                 AND (?9 IS NULL OR NOT EXISTS (SELECT 1 FROM dpop_jtis WHERE hash = ?9)) \
                 ON CONFLICT (issuer, jti_hash) DO UPDATE SET expires_at = excluded.expires_at, grant_id = excluded.grant_id \
                 WHERE id_jag_jtis.expires_at <= ?5",
                params![
                    t.issuer,
                    t.jti_hash,
                    t.grant_id,
                    t.jti_until,
                    t.now,
                    t.org_id,
                    t.user_id,
                    t.app_id,
                    t.dpop.map(|d| d.replay_key.clone())
                ],
            ),
            won(
                "UPDATE grants SET revoked_at = ?4 WHERE id IN (SELECT id FROM grants WHERE app_id = ?5 AND org_id = ?6 \
                 AND user_id = ?7 AND source = 'id_jag' AND revoked_at IS NULL \
                 ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?8 - 1) \
                 AND EXISTS (SELECT 1 FROM id_jag_jtis WHERE issuer = ?1 AND jti_hash = ?2 AND grant_id = ?3)",
                params![t.now, t.app_id, t.org_id, t.user_id, t.max_live.max(1)],
            ),
            won(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, source, audience) \
                 SELECT ?3, ?4, ?5, ?6, 'self', ?7, ?8, 'id_jag', ?9 \
                 WHERE EXISTS (SELECT 1 FROM id_jag_jtis WHERE issuer = ?1 AND jti_hash = ?2 AND grant_id = ?3)",
                params![t.app_id, t.org_id, t.user_id, t.scopes, t.now, t.audience],
            ),
            used_proof!("grants", "id = ?1 AND ?2 IS NOT NULL", t.grant_id, t.grant_id, t.dpop),
            t.audit.stmt_if(audit_if!("EXISTS (SELECT 1 FROM grants WHERE id = ?8)"), params![t.grant_id]),
        ];
        stmts.push(super::access_token_stmt(t.access, t.grant_id, t.now));
        let out = self.db.batch(stmts).await?;
        Ok(out.last().is_some_and(|rows| !rows.is_empty()))
    }
}
