//! Storage of delegated sign-in: login challenges, their verifiers, and the sessions they start.
//!
//! A challenge row moves one way: open → decided (accepted for a user, or
//! rejected) → used (the browser came back with the verifier). Each step is
//! one conditional `UPDATE … WHERE <previous state>`, so of any number of
//! concurrent callers exactly one moves it.

use serde::Deserialize;

use super::{decode, Driver, Stmt, Store};
use crate::error::StoreError;
use crate::params;

/// A pending challenge as the platform may see it (`GET /admin/v1/login`).
#[derive(Debug, Clone, Deserialize)]
pub struct LoginChallengeRow {
    pub client_id: String,
    pub request: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub used_at: Option<i64>,
    pub error: Option<String>,
}

/// What the verifier carried back, read in the statement that spent it.
#[derive(Debug, Clone, Deserialize)]
pub struct Landing {
    pub browser_hash: String,
    pub request: String,
    pub user_id: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A challenge to open, and the budget of its sender.
pub struct NewChallenge<'a> {
    pub challenge_hash: &'a str,
    pub browser_hash: &'a str,
    pub client_id: &'a str,
    pub request: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The sender's counter (`rate_limits.key`), its limit, and its window
    /// in seconds: the row is written only within the budget.
    pub budget: (&'a str, i64, i64),
}

/// How and when the platform signed the user in, as its accept said
/// (validated by `crate::oidc::reauth`): `amr` as a JSON array, `auth_time`
/// the accept's own time when it named none.
#[derive(Debug, Clone, Default)]
pub struct AuthFacts {
    pub acr: Option<String>,
    pub amr: Option<String>,
    pub auth_time: i64,
}

/// The platform's audit record of a delegated sign-in act, written by the
/// act's own batch if `cond` (an `audit_if!` condition) holds after the act.
fn platform_audit(now: i64, action: &str, detail: serde_json::Value) -> super::Audit {
    super::Audit {
        org_id: super::provisioning::PLATFORM_AUDIT_ORG.into(),
        at: now,
        actor_type: "platform".into(),
        actor_id: super::provisioning::PLATFORM_ACTOR.into(),
        app_id: None,
        action: action.into(),
        detail,
    }
}

impl<D: Driver> Store<D> {
    /// Count the sender, then open the challenge only if the count is within
    /// its budget, in one round trip. `false`: over budget, nothing written
    /// but the counter (one row per sender).
    pub async fn open_login_challenge(&self, c: &NewChallenge<'_>) -> Result<bool, StoreError> {
        let (key, limit, window) = c.budget;
        let out = self
            .db
            .batch(vec![
                super::ratelimit::count_stmt(key, c.now, window),
                Stmt::new(
                    "INSERT INTO login_challenges (challenge_hash, browser_hash, client_id, request, created_at, expires_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                     WHERE (SELECT count FROM rate_limits WHERE key = ?7) <= ?8 RETURNING 1 AS ok",
                    params![c.challenge_hash, c.browser_hash, c.client_id, c.request, c.now, c.expires_at, key, limit],
                ),
            ])
            .await?;
        Ok(out.get(1).is_some_and(|rows| !rows.is_empty()))
    }

    pub async fn login_challenge(&self, challenge_hash: &str) -> Result<Option<LoginChallengeRow>, StoreError> {
        self.one(Stmt::new(
            "SELECT client_id, request, created_at, expires_at, decided_at, used_at, error FROM login_challenges \
             WHERE challenge_hash = ?1",
            params![challenge_hash],
        ))
        .await
    }

