//! Readiness: the database answers and holds the schema the server needs.

use super::{Driver, Stmt, Store};
use crate::error::StoreError;

/// Every table a request can touch, joined with `LIMIT 0`, and the columns
/// later migrations added to older tables: preparing it fails if one is
/// missing (migrations not applied), running it reads no row.
const READY_SQL: &str = "SELECT tokens.parent, tokens.audience, grants.audience, codes.audience, apps.registration, \
     apps.last_used_at, apps.metadata_expires_at, orgs.external_id, users.external_id FROM orgs, users, memberships, \
     role_permissions, scopes, api_keys, sessions, apps, codes, grants, tokens, installs, consents, audit_events, \
     webhook_subscriptions, webhook_deliveries, rate_limits, bearer_evictions, signin_devices, \
     webhook_secret_previous, login_challenges, roles, batch_guards, client_registrations, initial_access_tokens LIMIT 0";

impl<D: Driver> Store<D> {
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.exec(Stmt::new(READY_SQL, vec![])).await
    }
}
