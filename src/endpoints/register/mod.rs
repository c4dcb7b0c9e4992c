//! RFC 7591 dynamic client registration (`POST /oauth/register`) and RFC 7592
//! management of a registration (`GET/PUT/DELETE /oauth/register/{client_id}`
//! with its registration access token), under the `DCR` policy.
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

pub mod metadata;

use serde_json::json;

use crate::cimd::sector;
use crate::client_metadata::openid::Policy;
use crate::config::DcrPolicy;
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::registration::REGISTRATION_TOKEN_PREFIX;
use crate::store::provisioning::PLATFORM_AUDIT_ORG;
use crate::store::Driver;
use crate::store::{AppRow, Audit, DynamicClient, NewDynamicClient, Registered, Slot};
use metadata::{client_info, invalid, Registration};

/// How audit records name a self-registered client acting on itself.
const ACTOR: &str = "dynamic_client";

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    if ctx.config.dcr.policy == DcrPolicy::Off {
        return ApiError::not_found("dynamic client registration is off on this server").into_response();
    }
    let result = match route {
        "register" => register(ctx, req).await,
        _ => manage(ctx, req, route).await,
    };
    result.unwrap_or_else(ApiError::into_response).no_store()
}

/// RFC 6750 §3: a refused (or missing) initial or registration access token.
fn refused(presented: bool, d: &str) -> Response {
    let value = if presented {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    ApiError::new(401, "invalid_token", d)
        .into_response()
        .header("WWW-Authenticate", value)
}

fn audit<D: Driver>(ctx: &Ctx<'_, D>, client_id: &str, action: &str, detail: serde_json::Value) -> Audit {
    ctx.audit_entry(PLATFORM_AUDIT_ORG, ACTOR, client_id, Some(client_id), action, detail)
}

async fn catalogue<D: Driver>(ctx: &Ctx<'_, D>) -> Result<Vec<String>, ApiError> {
    Ok(crate::catalogue::scopes(ctx).await?)
}

/// A bearer token of sane length, or `None`.
fn presented(req: &Request) -> Option<&str> {
    crate::bearer::presented(req).filter(|t| !t.is_empty() && t.len() <= 512)
}

async fn register<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let policy = ctx.config.dcr.policy;
    let initial = match policy {
        DcrPolicy::InitialAccessToken => match presented(req) {
            Some(t) => Some(crypto::sha256_hex(t)),
            None => {
                return Ok(refused(
                    false,
                    "registration needs an initial access token: Authorization: Bearer <token>",
                ))
            }
        },
        _ => None,
    };
    let m = metadata::parse(req.header("content-type"), &req.body)?;
    let r = crate::client_metadata::validate(
        &m,
        policy == DcrPolicy::InitialAccessToken,
        policy == DcrPolicy::InitialAccessToken,
        &catalogue(ctx).await?,
        &ctx.config.dcr.scopes,
        &Policy::from_config(ctx.config),
    )?;
    // Per source address (an IPv6 sender as its /64), in a fixed hour.
    let slot = Slot {
        key: format!("dcr:{}", crate::client_auth::source(&req.ip)),
        limit: ctx.config.dcr.rate_per_hour,
    };
    if !ctx.store.take_slots(&[slot], ctx.now, 3600).await? {
        return Err(ApiError::new(
            429,
            "too_many_requests",
            "too many registrations from this address; retry later",
        )
        .with_retry_after(3600));
    }
    // After the registration rate, so every fetch is one of its registrations,
    // and (policy `initial_access_token`) only for a token that can register.
    if r.openid.sector_identifier_uri.is_some() {
        if let Some(hash) = &initial {
            if !ctx.store.initial_access_token_usable(hash, ctx.now).await? {
                return Ok(refused(
                    true,
                    "the initial access token is unknown, expired, revoked or used up",
                ));
            }
        }
    }
    sector_check(ctx, &r).await?;
    let id = crypto::new_token(&ctx.config.prefixes.client_id);
    let secret = r
        .has_secret()
        .then(|| crypto::new_token(&ctx.config.prefixes.client_secret));
    let token = crypto::new_token(REGISTRATION_TOKEN_PREFIX);
    let ttl = ctx.config.dcr.secret_ttl;
    let app = new_row(ctx, id, &r, secret.as_deref(), (ttl > 0).then(|| ctx.now + ttl));
    let token_hash = crypto::sha256_hex(&token);
    let detail = json!({"client_name": app.name, "client_type": app.client_type,
        "policy": if initial.is_some() { "initial_access_token" } else { "open" }});
    let outcome = ctx
        .store
        .register_client(
            &NewDynamicClient {
                app: &app,
                token_hash: &token_hash,
                auth_method: r.auth_method,
                initial_token_hash: initial.as_deref(),
                max_clients: ctx.config.dcr.max_clients,
            },
            &audit(ctx, &app.id, "client.registered", detail),
        )
        .await?;
    match outcome {
        Registered::Stored => {}
        Registered::BadInitialToken => {
            return Ok(refused(
                true,
                "the initial access token is unknown, expired, revoked or used up",
            ))
        }
        Registered::Full { oldest_unused } => {
            // The sweep frees the place of the oldest never-used client
            // `DCR_UNUSED_DAYS` after its registration.
            let unused = ctx.config.dcr.unused_days * 86400;
            let wait = oldest_unused.map_or(3600, |t| t + unused - ctx.now).clamp(60, 86400);
            return Err(ApiError::new(
                429,
                "too_many_requests",
                "this server holds as many self-registered clients as it allows; retry later",
            )
            .with_retry_after(wait));
        }
    }
    ctx.note(&app.id, None);
    Ok(Response::json(
        201,
        &client_info(&app, r.auth_method, &ctx.issuer, &token, secret.as_deref()),
    ))
}

