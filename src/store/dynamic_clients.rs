//! Self-registered clients (RFC 7591 / RFC 7592): registration under the cap and
//! the initial access token in one batch, management by registration access
//! token, and the sweep of clients never used.

use super::apps::client_metadata_params;
use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// SQL: the registration access token `tok` (its SHA-256) belongs to client `id`.
macro_rules! owns {
    ($id:literal, $tok:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM client_registrations cr WHERE cr.app_id = ",
            $id,
            " AND cr.token_hash = ",
            $tok,
            ")"
        )
    };
}

/// A dynamic client as its registration access token finds it.
#[derive(Debug, Clone, Deserialize)]
pub struct DynamicClient {
    #[serde(flatten)]
    pub app: AppRow,
    pub token_endpoint_auth_method: String,
}

/// What [`Store::register_client`] writes.
pub struct NewDynamicClient<'a> {
    pub app: &'a AppRow,
    /// SHA-256 of the registration access token.
    pub token_hash: &'a str,
    pub auth_method: &'a str,
    /// SHA-256 of the initial access token presented (policy
    /// `initial_access_token`); it must be live and have a use left.
    pub initial_token_hash: Option<&'a str>,
    pub max_clients: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Stored,
    /// `DCR_MAX_CLIENTS` dynamic clients exist (deleted ones do not count:
    /// the operator frees a place by deleting); the oldest never used one was
    /// registered at `oldest_unused` (the sweep frees its place later).
    Full {
        oldest_unused: Option<i64>,
    },
    /// The initial access token is unknown, expired, revoked or used up.
    BadInitialToken,
}

/// What [`Store::dynamic_cap_use`] reads.
#[derive(Debug, Clone, Deserialize)]
pub struct DynamicCapUse {
    pub clients: i64,
    pub used: i64,
    pub oldest_unused: Option<i64>,
}

#[derive(Deserialize)]
struct Precheck {
    clients: i64,
    oldest_unused: Option<i64>,
    token_ok: i64,
}

