//! Consents, installs per org, client_credentials issuance, and the users' and
//! admins' view and revocation of connected apps.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize)]
pub struct InstallRow {
    pub app_id: String,
    pub org_id: String,
    pub app_actor: i64,
    pub scopes: String,
    pub installed_by: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsentRow {
    pub org_id: String,
    pub actor: String,
    pub scopes: String,
    /// The user's current role in the org (a prior consent to the app actor
    /// renews silently only while the user may still give it).
    #[serde(default)]
    pub role: Option<String>,
}

/// A client_credentials token to issue ([`Store::issue_app_token`]).
pub struct AppToken<'a> {
    pub grant_id: &'a str,
    pub app_id: &'a str,
    pub org_id: &'a str,
    pub scopes: &'a str,
    pub access: &'a NewToken,
    pub now: i64,
    /// Live client_credentials grants per (app, org), this one included.
    pub max_live: i64,
    /// Live grants of any kind per (app, org), when the cap is per org.
    pub org_cap: Option<i64>,
    /// Issued on the strength of an app-actor install (not the owner org's
    /// bot-only right): the install must still be live when the batch runs.
    pub via_install: bool,
    /// The token's audience (JSON array, RFC 8707).
    pub audience: &'a str,
    /// The DPoP proof of the request, if any: a replay issues nothing.
    pub dpop: Option<&'a DpopUse>,
}

/// A live authorization as its user or an org admin sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationRow {
    pub app_id: String,
    pub app_name: String,
    pub org_id: String,
    pub org_name: String,
    pub actor: String,
    pub scopes: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRow {
    pub app_id: String,
    pub app_name: String,
    pub org_id: String,
    pub org_slug: String,
    pub org_name: String,
    pub app_actor: i64,
    pub installed_by: Option<String>,
    pub created_at: i64,
    pub live_grants: i64,
}

/// The app-actor install behind a client_credentials token is still live
/// (?1 app, ?2 org; ?6 = 0 when the token rests on no install).
macro_rules! install_live {
    () => {
        "(?6 = 0 OR EXISTS (SELECT 1 FROM installs i WHERE i.app_id = ?1 AND i.org_id = ?2 AND i.app_actor = 1 AND i.revoked_at IS NULL)) \
         AND (?8 IS NULL OR NOT EXISTS (SELECT 1 FROM dpop_jtis WHERE hash = ?8))"
    };
}

/// The reads of an authorization request ([`Store::authorize_reads`]): the
/// app, the session's user, their consents to the app, and (when a pushed
/// request was presented) its parameters, `Some(None)` if it was refused.
pub type AuthorizeReads = (
    Option<AppRow>,
    Option<SessionUser>,
    Vec<ConsentRow>,
    Option<Option<String>>,
);

impl<D: Driver> Store<D> {
    #[allow(clippy::too_many_arguments)]
    pub async fn save_consent(
        &self,
        user_id: &str,
        app_id: &str,
        org_id: &str,
        actor: &str,
        scopes: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.db
            .batch(vec![
                Stmt::new(
                    "INSERT INTO consents (user_id, app_id, org_id, actor, scopes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (user_id, app_id, org_id, actor) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                    params![user_id, app_id, org_id, actor, scopes, now],
                ),
                audit.stmt(),
            ])
            .await
            .map(|_| ())
    }