/// A sector identifier document must list every redirect URI (fetched at
/// each registration and replacement that names one).
async fn sector_check<D: Driver>(ctx: &Ctx<'_, D>, r: &Registration) -> Result<(), ApiError> {
    match &r.openid.sector_identifier_uri {
        Some(uri) => sector::check_for_registration(ctx, uri, &r.redirect_uris, "invalid_client_metadata").await,
        None => Ok(()),
    }
}

fn new_row<D: Driver>(
    ctx: &Ctx<'_, D>,
    id: String,
    r: &Registration,
    secret: Option<&str>,
    expires: Option<i64>,
) -> AppRow {
    let mut row = AppRow {
        id,
        owner_org_id: None,
        name: r.name.clone(),
        description: String::new(),
        homepage_url: r.homepage_url.clone(),
        terms_url: r.terms_url.clone(),
        privacy_url: r.privacy_url.clone(),
        icon: r.icon.clone(),
        redirect_uris: crate::registration::to_json(&r.redirect_uris),
        scopes: crate::registration::to_json(&r.scopes),
        client_type: if r.is_public() { "public" } else { "confidential" }.into(),
        actor_modes: crate::registration::to_json(&["self".to_string()]),
        secret_hash: secret.map(crypto::sha256_hex),
        secret_expires_at: secret.and(expires),
        webhook_url: None,
        webhook_events: "[]".into(),
        status: "active".into(),
        version: 1,
        created_by: Some("dynamic_registration".into()),
        created_at: ctx.now,
        updated_at: ctx.now,
        bot_public: 0,
        bot_require_code_grant: 0,
        webhook_secret: None,
        registration: "dynamic".into(),
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
        device_authorization: i64::from(r.device_authorization),
        token_exchange: None,
    };
    r.openid.apply(&mut row);
    r.sender.apply(&mut row);
    row
}

const NOT_VALID: &str = "the registration access token is not valid for this client";

/// RFC 7592: the registration access token names the client; the path must
/// name the same one. A wrong token, a missing client and one the platform
/// suspended or deleted get the same 401 (§2: the token is not valid).
async fn manage<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Result<Response, ApiError> {
    let Some(token) = presented(req) else {
        return Ok(refused(false, NOT_VALID));
    };
    let hash = crypto::sha256_hex(token);
    let Some(client) = ctx
        .store
        .client_by_registration_token(&hash)
        .await?
        .filter(|c| c.app.id == ctx.param(0))
    else {
        return Ok(refused(true, NOT_VALID));
    };
    ctx.note(&client.app.id, None);
    match route {
        "register_read" => Ok(Response::json(
            200,
            &client_info(
                &client.app,
                &client.token_endpoint_auth_method,
                &ctx.issuer,
                token,
                None,
            ),
        )),
        "register_update" => update(ctx, req, &client, token, &hash).await,
        _ => {
            let a = audit(
                ctx,
                &client.app.id,
                "client.deleted",
                json!({"client_name": client.app.name}),
            );
            if ctx.store.delete_client(&client.app.id, &hash, ctx.now, &a).await? {
                Ok(Response::new(204))
            } else {
                Ok(refused(true, NOT_VALID))
            }
        }
    }
}

/// RFC 7592 §2.2: the request replaces the metadata (same rules as a
/// registration). The client's type cannot change: a public client gets no
/// secret this way, and a confidential one keeps its secret.
async fn update<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    client: &DynamicClient,
    token: &str,
    hash: &str,
) -> Result<Response, ApiError> {
    let current = &client.app;
    let mut m = metadata::parse(req.header("content-type"), &req.body)?;
    if m.client_id.as_deref() != Some(current.id.as_str()) {
        return Err(invalid("client_id must be present and name this client"));
    }
    if let Some(s) = &m.client_secret {
        let matches = current
            .secret_hash
            .as_deref()
            .is_some_and(|h| crypto::ct_eq(h, &crypto::sha256_hex(s)));
        if !matches {
            return Err(invalid(
                "client_secret does not match the current secret (a client cannot choose its secret)",
            ));
        }
    }
    // Omitted: the method it has (never a silent switch of client type).
    if m.token_endpoint_auth_method.is_none() {
        m.token_endpoint_auth_method = Some(client.token_endpoint_auth_method.clone());
    }
    let r = crate::client_metadata::validate(
        &m,
        true,
        true,
        &catalogue(ctx).await?,
        &ctx.config.dcr.scopes,
        &Policy::from_config(ctx.config),
    )?;
    if r.is_public() != current.is_public() {
        return Err(invalid(
            "token_endpoint_auth_method cannot change between none and a client secret; register a new client",
        ));
    }
    // A secret cannot be minted nor kept through an update: a client that
    // switched to its key would otherwise keep a working secret.
    if r.has_secret() != current.secret_hash.is_some() {
        return Err(invalid(
            "token_endpoint_auth_method cannot change between a client secret and private_key_jwt; register a new client",
        ));
    }
    sector_check(ctx, &r).await?;
    let row = new_row(ctx, current.id.clone(), &r, None, None);
    let a = audit(
        ctx,
        &current.id,
        "client.updated",
        json!({"version": current.version + 1}),
    );
    match ctx.store.update_client(&row, hash, r.auth_method, ctx.now, &a).await? {
        Some(updated) => Ok(Response::json(
            200,
            &client_info(&updated, r.auth_method, &ctx.issuer, token, None),
        )),
        None => Ok(refused(true, NOT_VALID)),
    }
}
