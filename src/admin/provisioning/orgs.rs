//! Orgs by the platform's id: `/admin/v1/orgs[/{external_id}]` (slug, name).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, page, page_response, raced, text, Applied};
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{OrgUpsert, ProvOrg};
use crate::store::Driver;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPut {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
}

pub fn org_json(o: &ProvOrg) -> Value {
    json!({"external_id": o.external_id, "id": o.id, "slug": o.slug, "name": o.name, "created_at": o.created_at})
}

/// Lowercase letters, digits and `-`, 1 to 64, not starting with `-`.
fn slug(v: &str) -> Result<String, ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('-')
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(ApiError::bad_request(
            "slug must be 1 to 64 of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    Ok(v.to_string())
}

/// The org, or 404.
pub async fn existing<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str) -> Result<ProvOrg, ApiError> {
    ctx.store
        .org_by_external_id(external_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no org with external_id {external_id:?}")))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str) -> Result<Response, ApiError> {
    Ok(Response::json(200, &org_json(&existing(ctx, external_id).await?)))
}

pub async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let p = page(req)?;
    let rows = ctx.store.orgs_page(p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(rows, &p, |o| o.external_id.clone(), org_json))
}

/// Create or replace an org's slug and name.
pub async fn put<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    input: OrgPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = ctx.store.org_by_external_id(external_id).await?;
    apply(ctx, external_id, current, input, dry_run).await
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    input: OrgPatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = existing(ctx, external_id).await?;
    let full = OrgPut {
        slug: input.slug.unwrap_or_else(|| current.slug.clone()),
        name: input.name.unwrap_or_else(|| current.name.clone()),
    };
    apply(ctx, external_id, Some(current), full, dry_run).await
}

async fn apply<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    current: Option<ProvOrg>,
    input: OrgPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let slug = slug(&input.slug)?;
    let name = text("name", &input.name, 1, 200)?;
    if let Some(holder) = ctx.store.slug_holder(&slug).await? {
        if holder.as_deref() != Some(external_id) {
            return Err(conflict(format!("slug {slug:?} belongs to another org")));
        }
    }
    let mut changes = Map::new();
    let org = ProvOrg {
        id: current
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_else(|| crypto::new_id("org_")),
        external_id: external_id.to_string(),
        slug: slug.clone(),
        name: name.clone(),
        created_at: current.as_ref().map(|c| c.created_at).unwrap_or(ctx.now),
    };
    if let Some(c) = &current {
        diff(&mut changes, "slug", json!(c.slug), json!(slug));
        diff(&mut changes, "name", json!(c.name), json!(name));
    }
    let created = current.is_none();
    let applied = Applied::new(org_json(&org), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created { "org.created" } else { "org.updated" };
    let detail = json!({"external_id": external_id, "slug": slug, "name": name, "changes": applied.changes});
    let up = OrgUpsert {
        id: org.id.clone(),
        external_id: external_id.to_string(),
        slug,
        name,
    };
    let id = ctx
        .store
        .upsert_org(&up, ctx.now, &note(Some(&org.id), action, detail))
        .await?
        .ok_or_else(raced)?;
    if id != org.id {
        // Created concurrently by an identical request: ours updated it.
        let mut a = applied;
        a.resource["id"] = id.into();
        return Ok(a);
    }
    Ok(applied)
}

/// Delete an org and everything hanging on it (`Store::delete_org`).
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str, dry_run: bool) -> Result<Response, ApiError> {
    let org = existing(ctx, external_id).await?;
    let mut body = org_json(&org);
    if dry_run {
        return Ok(deleted(true, body));
    }
    let detail = json!({"external_id": external_id, "slug": org.slug});
    let done = ctx
        .store
        .delete_org(&org.id, ctx.now, &note(Some(&org.id), "org.deleted", detail))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no org with external_id {external_id:?}")))?;
    for app in &done.uninstalled_apps {
        ctx.event(
            app,
            Some(&org.id),
            "authorization.revoked",
            json!({"org_id": org.id, "by": "org_deleted"}),
        );
    }
    body["revoked"] = json!({
        "grants": done.grants_revoked,
        "installs": done.uninstalled_apps.len(),
        "apps_deleted": done.apps_deleted,
    });
    Ok(deleted(false, body))
}
