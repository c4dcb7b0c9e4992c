//! Management API for OAuth apps, `/api/v1/apps`: register, list, get,
//! update (optimistic concurrency), rotate the secret, deactivate and
//! reactivate, delete (webhooks: `apps_webhooks`; installations: `installations`), and the current
//! application of a bearer token (Fluxer).

use serde_json::json;

use crate::api_auth::{self, Caller};
use crate::bearer;
use crate::context::Ctx;
use crate::crypto;
use crate::endpoints::{apps_openid, apps_sender, apps_webhooks};
use crate::error::{parse_json, ApiError};
use crate::grants::token_exchange::policy as exchange_policy;
use crate::http::{Request, Response};
use crate::registration::{self, AppUpdate, NewApp};
use crate::store::{AppPatch, AppRow, Audit, Driver};

pub fn app_json(a: &AppRow) -> serde_json::Value {
    let mut v = json!({
        "id": a.id,
        "client_id": a.id,
        "owner_org_id": a.owner_org_id,
        "name": a.name,
        "description": a.description,
        "homepage_url": a.homepage_url,
        "terms_url": a.terms_url,
        "privacy_url": a.privacy_url,
        "icon": a.icon,
        "redirect_uris": a.redirect_uri_list(),
        "scopes": a.scope_list(),
        "client_type": a.client_type,
        "actor_modes": a.actor_mode_list(),
        "bot_public": a.bot_public == 1,
        "bot_require_code_grant": a.bot_require_code_grant == 1,
        "device_authorization": a.device_authorization == 1,
        "webhook_url": a.webhook_url,
        "webhook_events": crate::scope::from_json(&a.webhook_events),
        "status": a.status,
        "version": a.version,
        "secret_expires_at": a.secret_expires_at,
        "created_by": a.created_by,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    });
    if let Some(o) = v.as_object_mut() {
        o.extend(crate::client_metadata::openid::to_json(a, false));
        o.extend(apps_sender::to_json(a));
    }
    v["token_exchange"] = exchange_policy::to_json(a.token_exchange.as_deref());
    v
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    if route == "apps_current" {
        return current(ctx, req).await;
    }
    let result = async {
        let caller = api_auth::caller(ctx, req).await?;
        match route {
            "apps_create" => create(ctx, req, &caller).await,
            "apps_list" => list(ctx, req, &caller).await,
            "apps_get" => Ok(Response::json(200, &app_json(&visible_app(ctx, &caller).await?))),
            "apps_update" => update(ctx, req, &caller).await,
            "apps_rotate_secret" => rotate(ctx, req, &caller).await,
            "apps_rotate_webhook_secret" => apps_webhooks::rotate_webhook_secret(ctx, req, &caller).await,
            "apps_deactivate" => set_status(ctx, &caller, "inactive").await,
            "apps_reactivate" => set_status(ctx, &caller, "active").await,
            "apps_delete" => delete(ctx, &caller).await,
            "apps_installations" => super::installations::of_app(ctx, &caller).await,
            _ => apps_webhooks::deliveries(ctx, &caller).await,
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

pub async fn require_manage<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, org_id: &str) -> Result<(), ApiError> {
    let role = caller
        .role_in(org_id)
        .ok_or_else(|| ApiError::forbidden("not a member of that organization"))?;
    if !api_auth::role_has(ctx, role, "oauth_app.manage").await? {
        return Err(ApiError::forbidden(
            "this needs the oauth_app.manage permission in the owner organization",
        ));
    }
    Ok(())
}

/// The app named in the path, if the caller belongs to its owner org.
/// Apps of other orgs are indistinguishable from missing ones.
pub(super) async fn visible_app<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<AppRow, ApiError> {
    let not_found = || ApiError::not_found("no such app in your organization");
    let app = ctx
        .store
        .app(ctx.param(0))
        .await?
        .filter(|a| a.status != "deleted")
        .ok_or_else(not_found)?;
    // A self-registered client (no owner org) is managed through RFC 7592,
    // never here.
    let Some(owner) = app.owner_org_id.as_deref() else {
        return Err(not_found());
    };
    if caller.role_in(owner).is_none() {
        return Err(not_found());
    }
    ctx.note(&app.id, Some(owner));
    Ok(app)
}

pub(super) async fn managed_app<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<AppRow, ApiError> {
    let app = visible_app(ctx, caller).await?;
    require_manage(ctx, caller, app.owner_org_id.as_deref().unwrap_or_default()).await?;
    Ok(app)
}

/// The audit record of an act on an app, written in the act's own batch.
pub(super) fn audit_app<D: Driver>(
    ctx: &Ctx<'_, D>,
    caller: &Caller,
    app: &AppRow,
    action: &str,
    detail: serde_json::Value,
) -> Audit {
    let (kind, id) = caller.audit_actor();
    ctx.audit_entry(
        app.owner_org_id.as_deref().unwrap_or_default(),
        kind,
        &id,
        Some(&app.id),
        action,
        detail,
    )
}

async fn catalogue<D: Driver>(ctx: &Ctx<'_, D>) -> Result<Vec<String>, ApiError> {
    Ok(ctx.store.scope_catalogue().await?.into_iter().map(|s| s.name).collect())
}

pub async fn create<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let input: NewApp = parse_json(req)?;
    let (row, secret) = register(ctx, caller, input).await?;
    let mut body = app_json(&row);
    if let Some(s) = secret {
        // Shown once; only its hash is kept.
        body["client_secret"] = s.into();
    }
    body["webhook_signing_secret"] = row.webhook_secret.clone().into();
    Ok(Response::json(201, &body).no_store())
}

/// Validate and store a new app; returns it with its plaintext secret.
pub async fn register<D: Driver>(
    ctx: &Ctx<'_, D>,
    caller: &Caller,
    input: NewApp,
) -> Result<(AppRow, Option<String>), ApiError> {
    let org_id = caller.org(input.org_id.as_deref())?;
    require_manage(ctx, caller, &org_id).await?;
    registration::validate(&input, &catalogue(ctx).await?).map_err(ApiError::bad_request)?;
    let sender = apps_sender::for_new(&input, ctx.config.cimd_allow_http_loopback)?;
    let openid = apps_openid::for_new(ctx, &input).await?;
    let exchange = exchange_policy::check(
        ctx.config,
        &ctx.issuer,
        input.token_exchange.as_ref(),
        input.client_type == "public",
    )
    .map_err(ApiError::bad_request)?;
    let id = crypto::new_token(&ctx.config.prefixes.client_id);
    let secret = (input.client_type == "confidential" && !sender.private_key_jwt)
        .then(|| crypto::new_token(&ctx.config.prefixes.client_secret));
    let mut row = AppRow {
        id,
        owner_org_id: Some(org_id),
        name: input.name.trim().to_string(),
        description: input.description.clone(),
        homepage_url: input.homepage_url.clone(),
        terms_url: input.terms_url.clone(),
        privacy_url: input.privacy_url.clone(),
        icon: input.icon.clone(),
        redirect_uris: registration::to_json(&input.redirect_uris),
        scopes: registration::to_json(&registration::normalized(&input.scopes)),
        client_type: input.client_type.clone(),
        actor_modes: registration::to_json(&registration::normalized(&input.actor_modes)),
        secret_hash: secret.as_deref().map(crypto::sha256_hex),
        // Bounded by `registration::validate`, so this cannot overflow.
        secret_expires_at: input.secret_expires_in.map(|s| ctx.now.saturating_add(s)),
        webhook_url: input.webhook_url.clone(),
        webhook_events: registration::to_json(&registration::normalized(&input.webhook_events)),
        status: "active".into(),
        version: 1,
        created_by: Some(caller.actor_label()),
        created_at: ctx.now,
        updated_at: ctx.now,
        bot_public: input.bot_public as i64,
        bot_require_code_grant: input.bot_require_code_grant as i64,
        webhook_secret: Some(crypto::new_token("whsec_")),
        registration: "platform".into(),
        last_used_at: None,
        metadata_expires_at: None,
        auth_failures: 0,
        id_token_signed_response_alg: None,
        sector_identifier_uri: None,
        post_logout_redirect_uris: "[]".into(),
        backchannel_logout_uri: None,
        backchannel_logout_session_required: 0,
        dpop_bound_access_tokens: 0,
        require_pushed_authorization_requests: 0,
        client_auth_method: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        device_authorization: i64::from(input.device_authorization),
        token_exchange: exchange,
    };
    openid.apply(&mut row);
    sender.apply(&mut row);
    let audit = audit_app(ctx, caller, &row, "app.created", json!({"name": row.name}));
    ctx.store.insert_app(&row, &audit).await?;
    ctx.note(&row.id, row.owner_org_id.as_deref());
    Ok((row, secret))
}

async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let q = req.query_params();
    let org_id = caller.org(q.get("org_id"))?;
    let apps = ctx.store.apps_of_org(&org_id).await?;
    let apps: Vec<_> = apps.iter().filter(|a| a.status != "deleted").map(app_json).collect();
    Ok(Response::json(200, &json!({"apps": apps})))
}

