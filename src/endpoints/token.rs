//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant
//! handler named by `grant_type`. Every answer is `Cache-Control: no-store`.

use crate::client_auth;
use crate::context::Ctx;
use crate::error::OAuthError;
use crate::grants::{self, TokenResponse};
use crate::http::{Request, Response};
use crate::store::Driver;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    // Azure DevOps's assertion form, under its profile only.
    let resp = match ctx.profile.token(ctx, req).await {
        Some(resp) => resp,
        None => match run(ctx, req).await {
            Ok(t) => Response::json(200, &t).no_store(),
            Err(e) => e.into_response(),
        },
    };
    // RFC 9449 §8: a fresh nonce on every answer to a DPoP request.
    if ctx.config.dpop.nonce && req.header("dpop").is_some() {
        resp.header("DPoP-Nonce", &crate::dpop::current_nonce(ctx.config, ctx.now))
    } else {
        resp
    }
}

async fn run<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<TokenResponse, OAuthError> {
    let form = req.form().map_err(OAuthError::InvalidRequest)?;
    if let Some(name) = form.repeated(&[
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "device_code",
        "assertion",
    ]) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    let Some(grant_type) = form.get("grant_type") else {
        return Err(OAuthError::InvalidRequest("grant_type is required".into()));
    };
    // The log line names the grant, so each hot path's D1 count is visible.
    ctx.effects.borrow_mut().route = match grant_type {
        "authorization_code" => "token/authorization_code",
        "refresh_token" => "token/refresh_token",
        "client_credentials" => "token/client_credentials",
        grants::device_code::GRANT_TYPE => "token/device_code",
        grants::id_jag::GRANT_TYPE => "token/id_jag",
        grants::token_exchange::GRANT_TYPE => "token/token_exchange",
        _ => "token",
    };
    let creds = client_auth::credentials(ctx.config, req, &form)?;
    // The proof is checked before any storage access (a nonce dance costs no
    // read), and before a client assertion's `jti` is spent.
    let dpop = grants::dpop_proof(ctx, req, creds.method == client_auth::Method::None).await?;
    let dpop = dpop.as_ref();
    let creds = client_auth::prove(ctx, &req.path, creds).await?;
    // Each grant authenticates the client inside its first D1 batch.
    let issued = match grant_type {
        "authorization_code" => grants::authorization_code::handle(ctx, creds, &form, dpop).await,
        "refresh_token" => grants::refresh_token::handle(ctx, creds, &form, dpop).await,
        "client_credentials" => grants::client_credentials::handle(ctx, creds, &form, dpop).await,
        grants::device_code::GRANT_TYPE => grants::device_code::handle(ctx, creds, &form, dpop).await,
        grants::id_jag::GRANT_TYPE if ctx.config.id_jag.on => grants::id_jag::handle(ctx, creds, &form, dpop).await,
        // Off, the grant does not exist here (an Azure DevOps assertion, under
        // its profile, never reaches this: the profile claimed it above).
        grants::id_jag::GRANT_TYPE => {
            client_auth::resolve(ctx, creds).await?;
            Err(OAuthError::UnsupportedGrantType(
                "the jwt-bearer grant (ID-JAG, enterprise-managed authorization) is off on this server (ID_JAG=off)"
                    .into(),
            ))
        }
        grants::token_exchange::GRANT_TYPE => grants::token_exchange::handle(ctx, creds, &form, dpop).await,
        other => {
            client_auth::resolve(ctx, creds).await?;
            Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported"
            )))
        }
    };
    // Bound to the proof's key (RFC 9449 §5): the client must say so at its resource.
    issued.map(|t| match dpop {
        Some(_) => TokenResponse {
            token_type: "DPoP",
            ..t
        },
        None => t,
    })
}
