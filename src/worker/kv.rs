//! The `BEARER_KV` namespace behind the core's `EdgeKv` (edge bearer mode).

use crate::store::kv::{EdgeKv, KvFuture};

pub struct Kv(pub worker::KvStore);

impl EdgeKv for Kv {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<String>> {
        Box::pin(async move { self.0.get(key).text().await.map_err(|e| e.to_string()) })
    }

    fn put<'a>(&'a self, key: &'a str, value: String, expires_at: i64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .put(key, value)
                .map_err(|e| e.to_string())?
                .expiration(expires_at.max(0) as u64)
                .execute()
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.0.delete(key).await.map_err(|e| e.to_string()) })
    }
}
