//! The platform's hold on clients that registered themselves (RFC 7591) or
//! identified themselves by a metadata document URL: list them, suspend or
//! reactivate one, delete one (which, for a URL, also bans it), and see how
//! full the caps on them are.

use serde::Deserialize;
use serde_json::json;

use crate::admin::provisioning::{page, page_response};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{PLATFORM_ACTOR, PLATFORM_AUDIT_ORG};
use crate::store::{AppRow, Audit, Driver};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    status: Option<String>,
    /// The device authorization grant's switch (RFC 8628).
    device_authorization: Option<bool>,
    /// The token exchange policy (RFC 8693): absent keeps, `null` turns it off.
    #[serde(default, deserialize_with = "present")]
    token_exchange: Option<Option<serde_json::Value>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, name: &str, params: &[String]) -> Response {
    let id = params
        .first()
        .and_then(|p| percent_encoding::percent_decode_str(p).decode_utf8().ok())
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let result = match name {
        "clients_list" => list(ctx, req).await,
        "clients_get" => self_registered(ctx, &id)
            .await
            .map(|a| Response::json(200, &client_json(&a))),
        "clients_patch" => set_status(ctx, req, &id).await,
        "clients_caps" => caps(ctx).await,
        _ => delete(ctx, &id).await,
    };
    result.unwrap_or_else(ApiError::into_response).no_store()
}

fn client_json(a: &AppRow) -> serde_json::Value {
    let mut v = json!({
        "client_id": a.id,
        "registration": a.registration,
        "status": a.status,
        "client_name": a.name,
        "client_type": a.client_type,
        "redirect_uris": a.redirect_uri_list(),
        "scope": a.scope_list().join(" "),
        "created_at": a.created_at,
        "last_used_at": a.last_used_at,
        "device_authorization": a.device_authorization == 1,
    });
    // Where this server will send logout tokens, and the rest of its OpenID metadata.
    if let Some(o) = v.as_object_mut() {
        o.extend(crate::client_metadata::openid::to_json(a, false));
    }
    v["token_exchange"] = crate::grants::token_exchange::policy::to_json(a.token_exchange.as_deref());
    v
}

/// A client with no owner org; platform apps are managed through
/// `/api/v1/apps` by their org, never here.
async fn self_registered<D: Driver>(ctx: &Ctx<'_, D>, id: &str) -> Result<AppRow, ApiError> {
    ctx.store
        .app(id)
        .await?
        .filter(|a| a.registration != "platform" && a.status != "deleted")
        .ok_or_else(|| ApiError::not_found("no self-registered client with this client_id"))
}

/// The platform's audit record of an act on `app`.
fn audit<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, action: &str) -> Audit {
    ctx.audit_entry(
        PLATFORM_AUDIT_ORG,
        "platform",
        PLATFORM_ACTOR,
        Some(&app.id),
        action,
        json!({"client_id": app.id, "registration": app.registration}),
    )
}

async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let q = req.query_params();
    let kind = q.get("registration");
    if kind.is_some_and(|k| !matches!(k, "dynamic" | "metadata_document")) {
        return Err(ApiError::bad_request(
            "registration must be dynamic or metadata_document",
        ));
    }
    let p = page(req)?;
    let rows = ctx
        .store
        .self_registered_clients(kind, p.after.as_deref().unwrap_or(""), p.limit + 1)
        .await?;
    Ok(page_response(rows, &p, |a| a.id.clone(), client_json))
}

