//! Roles: `/admin/v1/roles[/{name}]` (name → permissions). A permission is a
//! scope of the catalogue or a platform permission (`oauth_app.manage`,
//! `org.admin`); a token's effective permissions are its scopes intersected
//! with its user's current role, so a narrowed role narrows every token.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, page, page_response, raced, text, Applied};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{ProvRole, RoleUpsert, PLATFORM_PERMISSIONS};
use crate::store::Driver;

/// Most permissions one role may list.
pub const MAX_PERMISSIONS: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePut {
    pub permissions: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub permissions: Option<Vec<String>>,
    pub description: Option<String>,
}

pub fn role_json(r: &ProvRole) -> Value {
    json!({"name": r.name, "description": r.description, "permissions": r.permission_list()})
}

fn valid_name(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !ok {
        return Err(ApiError::bad_request(
            "a role name is 1 to 64 of A-Z, a-z, 0-9, '_', '-', '.', ':'",
        ));
    }
    Ok(())
}

async fn existing<D: Driver>(ctx: &Ctx<'_, D>, name: &str) -> Result<ProvRole, ApiError> {
    ctx.store
        .role(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no role {name:?}")))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, name: &str) -> Result<Response, ApiError> {
    Ok(Response::json(200, &role_json(&existing(ctx, name).await?)))
}

pub async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let p = page(req)?;
    let rows = ctx.store.roles_page(p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(rows, &p, |r| r.name.clone(), role_json))
}

/// Sorted, deduplicated, each known.
async fn permissions<D: Driver>(ctx: &Ctx<'_, D>, input: Vec<String>) -> Result<Vec<String>, ApiError> {
    if input.len() > MAX_PERMISSIONS {
        return Err(ApiError::bad_request(format!(
            "a role lists at most {MAX_PERMISSIONS} permissions"
        )));
    }
    let mut perms = Vec::with_capacity(input.len());
    for p in input {
        let p = p.trim().to_string();
        if p.is_empty() || p.len() > 64 {
            return Err(ApiError::bad_request("a permission name is 1 to 64 characters"));
        }
        perms.push(p);
    }
    perms.sort();
    perms.dedup();
    let scopes: Vec<String> = perms
        .iter()
        .filter(|p| !PLATFORM_PERMISSIONS.contains(&p.as_str()))
        .cloned()
        .collect();
    let unknown = ctx.store.unknown_scopes(&scopes).await?;
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown permission(s): {}; a permission is a scope of the catalogue (PUT /admin/v1/scopes/{{name}}) or one of {}",
            unknown.join(", "),
            PLATFORM_PERMISSIONS.join(", ")
        )));
    }
    Ok(perms)
}

/// Create a role or replace its permissions and description. Every token
/// of every member with the role follows on its next call.
pub async fn put<D: Driver>(ctx: &Ctx<'_, D>, name: &str, input: RolePut, dry_run: bool) -> Result<Applied, ApiError> {
    valid_name(name)?;
    let description = text("description", &input.description, 0, 400)?;
    let perms = permissions(ctx, input.permissions).await?;
    let current = ctx.store.role(name).await?;
    let mut changes = Map::new();
    if let Some(c) = &current {
        let before = c.permission_list();
        diff(&mut changes, "description", json!(c.description), json!(description));
        diff(&mut changes, "permissions", json!(before), json!(perms));
        let loses_admin = before.iter().any(|p| p == "org.admin") && !perms.iter().any(|p| p == "org.admin");
        if loses_admin {
            let orphaned = ctx.store.orgs_owned_only_through(name).await?;
            if !orphaned.is_empty() {
                return Err(conflict(format!(
                    "taking org.admin from role {name:?} would leave {} without an owner",
                    orphaned.join(", ")
                )));
            }
        }
    }
    let r = ProvRole {
        name: name.to_string(),
        description: description.clone(),
        permissions: Some(perms.join(" ")),
    };
    let created = current.is_none();
    let applied = Applied::new(role_json(&r), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created { "role.created" } else { "role.updated" };
    let detail = json!({"name": name, "permissions": perms, "changes": applied.changes});
    let up = RoleUpsert {
        name: name.to_string(),
        description,
        permissions: perms,
    };
    if !ctx.store.put_role(&up, ctx.now, &note(None, action, detail)).await? {
        return Err(raced());
    }
    Ok(applied)
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    name: &str,
    input: RolePatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = existing(ctx, name).await?;
    let full = RolePut {
        permissions: input.permissions.unwrap_or_else(|| current.permission_list()),
        description: input.description.unwrap_or(current.description),
    };
    put(ctx, name, full, dry_run).await
}

/// Delete a role that no membership or API key uses.
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, name: &str, dry_run: bool) -> Result<Response, ApiError> {
    let r = existing(ctx, name).await?;
    let (members, keys) = ctx.store.role_usage(name).await?;
    if members > 0 || keys > 0 {
        return Err(conflict(format!(
            "role {name:?} is used by {members} membership(s) and {keys} API key(s); move them to another role first"
        )));
    }
    if dry_run {
        return Ok(deleted(true, role_json(&r)));
    }
    if !ctx
        .store
        .delete_role(name, ctx.now, &note(None, "role.deleted", json!({"name": name})))
        .await?
    {
        return Err(raced());
    }
    Ok(deleted(false, role_json(&r)))
}