async fn update<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let u: AppUpdate = parse_json(req)?;
    let app = managed_app(ctx, caller).await?;
    let updated = apply_update(ctx, caller, &app, u).await?;
    Ok(Response::json(200, &app_json(&updated)))
}

/// Validate the app as it would be after the update, then write it if the
/// version still matches; a stale version is 409 with the current one.
pub async fn apply_update<D: Driver>(
    ctx: &Ctx<'_, D>,
    caller: &Caller,
    app: &AppRow,
    u: AppUpdate,
) -> Result<AppRow, ApiError> {
    let merged = NewApp {
        name: u.name.clone().unwrap_or_else(|| app.name.clone()),
        description: u.description.clone().unwrap_or_else(|| app.description.clone()),
        homepage_url: u.homepage_url.clone().unwrap_or_else(|| app.homepage_url.clone()),
        terms_url: u.terms_url.clone().unwrap_or_else(|| app.terms_url.clone()),
        privacy_url: u.privacy_url.clone().unwrap_or_else(|| app.privacy_url.clone()),
        icon: u.icon.clone().unwrap_or_else(|| app.icon.clone()),
        redirect_uris: u.redirect_uris.clone().unwrap_or_else(|| app.redirect_uri_list()),
        scopes: u.scopes.clone().unwrap_or_else(|| app.scope_list()),
        client_type: app.client_type.clone(),
        actor_modes: u.actor_modes.clone().unwrap_or_else(|| app.actor_mode_list()),
        webhook_url: u.webhook_url.clone().unwrap_or_else(|| app.webhook_url.clone()),
        webhook_events: u
            .webhook_events
            .clone()
            .unwrap_or_else(|| crate::scope::from_json(&app.webhook_events)),
        secret_expires_in: None,
        org_id: None,
        bot_public: u.bot_public.unwrap_or(app.bot_public == 1),
        bot_require_code_grant: u.bot_require_code_grant.unwrap_or(app.bot_require_code_grant == 1),
        ..NewApp::default()
    };
    registration::validate(&merged, &catalogue(ctx).await?).map_err(ApiError::bad_request)?;
    let sender = apps_sender::for_update(app, &u, ctx.config.cimd_allow_http_loopback)?;
    let openid = apps_openid::for_update(ctx, app, &u, &merged.redirect_uris).await?;
    let exchange = match &u.token_exchange {
        Some(sent) => Some(
            exchange_policy::check(ctx.config, &ctx.issuer, sent.as_ref(), app.is_public())
                .map_err(ApiError::bad_request)?,
        ),
        None => None,
    };
    let mut patch = AppPatch {
        name: u.name.map(|n| n.trim().to_string()),
        description: u.description,
        homepage_url: u.homepage_url,
        terms_url: u.terms_url,
        privacy_url: u.privacy_url,
        icon: u.icon,
        redirect_uris: u.redirect_uris.map(|v| registration::to_json(&v)),
        scopes: u.scopes.map(|v| registration::to_json(&registration::normalized(&v))),
        actor_modes: u
            .actor_modes
            .map(|v| registration::to_json(&registration::normalized(&v))),
        webhook_url: u.webhook_url,
        webhook_events: u
            .webhook_events
            .map(|v| registration::to_json(&registration::normalized(&v))),
        bot_public: u.bot_public.map(i64::from),
        bot_require_code_grant: u.bot_require_code_grant.map(i64::from),
        device_authorization: u.device_authorization.map(i64::from),
        token_exchange: exchange,
        ..AppPatch::default()
    };
    apps_openid::patch(&mut patch, &openid);
    apps_sender::patch(&mut patch, app, &sender);
    let audit = audit_app(
        ctx,
        caller,
        app,
        "app.updated",
        json!({"version": u.version.saturating_add(1)}),
    );
    match ctx
        .store
        .update_app(&app.id, u.version, &patch, ctx.now, &audit)
        .await?
    {
        Some(updated) => Ok(updated),
        None => {
            let current = ctx.store.app(&app.id).await?.map(|a| a.version).unwrap_or(app.version);
            let mut e = ApiError::new(
                409,
                "conflict",
                format!(
                    "version {} is stale; the app is at version {current}: re-read it and retry",
                    u.version
                ),
            );
            e.extra = Some(json!({"current_version": current}));
            Err(e)
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    secret_expires_in: Option<i64>,
}

async fn rotate<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: RotateBody = if req.body.is_empty() {
        RotateBody::default()
    } else {
        parse_json(req)?
    };
    registration::check_secret_expires_in(body.secret_expires_in).map_err(ApiError::bad_request)?;
    let app = managed_app(ctx, caller).await?;
    let (row, secret) = rotate_secret(ctx, caller, &app, body.secret_expires_in).await?;
    Ok(Response::json(
        200,
        &json!({"client_id": row.id, "client_secret": secret, "secret_expires_at": row.secret_expires_at, "version": row.version}),
    )
    .no_store())
}

pub async fn rotate_secret<D: Driver>(
    ctx: &Ctx<'_, D>,
    caller: &Caller,
    app: &AppRow,
    expires_in: Option<i64>,
) -> Result<(AppRow, String), ApiError> {
    if app.is_public() {
        return Err(ApiError::bad_request("public clients have no secret"));
    }
    if app.client_auth_method.is_some() {
        return Err(ApiError::bad_request(
            "this app authenticates with private_key_jwt and has no secret; set token_endpoint_auth_method to a secret method first",
        ));
    }
    registration::check_secret_expires_in(expires_in).map_err(ApiError::bad_request)?;
    let secret = crypto::new_token(&ctx.config.prefixes.client_secret);
    let expires = expires_in.map(|s| ctx.now.saturating_add(s));
    let audit = audit_app(ctx, caller, app, "app.secret_rotated", json!({}));
    let row = ctx
        .store
        .rotate_secret(&app.id, &crypto::sha256_hex(&secret), expires, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("no such app"))?;
    ctx.event(&app.id, None, "secret.rotated", json!({"version": row.version}));
    Ok((row, secret))
}

async fn set_status<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, status: &str) -> Result<Response, ApiError> {
    let app = managed_app(ctx, caller).await?;
    let action = if status == "active" {
        "app.reactivated"
    } else {
        "app.deactivated"
    };
    let audit = audit_app(ctx, caller, &app, action, json!({}));
    let row = ctx
        .store
        .set_app_status(&app.id, status, ctx.now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("no such app"))?;
    Ok(Response::json(200, &app_json(&row)))
}

async fn delete<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<Response, ApiError> {
    let app = managed_app(ctx, caller).await?;
    delete_app(ctx, caller, &app).await?;
    Ok(Response::new(204))
}

pub async fn delete_app<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, app: &AppRow) -> Result<(), ApiError> {
    let audit = audit_app(ctx, caller, app, "app.deleted", json!({"name": app.name}));
    ctx.store.delete_app(&app.id, ctx.now, &audit).await?;
    ctx.event(&app.id, None, "app.deleted", json!({"name": app.name}));
    Ok(())
}

/// Fluxer's "Get Current Application": the app of the bearer token.
async fn current<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let p = match bearer::require(ctx, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match ctx.store.app(&p.row.app_id).await {
        Ok(Some(a)) => {
            let mut v = app_json(&a);
            if let Some(o) = v.as_object_mut() {
                // What the app's own token may see of itself.
                for k in ["created_by", "webhook_url", "webhook_events", "secret_expires_at"] {
                    o.remove(k);
                }
            }
            Response::json(200, &v)
        }
        Ok(None) => bearer::unauthorized(ctx, req, true, "the app no longer exists"),
        Err(e) => ApiError::from(e).into_response(),
    }
}
