//! Storage of the provisioning API (`crate::admin::provisioning`): the
//! platform's orgs, users, memberships, roles, scope catalogue and org API
//! keys, addressed by the platform's `external_id`.
//!
//! Every write is one D1 batch: a guard row (migration 0009, `batch_guards`)
//! is inserted only if the act's preconditions hold, every later statement runs
//! only if the guard row exists, the audit record is one of them, and the last
//! statement deletes the guard row and says whether it was there. A concurrent
//! change that breaks a precondition (the email was taken, the other owner was
//! demoted) turns the whole act into a no-op: `Ok(None)` / `Ok(false)`.
//!
//! An org's "owner" is a member whose role carries `org.admin`: an org that
//! has one keeps one (removal, demotion, user deletion and a role losing
//! `org.admin` are refused when they would leave it without).
//!
//! Layer: store (imports only the foundation); see docs/architecture.md.

use serde::Deserialize;

use super::{Driver, Row, Stmt, Store};
use crate::error::StoreError;
use crate::params;

/// Permissions that are not scopes: what the management API checks.
pub const PLATFORM_PERMISSIONS: &[&str] = &["oauth_app.manage", "org.admin"];

/// Who provisioning actions are recorded as.
pub const PLATFORM_ACTOR: &str = "platform_admin";

/// `audit_events.org_id` of actions that belong to no org (users, roles,
/// scopes). Our org ids are `org_…`, so it cannot name a real org.
pub const PLATFORM_AUDIT_ORG: &str = "_platform";

/// SQL: does a guard row of this batch (`?1`) exist?
macro_rules! guarded {
    () => {
        "EXISTS (SELECT 1 FROM batch_guards WHERE id = ?1)"
    };
}

/// SQL: `org` has an owner other than `user` (both SQL expressions).
macro_rules! owner_elsewhere {
    ($org:literal, $user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM memberships oe JOIN role_permissions oerp ON oerp.role = oe.role \
             AND oerp.permission = 'org.admin' WHERE oe.org_id = ",
            $org,
            " AND oe.user_id != ",
            $user,
            ")"
        )
    };
}

/// SQL: `user` is an owner of `org` and the only one.
macro_rules! last_owner {
    ($org:literal, $user:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM memberships lo JOIN role_permissions lorp ON lorp.role = lo.role \
             AND lorp.permission = 'org.admin' WHERE lo.org_id = ",
            $org,
            " AND lo.user_id = ",
            $user,
            ") AND NOT ",
            owner_elsewhere!($org, $user),
            ")"
        )
    };
}

// After the macros: the resources' files use them.
mod api_keys;
mod memberships;
mod orgs;
mod roles;
mod scopes;
mod trusted_issuers;
mod users;

pub use api_keys::*;
pub use memberships::*;
pub use orgs::*;
pub use roles::*;
pub use scopes::*;
pub use trusted_issuers::*;
pub use users::*;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvAudit {
    pub id: i64,
    pub org_id: String,
    pub at: i64,
    pub action: String,
    pub detail: String,
}

/// What a provisioning act records in the audit log (actor: the platform).
#[derive(Debug, Clone)]
pub struct AuditNote {
    /// `None`: a platform-wide act ([`PLATFORM_AUDIT_ORG`]).
    pub org_id: Option<String>,
    pub action: &'static str,
    pub detail: serde_json::Value,
}

/// The act's audit record (the store's [`super::Audit`]), written only if the
/// batch's guard row exists, like every other statement of the act.
fn audit_stmt(g: &str, note: &AuditNote, now: i64) -> Stmt {
    let record = super::Audit {
        org_id: note.org_id.clone().unwrap_or_else(|| PLATFORM_AUDIT_ORG.to_string()),
        at: now,
        actor_type: "platform".into(),
        actor_id: PLATFORM_ACTOR.into(),
        app_id: None,
        action: note.action.into(),
        detail: note.detail.clone(),
    };
    record.stmt_if(
        audit_if!("EXISTS (SELECT 1 FROM batch_guards WHERE id = ?8)"),
        params![g],
    )
}

fn guard_id() -> String {
    crate::crypto::new_id("bg_")
}

fn texts(rows: Vec<Row>, col: &str) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.get(col).and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

impl<D: Driver> Store<D> {
    /// Run `guard` (an `INSERT INTO batch_guards … WHERE <preconditions>`
    /// with the guard id at ?1), then `body` (each statement conditioned on
    /// [`guarded!`]), then drop the guard. `None`: a precondition failed and
    /// nothing changed.
    pub(super) async fn guarded_batch(
        &self,
        g: &str,
        guard: Stmt,
        body: Vec<Stmt>,
    ) -> Result<Option<Vec<Vec<Row>>>, StoreError> {
        let mut stmts = Vec::with_capacity(body.len() + 2);
        stmts.push(guard);
        stmts.extend(body);
        stmts.push(Stmt::new(
            "DELETE FROM batch_guards WHERE id = ?1 RETURNING id",
            params![g],
        ));
        let mut out = self.db.batch(stmts).await?;
        let held = out.pop().is_some_and(|rows| !rows.is_empty());
        if !held {
            return Ok(None);
        }
        out.remove(0);
        Ok(Some(out))
    }

    /// [`Self::guarded_batch`] when only whether the act happened matters.
    pub(super) async fn guarded_act(&self, g: &str, guard: Stmt, body: Vec<Stmt>) -> Result<bool, StoreError> {
        Ok(self.guarded_batch(g, guard, body).await?.is_some())
    }

    /// Provisioning actions and what self-registered clients did to their
    /// registrations (RFC 7591/7592), and the metadata document clients
    /// anonymous authorizes stored, newest first.
    pub async fn platform_audit_page(&self, before: Option<i64>, limit: i64) -> Result<Vec<ProvAudit>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, org_id, at, action, detail FROM audit_events WHERE actor_type IN ('platform', 'dynamic_client', 'metadata_document_client') \
             AND (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
            params![before, limit],
        ))
        .await
    }
}
