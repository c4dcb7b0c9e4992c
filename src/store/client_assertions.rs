//! private_key_jwt's storage: the client's row read with its cached JWK set,
//! the single-use `jti` of each accepted assertion, and the JWK sets fetched
//! from `jwks_uri` (migration 0022).

use serde::Deserialize;

use super::client_guard::{app_for_auth_stmt, first_app};
use super::*;
use crate::error::StoreError;
use crate::params;

/// A JWK set fetched from a client's `jwks_uri`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CachedJwks {
    pub uri: String,
    /// `None`: the last fetch brought back nothing usable.
    pub jwks: Option<String>,
    pub fetched_at: i64,
    pub expires_at: i64,
}

impl<D: Driver> Store<D> {
    /// The client's row with its recent failures from one source (as
    /// [`Store::app_for_auth`]) and the cached set of its `jwks_uri`, in one
    /// round trip.
    pub async fn app_with_jwks(
        &self,
        id: &str,
        since: i64,
        rate_key: &str,
    ) -> Result<(Option<AppRow>, Option<CachedJwks>), StoreError> {
        let cached = Stmt::new(
            "SELECT c.* FROM client_jwks c JOIN apps a ON a.jwks_uri = c.uri WHERE a.id = ?1",
            params![id],
        );
        let mut res = self
            .db
            .batch(vec![app_for_auth_stmt(id, since, rate_key), cached])
            .await?
            .into_iter();
        let app = first_app(res.next().unwrap_or_default())?;
        let jwks = decode::<CachedJwks>(res.next().unwrap_or_default())?.into_iter().next();
        Ok((app, jwks))
    }

    /// Remember what a fetch of `uri` brought back (`None`: nothing usable).
    pub async fn save_jwks(&self, c: &CachedJwks) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO client_jwks (uri, jwks, fetched_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (uri) DO UPDATE SET jwks = excluded.jwks, fetched_at = excluded.fetched_at, \
             expires_at = excluded.expires_at",
            params![&c.uri, c.jwks.clone(), c.fetched_at, c.expires_at],
        ))
        .await
    }

    /// Spend an assertion's `jti` (its SHA-256) for `app_id` until
    /// `expires_at`, in one statement: false when it was already spent (a
    /// replay). An expired row of the same `jti` is taken over, as the
    /// assertion it recorded can no longer be accepted anyway.
    pub async fn spend_assertion_jti(
        &self,
        app_id: &str,
        jti_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "INSERT INTO client_assertion_jtis (app_id, jti_hash, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (app_id, jti_hash) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE client_assertion_jtis.expires_at <= ?4 RETURNING 1",
                params![app_id, jti_hash, expires_at, now],
            ))
            .await?;
        Ok(!rows.is_empty())
    }
}
