//! Session ends and the back-channel logout deliveries they queue, in one batch.
//!
//! A logout token is a row of the webhook queue (`webhook_deliveries`, event
//! [`LOGOUT_EVENT`]): one per client with a `backchannel_logout_uri` and a
//! live grant tied to what ended, inserted by the statement that precedes the
//! session's `DELETE` in the same batch, so no session ends without its
//! tokens queued. The row keeps what the token needs (issuer, user, sid, a
//! random `jti`); the token itself is signed at each attempt
//! (`oidc::backchannel`), because it expires two minutes after it is issued
//! and a retry comes minutes later.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// The webhook queue's event name of a back-channel logout token.
pub const LOGOUT_EVENT: &str = "oidc.backchannel_logout";

/// At most this many logout tokens are queued per session end (one per
/// client and session id): the bound on the rows one session end writes
/// (the `LIMIT` of [`queue_logout_tokens`]'s statement).
pub const MAX_LOGOUT_TOKENS: i64 = 100;

/// What ended: the grants whose clients are told.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// One session, by the hash of its cookie: the grants it consented (`grants.sid`).
    Session(&'a str),
    /// Every session of a user (by id): every live grant of theirs.
    User(&'a str),
    /// Every session of a user (by external id): every live grant of theirs.
    ExternalUser(&'a str),
}

/// The row of a queued logout token as the queue keeps it (its payload).
#[derive(Debug, Clone, Deserialize)]
pub struct LogoutPayload {
    pub iss: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub jti: String,
}

/// `INSERT … SELECT` of the logout tokens of the grants `$which` selects
/// (`?2`: the session hash or user), `RETURNING id`; `?1` is a batch guard
/// (`store::provisioning`) or NULL, `?3` the issuer (NULL: queue nothing), `?4` now.
macro_rules! queue_logout {
    ($which:literal) => {
        concat!(
            "INSERT INTO webhook_deliveries (id, app_id, org_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             SELECT 'bcl_' || lower(hex(randomblob(16))), a.id, NULL, 'oidc.backchannel_logout', a.backchannel_logout_uri, \
               json_object('iss', ?3, 'user_id', g.user_id, 'sid', g.sid, 'jti', lower(hex(randomblob(16)))), \
               'pending', 0, ?4, ?4, ?4 \
             FROM grants g JOIN apps a ON a.id = g.app_id WHERE ",
            $which,
            " AND g.user_id IS NOT NULL AND g.revoked_at IS NULL AND a.status != 'deleted' \
               AND a.backchannel_logout_uri IS NOT NULL AND a.backchannel_logout_uri != '' \
               AND ?3 IS NOT NULL AND (?1 IS NULL OR EXISTS (SELECT 1 FROM batch_guards WHERE id = ?1)) \
             GROUP BY a.id, g.sid ORDER BY a.id LIMIT 100 RETURNING id"
        )
    };
}

/// The statement that queues the logout tokens `ended` calls for. It must
/// run before the statements that delete the sessions or revoke the grants
/// it reads; `guard`: the id of the batch guard it is conditioned on;
/// `issuer`: the tokens' `iss`, `None` when OpenID Connect is off (nothing
/// is queued).
pub fn queue_logout_tokens(ended: Ended<'_>, guard: Option<&str>, issuer: Option<&str>, now: i64) -> Stmt {
    let (sql, key) = match ended {
        Ended::Session(h) => (queue_logout!("g.sid = (SELECT sid FROM sessions WHERE hash = ?2)"), h),
        Ended::User(id) => (queue_logout!("g.user_id = ?2"), id),
        Ended::ExternalUser(id) => (
            queue_logout!("g.user_id = (SELECT id FROM users WHERE external_id = ?2)"),
            id,
        ),
    };
    Stmt::new(sql, params![guard, key, issuer, now])
}

/// The ids a [`queue_logout_tokens`] statement returned.
pub fn queued_ids(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r.get("id").and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

impl<D: Driver> Store<D> {
    /// Sign-out: queue the session's logout tokens and delete it, in one
    /// batch. The ids of the queued deliveries.
    pub async fn end_session(&self, hash: &str, issuer: Option<&str>, now: i64) -> Result<Vec<String>, StoreError> {
        let out = self
            .db
            .batch(vec![
                queue_logout_tokens(Ended::Session(hash), None, issuer, now),
                Stmt::new("DELETE FROM sessions WHERE hash = ?1", params![hash]),
            ])
            .await?;
        Ok(out.first().map(|rows| queued_ids(rows)).unwrap_or_default())
    }

    /// Claim queued deliveries by id for an attempt now (as the cron's claim
    /// does, so a concurrent cron run does not send them twice).
    pub async fn claim_deliveries(&self, ids: &[String], now: i64, lease: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::Value::from(ids.to_vec()).to_string();
        self.all(Stmt::new(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2 + ?3 \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' AND next_attempt_at <= ?2 RETURNING *",
            params![list, now, lease],
        ))
        .await
    }
}
