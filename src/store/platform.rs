//! Storage for installs, consents, app lifecycle, users' and admins' control,
//! the audit log, webhooks, rate limits and the sweep.

use serde::Deserialize;

use super::{app_for_auth_stmt, decode, AppRow, Driver, NewToken, SessionUser, Stmt, Store};
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

#[derive(Debug, Clone, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub org_id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub app_id: Option<String>,
    pub action: String,
    pub detail: String,
}

/// Where an app's webhooks go and the secrets that sign them.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookTarget {
    pub url: Option<String>,
    pub secret: Option<String>,
    /// The secret before the last rotation, while its overlap lasts.
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub app_id: String,
    pub org_id: Option<String>,
    pub event: String,
    pub url: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub homepage_url: Option<Option<String>>,
    pub terms_url: Option<Option<String>>,
    pub privacy_url: Option<Option<String>>,
    pub icon: Option<Option<String>>,
    pub redirect_uris: Option<String>,
    pub scopes: Option<String>,
    pub actor_modes: Option<String>,
    pub webhook_url: Option<Option<String>>,
    pub webhook_events: Option<String>,
    pub bot_public: Option<i64>,
    pub bot_require_code_grant: Option<i64>,
}

/// An audit record of a state change. The store method of the act writes it
/// in the same batch as the act (D1 batches are transactions), so a failed
/// audit write undoes the act and the caller answers an error instead of a
/// 2xx with the event lost.
#[derive(Debug, Clone)]
pub struct Audit {
    pub org_id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub app_id: Option<String>,
    pub action: String,
    pub detail: serde_json::Value,
}

/// `INSERT INTO audit_events … SELECT ?1..?7 WHERE <cond>`: the record is
/// written only when the act's own precondition holds (checked in the same
/// transaction, before the act), so a stale update or a no-op leaves no
/// record of something that did not happen. The condition's parameters
/// start at ?8.
macro_rules! audit_if {
    ($cond:literal) => {
        concat!(
            "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE ",
            $cond
        )
    };
}

impl Audit {
    fn params(&self) -> Vec<super::Value> {
        params![
            &self.org_id,
            self.at,
            &self.actor_type,
            &self.actor_id,
            self.app_id.clone(),
            &self.action,
            self.detail.to_string()
        ]
    }

    /// The record, unconditionally.
    pub fn stmt(&self) -> Stmt {
        audit_stmt(
            &self.org_id,
            self.at,
            &self.actor_type,
            &self.actor_id,
            self.app_id.as_deref(),
            &self.action,
            &self.detail,
        )
    }

    /// The record if `sql` (an [`audit_if!`]) finds its condition true, with
    /// the condition's parameters after the record's.
    fn stmt_if(&self, sql: &'static str, cond: Vec<super::Value>) -> Stmt {
        let mut p = self.params();
        p.extend(cond);
        Stmt::new(sql, p)
    }
}

/// An audit record as a statement (deferred records: refused calls, reads).
pub fn audit_stmt(
    org_id: &str,
    now: i64,
    actor_type: &str,
    actor_id: &str,
    app_id: Option<&str>,
    action: &str,
    detail: &serde_json::Value,
) -> Stmt {
    Stmt::new(
        "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![org_id, now, actor_type, actor_id, app_id.map(str::to_string), action, detail.to_string()],
    )
}

fn opt(v: &Option<Option<String>>) -> (i64, Option<String>) {
    match v {
        Some(inner) => (1, inner.clone()),
        None => (0, None),
    }
}

