//! `BEARER_MODE=edge`: access-token records copied to KV (the `BEARER_KV` binding),
//! read before D1.
//!
//! - Copy: after a token response, a deferred task marks the token as mirrored
//!   in D1 and writes its bearer record to KV (key: the token hash; expiry:
//!   the token's). Codes and refresh tokens never go to KV.
//! - Read: KV first; a miss (not yet copied, not yet propagated, evicted)
//!   falls back to the strict D1 read, so a miss is never a wrong answer.
//! - Evict: triggers in migration 0003 queue the key of every mirrored token
//!   that a revocation, suspension, scope or role change touches; the queue is
//!   drained after each mutating request and by the cron.
//!
//! Guarantee: a change is visible everywhere once its KV delete propagates,
//! which Cloudflare documents as up to ~60 s (plus up to a minute if the
//! post-request drain failed and the cron picks it up). Keep access tokens
//! short in this mode: a KV copy never outlives its token.

use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;
use crate::store::{BearerRow, Driver, Store};

pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + 'a>>;

/// The KV namespace, as the core sees it. The worker binds `BEARER_KV`.
pub trait EdgeKv {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<String>>;
    /// `expires_at`: unix seconds, at least 60 s ahead (KV's minimum).
    fn put<'a>(&'a self, key: &'a str, value: String, expires_at: i64) -> KvFuture<'a, ()>;
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
}

/// KV refuses expirations closer than this.
pub const KV_MIN_TTL: i64 = 60;

/// Keys drained per run.
pub const DRAIN_LIMIT: i64 = 200;

/// The KV copy of a token's record, if there is a usable one.
pub async fn lookup(kv: &dyn EdgeKv, hash: &str, now: i64) -> Option<BearerRow> {
    let text = kv.get(hash).await.ok()??;
    let row: BearerRow = serde_json::from_str(&text).ok()?;
    (row.expires_at > now).then_some(row)
}

/// Copy one freshly issued access token to KV.
pub async fn mirror<D: Driver>(store: &Store<D>, kv: &dyn EdgeKv, hash: &str, now: i64) -> Result<(), StoreError> {
    let Some(row) = store.bearer_mirror(hash, now).await? else {
        return Ok(());
    };
    if row.expires_at - now < KV_MIN_TTL {
        return Ok(());
    }
    let value = serde_json::to_string(&row).map_err(|e| StoreError(e.to_string()))?;
    kv.put(hash, value, row.expires_at).await.map_err(StoreError)
}

/// Delete queued keys from KV; a key stays queued until its delete succeeded.
pub async fn drain<D: Driver>(store: &Store<D>, kv: &dyn EdgeKv) -> Result<usize, StoreError> {
    let queued = store.queued_evictions(DRAIN_LIMIT).await?;
    let mut done = Vec::with_capacity(queued.len());
    for hash in queued {
        if kv.delete(&hash).await.is_ok() {
            done.push(hash);
        }
    }
    store.evicted(&done).await?;
    Ok(done.len())
}

/// An in-memory KV for native tests; clones share the same map.
#[derive(Default, Clone)]
pub struct MemoryKv(pub std::rc::Rc<std::cell::RefCell<std::collections::HashMap<String, (String, i64)>>>);

impl EdgeKv for MemoryKv {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<String>> {
        Box::pin(async move { Ok(self.0.borrow().get(key).map(|(v, _)| v.clone())) })
    }
    fn put<'a>(&'a self, key: &'a str, value: String, expires_at: i64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.0.borrow_mut().insert(key.to_string(), (value, expires_at));
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.0.borrow_mut().remove(key);
            Ok(())
        })
    }
}