    /// Accept an open challenge for an existing user (named by the
    /// platform's id); `false`: not open, or no such user. One statement.
    pub async fn accept_login_challenge(
        &self,
        challenge_hash: &str,
        verifier_hash: &str,
        external_id: &str,
        client_id: &str,
        facts: &AuthFacts,
        now: i64,
    ) -> Result<bool, StoreError> {
        let audit = platform_audit(
            now,
            "login.accepted",
            serde_json::json!({"external_id": external_id, "client_id": client_id}),
        );
        let out = self
            .db
            .batch(vec![
                Stmt::new(
                    "UPDATE login_challenges SET decided_at = ?2, verifier_hash = ?3, \
                     user_id = (SELECT id FROM users WHERE external_id = ?4), acr = ?5, amr = ?6, auth_time = ?7 \
                     WHERE challenge_hash = ?1 AND decided_at IS NULL AND expires_at > ?2 \
                     AND EXISTS (SELECT 1 FROM users WHERE external_id = ?4) RETURNING 1 AS ok",
                    params![
                        challenge_hash,
                        now,
                        verifier_hash,
                        external_id,
                        facts.acr.clone(),
                        facts.amr.clone(),
                        facts.auth_time
                    ],
                ),
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM login_challenges WHERE verifier_hash = ?8)"),
                    params![verifier_hash],
                ),
            ])
            .await?;
        Ok(out.first().is_some_and(|rows| !rows.is_empty()))
    }

    /// Reject an open challenge; `false` if it was not open.
    pub async fn reject_login_challenge(
        &self,
        challenge_hash: &str,
        verifier_hash: &str,
        error: &str,
        description: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let audit = platform_audit(
            now,
            "login.rejected",
            serde_json::json!({"client_id": client_id, "error": error, "error_description": description}),
        );
        let out = self
            .db
            .batch(vec![
                Stmt::new(
                    "UPDATE login_challenges SET decided_at = ?2, verifier_hash = ?3, error = ?4, error_description = ?5 \
                     WHERE challenge_hash = ?1 AND decided_at IS NULL AND expires_at > ?2 RETURNING 1 AS ok",
                    params![challenge_hash, now, verifier_hash, error, description],
                ),
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM login_challenges WHERE verifier_hash = ?8)"),
                    params![verifier_hash],
                ),
            ])
            .await?;
        Ok(out.first().is_some_and(|rows| !rows.is_empty()))
    }

    /// Spend a verifier (once, whatever follows) and, in the same
    /// transaction, start the session when everything matches: the browser
    /// that was sent away, the same authorization request, an accepted
    /// challenge whose user still exists (then `true`: the session's insert
    /// returned its row). `None`: unknown, expired or spent. The session
    /// takes the accept's `acr`, `amr` and `auth_time`; once it starts, the
    /// browser's previous session (`replaces`) ends in the same batch.
    #[allow(clippy::too_many_arguments)]
    pub async fn land_login_verifier(
        &self,
        verifier_hash: &str,
        session_hash: &str,
        browser_hash: &str,
        request: &str,
        now: i64,
        session_expires: i64,
        replaces: Option<&str>,
    ) -> Result<Option<(Landing, bool)>, StoreError> {
        let out = self
            .db
            .batch(vec![
                Stmt::new(
                    "UPDATE login_challenges SET used_at = ?2, used_by = ?3 \
                     WHERE verifier_hash = ?1 AND used_at IS NULL AND decided_at IS NOT NULL AND expires_at > ?2 \
                     RETURNING browser_hash, request, user_id, error, error_description",
                    params![verifier_hash, now, session_hash],
                ),
                Stmt::new(
                    "INSERT INTO sessions (hash, user_id, created_at, expires_at, sid, auth_time, acr, amr) \
                     SELECT ?1, l.user_id, ?2, ?3, lower(hex(randomblob(16))), COALESCE(l.auth_time, ?2), l.acr, l.amr \
                     FROM login_challenges l JOIN users u ON u.id = l.user_id \
                     WHERE l.used_by = ?1 AND l.error IS NULL AND l.browser_hash = ?4 AND l.request = ?5 \
                     RETURNING user_id",
                    params![session_hash, now, session_expires, browser_hash, request],
                ),
                Stmt::new(
                    "DELETE FROM sessions WHERE hash = ?1 AND ?1 <> ?2 AND EXISTS (SELECT 1 FROM sessions WHERE hash = ?2)",
                    params![replaces.unwrap_or(""), session_hash],
                ),
            ])
            .await?;
        let mut it = out.into_iter();
        let landing = decode::<Landing>(it.next().unwrap_or_default())?.into_iter().next();
        let started = it.next().is_some_and(|rows| !rows.is_empty());
        Ok(landing.map(|l| (l, started)))
    }

    /// The platform's sign-out: end every session of the user it names, and
    /// every sign-in of theirs that was accepted but has not landed (its
    /// verifier would otherwise start a new session within its 10 minutes),
    /// with the audit record and a back-channel logout token queued to each
    /// client of a live grant of theirs (`super::logout`), in one batch.
    /// The sessions and sign-ins ended and the queued deliveries' ids;
    /// `None`: no user has that external id.
    pub async fn end_user_sessions(
        &self,
        external_id: &str,
        issuer: Option<&str>,
        now: i64,
    ) -> Result<Option<(usize, usize, Vec<String>)>, StoreError> {
        let audit = platform_audit(
            now,
            "user.sessions_ended",
            serde_json::json!({"external_id": external_id}),
        );
        let out = self
            .db
            .batch(vec![
                Stmt::new("SELECT id FROM users WHERE external_id = ?1", params![external_id]),
                super::queue_logout_tokens(super::Ended::ExternalUser(external_id), None, issuer, now),
                Stmt::new(
                    "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE external_id = ?1) RETURNING 1 AS ok",
                    params![external_id],
                ),
                Stmt::new(
                    "DELETE FROM login_challenges WHERE user_id = (SELECT id FROM users WHERE external_id = ?1) \
                     AND used_at IS NULL RETURNING 1 AS ok",
                    params![external_id],
                ),
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM users WHERE external_id = ?8)"),
                    params![external_id],
                ),
            ])
            .await?;
        Ok(match out.as_slice() {
            [user, queued, ended, pending, _] if !user.is_empty() => {
                Some((ended.len(), pending.len(), super::queued_ids(queued)))
            }
            _ => None,
        })
    }

    /// Expired challenges, at most `limit` per run (the cron sweep).
    pub async fn sweep_login_challenges(&self, now: i64, limit: i64) -> Result<i64, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "DELETE FROM login_challenges WHERE rowid IN \
                 (SELECT rowid FROM login_challenges WHERE expires_at <= ?1 LIMIT ?2) RETURNING 1 AS ok",
                params![now, limit],
            ))
            .await?;
        Ok(rows.len() as i64)
    }
}
