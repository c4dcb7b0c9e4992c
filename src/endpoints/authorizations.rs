//! Users' and admins' control over connected apps (all five platforms), and
//! the org's audit log (fsckmsft).
//!
//! - `GET/DELETE /api/v1/me/authorizations[/{app_id}]`: a signed-in user lists
//!   and disconnects the apps acting for them.
//! - `GET/DELETE /api/v1/orgs/{org_id}/installations[/{app_id}]`: an org admin
//!   lists and removes every app installed in the org.
//! - `GET /api/v1/orgs/{org_id}/audit`: newest first, `?limit=&before=`.
//!
//! Revocation is immediate: the bearer check reads the grant on every request.

use serde_json::json;

use crate::api_auth::{self, Caller};
use crate::config::SubjectType;
use crate::context::Ctx;
use crate::endpoints::installations::installation_json;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::scope;
use crate::store::{AuthorizationRow, Driver};

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    let result = async {
        let caller = api_auth::caller(ctx, req).await?;
        match route {
            "my_authorizations" => {
                let user = user_of(&caller)?;
                let rows = ctx.store.authorizations_of_user(&user).await?;
                Ok(Response::json(
                    200,
                    &json!({"authorizations": rows.iter().map(authorization_json).collect::<Vec<_>>()}),
                ))
            }
            "my_authorization_revoke" => {
                let user = user_of(&caller)?;
                let org = req.query_params().get("org_id").map(str::to_string);
                match disconnect(ctx, &user, ctx.param(0), org.as_deref()).await? {
                    0 => Err(ApiError::not_found("no live authorization of that app on your account")),
                    _ => Ok(Response::new(204)),
                }
            }
            "org_installations" => {
                let org = require_admin(ctx, &caller, ctx.param(0)).await?;
                let rows = ctx.store.installations_in_org(&org).await?;
                Ok(Response::json(
                    200,
                    &json!({"org_id": org, "installations": rows.iter().map(|i| installation_json(i, i.installed_by.clone())).collect::<Vec<_>>()}),
                ))
            }
            "org_installation_revoke" => {
                let org = require_admin(ctx, &caller, ctx.param(0)).await?;
                let (kind, id) = caller.audit_actor();
                if remove_install(ctx, &org, ctx.param(1), kind, &id).await? {
                    Ok(Response::new(204))
                } else {
                    Err(ApiError::not_found("that app is not installed in this organization"))
                }
            }
            _ => {
                let org = require_admin(ctx, &caller, ctx.param(0)).await?;
                audit_page(ctx, req, &org).await
            }
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

pub fn authorization_json(a: &AuthorizationRow) -> serde_json::Value {
    json!({"app_id": a.app_id, "app_name": a.app_name, "org_id": a.org_id, "org_name": a.org_name, "actor": a.actor,
           "scopes": scope::from_json(&a.scopes), "authorized_at": a.created_at})
}

fn user_of(caller: &Caller) -> Result<String, ApiError> {
    match caller {
        Caller::User { user_id, .. } => Ok(user_id.clone()),
        Caller::ApiKey { .. } => Err(ApiError::forbidden(
            "this is about a user's own account: sign in as the user",
        )),
    }
}

/// The org named in the path, if the caller administers it.
async fn require_admin<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, org: &str) -> Result<String, ApiError> {
    let role = caller
        .role_in(org)
        .ok_or_else(|| ApiError::not_found("no such organization"))?;
    if !api_auth::role_has(ctx, role, "org.admin").await? {
        return Err(ApiError::forbidden("this needs an admin of the organization"));
    }
    Ok(org.to_string())
}

/// A user disconnects an app; returns how many orgs it was connected in.
pub async fn disconnect<D: Driver>(
    ctx: &Ctx<'_, D>,
    user: &str,
    app_id: &str,
    org: Option<&str>,
) -> Result<usize, ApiError> {
    // One record per org a grant dies in, written in the revocation's batch.
    let audit = ctx.audit_entry(
        "",
        "user",
        user,
        Some(app_id),
        "authorization.revoked",
        json!({"by": "user"}),
    );
    let orgs = ctx.store.revoke_user_app(user, app_id, org, ctx.now, &audit).await?;
    if orgs.is_empty() {
        return Ok(0);
    }
    // The app knows the user by its `sub` (`oidc::subject`); under pairwise
    // subjects that takes the app's row (one read, on this rare path only).
    let sub = match ctx.config.subject_type {
        SubjectType::Public => user.to_string(),
        SubjectType::Pairwise => match ctx.store.app(app_id).await? {
            Some(app) => crate::oidc::subject::subject(ctx.config, &app, user),
            None => return Ok(orgs.len()),
        },
    };
    for o in &orgs {
        ctx.event(
            app_id,
            Some(o),
            "authorization.revoked",
            json!({"org_id": o, "user_id": sub, "by": "user"}),
        );
    }
    Ok(orgs.len())
}

/// An org admin removes an app from the org.
pub async fn remove_install<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    app_id: &str,
    actor_type: &str,
    actor_id: &str,
) -> Result<bool, ApiError> {
    let audit = ctx.audit_entry(
        org,
        actor_type,
        actor_id,
        Some(app_id),
        "authorization.revoked",
        json!({"by": "org_admin"}),
    );
    let removed = ctx.store.revoke_install(org, app_id, ctx.now, &audit).await?;
    if removed {
        ctx.event(
            app_id,
            Some(org),
            "authorization.revoked",
            json!({"org_id": org, "by": "org_admin"}),
        );
    }
    Ok(removed)
}

async fn audit_page<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, org: &str) -> Result<Response, ApiError> {
    let q = req.query_params();
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit must be 1 to 200"))?,
    };
    let before = match q.get("before") {
        None => None,
        Some(b) => Some(
            b.parse::<i64>()
                .map_err(|_| ApiError::bad_request("before must be an event id"))?,
        ),
    };
    let rows = ctx.store.audit_page(org, before, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let events: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "at": r.at, "actor": {"type": r.actor_type, "id": r.actor_id}, "app_id": r.app_id,
                   "action": r.action, "detail": serde_json::from_str::<serde_json::Value>(&r.detail).unwrap_or_default()})
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({"org_id": org, "events": events, "next_before": next}),
    ))
}
