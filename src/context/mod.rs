//! The request context every endpoint receives ([`Ctx`]) and what a request
//! leaves behind ([`Outcome`]): log fields and work deferred past the response.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use std::cell::RefCell;

use crate::config::{BearerMode, Config};
use crate::crypto::Kdf;
use crate::store::kv::EdgeKv;
use crate::store::{Driver, Store};
use crate::tasks::Task;

mod profile;
pub use profile::{Core, Profile};

/// Per-request facts the endpoints need: the clock, the issuer identifier,
/// path parameters, and what the request leaves behind (log fields, work to
/// finish after the response: audit records, webhook deliveries).
pub struct Ctx<'a, D: Driver> {
    pub store: &'a Store<D>,
    pub config: &'a Config,
    pub now: i64,
    pub issuer: String,
    pub params: Vec<String>,
    pub effects: RefCell<Outcome>,
    pub kdf: &'a dyn Kdf,
    pub es256: &'a dyn crate::crypto::Es256,
    pub rs256: &'a dyn crate::crypto::Rs256,
    /// Clients' JWS signatures: DPoP proofs, client assertions.
    pub jws: &'a dyn crate::crypto::JwsVerify,
    pub edge: Option<&'a dyn EdgeKv>,
    pub fetcher: &'a dyn crate::http::Fetcher,
    /// The caller's address as rate limits key it (an IPv6 sender as its /64).
    pub source: String,
    /// The compatibility profile's hooks (the core's own behaviour when none is on).
    pub profile: &'a dyn Profile<D>,
}

impl<D: Driver> Ctx<'_, D> {
    /// Name the app and org a request concerned, for the log line.
    pub fn note(&self, app: &str, org: Option<&str>) {
        let mut e = self.effects.borrow_mut();
        e.app = Some(app.to_string());
        if let Some(o) = org {
            e.org = Some(o.to_string());
        }
    }

    /// An audit record of a state change, for the store method of the act to
    /// write in the act's own batch (fsckmsft: actions appear as the
    /// authorizing user). A failed audit write then fails the act.
    pub fn audit_entry(
        &self,
        org_id: &str,
        actor_type: &str,
        actor_id: &str,
        app_id: Option<&str>,
        action: &str,
        detail: serde_json::Value,
    ) -> crate::store::Audit {
        crate::store::Audit {
            org_id: org_id.to_string(),
            at: self.now,
            actor_type: actor_type.to_string(),
            actor_id: actor_id.to_string(),
            app_id: app_id.map(str::to_string),
            action: action.to_string(),
            detail,
        }
    }

    /// Record an audit event after the response. Only for what changes no
    /// state (refused calls, API reads): state changes use [`Self::audit_entry`]
    /// so their record cannot be lost.
    pub fn audit(
        &self,
        org_id: &str,
        actor_type: &str,
        actor_id: &str,
        app_id: Option<&str>,
        action: &str,
        detail: serde_json::Value,
    ) {
        let entry = self.audit_entry(org_id, actor_type, actor_id, app_id, action, detail);
        self.defer(Task::Write(vec![entry.stmt()]));
    }

    /// Emit a webhook event after the response.
    pub fn event(&self, app_id: &str, org_id: Option<&str>, event: &'static str, data: serde_json::Value) {
        self.defer(Task::Event {
            app_id: app_id.to_string(),
            org_id: org_id.map(str::to_string),
            event,
            data,
        });
    }

    /// Work to do after the response is sent (`waitUntil` in the worker).
    pub fn defer(&self, task: Task) {
        self.effects.borrow_mut().tasks.push(task);
    }

    /// A new access token: in edge mode, copy its record to KV after the
    /// response (`store::kv`).
    pub fn mirror(&self, hash: &str) {
        if self.edge.is_some() && self.config.bearer_mode == BearerMode::Edge {
            self.defer(Task::Mirror(hash.to_string()));
        }
    }

    /// This request revoked tokens or narrowed what they allow, outside the
    /// routes that always may (`server::REVOKING_ROUTES`): `Server::handle`
    /// drops the isolate's bearer cache and, in edge mode, drains the queued
    /// KV evictions (migration 0003), whatever the method.
    pub fn revoked(&self) {
        self.effects.borrow_mut().revoked = true;
    }

    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }
}

/// What one request did: log fields (never a secret) and deferred work.
#[derive(Debug, Default)]
pub struct Outcome {
    pub route: &'static str,
    /// Why the request failed on our side (storage text, configuration), for
    /// the log line only.
    pub error: Option<String>,
    pub app: Option<String>,
    pub org: Option<String>,
    pub tasks: Vec<Task>,
    /// Set by [`Ctx::revoked`].
    pub revoked: bool,
}
