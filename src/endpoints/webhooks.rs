//! Webhook subscriptions (FeatureOS): an app subscribes its webhook URL to
//! events in an org with a token whose effective permissions include
//! `webhooks:manage` there. `GET/PUT/DELETE /api/v1/webhooks/subscription`,
//! body `{"events": ["app.installed", …]}`.

use serde_json::json;

use crate::bearer;
use crate::context::Ctx;
use crate::error::{parse_json, ApiError};
use crate::http::{Request, Response};
use crate::registration::WEBHOOK_EVENTS;
use crate::store::Driver;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    events: Vec<String>,
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    let p = match bearer::require(ctx, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    if !p.can("webhooks:manage") {
        return bearer::insufficient_scope(ctx, req, "webhooks:manage");
    }
    let (app, org) = (p.row.app_id.clone(), p.row.org_id.clone());
    ctx.note(&app, Some(&org));
    let result = async {
        match route {
            "webhook_sub_get" => {}
            "webhook_sub_put" => {
                let b: Body = parse_json(req)?;
                if let Some(bad) = b.events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
                    return Err(ApiError::bad_request(format!(
                        "unknown event {bad:?} (known: {})",
                        WEBHOOK_EVENTS.join(", ")
                    )));
                }
                let a = ctx
                    .store
                    .app(&app)
                    .await?
                    .ok_or_else(|| ApiError::not_found("no such app"))?;
                if a.webhook_url.is_none() {
                    return Err(ApiError::bad_request(
                        "the app has no webhook_url; its owner sets one first",
                    ));
                }
                let events = crate::registration::normalized(&b.events);
                let audit = ctx.audit_entry(
                    &org,
                    p.actor_type(),
                    &p.actor_id(),
                    Some(&app),
                    "webhooks.subscribed",
                    json!({"events": events}),
                );
                ctx.store
                    .set_subscription(&app, &org, Some(&crate::scope::to_json(&events)), ctx.now, &audit)
                    .await?;
            }
            _ => {
                let audit = ctx.audit_entry(
                    &org,
                    p.actor_type(),
                    &p.actor_id(),
                    Some(&app),
                    "webhooks.unsubscribed",
                    json!({}),
                );
                ctx.store.set_subscription(&app, &org, None, ctx.now, &audit).await?;
                return Ok(Response::new(204));
            }
        }
        let events = ctx.store.subscription(&app, &org).await?.unwrap_or_default();
        Ok(Response::json(
            200,
            &json!({"app_id": app, "org_id": org, "events": events}),
        ))
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}
