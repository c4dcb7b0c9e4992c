//! Management API for OAuth apps: `/api/v1/apps`.

use serde_json::json;

use crate::api_auth::{self, Caller};
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::registration::{self, NewApp};
use crate::server::Ctx;
use crate::store::{AppRow, Driver};

pub fn app_json(a: &AppRow) -> serde_json::Value {
    json!({
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
        "webhook_url": a.webhook_url,
        "webhook_events": crate::scope::from_json(&a.webhook_events),
        "status": a.status,
        "version": a.version,
        "secret_expires_at": a.secret_expires_at,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    let result = async {
        let caller = api_auth::caller(ctx, req).await?;
        match route {
            "apps_create" => create(ctx, req, &caller).await,
            "apps_list" => list(ctx, req, &caller).await,
            _ => get(ctx, req, &caller).await,
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

async fn require_manage<D: Driver>(
    ctx: &Ctx<'_, D>,
    caller: &Caller,
    org_id: &str,
) -> Result<(), ApiError> {
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

fn parse_json<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let ct = req.header("content-type").unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(ApiError::new(
            415,
            "invalid_request",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn create<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let input: NewApp = parse_json(req)?;
    let org_id = caller.org(input.org_id.as_deref())?;
    require_manage(ctx, caller, &org_id).await?;
    let catalogue: Vec<String> = ctx
        .store
        .scope_catalogue()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    registration::validate(&input, &catalogue).map_err(ApiError::bad_request)?;
    let id = crypto::new_token(&ctx.config.prefixes.client_id);
    let secret = (input.client_type == "confidential")
        .then(|| crypto::new_token(&ctx.config.prefixes.client_secret));
    let row = AppRow {
        id,
        owner_org_id: org_id,
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
        secret_expires_at: input.secret_expires_in.map(|s| ctx.now + s),
        webhook_url: input.webhook_url.clone(),
        webhook_events: registration::to_json(&registration::normalized(&input.webhook_events)),
        status: "active".into(),
        version: 1,
        created_by: Some(caller.actor_label()),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    ctx.store.insert_app(&row).await?;
    let mut body = app_json(&row);
    if let Some(s) = secret {
        // Shown once; only its hash is kept.
        body["client_secret"] = s.into();
    }
    Ok(Response::json(201, &body).no_store())
}

async fn list<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let q = req.query_params();
    let org_id = caller.org(q.get("org_id"))?;
    let apps = ctx.store.apps_of_org(&org_id).await?;
    Ok(Response::json(
        200,
        &json!({"apps": apps.iter().map(app_json).collect::<Vec<_>>()}),
    ))
}

async fn get<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let id = req.path.trim_start_matches("/api/v1/apps/");
    let not_found = || ApiError::not_found("no such app in your organization");
    if id.is_empty() || id.len() > 128 || id.contains('/') {
        return Err(not_found());
    }
    let app = ctx.store.app(id).await?.ok_or_else(not_found)?;
    if caller.role_in(&app.owner_org_id).is_none() {
        return Err(not_found());
    }
    Ok(Response::json(200, &app_json(&app)))
}