async fn set_status<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, id: &str) -> Result<Response, ApiError> {
    let change: Change = crate::error::parse_json(req)?;
    let mut app = self_registered(ctx, id).await?;
    if let Some(sent) = &change.token_exchange {
        if change.device_authorization.is_some() {
            return Err(ApiError::bad_request(
                "change token_exchange and device_authorization in two requests",
            ));
        }
        return set_token_exchange(ctx, &app, sent.as_ref(), change.status.is_some()).await;
    }
    if let Some(on) = change.device_authorization {
        if change.status.is_none() {
            let app = set_device_authorization(ctx, &app, on).await?;
            return Ok(Response::json(200, &client_json(&app)));
        }
    }
    let Some(status) = change.status else {
        return Err(ApiError::bad_request(
            "send status (active or suspended), device_authorization (true or false) or token_exchange",
        ));
    };
    if !matches!(status.as_str(), "active" | "suspended") {
        return Err(ApiError::bad_request("status must be active or suspended"));
    }
    if let Some(on) = change.device_authorization {
        app = set_device_authorization(ctx, &app, on).await?;
    }
    let action = if status == "suspended" {
        "client.suspended"
    } else {
        "client.reactivated"
    };
    let audit = audit(ctx, &app, action);
    let app = ctx
        .store
        .set_app_status(&app.id, &status, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("no self-registered client with this client_id"))?;
    Ok(Response::json(200, &client_json(&app)))
}

/// The device authorization grant's switch (RFC 8628), audited.
async fn set_device_authorization<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, on: bool) -> Result<AppRow, ApiError> {
    let action = if on {
        "client.device_authorization.enabled"
    } else {
        "client.device_authorization.disabled"
    };
    let audit = audit(ctx, app, action);
    ctx.store
        .set_device_authorization(&app.id, on, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("no self-registered client with this client_id"))
}

/// The platform sets a self-registered client's token exchange policy
/// (RFC 7591 registration cannot: `endpoints::register`).
async fn set_token_exchange<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &AppRow,
    sent: Option<&serde_json::Value>,
    with_status: bool,
) -> Result<Response, ApiError> {
    if with_status {
        return Err(ApiError::bad_request(
            "change status and token_exchange in two requests",
        ));
    }
    let policy = crate::grants::token_exchange::policy::check(ctx.config, &ctx.issuer, sent, app.is_public())
        .map_err(ApiError::bad_request)?;
    let patch = crate::store::AppPatch {
        token_exchange: Some(policy),
        ..Default::default()
    };
    let audit = audit(ctx, app, "client.token_exchange_set");
    let app = ctx
        .store
        .update_app(&app.id, app.version, &patch, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::new(409, "conflict", "the client changed meanwhile: retry"))?;
    Ok(Response::json(200, &client_json(&app)))
}

async fn delete<D: Driver>(ctx: &Ctx<'_, D>, id: &str) -> Result<Response, ApiError> {
    let app = self_registered(ctx, id).await?;
    let audit = audit(ctx, &app, "client.deleted");
    ctx.store.delete_app(&app.id, ctx.now, &audit).await?;
    Ok(Response::new(204))
}

/// How full the self-registration caps are, so the operator can see a squat
/// and free it. `dynamic`: `DCR_MAX_CLIENTS` against the dynamic clients not
/// deleted (`clients`), of which `used` were ever issued a code; deleting one
/// frees its place at once, and the sweep frees a never-used one
/// `DCR_UNUSED_DAYS` after `oldest_unused_at`. `metadata_document`:
/// `CIMD_MAX_CLIENTS` against the stored URL clients; deleting one bans it,
/// and a ban holds no slot.
async fn caps<D: Driver>(ctx: &Ctx<'_, D>) -> Result<Response, ApiError> {
    let dcr = &ctx.config.dcr;
    let u = ctx.store.dynamic_cap_use().await?;
    let m = ctx.store.metadata_document_use().await?;
    Ok(Response::json(
        200,
        &json!({
            "dynamic": {
                "max_clients": dcr.max_clients,
                "clients": u.clients,
                "used": u.used,
                "never_used": u.clients - u.used,
                "oldest_unused_at": u.oldest_unused,
                "unused_days": dcr.unused_days,
            },
            "metadata_document": {
                "max_clients": ctx.config.cimd_max_clients,
                "stored": m.stored,
                "never_used": m.never_used,
                "suspended": m.suspended,
                "banned": m.banned,
            },
        }),
    ))
}
