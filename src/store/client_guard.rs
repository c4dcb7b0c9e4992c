//! Client authentication restated as a SQL guard (`client_ok!`), so the statement
//! that acts carries it and the client's read and the act share one D1 round trip.

use serde::de::DeserializeOwned;

use super::*;
use crate::error::StoreError;
use crate::params;

/// Client authentication restated as a SQL condition, so that the statement
/// which acts (redeem, rotate, revoke) carries it and the client's read and
/// the act share one D1 round trip. It holds exactly when
/// `client_auth::verify` passes, which still decides the response (with a
/// constant-time comparison); if they ever disagreed, the act would simply
/// not happen. Parameters ?20..?26 (see [`ClientGuard::bind`]). A client
/// whose `private_key_jwt` assertion was checked before the batch (?26 = 1:
/// signature, claims, `jti` spent, by `client_auth::prove`) passes as that
/// client; a secret never passes for it (its `secret_hash` is NULL).
///
/// The failure count is the one of this client *from this source* (?25, see
/// `client_auth::rate_key`): failures elsewhere never refuse a right secret.
///
/// `client_ok!(id, key)` names the client by an SQL expression instead of
/// ?20, with the failure key built from it as `client_auth::rate_key` builds
/// it (?25 then being the source): Azure DevOps's assertion grant sends no
/// client_id, its client is the one the code or token was issued to
/// (`store::assertion`).
macro_rules! client_ok {
    () => {
        client_ok!("?20", "?25")
    };
    ($id:literal, $key:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM apps ca WHERE ca.id = ",
            $id,
            " AND ca.status = 'active' AND CASE \
         WHEN ?26 = 1 THEN ca.client_type = 'confidential' AND ca.client_auth_method = 'private_key_jwt' \
         WHEN ?21 IS NULL THEN ca.client_type = 'public' ELSE ca.client_type = 'confidential' AND ca.secret_hash = ?21 \
         AND (ca.secret_expires_at IS NULL OR ca.secret_expires_at > ?22) \
         AND COALESCE((SELECT r.count FROM rate_limits r WHERE r.key = ",
            $key,
            " AND r.window_start > ?23), 0) < ?24 \
         END)"
        )
    };
}

/// What [`client_ok!`] checks: the client, the SHA-256 of the presented
/// secret (`None`: a public client), the clock, the rate-limit window start,
/// the failure limit and the rate-limit key (client and source address).
#[derive(Debug, Clone)]
pub struct ClientGuard {
    /// The client's `private_key_jwt` assertion was accepted (`client_auth::prove`).
    pub key_proven: bool,
    pub app_id: String,
    pub secret_hash: Option<String>,
    pub now: i64,
    pub since: i64,
    pub max_failures: i64,
    pub rate_key: String,
}

impl ClientGuard {
    /// A statement's own parameters (at most ?19), then the guard's at ?20..?26.
    pub(super) fn bind(&self, mut params: Vec<Value>) -> Vec<Value> {
        params.resize(19, Value::Null);
        params.extend([
            Value::from(&self.app_id),
            Value::from(self.secret_hash.clone()),
            Value::from(self.now),
            Value::from(self.since),
            Value::from(self.max_failures),
            Value::from(&self.rate_key),
            Value::from(self.key_proven as i64),
        ]);
        params
    }

    /// The client's row, read at the head of the batch for `verify`.
    pub(super) fn lookup(&self) -> Stmt {
        app_for_auth_stmt(&self.app_id, self.since, &self.rate_key)
    }
}

/// The client's row and its recent authentication failures from one source
/// (rate limit, keyed by `client_auth::rate_key`).
pub(crate) fn app_for_auth_stmt(id: &str, since: i64, rate_key: &str) -> Stmt {
    Stmt::new(
        "SELECT a.*, COALESCE((SELECT r.count FROM rate_limits r WHERE r.key = ?3 AND r.window_start > ?2), 0) \
         AS auth_failures FROM apps a WHERE a.id = ?1",
        params![id, since, rate_key],
    )
}

pub(super) fn first_app(rows: Vec<Row>) -> Result<Option<AppRow>, StoreError> {
    Ok(decode::<AppRow>(rows)?.into_iter().next())
}

impl<D: Driver> Store<D> {
    /// The app with its recent authentication failures from one source
    /// (`rate_key`), in one read.
    pub async fn app_for_auth(&self, id: &str, since: i64, rate_key: &str) -> Result<Option<AppRow>, StoreError> {
        self.one(app_for_auth_stmt(id, since, rate_key)).await
    }

    /// A read together with the client's row: one round trip (introspection).
    pub async fn read_for_client<T: DeserializeOwned>(
        &self,
        guard: &ClientGuard,
        stmt: Stmt,
    ) -> Result<(Option<AppRow>, Option<T>), StoreError> {
        let mut results = self.db.batch(vec![guard.lookup(), stmt]).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let row = decode::<T>(results.next().unwrap_or_default())?.into_iter().next();
        Ok((app, row))
    }

    /// Like [`Store::read_for_client`], every row.
    pub async fn read_all_for_client<T: DeserializeOwned>(
        &self,
        guard: &ClientGuard,
        stmt: Stmt,
    ) -> Result<(Option<AppRow>, Vec<T>), StoreError> {
        let mut results = self.db.batch(vec![guard.lookup(), stmt]).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        Ok((app, decode::<T>(results.next().unwrap_or_default())?))
    }
}
