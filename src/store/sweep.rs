//! The scheduled sweep: deletes what has expired, bounded per table per run.

use super::*;
use crate::error::StoreError;
use crate::params;

impl<D: Driver> Store<D> {
    /// Delete expired rows, at most `limit` per table. Spent refresh tokens are
    /// kept `spent_retention` seconds so a late replay is still detected.
    pub async fn sweep(&self, now: i64, spent_retention: i64, limit: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let jobs: [(&str, &'static str); 16] = [
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
            // Clients identified by URL (`crate::cimd`), active ones only (a
            // ban is a `deleted` row and a suspension a `suspended` one: both
            // are the operator's and outlive every sweep), holding no live
            // token or pending code, and either never issued a code a day
            // after they were stored (refetching a document is not a use, so
            // nobody keeps a slot under the cap by fetching), or with a
            // document expired a day ago and unused for a day. The next
            // authorize fetches the document and stores the client again.
            (
                "metadata_document_clients",
                "DELETE FROM apps WHERE rowid IN (SELECT a.rowid FROM apps a WHERE a.registration = 'metadata_document' \
                 AND a.status = 'active' \
                 AND ((a.last_used_at IS NULL AND a.created_at <= ?1 - 86400) \
                   OR (a.metadata_expires_at <= ?1 - 86400 AND COALESCE(a.last_used_at, a.created_at) <= ?1 - 86400)) \
                 AND NOT EXISTS (SELECT 1 FROM grants g JOIN tokens t ON t.grant_id = g.id WHERE g.app_id = a.id \
                 AND g.revoked_at IS NULL AND t.revoked_at IS NULL AND t.used_at IS NULL \
                 AND (t.expires_at IS NULL OR t.expires_at > ?1)) \
                 AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.app_id = a.id AND c.expires_at > ?1) LIMIT ?3) RETURNING 1",
            ),
            // Used DPoP proofs (migration 0020), once their `iat` is out of the window.
            (
                "dpop_jtis",
                "DELETE FROM dpop_jtis WHERE rowid IN (SELECT rowid FROM dpop_jtis WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            (
                "pushed_requests",
                "DELETE FROM pushed_requests WHERE rowid IN (SELECT rowid FROM pushed_requests WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            // Device authorization requests (RFC 8628), decided or not, once expired.
            (
                "device_codes",
                "DELETE FROM device_codes WHERE rowid IN (SELECT rowid FROM device_codes WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            (
                "client_assertion_jtis",
                "DELETE FROM client_assertion_jtis WHERE rowid IN (SELECT rowid FROM client_assertion_jtis WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            // Spent ID-JAG `jti`s (migration 0024), once their ID-JAG expired.
            (
                "id_jag_jtis",
                "DELETE FROM id_jag_jtis WHERE rowid IN (SELECT rowid FROM id_jag_jtis WHERE expires_at <= ?1 LIMIT ?3) RETURNING 1",
            ),
            // A cached set is dropped a day after it went stale: a client
            // still in use fetches it again; one gone leaves no row behind.
            (
                "client_jwks",
                "DELETE FROM client_jwks WHERE rowid IN (SELECT rowid FROM client_jwks WHERE expires_at <= ?1 - 86400 LIMIT ?3) RETURNING 1",
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
