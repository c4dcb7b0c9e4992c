//! The scope catalogue: `/admin/v1/scopes[/{name}]` (what apps may declare
//! and users see on consent).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, page, page_response, raced, text, Applied};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{ProvScope, PLATFORM_PERMISSIONS};
use crate::store::Driver;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopePut {
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopePatch {
    pub description: Option<String>,
}

pub fn scope_json(s: &ProvScope) -> Value {
    json!({"name": s.name, "description": s.description})
}

/// RFC 6749 §3.3 scope-token, at most 64 characters, and not a platform
/// permission (an app must never be able to ask for `org.admin`).
pub fn valid_name(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if !ok {
        return Err(ApiError::bad_request(
            "a scope name is 1 to 64 printable ASCII characters without spaces, '\"' or '\\' (RFC 6749 §3.3)",
        ));
    }
    if PLATFORM_PERMISSIONS.contains(&v) {
        return Err(ApiError::bad_request(format!(
            "{v:?} is a platform permission, not a scope"
        )));
    }
    Ok(())
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, name: &str) -> Result<Response, ApiError> {
    let s = ctx
        .store
        .scope(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no scope {name:?}")))?;
    Ok(Response::json(200, &scope_json(&s)))
}

pub async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let p = page(req)?;
    let rows = ctx.store.scopes_page(p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(rows, &p, |s| s.name.clone(), scope_json))
}

pub async fn put<D: Driver>(ctx: &Ctx<'_, D>, name: &str, input: ScopePut, dry_run: bool) -> Result<Applied, ApiError> {
    valid_name(name)?;
    let description = text("description", &input.description, 1, 400)?;
    let current = ctx.store.scope(name).await?;
    let mut changes = Map::new();
    if let Some(c) = &current {
        diff(&mut changes, "description", json!(c.description), json!(description));
    }
    let s = ProvScope {
        name: name.to_string(),
        description,
    };
    let created = current.is_none();
    let applied = Applied::new(scope_json(&s), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created { "scope.created" } else { "scope.updated" };
    let detail = json!({"name": name, "description": s.description, "changes": applied.changes});
    if !ctx.store.put_scope(&s, ctx.now, &note(None, action, detail)).await? {
        return Err(raced());
    }
    Ok(applied)
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    name: &str,
    input: ScopePatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = ctx
        .store
        .scope(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no scope {name:?}")))?;
    let description = input.description.unwrap_or(current.description);
    put(ctx, name, ScopePut { description }, dry_run).await
}

/// Delete a scope that no role grants and no live app declares (take it
/// out of those first: that is what narrows tokens).
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, name: &str, dry_run: bool) -> Result<Response, ApiError> {
    let s = ctx
        .store
        .scope(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no scope {name:?}")))?;
    let (roles, apps) = ctx.store.scope_usage(name).await?;
    if !roles.is_empty() || apps > 0 {
        return Err(conflict(format!(
            "scope {name:?} is still granted by roles [{}] and declared by {apps} app(s); remove it there first",
            roles.join(", ")
        )));
    }
    if dry_run {
        return Ok(deleted(true, scope_json(&s)));
    }
    if !ctx
        .store
        .delete_scope(name, ctx.now, &note(None, "scope.deleted", json!({"name": name})))
        .await?
    {
        return Err(raced());
    }
    Ok(deleted(false, scope_json(&s)))
}
