//! UserInfo (OIDC Core §5.3): `GET` and `POST /oauth/userinfo` with an
//! access token that was granted `openid`; the claims are `oidc::claims`'.
//!
//! The token comes in the Authorization header (RFC 6750 §2.1) or in a
//! form-encoded POST body (§2.2), exactly once; never in the query (OAuth
//! 2.1 §5.2.2 drops §2.3: URLs end up in logs and Referer headers). Opaque
//! and JWT access tokens alike are read from D1 by their storage handle, in
//! every BEARER_MODE: the claims are live data (profile, email, membership),
//! so a revoked token or a removed member gets nothing at once. One D1 read.
//! Any of our live access tokens will do whatever its audience: `openid` is
//! the permission (§5.3), and this endpoint is the server's own.

use crate::bearer;
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::oidc::claims;
use crate::scope;
use crate::store::Driver;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    if !ctx.config.openid {
        return ApiError::not_found("OpenID Connect is off on this server (OPENID=off)").into_response();
    }
    let (token, dpop) = match presented(req) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return bearer::unauthorized(
                ctx,
                req,
                false,
                "send an access token as Authorization: Bearer <token>, or as access_token in a form POST body",
            )
        }
        Err(why) => return invalid_request(&why),
    };
    let invalid = || bearer::unauthorized(ctx, req, true, "the access token is invalid, expired or revoked");
    let Some(handle) = bearer::storage_handle(ctx, &token, false).await else {
        return invalid();
    };
    let row = match ctx.store.userinfo(&crypto::sha256_hex(&handle), ctx.now).await {
        Ok(Some(row)) if crate::cimd::admitted(ctx.config, &row.app_id) => row,
        Ok(_) => return invalid(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    ctx.note(&row.app_id, Some(&row.org_id));
    if let Err(resp) = bearer::check_binding(ctx, req, &token, row.jkt.as_deref(), dpop).await {
        return resp;
    }
    let scopes = scope::from_json(&row.scopes);
    if !scopes.iter().any(|s| s == claims::OPENID) {
        return bearer::insufficient_scope(ctx, req, claims::OPENID);
    }
    let Some(user_id) = row.user_id.as_deref().filter(|_| row.actor == "self") else {
        // The app actor's token speaks for the app, not for whoever installed it.
        return forbidden(
            "this access token acts as the app itself; UserInfo needs a token a user approved for themselves",
        );
    };
    let sub = crate::oidc::subject::of_client(
        ctx.config,
        &row.app_id,
        row.app_redirect_uris.as_deref().unwrap_or("[]"),
        row.app_sector_identifier_uri.as_deref(),
        user_id,
    );
    Response::json(200, &serde_json::Value::Object(claims::userinfo(&sub, &scopes, &row))).no_store()
}

/// The presented access token and whether it came as `Authorization: DPoP`
/// (RFC 9449 §7.1), or why the request is malformed (RFC 6750 §2).
fn presented(req: &Request) -> Result<Option<(String, bool)>, String> {
    if req.query_params().0.iter().any(|(k, _)| k == "access_token") {
        return Err("send the access token in the Authorization header or a POST body, never in the URL".into());
    }
    let header = req.header("authorization").map(str::trim).filter(|h| !h.is_empty());
    let dpop = bearer::presented_dpop(req);
    let in_header = bearer::presented(req).or(dpop);
    if header.is_some() && in_header.is_none() {
        return Err("the Authorization header must be Bearer <token> or DPoP <token>".into());
    }
    let mut in_body = None;
    if req.method == "POST" && !req.body.is_empty() {
        if let Ok(form) = req.form() {
            if form.repeated(&["access_token"]).is_some() {
                return Err("access_token appears more than once".into());
            }
            in_body = form.get("access_token").map(str::to_string);
        }
    }
    match (in_header, in_body) {
        (Some(_), Some(_)) => Err("send the access token once: in the header or in the body, not both".into()),
        (Some(h), None) => Ok(Some((h.to_string(), dpop.is_some()))),
        (None, b) => Ok(b.map(|b| (b, false))),
    }
}

/// 400 per RFC 6750 §3.1.
fn invalid_request(description: &str) -> Response {
    ApiError::new(400, "invalid_request", description)
        .into_response()
        .header(
            "WWW-Authenticate",
            &format!(
                "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"{}\"",
                description.replace('"', "'")
            ),
        )
}

/// 403 for a token with `openid` that names no user (RFC 6750 §3.1).
fn forbidden(description: &str) -> Response {
    ApiError::new(403, "insufficient_scope", description)
        .into_response()
        .header(
            "WWW-Authenticate",
            &format!(
                "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"openid\", error_description=\"{}\"",
                description.replace('"', "'")
            ),
        )
}
