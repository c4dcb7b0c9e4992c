//! The audit log: records written in the same batch as the act they describe, and
//! the org admin's paged view.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

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
    pub(super) fn stmt_if(&self, sql: &'static str, cond: Vec<super::Value>) -> Stmt {
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

impl<D: Driver> Store<D> {
    pub async fn audit_page(&self, org_id: &str, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, org_id, at, actor_type, actor_id, app_id, action, detail FROM audit_events \
             WHERE org_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
            params![org_id, before, limit],
        ))
        .await
    }

    /// Record an audit event now, on its own (an API action whose only state
    /// change is the record): the caller fails the action if this fails.
    pub async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.exec(audit.stmt()).await
    }
}
