//! Pushed authorization requests (RFC 9126): stored at the push, presented at
//! authorize, spent by the code issued from them (`Store::insert_code`).
//!
//! A row moves one way: pushed → presented (the first authorize that names
//! it, which extends its life for the sign-in and consent that follow) →
//! used (a code was issued from it). Each step is one conditional statement.

use serde::Deserialize;

use super::{decode, Driver, Row, Stmt, Store};
use crate::error::StoreError;
use crate::params;

/// A request to store, and the budget of its sender when the client is public.
pub struct NewPushed<'a> {
    pub hash: &'a str,
    pub app_id: &'a str,
    /// The pushed form as a query string, client authentication removed.
    pub params: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// `(rate_limits.key, limit, window seconds)`: the row is written only
    /// within the budget (a public client's pushes are anonymous writes).
    pub budget: Option<(&'a str, i64, i64)>,
}

#[derive(Debug, Clone, Deserialize)]
struct Pushed {
    params: String,
}

/// The pushed parameters from the rows of a presenting or reading statement.
pub fn pushed_params(rows: Vec<Row>) -> Result<Option<String>, StoreError> {
    Ok(decode::<Pushed>(rows)?.into_iter().next().map(|p| p.params))
}

/// Present a pushed request at authorize: live, unspent and the client's
/// own, it is marked presented and, the first time, lives on until
/// `until` (the sign-in and consent window). Returns its `params`; no row:
/// unknown, late, spent or another client's. Meant for `authorize_reads`'
/// batch, so authorize stays one round trip.
pub fn present_stmt(hash: &str, app_id: &str, now: i64, until: i64) -> Stmt {
    Stmt::new(
        "UPDATE pushed_requests SET \
           expires_at = CASE WHEN presented_at IS NULL THEN MAX(expires_at, ?4) ELSE expires_at END, \
           presented_at = COALESCE(presented_at, ?3) \
         WHERE hash = ?1 AND app_id = ?2 AND used_at IS NULL AND expires_at > ?3 RETURNING params",
        params![hash, app_id, now, until],
    )
}

/// The statement that spends a pushed request for the code `code_hash`;
/// the code's insert then requires `used_by = code_hash` ([`Store::insert_code`]).
pub(super) fn spend_stmt(hash: &str, code_hash: &str, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE pushed_requests SET used_at = ?3, used_by = ?2 \
         WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?3 RETURNING 1 AS ok",
        params![hash, code_hash, now],
    )
}

impl<D: Driver> Store<D> {
    /// Store a pushed request; `false`: its sender is over budget, and
    /// nothing was written but the sender's counter (one row per sender).
    pub async fn push_request(&self, p: &NewPushed<'_>) -> Result<bool, StoreError> {
        match p.budget {
            None => {
                self.exec(Stmt::new(
                    "INSERT INTO pushed_requests (hash, app_id, params, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![p.hash, p.app_id, p.params, p.now, p.expires_at],
                ))
                .await?;
                Ok(true)
            }
            Some((key, limit, window)) => {
                let out = self
                    .db
                    .batch(vec![
                        super::ratelimit::count_stmt(key, p.now, window),
                        Stmt::new(
                            "INSERT INTO pushed_requests (hash, app_id, params, created_at, expires_at) \
                             SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT count FROM rate_limits WHERE key = ?6) <= ?7 \
                             RETURNING 1 AS ok",
                            params![p.hash, p.app_id, p.params, p.now, p.expires_at, key, limit],
                        ),
                    ])
                    .await?;
                Ok(out.get(1).is_some_and(|rows| !rows.is_empty()))
            }
        }
    }

    /// A pushed request carried on through sign-in and consent (already
    /// presented): live, unspent and the client's own.
    pub async fn pushed_request(&self, hash: &str, app_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT params FROM pushed_requests WHERE hash = ?1 AND app_id = ?2 AND used_at IS NULL AND expires_at > ?3",
                params![hash, app_id, now],
            ))
            .await?;
        pushed_params(rows)
    }
}
