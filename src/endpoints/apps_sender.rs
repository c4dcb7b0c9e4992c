//! The client authentication and sender constraint metadata of platform apps
//! (`/api/v1/apps` and the settings pages): the method a platform app names
//! beside its `client_type`, and the rules of `crate::client_metadata::sender`.

use serde_json::{Map, Value};

use crate::client_metadata::sender::{self, SenderClient, SenderInput, PRIVATE_KEY_JWT};
use crate::error::ApiError;
use crate::registration::{AppUpdate, NewApp};
use crate::store::{AppPatch, AppRow};

/// Whether an app of `client_type` naming `method` authenticates with
/// `private_key_jwt`; an omitted method is the type's (a secret, or none).
fn private_key_jwt(client_type: &str, method: Option<&str>) -> Result<bool, ApiError> {
    let public = client_type == "public";
    match method {
        None => Ok(false),
        Some("none") if public => Ok(false),
        Some("client_secret_basic" | "client_secret_post") if !public => Ok(false),
        Some(PRIVATE_KEY_JWT) if !public => Ok(true),
        Some(PRIVATE_KEY_JWT) => Err(ApiError::bad_request(
            "token_endpoint_auth_method \"private_key_jwt\" needs client_type \"confidential\" (a public client holds no credential)",
        )),
        Some(m) if public => Err(ApiError::bad_request(format!(
            "token_endpoint_auth_method {m:?} does not fit a public client: use \"none\" (with PKCE)"
        ))),
        Some(m) => Err(ApiError::bad_request(format!(
            "token_endpoint_auth_method {m:?} is not supported (client_secret_basic, client_secret_post, private_key_jwt)"
        ))),
    }
}

/// The fields of a new app.
pub fn for_new(input: &NewApp, allow_http_loopback: bool) -> Result<SenderClient, ApiError> {
    let pk = private_key_jwt(&input.client_type, input.token_endpoint_auth_method.as_deref())?;
    if pk && input.secret_expires_in.is_some() {
        return Err(ApiError::bad_request(
            "secret_expires_in: an app with token_endpoint_auth_method \"private_key_jwt\" has no secret",
        ));
    }
    let sent = SenderInput {
        dpop_bound_access_tokens: input.dpop_bound_access_tokens.clone(),
        require_pushed_authorization_requests: input.require_pushed_authorization_requests.clone(),
        jwks: input.jwks.clone(),
        jwks_uri: input.jwks_uri.clone(),
        token_endpoint_auth_signing_alg: input.token_endpoint_auth_signing_alg.clone(),
    };
    sender::validate(&sent, pk, allow_http_loopback).map_err(ApiError::bad_request)
}

/// The fields of `app` once `u` is applied: what `u` names (`null`
/// clears), else what the app has, except that leaving `private_key_jwt`
/// leaves its keys behind too.
pub fn for_update(app: &AppRow, u: &AppUpdate, allow_http_loopback: bool) -> Result<SenderClient, ApiError> {
    let cur = SenderClient::of(app);
    let pk = match u.token_endpoint_auth_method.as_deref() {
        None => cur.private_key_jwt,
        m => private_key_jwt(&app.client_type, m)?,
    };
    let mut old = cur.as_input();
    if !pk {
        old.jwks = None;
        old.jwks_uri = None;
        old.token_endpoint_auth_signing_alg = None;
    }
    let pick = |new: &Option<Option<Value>>, old: Option<Value>| match new {
        Some(v) => v.clone(),
        None => old,
    };
    let merged = SenderInput {
        dpop_bound_access_tokens: pick(&u.dpop_bound_access_tokens, old.dpop_bound_access_tokens),
        require_pushed_authorization_requests: pick(
            &u.require_pushed_authorization_requests,
            old.require_pushed_authorization_requests,
        ),
        jwks: pick(&u.jwks, old.jwks),
        jwks_uri: pick(&u.jwks_uri, old.jwks_uri),
        token_endpoint_auth_signing_alg: pick(&u.token_endpoint_auth_signing_alg, old.token_endpoint_auth_signing_alg),
    };
    sender::validate(&merged, pk, allow_http_loopback).map_err(ApiError::bad_request)
}

/// Every column of the fields; a switch to `private_key_jwt` erases the
/// secret, so it stops working at once.
pub fn patch(p: &mut AppPatch, app: &AppRow, c: &SenderClient) {
    let mut row = app.clone();
    c.apply(&mut row);
    p.dpop_bound_access_tokens = Some(row.dpop_bound_access_tokens);
    p.require_pushed_authorization_requests = Some(row.require_pushed_authorization_requests);
    p.client_auth_method = Some(row.client_auth_method);
    p.jwks = Some(row.jwks);
    p.jwks_uri = Some(row.jwks_uri);
    p.token_endpoint_auth_signing_alg = Some(row.token_endpoint_auth_signing_alg);
    p.clear_secret = c.private_key_jwt;
}

/// The method and the fields, for the app's JSON.
pub fn to_json(a: &AppRow) -> Map<String, Value> {
    let method = match (a.is_public(), a.client_auth_method.as_deref()) {
        (true, _) => "none",
        (false, Some(m)) => m,
        (false, None) => "client_secret_basic",
    };
    let mut m = sender::to_json(a, false);
    m.insert("token_endpoint_auth_method".into(), method.into());
    m
}
