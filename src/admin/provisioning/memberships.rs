//! Memberships: `/admin/v1/orgs/{org}/memberships[/{user}]` (a user's role in
//! an org) and `/admin/v1/users/{user}/memberships`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, orgs, page, page_response, raced, users, Applied};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{MembershipUpsert, ProvMembership, ProvOrg, ProvUser};
use crate::store::Driver;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipPut {
    pub role: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipPatch {
    pub role: Option<String>,
}

pub fn membership_json(m: &ProvMembership) -> Value {
    json!({"org": m.org, "user": m.user, "org_id": m.org_id, "user_id": m.user_id, "role": m.role})
}

/// The org, the user and the user's membership of the org, or 404.
async fn existing<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    user: &str,
) -> Result<(ProvOrg, ProvUser, ProvMembership), ApiError> {
    let o = orgs::existing(ctx, org).await?;
    let u = users::existing(ctx, user).await?;
    let m = ctx
        .store
        .membership_of(&o.id, &u.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user:?} is not a member of org {org:?}")))?;
    Ok((o, u, m))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, org: &str, user: &str) -> Result<Response, ApiError> {
    let (_, _, m) = existing(ctx, org, user).await?;
    Ok(Response::json(200, &membership_json(&m)))
}

pub async fn list_of_org<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, org: &str) -> Result<Response, ApiError> {
    let p = page(req)?;
    let o = orgs::existing(ctx, org).await?;
    let rows = ctx.store.members_page(&o.id, p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(rows, &p, |m| m.user.clone(), membership_json))
}

pub async fn list_of_user<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, user: &str) -> Result<Response, ApiError> {
    let p = page(req)?;
    let u = users::existing(ctx, user).await?;
    let rows = ctx
        .store
        .user_memberships_page(&u.id, p.after.as_deref(), p.limit + 1)
        .await?;
    Ok(page_response(rows, &p, |m| m.org.clone(), membership_json))
}

/// Add the user to the org, or change their role. Reusable by other
/// back-office acts (an accepted login challenge upserts memberships). The
/// role counts from the next call of every token the user authorized in the
/// org (the bearer check reads the current role).
pub async fn put<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    user: &str,
    input: MembershipPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let o = orgs::existing(ctx, org).await?;
    let u = users::existing(ctx, user).await?;
    let current = ctx.store.membership_of(&o.id, &u.id).await?;
    apply(ctx, org, user, (o, u, current), input, dry_run).await
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    user: &str,
    input: MembershipPatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let (o, u, current) = existing(ctx, org, user).await?;
    let role = input.role.unwrap_or_else(|| current.role.clone());
    apply(ctx, org, user, (o, u, Some(current)), MembershipPut { role }, dry_run).await
}

/// [`put`] once the org, the user and their membership (if any) are read.
async fn apply<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    user: &str,
    (o, u, current): (ProvOrg, ProvUser, Option<ProvMembership>),
    input: MembershipPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let role = ctx.store.role(input.role.trim()).await?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown role {:?}; define it first with PUT /admin/v1/roles/{{name}}",
            input.role
        ))
    })?;
    let mut changes = Map::new();
    if let Some(c) = &current {
        diff(&mut changes, "role", json!(c.role), json!(role.name));
        let keeps_owner = role.permission_list().iter().any(|p| p == "org.admin");
        if c.role != role.name && !keeps_owner && ctx.store.is_last_owner(&o.id, &u.id).await? {
            return Err(conflict(format!(
                "user {user:?} is the last owner of org {org:?} (role with org.admin); make someone else an owner first"
            )));
        }
    }
    let m = ProvMembership {
        org_id: o.id.clone(),
        org: org.to_string(),
        user_id: u.id.clone(),
        user: user.to_string(),
        role: role.name.clone(),
    };
    let created = current.is_none();
    let applied = Applied::new(membership_json(&m), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created {
        "membership.created"
    } else {
        "membership.updated"
    };
    let detail = json!({"org": org, "user": user, "user_id": u.id, "role": role.name, "changes": applied.changes});
    let up = MembershipUpsert {
        org_id: o.id.clone(),
        user_id: u.id.clone(),
        role: role.name,
    };
    if !ctx
        .store
        .upsert_membership(&up, ctx.now, &note(Some(&o.id), action, detail))
        .await?
    {
        return Err(raced());
    }
    Ok(applied)
}

/// Remove the user from the org: their tokens there stop at once, and a
/// later re-invite does not revive them.
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, org: &str, user: &str, dry_run: bool) -> Result<Response, ApiError> {
    let (o, u, m) = existing(ctx, org, user).await?;
    if ctx.store.is_last_owner(&o.id, &u.id).await? {
        return Err(conflict(format!(
            "user {user:?} is the last owner of org {org:?}; make someone else an owner first"
        )));
    }
    let body = membership_json(&m);
    if dry_run {
        return Ok(deleted(true, body));
    }
    let detail = json!({"org": org, "user": user, "user_id": u.id, "role": m.role});
    if !ctx
        .store
        .delete_membership(&o.id, &u.id, ctx.now, &note(Some(&o.id), "membership.deleted", detail))
        .await?
    {
        return Err(raced());
    }
    Ok(deleted(false, body))
}
