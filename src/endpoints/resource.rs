//! The demo resource server: what the platform's own API would do with a
//! bearer token. Org, user, actor and permissions come from the token alone.

use serde_json::json;

use crate::bearer::{self, Principal};
use crate::config::{Config, SubjectType};
use crate::context::Ctx;
use crate::http::{Request, Response};
use crate::store::Driver;
use crate::tasks::Task;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    let principal = match bearer::require(ctx, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let r = &principal.row;
    ctx.note(&r.app_id, Some(&r.org_id));
    let (action, needed) = match route {
        "me" => ("api.me.read", None),
        "posts_list" => ("api.posts.list", Some("posts:read")),
        _ => ("api.posts.create", Some("posts:write")),
    };
    let allowed = needed.is_none_or(|n| principal.can(n));
    // fsckmsft: actions appear in the audit log as the authorizing user.
    // Successful reads are not actions; auditing each one would put a D1
    // write on every API call (AUDIT_API_READS=true does it anyway).
    //
    // An allowed action is recorded before it is answered, and a failed
    // record fails it (the demo's action has no other state to change; a
    // real resource server writes the record in the action's own batch).
    // Refusals and reads change nothing, so their records stay deferred.
    let read = req.method == "GET";
    if !read || !allowed || ctx.config.audit_api_reads {
        let audit = ctx.audit_entry(
            &r.org_id,
            principal.actor_type(),
            &principal.actor_id(),
            Some(&r.app_id),
            action,
            json!({"allowed": allowed}),
        );
        if !read && allowed {
            if let Err(e) = ctx.store.record_audit(&audit).await {
                return crate::error::ApiError::from(e).into_response();
            }
        } else {
            ctx.defer(Task::Write(vec![audit.stmt()]));
        }
    }
    match route {
        "me" => Response::json(200, &me(ctx.config, &principal)),
        "posts_list" => {
            if !principal.can("posts:read") {
                return bearer::insufficient_scope(ctx, req, "posts:read");
            }
            Response::json(200, &json!({"org": principal.row.org_slug, "posts": []}))
        }
        _ => {
            if !principal.can("posts:write") {
                return bearer::insufficient_scope(ctx, req, "posts:write");
            }
            Response::json(
                201,
                &json!({"org": principal.row.org_slug, "created": true, "actor": principal.row.actor,
                        "author": author(ctx.config, &principal)}),
            )
        }
    }
}

/// The user as the app knows them (`oidc::subject`): under pairwise
/// subjects an app never reads the internal user id here, or it could
/// correlate users with other apps.
fn me(config: &Config, p: &Principal) -> serde_json::Value {
    let r = &p.row;
    let mut v = json!({
        "org": {"id": r.org_id, "slug": r.org_slug},
        "user": p.subject(config).map(|id| json!({"id": id, "email": r.user_email, "role": r.role})),
        "actor": r.actor,
        "app": {"client_id": r.app_id, "name": r.app_name},
        "scopes": p.scopes,
        "permissions": p.permissions,
        "expires_at": r.expires_at,
    });
    // RFC 8693 §4.1: an exchanged token says who acts for the user.
    if let Some(act) = r
        .act
        .as_deref()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
    {
        v["act"] = act;
    }
    v
}

/// Who wrote: the user (as the app knows them), or for the app actor the
/// user who installed it, named only where ids are public.
fn author(config: &Config, p: &Principal) -> Option<String> {
    p.subject(config).or_else(|| {
        p.row
            .user_id
            .clone()
            .filter(|_| config.subject_type == SubjectType::Public)
    })
}
