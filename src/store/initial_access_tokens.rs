//! Initial access tokens (RFC 7591 §3) the platform mints for
//! `DCR=initial_access_token`: stored as SHA-256 with an expiry and an
//! optional number of uses; spent by `Store::register_client`.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize)]
pub struct InitialAccessTokenRow {
    pub id: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at: Option<i64>,
}

impl<D: Driver> Store<D> {
    /// Store a new token (its hash) with its audit record, in one batch.
    pub async fn insert_initial_access_token(
        &self,
        row: &InitialAccessTokenRow,
        hash: &str,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.db
            .batch(vec![
                Stmt::new(
                    "INSERT INTO initial_access_tokens (id, hash, label, created_at, expires_at, max_uses, uses) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                    params![&row.id, hash, &row.label, row.created_at, row.expires_at, row.max_uses],
                ),
                audit.stmt(),
            ])
            .await
            .map(|_| ())
    }

    /// Whether `hash` names a live token with a use left: read before a
    /// registration fetches anything on its behalf (a sector identifier
    /// document); `register_client` still decides, in its own batch.
    pub async fn initial_access_token_usable(&self, hash: &str, now: i64) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct Found {
            n: i64,
        }
        let found: Option<Found> = self
            .one(Stmt::new(
                "SELECT COUNT(*) AS n FROM initial_access_tokens WHERE hash = ?1 AND revoked_at IS NULL \
                 AND expires_at > ?2 AND (max_uses IS NULL OR uses < max_uses)",
                params![hash, now],
            ))
            .await?;
        Ok(found.is_some_and(|f| f.n > 0))
    }

    /// Every token not yet past its expiry, newest first (at most 200).
    pub async fn initial_access_tokens(&self, now: i64) -> Result<Vec<InitialAccessTokenRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, label, created_at, expires_at, max_uses, uses, revoked_at FROM initial_access_tokens \
             WHERE expires_at > ?1 ORDER BY created_at DESC, id LIMIT 200",
            params![now],
        ))
        .await
    }

    /// Revoke a token: it registers nothing more; clients it registered stay.
    /// `false` if there was no such live token.
    pub async fn revoke_initial_access_token(&self, id: &str, now: i64, audit: &Audit) -> Result<bool, StoreError> {
        let res = self
            .db
            .batch(vec![
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM initial_access_tokens WHERE id = ?8 AND revoked_at IS NULL)"),
                    params![id],
                ),
                Stmt::new(
                    "UPDATE initial_access_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL RETURNING id",
                    params![id, now],
                ),
            ])
            .await?;
        Ok(res.last().is_some_and(|rows| !rows.is_empty()))
    }

    /// Cron: forget tokens past their expiry (a day later, so a late
    /// registration attempt is still refused as "expired", not "unknown").
    pub async fn sweep_initial_access_tokens(&self, now: i64, limit: i64) -> Result<i64, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "DELETE FROM initial_access_tokens WHERE rowid IN (SELECT rowid FROM initial_access_tokens \
                 WHERE expires_at <= ?1 - 86400 LIMIT ?2) RETURNING 1",
                params![now, limit],
            ))
            .await?;
        Ok(rows.len() as i64)
    }
}
