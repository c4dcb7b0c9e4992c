//! The device authorization endpoint (RFC 8628 §3.1–3.2): POST
//! /oauth/device_authorization.
//!
//! A client whose `device_authorization` switch is on (off by default)
//! authenticates as at the token endpoint (a public one names itself) and
//! gets a device code (a typed random token, stored as its SHA-256) and a
//! user code for the person to type at `/device`. Each request writes a row
//! for a client that may be public, so it is bounded: at most
//! [`PER_SOURCE_PER_MINUTE`] per client and source address a minute, and at
//! most [`MAX_LIVE_PER_CLIENT`] unexpired requests per client; the sweep
//! deletes a row once it has expired (`DEVICE_CODE_TTL_SECONDS`).

use serde_json::json;

use crate::client_auth;
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::grants::device_code::{display, new_user_code, user_code_hash};
use crate::http::{Params, Request, Response};
use crate::scope;
use crate::store::{DeviceStarted, Driver, NewDevice};

/// Budget of one client's requests per source address (and client).
pub const PER_SOURCE_PER_MINUTE: i64 = 30;
/// Unexpired requests one client may hold at once.
pub const MAX_LIVE_PER_CLIENT: i64 = 1000;
const WINDOW: i64 = 60;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    match run(ctx, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn too_many(description: &str) -> Response {
    Response::json(
        429,
        &json!({"error": "too_many_requests", "error_description": description}),
    )
    .no_store()
    .header("Retry-After", &WINDOW.to_string())
}

async fn run<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, OAuthError> {
    let form = req.form().map_err(OAuthError::InvalidRequest)?;
    if let Some(name) = form.repeated(&["client_id", "scope"]) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    let client = client_auth::authenticate(ctx, req, &form).await?;
    let app = client.app;
    ctx.note(&app.id, None);
    if app.device_authorization == 0 {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the device authorization grant (device_authorization is off)".into(),
        ));
    }
    let scopes = requested_scopes(ctx, &form, &app.scope_list())?;
    let audience =
        crate::audience::requested_json(&form, ctx.config, &ctx.issuer).map_err(OAuthError::InvalidTarget)?;
    let device_code = crypto::new_token(&ctx.config.device.prefix);
    let hash = crypto::sha256_hex(&device_code);
    let scopes_json = scope::to_json(&scopes);
    let budget_key = format!("device:{}:{}", app.id, ctx.source);
    // A user code taken by a live request is drawn again (2^34.6 codes:
    // twice in a row is as good as never).
    for _ in 0..3 {
        let user_code = new_user_code();
        let started = ctx
            .store
            .start_device(&NewDevice {
                hash: &hash,
                user_code_hash: &user_code_hash(&user_code),
                app_id: &app.id,
                scopes: &scopes_json,
                audience: audience.as_deref(),
                now: ctx.now,
                expires_at: ctx.now + ctx.config.device.ttl,
                interval: ctx.config.device.interval,
                budget: (&budget_key, PER_SOURCE_PER_MINUTE, WINDOW),
                max_live: MAX_LIVE_PER_CLIENT,
            })
            .await?;
        match started {
            DeviceStarted::Stored => {
                let shown = display(&user_code);
                let uri = format!("{}/device", ctx.issuer);
                let complete = format!("{uri}?{}", Params::encode(&[("user_code", shown.as_str())]));
                return Ok(Response::json(
                    200,
                    &json!({
                        "device_code": device_code,
                        "user_code": shown,
                        "verification_uri": uri,
                        "verification_uri_complete": complete,
                        "expires_in": ctx.config.device.ttl,
                        "interval": ctx.config.device.interval,
                    }),
                )
                .no_store());
            }
            DeviceStarted::OverBudget => {
                return Ok(too_many(
                    "too many device authorization requests from this address; retry in a minute",
                ))
            }
            DeviceStarted::Full => {
                return Ok(too_many(
                    "this client holds as many pending device authorization requests as it may; retry later",
                ))
            }
            DeviceStarted::Collision => continue,
        }
    }
    Err(OAuthError::ServerError("no free user code; retry".into()))
}

/// The scopes as the authorization endpoint reads them: the declared ones
/// when none is named; each named one declared (OpenID's need no declaration).
fn requested_scopes<D: Driver>(
    ctx: &Ctx<'_, D>,
    form: &Params,
    declared: &[String],
) -> Result<Vec<String>, OAuthError> {
    let scopes = match form.get("scope").map(scope::parse) {
        Some(Err(e)) => return Err(OAuthError::InvalidScope(e)),
        Some(Ok(s)) if !s.is_empty() => s,
        _ => declared.to_vec(),
    };
    let undeclared: Vec<String> = scopes
        .iter()
        .filter(|s| !(ctx.config.openid && scope::is_openid_scope(s)))
        .cloned()
        .collect();
    if let Some(bad) = scope::first_outside(&undeclared, declared) {
        return Err(OAuthError::InvalidScope(format!(
            "the app did not declare the scope {bad:?}"
        )));
    }
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope requested and the app declares none".into(),
        ));
    }
    Ok(scopes)
}
