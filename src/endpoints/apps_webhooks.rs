//! An app's webhooks in the management API: rotating the signing secret
//! with an overlap, and the recent deliveries.

use serde_json::json;

use super::apps::{audit_app, managed_app};
use crate::api_auth::Caller;
use crate::config::MAX_WEBHOOK_SECRET_OVERLAP;
use crate::context::Ctx;
use crate::crypto;
use crate::error::{parse_json, ApiError};
use crate::http::{Request, Response};
use crate::store::Driver;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebhookRotateBody {
    overlap_seconds: Option<i64>,
}

/// `POST /api/v1/apps/{id}/webhook-secret`: a new signing secret, shown once.
/// The previous one keeps signing too (a second `v1=` in `Webhook-Signature`)
/// for `overlap_seconds` (default `WEBHOOK_SECRET_OVERLAP_SECONDS`), so
/// receivers can switch over without rejecting deliveries.
pub(super) async fn rotate_webhook_secret<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let body: WebhookRotateBody = if req.body.is_empty() {
        WebhookRotateBody::default()
    } else {
        parse_json(req)?
    };
    let overlap = body.overlap_seconds.unwrap_or(ctx.config.webhook_secret_overlap);
    if !(0..=MAX_WEBHOOK_SECRET_OVERLAP).contains(&overlap) {
        return Err(ApiError::bad_request(format!(
            "overlap_seconds must be 0 to {MAX_WEBHOOK_SECRET_OVERLAP}"
        )));
    }
    let app = managed_app(ctx, caller).await?;
    let secret = crypto::new_token("whsec_");
    let until = (overlap > 0).then(|| ctx.now + overlap);
    let audit = audit_app(
        ctx,
        caller,
        &app,
        "app.webhook_secret_rotated",
        json!({"previous_valid_until": until}),
    );
    let row = ctx
        .store
        .rotate_webhook_secret(&app.id, &secret, until, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("no such app"))?;
    ctx.event(
        &app.id,
        None,
        "secret.rotated",
        json!({"secret": "webhook_signing", "version": row.version, "previous_valid_until": until}),
    );
    Ok(Response::json(
        200,
        &json!({"app_id": row.id, "webhook_signing_secret": secret,
                "previous_secret_valid_until": until.filter(|_| app.webhook_secret.is_some()), "version": row.version}),
    )
    .no_store())
}

pub(super) async fn deliveries<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<Response, ApiError> {
    let app = managed_app(ctx, caller).await?;
    let rows = ctx.store.deliveries_of_app(&app.id, 50).await?;
    let list: Vec<_> = rows
        .iter()
        .map(|d| {
            json!({"id": d.id, "event": d.event, "org_id": d.org_id, "url": d.url, "status": d.status, "attempts": d.attempts,
                   "last_status": d.last_status, "last_error": d.last_error, "next_attempt_at": d.next_attempt_at,
                   "created_at": d.created_at, "updated_at": d.updated_at})
        })
        .collect();
    Ok(Response::json(200, &json!({"deliveries": list})))
}
