//! Storage, named after the protocol acts it serves. The statements here run
//! unchanged on D1 and on the native SQLite driver.
//!
//! The contract (what makes single use and rotation safe under concurrency):
//! - [`Store::redeem_code`] and [`Store::rotate_refresh`] are one transaction
//!   whose first statement is a conditional `UPDATE … RETURNING`: exactly one
//!   of any number of concurrent callers matches the row; the inserts that
//!   follow select from the row *this* caller marked, so the losers issue
//!   nothing. A read-then-write would let two callers both succeed.
//! - Revocation is by grant (token family, RFC 9700 §4.14.2): revoking the grant
//!   kills every access and refresh token issued under it at once, because the
//!   bearer check joins the grant.
//! - Nothing expires by itself; reads compare against `now`, and the scheduled
//!   sweep deletes what is past its time.
//!
//! Layer: store (imports only the foundation); see docs/architecture.md.

#[macro_use]
mod client_guard;
#[macro_use]
mod audit;
mod apps;
mod bearer;
mod client_assertions;
#[macro_use]
mod dpop;
#[macro_use]
mod codes;
pub mod driver;
mod dynamic_clients;
mod exchange;
mod health;
mod id_jag;
mod identity;
mod initial_access_tokens;
mod installs;
pub mod kv;
pub mod login_challenges;
mod logout;
mod metadata_documents;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod pushed;
mod ratelimit;
mod sweep;
#[macro_use]
mod tokens;
mod userinfo;
mod webhooks;

// After codes and tokens, whose batch macros it instantiates.
mod assertion;
mod device;

pub use apps::*;
pub use assertion::*;
pub use audit::*;
pub use bearer::*;
pub use client_assertions::*;
pub use client_guard::*;
pub use codes::*;
pub use device::*;
pub use dpop::DpopUse;
pub use dynamic_clients::*;
pub use exchange::*;
pub use id_jag::*;
pub use identity::*;
pub use initial_access_tokens::*;
pub use installs::*;
pub use logout::*;
pub use metadata_documents::MetadataDocumentUse;
pub use ratelimit::*;
pub use tokens::*;
pub use userinfo::*;
pub use webhooks::*;
pub mod provisioning;

use serde::de::DeserializeOwned;

pub use driver::{Driver, Row, Stmt, Value};

use crate::error::StoreError;

pub struct Store<D: Driver> {
    pub db: D,
}

fn decode<T: DeserializeOwned>(rows: Vec<Row>) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|r| serde_json::from_value(serde_json::Value::Object(r)).map_err(|e| StoreError(format!("decode: {e}"))))
        .collect()
}

impl<D: Driver> Store<D> {
    pub fn new(db: D) -> Self {
        Self { db }
    }

    pub(crate) async fn one<T: DeserializeOwned>(&self, stmt: Stmt) -> Result<Option<T>, StoreError> {
        Ok(decode::<T>(self.db.query(stmt).await?)?.into_iter().next())
    }

    pub(crate) async fn all<T: DeserializeOwned>(&self, stmt: Stmt) -> Result<Vec<T>, StoreError> {
        decode(self.db.query(stmt).await?)
    }

    pub(crate) async fn exec(&self, stmt: Stmt) -> Result<(), StoreError> {
        self.db.query(stmt).await.map(|_| ())
    }
}