    /// Prior consents of a user for an app, newest first, only in orgs the
    /// user still belongs to and where the app is still installed.
    pub async fn consents(&self, user_id: &str, app_id: &str) -> Result<Vec<ConsentRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT c.org_id, c.actor, c.scopes, m.role FROM consents c \
             JOIN memberships m ON m.org_id = c.org_id AND m.user_id = c.user_id \
             JOIN installs i ON i.app_id = c.app_id AND i.org_id = c.org_id AND i.revoked_at IS NULL \
             WHERE c.user_id = ?1 AND c.app_id = ?2 ORDER BY c.updated_at DESC",
            params![user_id, app_id],
        ))
        .await
    }

    /// What GET /oauth/authorize reads, in one batch: the app, the signed-in
    /// user (by session hash) and that user's live consents for the app.
    pub async fn authorize_reads(
        &self,
        app_id: &str,
        session_hash: Option<&str>,
        now: i64,
        pushed: Option<Stmt>,
    ) -> Result<AuthorizeReads, StoreError> {
        let hash = session_hash.unwrap_or("");
        let presenting = pushed.is_some();
        let mut stmts = vec![
            Stmt::new("SELECT * FROM apps WHERE id = ?1", params![app_id]),
            Stmt::new(
                concat!(
                    "SELECT ",
                    super::identity::session_user!(),
                    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?1 AND s.expires_at > ?2"
                ),
                params![hash, now],
            ),
            Stmt::new(
                "SELECT c.org_id, c.actor, c.scopes, m.role FROM sessions s JOIN consents c ON c.user_id = s.user_id \
                     JOIN memberships m ON m.org_id = c.org_id AND m.user_id = c.user_id \
                     JOIN installs i ON i.app_id = c.app_id AND i.org_id = c.org_id AND i.revoked_at IS NULL \
                     WHERE s.hash = ?1 AND s.expires_at > ?3 AND c.app_id = ?2 ORDER BY c.updated_at DESC",
                params![hash, app_id, now],
            ),
        ];
        stmts.extend(pushed);
        let mut results = self.db.batch(stmts).await?.into_iter();
        let mut next = || results.next().unwrap_or_default();
        let app = decode::<AppRow>(next())?.into_iter().next();
        let user = decode::<SessionUser>(next())?.into_iter().next();
        let consents = decode::<ConsentRow>(next())?;
        let pushed = match presenting {
            true => Some(super::pushed::pushed_params(next())?),
            false => None,
        };
        Ok((app, user, consents, pushed))
    }

    pub async fn install(&self, app_id: &str, org_id: &str) -> Result<Option<InstallRow>, StoreError> {
        self.one(Self::install_stmt(app_id, org_id)).await
    }

    pub fn install_stmt(app_id: &str, org_id: &str) -> Stmt {
        Stmt::new(
            "SELECT app_id, org_id, app_actor, scopes, installed_by, created_at FROM installs \
             WHERE app_id = ?1 AND org_id = ?2 AND revoked_at IS NULL",
            params![app_id, org_id],
        )
    }

    /// Live installs with the app actor, at most `limit`.
    pub fn app_actor_installs_stmt(app_id: &str, limit: i64) -> Stmt {
        Stmt::new(
            "SELECT app_id, org_id, app_actor, scopes, installed_by, created_at FROM installs \
             WHERE app_id = ?1 AND revoked_at IS NULL AND app_actor = 1 LIMIT ?2",
            params![app_id, limit],
        )
    }

    /// Issue a client_credentials access token: a new grant, and the oldest
    /// live client_credentials grants of the app in that org beyond
    /// `max_live` revoked (several instances of one service each keep their
    /// token), in one batch. With `org_cap`, every grant of the app in the
    /// org counts against it too (`LIVE_GRANTS_PER=org`, FeatureOS).
    /// Issue a client_credentials token, evicting the oldest beyond the caps,
    /// in one batch. Every statement is conditional on the install still
    /// being live (when the token rests on one): the install was read in an
    /// earlier round trip, and a revocation in between must issue nothing.
    /// `false`: nothing was issued.
    pub async fn issue_app_token(&self, t: &AppToken<'_>) -> Result<bool, StoreError> {
        // ?6: 1 when the token rests on an install; ?7 the audience; ?8 the
        // DPoP proof's replay key (`store::dpop`).
        let live = |sql: &'static str, mut p: Vec<Value>| {
            p.resize(5, Value::Null);
            p.push(Value::from(t.via_install as i64));
            p.push(Value::from(t.audience));
            p.push(Value::from(t.dpop.map(|d| d.replay_key.clone())));
            Stmt::new(sql, p)
        };
        let mut stmts = vec![live(
            concat!(
                "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT id FROM grants WHERE app_id = ?1 AND org_id = ?2 \
                 AND actor = 'app' AND source = 'client_credentials' AND revoked_at IS NULL \
                 ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?4 - 1) AND ",
                install_live!()
            ),
            params![t.app_id, t.org_id, t.now, t.max_live.max(1)],
        )];
        if let Some(cap) = t.org_cap {
            stmts.push(live(
                concat!(
                    "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT id FROM grants WHERE app_id = ?1 AND org_id = ?2 \
                     AND revoked_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?4 - 1) AND ",
                    install_live!()
                ),
                params![t.app_id, t.org_id, t.now, cap.max(1)],
            ));
        }
        stmts.extend([
            live(
                concat!(
                    "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, source, audience) \
                     SELECT ?4, ?1, ?2, NULL, 'app', ?5, ?3, 'client_credentials', ?7 WHERE ",
                    install_live!()
                ),
                params![t.app_id, t.org_id, t.now, t.grant_id, t.scopes],
            ),
            used_proof!("grants", "id = ?1 AND ?2 IS NOT NULL", t.grant_id, t.grant_id, t.dpop),
            super::access_token_stmt(t.access, t.grant_id, t.now),
        ]);
        let out = self.db.batch(stmts).await?;
        Ok(out.last().is_some_and(|rows| !rows.is_empty()))
    }

    pub async fn installations_of_app(&self, app_id: &str) -> Result<Vec<InstallationRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT i.app_id, a.name AS app_name, i.org_id, o.slug AS org_slug, o.name AS org_name, i.app_actor, i.installed_by, i.created_at, \
             (SELECT count(*) FROM grants g WHERE g.app_id = i.app_id AND g.org_id = i.org_id AND g.revoked_at IS NULL) AS live_grants \
             FROM installs i JOIN orgs o ON o.id = i.org_id JOIN apps a ON a.id = i.app_id \
             WHERE i.app_id = ?1 AND i.revoked_at IS NULL ORDER BY i.created_at, o.slug",
            params![app_id],
        ))
        .await
    }

    pub async fn installations_in_org(&self, org_id: &str) -> Result<Vec<InstallationRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT i.app_id, a.name AS app_name, i.org_id, o.slug AS org_slug, o.name AS org_name, i.app_actor, i.installed_by, i.created_at, \
             (SELECT count(*) FROM grants g WHERE g.app_id = i.app_id AND g.org_id = i.org_id AND g.revoked_at IS NULL) AS live_grants \
             FROM installs i JOIN orgs o ON o.id = i.org_id JOIN apps a ON a.id = i.app_id \
             WHERE i.org_id = ?1 AND i.revoked_at IS NULL AND a.status != 'deleted' ORDER BY a.name",
            params![org_id],
        ))
        .await
    }

    pub async fn authorizations_of_user(&self, user_id: &str) -> Result<Vec<AuthorizationRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT g.app_id, a.name AS app_name, g.org_id, o.name AS org_name, g.actor, g.scopes, g.user_id, u.email AS user_email, \
             g.created_at FROM grants g JOIN apps a ON a.id = g.app_id JOIN orgs o ON o.id = g.org_id \
             LEFT JOIN users u ON u.id = g.user_id \
             WHERE g.user_id = ?1 AND g.revoked_at IS NULL AND a.status != 'deleted' ORDER BY g.created_at DESC",
            params![user_id],
        ))
        .await
    }

    /// A user disconnects an app (in one org, or everywhere): their grants
    /// die and their consent is forgotten. Returns the revoked grants' orgs.
    /// `audit` is recorded once per org a live grant is revoked in (its
    /// `org_id` is ignored), in the same batch.
    pub async fn revoke_user_app(
        &self,
        user_id: &str,
        app_id: &str,
        org_id: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<Vec<String>, StoreError> {
        let record = audit.stmt_if(
            "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) \
             SELECT DISTINCT COALESCE(org_id, ?1), ?2, ?3, ?4, ?5, ?6, ?7 FROM grants \
             WHERE user_id = ?8 AND app_id = ?9 AND (?10 IS NULL OR org_id = ?10) AND revoked_at IS NULL",
            params![user_id, app_id, org_id.map(str::to_string)],
        );
        let mut res = self
            .db
            .batch(vec![
                record,
                Stmt::new(
                    "UPDATE grants SET revoked_at = ?4 WHERE user_id = ?1 AND app_id = ?2 AND (?3 IS NULL OR org_id = ?3) \
                     AND revoked_at IS NULL RETURNING org_id",
                    params![user_id, app_id, org_id.map(str::to_string), now],
                ),
                Stmt::new(
                    "DELETE FROM consents WHERE user_id = ?1 AND app_id = ?2 AND (?3 IS NULL OR org_id = ?3)",
                    params![user_id, app_id, org_id.map(str::to_string)],
                ),
            ])
            .await?
            .into_iter();
        res.next();
        let mut orgs: Vec<String> = res
            .next()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.get("org_id").and_then(|v| v.as_str()).map(str::to_string))
            .collect();
        orgs.sort();
        orgs.dedup();
        Ok(orgs)
    }

    /// An org admin removes an app from the org: the install, every grant of
    /// the app in the org, and every consent there. Other apps are untouched.
    pub async fn revoke_install(
        &self,
        org_id: &str,
        app_id: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let mut res = self
            .db
            .batch(vec![
                audit.stmt_if(
                    audit_if!(
                        "EXISTS (SELECT 1 FROM installs WHERE org_id = ?8 AND app_id = ?9 AND revoked_at IS NULL) \
                         OR EXISTS (SELECT 1 FROM grants WHERE org_id = ?8 AND app_id = ?9 AND revoked_at IS NULL)"
                    ),
                    params![org_id, app_id],
                ),
                Stmt::new(
                    "UPDATE installs SET revoked_at = ?3 WHERE org_id = ?1 AND app_id = ?2 AND revoked_at IS NULL RETURNING app_id",
                    params![org_id, app_id, now],
                ),
                Stmt::new(
                    "UPDATE grants SET revoked_at = ?3 WHERE org_id = ?1 AND app_id = ?2 AND revoked_at IS NULL RETURNING id",
                    params![org_id, app_id, now],
                ),
                Stmt::new("DELETE FROM consents WHERE org_id = ?1 AND app_id = ?2", params![org_id, app_id]),
            ])
            .await?
            .into_iter();
        res.next();
        let installs = res.next().unwrap_or_default().len();
        let grants = res.next().unwrap_or_default().len();
        Ok(installs + grants > 0)
    }
}
