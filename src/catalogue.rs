//! The scope catalogue as discovery, registration and metadata documents read it: the store's list, kept per isolate for a minute.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use crate::context::Ctx;
use crate::store::Driver;

/// Discovery is fetched by every client library on start: the scope list is
/// kept per isolate for this long, so the document costs no D1 read.
const SCOPES_TTL: i64 = 60;

thread_local! {
    static SCOPES: std::cell::RefCell<Option<(Vec<String>, i64)>> = const { std::cell::RefCell::new(None) };
}

pub async fn scopes<D: Driver>(ctx: &Ctx<'_, D>) -> Result<Vec<String>, crate::error::StoreError> {
    if let Some(cached) = SCOPES.with_borrow(|c| c.clone().filter(|(_, at)| ctx.now - at < SCOPES_TTL)) {
        return Ok(cached.0);
    }
    let fresh: Vec<String> = ctx.store.scope_catalogue().await?.into_iter().map(|s| s.name).collect();
    SCOPES.with_borrow_mut(|c| *c = Some((fresh.clone(), ctx.now)));
    Ok(fresh)
}

/// When this isolate's copy of the catalogue was read, while it is still
/// fresh: documents built from it stay valid exactly as long.
pub fn fresh_at(now: i64) -> Option<i64> {
    SCOPES.with_borrow(|c| c.as_ref().map(|(_, at)| *at).filter(|at| now - at < SCOPES_TTL))
}

/// Seconds this isolate's copy of the catalogue stays fresh (0: none).
pub fn fresh_for(now: i64) -> i64 {
    fresh_at(now).map_or(0, |at| SCOPES_TTL - (now - at))
}