impl<D: Driver> Store<D> {
    // ---- consents (prompt=none, not asking twice) -----------------------

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
    ) -> Result<(Option<AppRow>, Option<SessionUser>, Vec<ConsentRow>), StoreError> {
        let hash = session_hash.unwrap_or("");
        let mut results = self
            .db
            .batch(vec![
                Stmt::new("SELECT * FROM apps WHERE id = ?1", params![app_id]),
                Stmt::new(
                    "SELECT u.id AS user_id, u.email, u.name FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.hash = ?1 AND s.expires_at > ?2",
                    params![hash, now],
                ),
                Stmt::new(
                    "SELECT c.org_id, c.actor, c.scopes, m.role FROM sessions s JOIN consents c ON c.user_id = s.user_id \
                     JOIN memberships m ON m.org_id = c.org_id AND m.user_id = c.user_id \
                     JOIN installs i ON i.app_id = c.app_id AND i.org_id = c.org_id AND i.revoked_at IS NULL \
                     WHERE s.hash = ?1 AND s.expires_at > ?3 AND c.app_id = ?2 ORDER BY c.updated_at DESC",
                    params![hash, app_id, now],
                ),
            ])
            .await?
            .into_iter();
        let mut next = || results.next().unwrap_or_default();
        let app = decode::<AppRow>(next())?.into_iter().next();
        let user = decode::<SessionUser>(next())?.into_iter().next();
        let consents = decode::<ConsentRow>(next())?;
        Ok((app, user, consents))
    }

    // ---- installs and client_credentials --------------------------------

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
    pub async fn issue_app_token(&self, t: &AppToken<'_>) -> Result<(), StoreError> {
        let mut stmts = vec![Stmt::new(
            "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT id FROM grants WHERE app_id = ?1 AND org_id = ?2 \
             AND actor = 'app' AND source = 'client_credentials' AND revoked_at IS NULL \
             ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?4 - 1)",
            params![t.app_id, t.org_id, t.now, t.max_live.max(1)],
        )];
        if let Some(cap) = t.org_cap {
            stmts.push(Stmt::new(
                "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT id FROM grants WHERE app_id = ?1 AND org_id = ?2 \
                 AND revoked_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?4 - 1)",
                params![t.app_id, t.org_id, t.now, cap.max(1)],
            ));
        }
        stmts.extend([
            Stmt::new(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, source) \
                 VALUES (?1, ?2, ?3, NULL, 'app', ?4, ?5, 'client_credentials')",
                params![t.grant_id, t.app_id, t.org_id, t.scopes, t.now],
            ),
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at) VALUES (?1, 'access', ?2, ?3, ?4, ?5)",
                params![&t.access.hash, t.grant_id, t.scopes, t.now, t.access.expires_at],
            ),
        ]);
        self.db.batch(stmts).await.map(|_| ())
    }

    // ---- app lifecycle ----------------------------------------------------

    /// Apply a patch if `version` is current (optimistic concurrency); returns
    /// the updated app, or `None` when the version was stale or the app gone.
    pub async fn update_app(
        &self,
        id: &str,
        version: i64,
        p: &AppPatch,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let (hs, h) = opt(&p.homepage_url);
        let (ts, t) = opt(&p.terms_url);
        let (ps, pr) = opt(&p.privacy_url);
        let (is, i) = opt(&p.icon);
        let (ws, w) = opt(&p.webhook_url);
        let record = audit.stmt_if(
            audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND version = ?9 AND status != 'deleted')"),
            params![id, version],
        );
        let update = Stmt::new(
            "UPDATE apps SET name = COALESCE(?3, name), description = COALESCE(?4, description), \
             homepage_url = CASE WHEN ?5 THEN ?6 ELSE homepage_url END, terms_url = CASE WHEN ?7 THEN ?8 ELSE terms_url END, \
             privacy_url = CASE WHEN ?9 THEN ?10 ELSE privacy_url END, icon = CASE WHEN ?11 THEN ?12 ELSE icon END, \
             redirect_uris = COALESCE(?13, redirect_uris), scopes = COALESCE(?14, scopes), actor_modes = COALESCE(?15, actor_modes), \
             webhook_url = CASE WHEN ?16 THEN ?17 ELSE webhook_url END, webhook_events = COALESCE(?18, webhook_events), \
             bot_public = COALESCE(?19, bot_public), bot_require_code_grant = COALESCE(?20, bot_require_code_grant), \
             version = version + 1, updated_at = ?21 \
             WHERE id = ?1 AND version = ?2 AND status != 'deleted' RETURNING *",
            params![
                id,
                version,
                p.name.clone(),
                p.description.clone(),
                hs,
                h,
                ts,
                t,
                ps,
                pr,
                is,
                i,
                p.redirect_uris.clone(),
                p.scopes.clone(),
                p.actor_modes.clone(),
                ws,
                w,
                p.webhook_events.clone(),
                p.bot_public,
                p.bot_require_code_grant,
                now
            ],
        );
        let mut res = self.db.batch(vec![record, update]).await?.into_iter();
        Ok(super::decode::<AppRow>(res.nth(1).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Replace the client secret: the old one stops working at once; tokens
    /// already issued live on (fsckmsft).
    pub async fn rotate_secret(
        &self,
        id: &str,
        hash: &str,
        expires_at: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        self.act_on_app(
            audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted' AND client_type = 'confidential')"),
                params![id],
            ),
            Stmt::new(
                "UPDATE apps SET secret_hash = ?2, secret_expires_at = ?3, version = version + 1, updated_at = ?4 \
                 WHERE id = ?1 AND status != 'deleted' AND client_type = 'confidential' RETURNING *",
                params![id, hash, expires_at, now],
            ),
        )
        .await
    }

    pub async fn set_app_status(
        &self,
        id: &str,
        status: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        self.act_on_app(
            audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted')"),
                params![id],
            ),
            Stmt::new(
                "UPDATE apps SET status = ?2, version = version + 1, updated_at = ?3 WHERE id = ?1 AND status != 'deleted' RETURNING *",
                params![id, status, now],
            ),
        )
        .await
    }

    /// The audit record, then the act (`UPDATE apps … RETURNING *`), in one batch.
    async fn act_on_app(&self, record: Stmt, act: Stmt) -> Result<Option<AppRow>, StoreError> {
        let mut res = self.db.batch(vec![record, act]).await?.into_iter();
        Ok(super::decode::<AppRow>(res.nth(1).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Replace the webhook signing secret. The previous one stays valid until
    /// `previous_until` (deliveries carry both signatures meanwhile), so
    /// receivers can switch over; `None` drops it at once. Returns the app,
    /// or `None` when it is gone.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let mut res = self
            .db
            .batch(vec![
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted')"),
                    params![id],
                ),
                // Read the outgoing secret before the update replaces it.
                Stmt::new(
                    "INSERT INTO webhook_secret_previous (app_id, secret, expires_at) \
                     SELECT id, webhook_secret, ?2 FROM apps WHERE id = ?1 AND status != 'deleted' AND webhook_secret IS NOT NULL AND ?2 IS NOT NULL \
                     ON CONFLICT (app_id) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at",
                    params![id, previous_until],
                ),
                Stmt::new(
                    "DELETE FROM webhook_secret_previous WHERE app_id = ?1 AND ?2 IS NULL",
                    params![id, previous_until],
                ),
                Stmt::new(
                    "UPDATE apps SET webhook_secret = ?2, version = version + 1, updated_at = ?3 \
                     WHERE id = ?1 AND status != 'deleted' RETURNING *",
                    params![id, secret, now],
                ),
            ])
            .await?
            .into_iter();
        Ok(super::decode::<AppRow>(res.nth(3).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Where and with what an app's webhooks are signed: its URL, its secret
    /// and, during a rotation's overlap, the previous secret.
    pub async fn webhook_target(&self, app_id: &str, now: i64) -> Result<Option<WebhookTarget>, StoreError> {
        self.one(Stmt::new(
            "SELECT a.webhook_url AS url, a.webhook_secret AS secret, p.secret AS previous_secret, p.expires_at AS previous_expires_at \
             FROM apps a LEFT JOIN webhook_secret_previous p ON p.app_id = a.id AND p.expires_at > ?2 WHERE a.id = ?1",
            params![app_id, now],
        ))
        .await
    }

    /// Delete an app: irreversible. Its secret is erased, every grant and
    /// install revoked, consents forgotten. The row stays (status `deleted`)
    /// so ids are never reused and the `app.deleted` webhook can be signed.
    pub async fn delete_app(&self, id: &str, now: i64, audit: &Audit) -> Result<(), StoreError> {
        self.db
            .batch(vec![
                audit.stmt(),
                Stmt::new(
                    "UPDATE apps SET status = 'deleted', secret_hash = NULL, redirect_uris = '[]', version = version + 1, updated_at = ?2 \
                     WHERE id = ?1",
                    params![id, now],
                ),
                Stmt::new("UPDATE grants SET revoked_at = ?2 WHERE app_id = ?1 AND revoked_at IS NULL", params![id, now]),
                Stmt::new("UPDATE installs SET revoked_at = ?2 WHERE app_id = ?1 AND revoked_at IS NULL", params![id, now]),
                Stmt::new("DELETE FROM consents WHERE app_id = ?1", params![id]),
                Stmt::new("DELETE FROM codes WHERE app_id = ?1 AND used_at IS NULL", params![id]),
                Stmt::new("DELETE FROM webhook_secret_previous WHERE app_id = ?1", params![id]),
            ])
            .await
            .map(|_| ())
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

    // ---- users' and admins' control ------------------------------------

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

    // ---- audit log --------------------------------------------------------

    pub async fn audit_page(&self, org_id: &str, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, org_id, at, actor_type, actor_id, app_id, action, detail FROM audit_events \
             WHERE org_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
            params![org_id, before, limit],
        ))
        .await
    }

    // ---- webhooks -----------------------------------------------------------

    pub async fn subscription(&self, app_id: &str, org_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        #[derive(Deserialize)]
        struct S {
            events: String,
        }
        let row: Option<S> = self
            .one(Stmt::new(
                "SELECT events FROM webhook_subscriptions WHERE app_id = ?1 AND org_id = ?2",
                params![app_id, org_id],
            ))
            .await?;
        Ok(row.map(|s| crate::scope::from_json(&s.events)))
    }

    pub async fn set_subscription(
        &self,
        app_id: &str,
        org_id: &str,
        events: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let act = match events {
            Some(e) => Stmt::new(
                "INSERT INTO webhook_subscriptions (app_id, org_id, events, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET events = excluded.events, updated_at = excluded.updated_at",
                params![app_id, org_id, e, now],
            ),
            None => Stmt::new(
                "DELETE FROM webhook_subscriptions WHERE app_id = ?1 AND org_id = ?2",
                params![app_id, org_id],
            ),
        };
        self.db.batch(vec![act, audit.stmt()]).await.map(|_| ())
    }

    /// Record an audit event now, on its own (an API action whose only state
    /// change is the record): the caller fails the action if this fails.
    pub async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.exec(audit.stmt()).await
    }

    /// Org events go to subscribers in that org; app-wide events (no org) to
    /// an app that subscribed to them in any org.
    pub async fn subscribed(&self, app_id: &str, org_id: Option<&str>, event: &str) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct N {
            n: i64,
        }
        let n: Option<N> = self
            .one(Stmt::new(
                "SELECT count(*) AS n FROM webhook_subscriptions s, json_each(s.events) e \
                 WHERE s.app_id = ?1 AND (?2 IS NULL OR s.org_id = ?2) AND e.value = ?3",
                params![app_id, org_id.map(str::to_string), event],
            ))
            .await?;
        Ok(n.is_some_and(|n| n.n > 0))
    }

    pub async fn insert_delivery(&self, d: &DeliveryRow) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO webhook_deliveries (id, app_id, org_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8, ?8)",
            params![&d.id, &d.app_id, d.org_id.clone(), &d.event, &d.url, &d.payload, d.next_attempt_at, d.created_at],
        ))
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn record_attempt(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        code: Option<i64>,
        error: Option<&str>,
        next: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, last_status = ?4, last_error = ?5, next_attempt_at = ?6, updated_at = ?7 \
             WHERE id = ?1",
            params![id, status, attempts, code, error.map(str::to_string), next, now],
        ))
        .await
    }

    /// Claim the deliveries due now, oldest first, at most `per_app` of any
    /// one app (so one app's backlog or dead receiver cannot fill a run) and
    /// `limit` in all. Claiming moves their `next_attempt_at` to `now +
    /// lease` in the same statement, so an overlapping cron run does not send
    /// them twice; the attempt's outcome then sets the real next time.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        per_app: i64,
        lease: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut rows: Vec<DeliveryRow> = self
            .all(Stmt::new(
                "UPDATE webhook_deliveries SET next_attempt_at = ?1 + ?4 WHERE id IN (\
                   SELECT id FROM (SELECT id, next_attempt_at, \
                     row_number() OVER (PARTITION BY app_id ORDER BY next_attempt_at, rowid) AS n \
                     FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1) \
                   WHERE n <= ?3 ORDER BY next_attempt_at LIMIT ?2) \
                 RETURNING *",
                params![now, limit, per_app, lease],
            ))
            .await?;
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(rows)
    }

    pub async fn deliveries_of_app(&self, app_id: &str, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT * FROM webhook_deliveries WHERE app_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2",
            params![app_id, limit],
        ))
        .await
    }

    // ---- rate limits --------------------------------------------------------

    /// Failures recorded for `key` in the window that started after `since`.
    pub async fn failures(&self, key: &str, since: i64) -> Result<i64, StoreError> {
        #[derive(Deserialize)]
        struct C {
            count: i64,
        }
        let c: Option<C> = self
            .one(Stmt::new(
                "SELECT count FROM rate_limits WHERE key = ?1 AND window_start > ?2",
                params![key, since],
            ))
            .await?;
        Ok(c.map(|c| c.count).unwrap_or(0))
    }

    /// Count a failure in a fixed window of `window` seconds; returns the
    /// window's start so the caller can say when it reopens.
    pub async fn record_failure(&self, key: &str, now: i64, window: i64) -> Result<i64, StoreError> {
        #[derive(Deserialize)]
        struct W {
            window_start: i64,
        }
        let w: Option<W> = self
            .one(Stmt::new(
                "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.count + 1 ELSE 1 END, \
                   window_start = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.window_start ELSE ?2 END \
                 RETURNING window_start",
                params![key, now, window],
            ))
            .await?;
        Ok(w.map(|w| w.window_start).unwrap_or(now))
    }

    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        self.exec(Stmt::new("DELETE FROM rate_limits WHERE key = ?1", params![key]))
            .await
    }

    /// The app with its recent authentication failures from one source
    /// (`rate_key`), in one read.
    pub async fn app_for_auth(&self, id: &str, since: i64, rate_key: &str) -> Result<Option<AppRow>, StoreError> {
        self.one(app_for_auth_stmt(id, since, rate_key)).await
    }

    // ---- the sweep ----------------------------------------------------------

    /// Delete expired rows, at most `limit` per table. Spent refresh tokens are
    /// kept `spent_retention` seconds so a late replay is still detected.
    pub async fn sweep(&self, now: i64, spent_retention: i64, limit: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let jobs: [(&str, &'static str); 9] = [
            ("codes", "DELETE FROM codes WHERE rowid IN (SELECT rowid FROM codes WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1"),
            ("sessions", "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1"),
            (
                "access_tokens",
                "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE kind = 'access' AND expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            (
                "refresh_tokens",
                "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE kind = 'refresh' AND \
                 ((expires_at IS NOT NULL AND expires_at <= ?1) OR (used_at IS NOT NULL AND used_at <= ?1 - ?2)) LIMIT ?3) RETURNING 1",
            ),
            (
                "revoked_grant_tokens",
                "DELETE FROM tokens WHERE rowid IN (SELECT t.rowid FROM tokens t JOIN grants g ON g.id = t.grant_id \
                 WHERE g.revoked_at IS NOT NULL AND g.revoked_at <= ?1 - ?2 LIMIT ?3) RETURNING 1",
            ),
            (
                "grants",
                "DELETE FROM grants WHERE rowid IN (SELECT g.rowid FROM grants g WHERE g.revoked_at IS NOT NULL AND g.revoked_at <= ?1 - ?2 \
                 AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = g.id) LIMIT ?3) RETURNING 1",
            ),
            (
                "webhook_secrets",
                "DELETE FROM webhook_secret_previous WHERE rowid IN (SELECT rowid FROM webhook_secret_previous WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            (
                "signin_devices",
                "DELETE FROM signin_devices WHERE rowid IN (SELECT rowid FROM signin_devices WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            (
                "rate_limits",
                "DELETE FROM rate_limits WHERE rowid IN (SELECT rowid FROM rate_limits WHERE window_start <= ?1 - 86400 LIMIT ?3) RETURNING 1",
            ),
        ];
        let stmts = jobs
            .iter()
            .map(|(_, sql)| Stmt::new(sql, params![now, spent_retention, limit]))
            .collect();
        let results = self.db.batch(stmts).await?;
        Ok(jobs
            .iter()
            .zip(results)
            .map(|((name, _), rows)| (name.to_string(), rows.len() as i64))
            .collect())
    }
}
