//! The per-isolate cache of validated bearer tokens (`BEARER_CACHE_TTL_SECONDS`).
//!
//! Guarantee: a token revoked, or a role narrowed, elsewhere keeps its cached
//! verdict in this isolate for at most the TTL. The isolate that handles a
//! revocation forgets at once (see `Server::handle`). Entries never outlive
//! the token, are keyed by hash, and the map is bounded.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::store::BearerRow;

const MAX_ENTRIES: usize = 10_000;

thread_local! {
    // Workers run one isolate per thread; no lock needed.
    static CACHE: RefCell<HashMap<String, (BearerRow, i64)>> = RefCell::new(HashMap::new());
}

pub fn get(hash: &str, now: i64) -> Option<BearerRow> {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        match c.get(hash) {
            Some((row, until)) if *until > now => Some(row.clone()),
            Some(_) => {
                c.remove(hash);
                None
            }
            None => None,
        }
    })
}

pub fn put(hash: String, row: BearerRow, now: i64, ttl: i64) {
    let until = (now + ttl).min(row.expires_at);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_ENTRIES {
            c.retain(|_, (_, u)| *u > now);
            if c.len() >= MAX_ENTRIES {
                c.clear();
            }
        }
        c.insert(hash, (row, until));
    })
}

/// Drop every entry: this isolate just revoked something.
pub fn clear() {
    CACHE.with(|c| c.borrow_mut().clear());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(expires_at: i64) -> BearerRow {
        serde_json::from_value(serde_json::json!({
            "scopes": "[]", "expires_at": expires_at, "created_at": 0, "grant_id": "g", "app_id": "a",
            "app_name": "A", "app_scopes": "[]", "org_id": "o", "org_slug": "o", "user_id": null,
            "user_email": null, "actor": "app", "role": null, "role_permissions": null
        }))
        .unwrap()
    }

    #[test]
    fn entries_expire_at_ttl_or_token_expiry() {
        put("h1".into(), row(1_000), 100, 5);
        assert!(get("h1", 104).is_some());
        assert!(get("h1", 105).is_none(), "ttl bound");
        put("h2".into(), row(102), 100, 5);
        assert!(get("h2", 102).is_none(), "never outlives the token");
        put("h3".into(), row(1_000), 100, 5);
        clear();
        assert!(get("h3", 101).is_none());
    }
}
