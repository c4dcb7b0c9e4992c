//! Storage for the sign-in rate limit and the browsers a user has signed in
//! on ("device cookies", OWASP Authentication Cheat Sheet).
//!
//! An attempt takes its slots in the failure counters *before* the password
//! is checked, each with one conditional upsert that refuses past the limit,
//! so parallel attempts cannot all pass a count read earlier. A success
//! gives its slots back.

use serde::Deserialize;

use super::{Driver, Stmt, Store};
use crate::error::StoreError;
use crate::params;

macro_rules! count_sql {
    () => {
        "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.count + 1 ELSE 1 END, \
           window_start = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.window_start ELSE ?2 END"
    };
}

/// The account a sign-in names, and what the browser's device cookie is to it.
#[derive(Debug, Clone, Deserialize)]
pub struct SigninAccount {
    pub id: String,
    pub password_hash: String,
    /// The device cookie was issued to this browser on a sign-in to this account.
    pub known_device: i64,
}

/// One failure counter an attempt must find room in.
#[derive(Debug, Clone)]
pub struct Slot {
    pub key: String,
    pub limit: i64,
}

/// What a successful sign-in writes, in one batch.
pub struct SignedIn<'a> {
    pub session_hash: &'a str,
    pub user_id: &'a str,
    pub session_expires_at: i64,
    pub device_hash: &'a str,
    pub device_expires_at: i64,
    pub now: i64,
    /// Slots the attempt took, given back.
    pub slots: &'a [Slot],
    /// The session this sign-in replaces (the browser's cookie), ended in
    /// the same batch: a fresh sign-in (OIDC `prompt=login`, `max_age`) gets
    /// a new session, `sid` and `auth_time`, and the old one stops working.
    pub replaces: Option<&'a str>,
}

impl<D: Driver> Store<D> {
    /// The account named by `email` (case-insensitive), with whether the
    /// device cookie whose hash is `device_hash` was issued to it.
    pub async fn signin_account(
        &self,
        email: &str,
        device_hash: &str,
        now: i64,
    ) -> Result<Option<SigninAccount>, StoreError> {
        self.one(Stmt::new(
            "SELECT u.id, u.password_hash, \
               EXISTS (SELECT 1 FROM signin_devices d WHERE d.hash = ?2 AND d.user_id = u.id AND d.expires_at > ?3) AS known_device \
             FROM users u WHERE u.email = ?1",
            params![email, device_hash, now],
        ))
        .await
    }

    /// Take one slot in each counter, in one round trip; `false` (and nothing
    /// kept) if any is full. Sign-in failures, registrations (DCR) and
    /// metadata document fetches (CIMD) are counted this way. A counter's
    /// window is fixed: it starts with its first slot and reopens `window`
    /// seconds later.
    pub async fn take_slots(&self, slots: &[Slot], now: i64, window: i64) -> Result<bool, StoreError> {
        if slots.is_empty() {
            return Ok(true);
        }
        let stmts = slots
            .iter()
            .map(|s| {
                Stmt::new(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.count + 1 ELSE 1 END, \
                       window_start = CASE WHEN rate_limits.window_start > ?2 - ?3 THEN rate_limits.window_start ELSE ?2 END \
                     WHERE rate_limits.window_start <= ?2 - ?3 OR rate_limits.count < ?4 \
                     RETURNING count",
                    params![s.key.as_str(), now, window, s.limit],
                )
            })
            .collect();
        let results = self.db.batch(stmts).await?;
        let taken: Vec<Slot> = slots
            .iter()
            .zip(&results)
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(s, _)| s.clone())
            .collect();
        if taken.len() == slots.len() {
            return Ok(true);
        }
        self.give_back_slots(&taken).await?;
        Ok(false)
    }

    /// Return slots an attempt took but that did not end in a failure.
    pub async fn give_back_slots(&self, slots: &[Slot]) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        self.db
            .batch(slots.iter().flat_map(give_back).collect())
            .await
            .map(|_| ())
    }

    /// A successful sign-in: the session, the browser remembered as a device
    /// of the account (its expiry renewed), the attempt's slots given back,
    /// and this account's expired devices dropped, in one batch.
    pub async fn signed_in(&self, s: &SignedIn<'_>) -> Result<(), StoreError> {
        let mut stmts = Vec::new();
        if let Some(old) = s.replaces {
            stmts.push(Stmt::new("DELETE FROM sessions WHERE hash = ?1", params![old]));
        }
        stmts.extend([
            // A password checked here: `amr` "pwd" (RFC 8176 §2).
            Stmt::new(
                "INSERT INTO sessions (hash, user_id, created_at, expires_at, sid, auth_time, amr) \
                 VALUES (?1, ?2, ?3, ?4, lower(hex(randomblob(16))), ?3, '[\"pwd\"]')",
                params![s.session_hash, s.user_id, s.now, s.session_expires_at],
            ),
            Stmt::new(
                "DELETE FROM signin_devices WHERE user_id = ?1 AND expires_at <= ?2",
                params![s.user_id, s.now],
            ),
        ]);
        if !s.device_hash.is_empty() {
            stmts.push(Stmt::new(
                "INSERT INTO signin_devices (hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (hash, user_id) DO UPDATE SET expires_at = excluded.expires_at",
                params![s.device_hash, s.user_id, s.now, s.device_expires_at],
            ));
        }
        stmts.extend(s.slots.iter().flat_map(give_back));
        self.db.batch(stmts).await.map(|_| ())
    }
}

/// Give a slot back; a counter back at zero is dropped. A refused attempt
/// first inserts a row for each of its counters, and some keys are the
/// sender's choice (an email, a document host): kept at zero, each refused
/// request would leave a new row behind however full its sender's budget.
fn give_back(s: &Slot) -> [Stmt; 2] {
    [
        Stmt::new(
            "UPDATE rate_limits SET count = count - 1 WHERE key = ?1 AND count > 0",
            params![s.key.as_str()],
        ),
        Stmt::new(
            "DELETE FROM rate_limits WHERE key = ?1 AND count <= 0",
            params![s.key.as_str()],
        ),
    ]
}

// The generic failure counters (client authentication, the back office).
impl<D: Driver> Store<D> {
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
        let w: Option<W> = self.one(count_stmt(key, now, window)).await?;
        Ok(w.map(|w| w.window_start).unwrap_or(now))
    }

    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        self.exec(Stmt::new("DELETE FROM rate_limits WHERE key = ?1", params![key]))
            .await
    }
}

/// One more in `key`'s fixed window of `window` seconds, always (a counter
/// that says whether *this* act was within its budget: the act's own
/// statement then checks `count <= limit` in the same batch).
pub(super) fn count_stmt(key: &str, now: i64, window: i64) -> Stmt {
    Stmt::new(
        concat!(count_sql!(), " RETURNING count, window_start"),
        params![key, now, window],
    )
}
