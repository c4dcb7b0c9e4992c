//! The pushed authorization request endpoint (RFC 9126): POST /oauth/par.
//!
//! The client authenticates as at the token endpoint (`client_auth`), its
//! request is validated as the authorize endpoint would, and is stored under
//! a fresh `request_uri` that waits `PAR_TTL_SECONDS` for the browser.
//! A public client's pushes are anonymous writes: at most
//! [`PUBLIC_PUSHES_PER_MINUTE`] per client and source address a minute, each
//! row gone by the sweep once expired (at most `PAR_TTL_SECONDS` plus the
//! interaction window, `authorize::pushed::INTERACTION_SECONDS`).

use serde_json::json;

use crate::client_auth;
use crate::context::Ctx;
use crate::endpoints::authorize::{self, pushed, Failure};
use crate::error::OAuthError;
use crate::http::{Params, Request, Response};
use crate::store::pushed::NewPushed;
use crate::store::Driver;

/// Budget of a public client's pushes per source address (and client).
pub const PUBLIC_PUSHES_PER_MINUTE: i64 = 30;
const WINDOW: i64 = 60;

/// Client authentication travels with the push but is no part of the request.
const AUTH_PARAMS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let resp = match run(ctx, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    // RFC 9449 §8: a push with a proof is answered with a fresh nonce, as
    // the token endpoint is, so the client's next proof carries it.
    if ctx.config.dpop.nonce && req.header("dpop").is_some() {
        resp.header("DPoP-Nonce", &crate::dpop::current_nonce(ctx.config, ctx.now))
    } else {
        resp
    }
}

fn refusal(error: &str, description: &str) -> Response {
    Response::json(400, &json!({"error": error, "error_description": description})).no_store()
}

async fn run<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, OAuthError> {
    let form = req.form().map_err(OAuthError::InvalidRequest)?;
    // RFC 9449 §10.1: a proof sent with the push binds the code to its key,
    // as `dpop_jkt` does. Checked before anything is read (a nonce dance
    // costs no round trip and spends no client assertion).
    let proof_jkt = match crate::dpop::header(req)? {
        Some(proof) => Some(crate::dpop::verify(ctx, req, proof, None).await?.jkt),
        None => None,
    };
    let client = client_auth::authenticate(ctx, req, &form).await?;
    let app = client.app;
    ctx.note(&app.id, None);
    // RFC 9126 §2.1: a pushed request cannot itself be by reference.
    if form.0.iter().any(|(k, _)| k == "request_uri") {
        return Err(OAuthError::InvalidRequest(
            "request_uri cannot be pushed; push the authorization request's parameters".into(),
        ));
    }
    let mut pairs: Vec<(String, String)> = form
        .0
        .into_iter()
        .filter(|(k, _)| k != "client_id" && !AUTH_PARAMS.contains(&k.as_str()))
        .collect();
    pairs.insert(0, ("client_id".into(), app.id.clone()));
    if let Some(jkt) = proof_jkt {
        match pairs.iter().find(|(k, _)| k == "dpop_jkt") {
            Some((_, given)) if *given != jkt => {
                return Err(OAuthError::InvalidDpopProof(
                    "dpop_jkt does not match the key of the push's DPoP proof (RFC 9449 §10.1)".into(),
                ))
            }
            Some(_) => {}
            None => pairs.push(("dpop_jkt".into(), jkt)),
        }
    }
    let params = Params(pairs);
    // FAPI 2.0 §5.3.2.2: the redirect_uri is part of every pushed request.
    if ctx.config.fapi2 && params.get("redirect_uri").is_none() {
        return Err(OAuthError::InvalidRequest(
            "redirect_uri is required in a pushed request under the FAPI 2.0 profile".into(),
        ));
    }
    let public = app.is_public();
    let app_id = app.id.clone();
    if let Err(f) = authorize::validate_push(ctx, &params, app).await {
        return Ok(match f {
            Failure::Redirect { error, description, .. } => refusal(error, &description),
            Failure::Page { status: 503, .. } => crate::error::unavailable(true),
            Failure::Page {
                status: 429, message, ..
            } => Response::json(
                429,
                &json!({"error": "too_many_requests", "error_description": message}),
            )
            .no_store()
            .header("Retry-After", "60"),
            Failure::Page { message, .. } => refusal("invalid_request", &message),
        });
    }
    let refs: Vec<(&str, &str)> = params.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stored = Params::encode(&refs);
    let (request_uri, key) = pushed::mint();
    let budget_key = format!("par:{app_id}:{}", ctx.source);
    let row = NewPushed {
        hash: &key,
        app_id: &app_id,
        params: &stored,
        now: ctx.now,
        expires_at: ctx.now + ctx.config.par_ttl,
        budget: public.then_some((budget_key.as_str(), PUBLIC_PUSHES_PER_MINUTE, WINDOW)),
    };
    if !ctx.store.push_request(&row).await? {
        return Ok(Response::json(
            429,
            &json!({"error": "too_many_requests", "error_description": "too many pushed requests from this address; retry in a minute"}),
        )
        .no_store()
        .header("Retry-After", &WINDOW.to_string()));
    }
    Ok(Response::json(
        201,
        &json!({"request_uri": request_uri, "expires_in": ctx.config.par_ttl}),
    )
    .no_store())
}