impl<D: Driver> Store<D> {
    /// Store a dynamic client, its registration access token and its audit
    /// record in one transaction. The INSERT carries the cap and the initial
    /// access token's validity in its own WHERE, so parallel registrations
    /// cannot overshoot `max_clients` or a token's `max_uses`: each sees the
    /// rows the ones before it wrote. The first statement reads the same
    /// facts, inside the transaction, only to say why nothing was stored.
    pub async fn register_client(&self, n: &NewDynamicClient<'_>, audit: &Audit) -> Result<Registered, StoreError> {
        let a = n.app;
        let precheck = Stmt::new(
            "SELECT (SELECT COUNT(*) FROM apps WHERE registration = 'dynamic' AND registration <> 'platform' AND status <> 'deleted') AS clients, \
             (SELECT MIN(created_at) FROM apps WHERE registration = 'dynamic' AND registration <> 'platform' \
               AND status <> 'deleted' AND last_used_at IS NULL) AS oldest_unused, \
             (?1 IS NULL OR EXISTS (SELECT 1 FROM initial_access_tokens WHERE hash = ?1 AND revoked_at IS NULL \
               AND expires_at > ?2 AND (max_uses IS NULL OR uses < max_uses))) AS token_ok",
            params![n.initial_token_hash, a.created_at],
        );
        let insert = Stmt::new(
            "INSERT INTO apps (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon, \
             redirect_uris, scopes, client_type, actor_modes, secret_hash, secret_expires_at, webhook_events, status, \
             version, created_by, created_at, updated_at, bot_public, registration, id_token_signed_response_alg, \
             sector_identifier_uri, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, \
             dpop_bound_access_tokens, require_pushed_authorization_requests, client_auth_method, jwks, jwks_uri, \
             token_endpoint_auth_signing_alg, device_authorization) \
             SELECT ?1, NULL, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, '[]', 'active', 1, ?13, ?14, ?14, 0, 'dynamic', \
             ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28 \
             WHERE (SELECT COUNT(*) FROM apps WHERE registration = 'dynamic' AND registration <> 'platform' AND status <> 'deleted') < ?15 \
             AND (?16 IS NULL OR EXISTS (SELECT 1 FROM initial_access_tokens WHERE hash = ?16 AND revoked_at IS NULL \
               AND expires_at > ?14 AND (max_uses IS NULL OR uses < max_uses))) \
             RETURNING id",
            params![
                &a.id,
                &a.name,
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
                a.created_by.clone(),
                a.created_at,
                n.max_clients,
                n.initial_token_hash,
            ]
            .into_iter()
            .chain(client_metadata_params(a))
            .chain(params![a.device_authorization])
            .collect(),
        );
        let registration = Stmt::new(
            "INSERT INTO client_registrations (app_id, token_hash, token_endpoint_auth_method, initial_token_id, created_at) \
             SELECT ?1, ?2, ?3, (SELECT id FROM initial_access_tokens WHERE hash = ?4), ?5 \
             WHERE EXISTS (SELECT 1 FROM apps WHERE id = ?1)",
            params![&a.id, n.token_hash, n.auth_method, n.initial_token_hash, a.created_at],
        );
        let spend = Stmt::new(
            "UPDATE initial_access_tokens SET uses = uses + 1 WHERE hash = ?1 AND EXISTS (SELECT 1 FROM apps WHERE id = ?2)",
            params![n.initial_token_hash, &a.id],
        );
        let record = audit.stmt_if(audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8)"), params![&a.id]);
        let res = self
            .db
            .batch(vec![precheck, insert, registration, spend, record])
            .await?;
        if res.get(1).is_some_and(|rows| !rows.is_empty()) {
            return Ok(Registered::Stored);
        }
        let pre = decode::<Precheck>(res.into_iter().next().unwrap_or_default())?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError("registration precheck returned no row".into()))?;
        Ok(if pre.token_ok == 0 {
            Registered::BadInitialToken
        } else if pre.clients >= n.max_clients {
            Registered::Full {
                oldest_unused: pre.oldest_unused,
            }
        } else {
            // Neither failed when read; a concurrent change between the read
            // and the insert cannot happen inside one transaction, so this is
            // only reachable if the two conditions ever drift apart.
            Registered::Full { oldest_unused: None }
        })
    }

    /// The active dynamic client whose registration access token hashes to
    /// `hash`: a suspended or deleted client does not manage itself (RFC 7592
    /// §2: its token is no longer valid), so it cannot swap its redirect URIs
    /// while suspended for reactivation to enable.
    pub async fn client_by_registration_token(&self, hash: &str) -> Result<Option<DynamicClient>, StoreError> {
        self.one(Stmt::new(
            "SELECT a.*, r.token_endpoint_auth_method FROM client_registrations r JOIN apps a ON a.id = r.app_id \
             WHERE r.token_hash = ?1 AND a.registration = 'dynamic' AND a.status = 'active'",
            params![hash],
        ))
        .await
    }

    /// RFC 7592 update: replace the client's metadata, if the registration
    /// access token (`token_hash`) is still the client's at write time.
    pub async fn update_client(
        &self,
        a: &AppRow,
        token_hash: &str,
        auth_method: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let record = audit.stmt_if(
            audit_if!("EXISTS (SELECT 1 FROM client_registrations cr WHERE cr.app_id = ?8 AND cr.token_hash = ?9)"),
            params![&a.id, token_hash],
        );
        let update = Stmt::new(
            concat!(
                "UPDATE apps SET name = ?3, homepage_url = ?4, terms_url = ?5, privacy_url = ?6, icon = ?7, \
                 redirect_uris = ?8, scopes = ?9, version = version + 1, updated_at = ?10, \
                 id_token_signed_response_alg = ?11, sector_identifier_uri = ?12, post_logout_redirect_uris = ?13, \
                 backchannel_logout_uri = ?14, backchannel_logout_session_required = ?15, \
                 dpop_bound_access_tokens = ?16, require_pushed_authorization_requests = ?17, client_auth_method = ?18, \
                 jwks = ?19, jwks_uri = ?20, token_endpoint_auth_signing_alg = ?21, device_authorization = ?22 \
                 WHERE id = ?1 AND registration = 'dynamic' AND status = 'active' AND ",
                owns!("?1", "?2"),
                " RETURNING *"
            ),
            params![
                &a.id,
                token_hash,
                &a.name,
                a.homepage_url.clone(),
                a.terms_url.clone(),
                a.privacy_url.clone(),
                a.icon.clone(),
                &a.redirect_uris,
                &a.scopes,
                now,
            ]
            .into_iter()
            .chain(client_metadata_params(a))
            .chain(params![a.device_authorization])
            .collect(),
        );
        let method = Stmt::new(
            "UPDATE client_registrations SET token_endpoint_auth_method = ?3 WHERE app_id = ?1 AND token_hash = ?2",
            params![&a.id, token_hash, auth_method],
        );
        let mut res = self.db.batch(vec![record, update, method]).await?.into_iter();
        Ok(decode::<AppRow>(res.nth(1).unwrap_or_default())?.into_iter().next())
    }

    /// RFC 7592 delete: every grant and install of the client revoked, its
    /// consents and unused codes gone, then the client itself (and, by
    /// trigger, its registration access token), in one transaction that does
    /// nothing unless `token_hash` is the client's. The status change before
    /// the delete queues KV evictions of its mirrored tokens (migration 0003).
    pub async fn delete_client(&self, id: &str, token_hash: &str, now: i64, audit: &Audit) -> Result<bool, StoreError> {
        let p = || params![id, token_hash, now];
        let res = self
            .db
            .batch(vec![
                audit.stmt_if(
                    audit_if!(
                        "EXISTS (SELECT 1 FROM client_registrations cr WHERE cr.app_id = ?8 AND cr.token_hash = ?9)"
                    ),
                    params![id, token_hash],
                ),
                Stmt::new(
                    concat!(
                        "UPDATE grants SET revoked_at = ?3 WHERE app_id = ?1 AND revoked_at IS NULL AND ",
                        owns!("?1", "?2")
                    ),
                    p(),
                ),
                Stmt::new(
                    concat!(
                        "UPDATE installs SET revoked_at = ?3 WHERE app_id = ?1 AND revoked_at IS NULL AND ",
                        owns!("?1", "?2")
                    ),
                    p(),
                ),
                Stmt::new(
                    concat!(
                        "DELETE FROM consents WHERE app_id = ?1 AND ",
                        owns!("?1", "?2"),
                        " AND ?3 IS NOT NULL"
                    ),
                    p(),
                ),
                Stmt::new(
                    concat!(
                        "DELETE FROM codes WHERE app_id = ?1 AND ",
                        owns!("?1", "?2"),
                        " AND ?3 IS NOT NULL"
                    ),
                    p(),
                ),
                Stmt::new(
                    concat!(
                        "UPDATE apps SET status = 'deleted', updated_at = ?3 WHERE id = ?1 AND ",
                        owns!("?1", "?2")
                    ),
                    p(),
                ),
                Stmt::new(
                    concat!(
                        "DELETE FROM apps WHERE id = ?1 AND registration = 'dynamic' AND ",
                        owns!("?1", "?2"),
                        " AND ?3 IS NOT NULL RETURNING id"
                    ),
                    p(),
                ),
            ])
            .await?;
        Ok(res.last().is_some_and(|rows| !rows.is_empty()))
    }

    /// How much of `DCR_MAX_CLIENTS` is taken: dynamic clients not deleted,
    /// of them those a code was ever issued to, and when the oldest never
    /// used one was registered (the sweep frees it `DCR_UNUSED_DAYS` later).
    pub async fn dynamic_cap_use(&self) -> Result<DynamicCapUse, StoreError> {
        self.one(Stmt::new(
            "SELECT COUNT(*) AS clients, COUNT(last_used_at) AS used, MIN(CASE WHEN last_used_at IS NULL \
             THEN created_at END) AS oldest_unused FROM apps WHERE registration = 'dynamic' AND status <> 'deleted'",
            params![],
        ))
        .await?
        .ok_or_else(|| StoreError("the cap count returned no row".into()))
    }

    /// Clients with no owner org (`kind`: one registration kind, or both),
    /// after `after` in id order, deleted ones left out.
    pub async fn self_registered_clients(
        &self,
        kind: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<AppRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT * FROM apps WHERE registration <> 'platform' AND (?1 IS NULL OR registration = ?1) \
             AND status <> 'deleted' AND id > ?2 ORDER BY id LIMIT ?3",
            params![kind, after, limit],
        ))
        .await
    }

    /// Cron: delete dynamic clients registered before `registered_before`
    /// that were never sent through authorize (`last_used_at` is set when a
    /// code is issued), at most `limit`. A client never used has no grant,
    /// code or consent to clean up; its registration goes by trigger.
    pub async fn sweep_unused_clients(&self, registered_before: i64, limit: i64) -> Result<i64, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "DELETE FROM apps WHERE rowid IN (SELECT rowid FROM apps WHERE registration = 'dynamic' \
                 AND registration <> 'platform' AND last_used_at IS NULL AND created_at <= ?1 LIMIT ?2) RETURNING id",
                params![registered_before, limit],
            ))
            .await?;
        Ok(rows.len() as i64)
    }
}
