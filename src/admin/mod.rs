//! The platform's back office: the provisioning API and login challenges,
//! under `/admin/v1/`, for the platform's servers only (no CORS, no cookies).
//! Authenticated by `PLATFORM_ADMIN_TOKEN` (a Worker secret); with no token
//! configured the whole surface answers 404, as if it did not exist.
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

pub mod clients;
pub mod initial_access_tokens;
pub mod login;
pub mod provisioning;

use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::Driver;

/// Path prefix of the back office.
pub const PREFIX: &str = "/admin/v1/";

/// Longest path segment routed: the longest client id (a metadata document
/// URL, `crate::cimd::MAX_URL_LEN` ASCII characters once normalised) with
/// every byte percent-encoded, so every client that can exist is manageable.
const MAX_SEGMENT: usize = 3 * crate::cimd::MAX_URL_LEN;

/// Sub-routes under [`PREFIX`]: method, pattern (`{}` captures one segment),
/// name. Each module that serves part of the back office adds its rows here.
const ROUTES: &[(&str, &str, &str)] = &[
    // Delegated sign-in (`login`), after Hydra's login-request admin API.
    ("GET", "/login", "login_get"),
    ("PUT", "/login/accept", "login_accept"),
    ("PUT", "/login/reject", "login_reject"),
    ("DELETE", "/users/{}/sessions", "login_end_sessions"),
    // The provisioning API (`provisioning`).
    ("GET", "/orgs", "prov_orgs_list"),
    ("GET", "/orgs/{}", "prov_org_get"),
    ("PUT", "/orgs/{}", "prov_org_put"),
    ("PATCH", "/orgs/{}", "prov_org_patch"),
    ("DELETE", "/orgs/{}", "prov_org_delete"),
    ("GET", "/orgs/{}/memberships", "prov_memberships_list"),
    ("GET", "/orgs/{}/memberships/{}", "prov_membership_get"),
    ("PUT", "/orgs/{}/memberships/{}", "prov_membership_put"),
    ("PATCH", "/orgs/{}/memberships/{}", "prov_membership_patch"),
    ("DELETE", "/orgs/{}/memberships/{}", "prov_membership_delete"),
    ("GET", "/orgs/{}/api-keys", "prov_api_keys_list"),
    ("GET", "/orgs/{}/api-keys/{}", "prov_api_key_get"),
    ("PUT", "/orgs/{}/api-keys/{}", "prov_api_key_put"),
    ("PATCH", "/orgs/{}/api-keys/{}", "prov_api_key_patch"),
    ("DELETE", "/orgs/{}/api-keys/{}", "prov_api_key_delete"),
    ("GET", "/orgs/{}/trusted-issuers", "prov_trusted_issuers_list"),
    ("GET", "/orgs/{}/trusted-issuers/{}", "prov_trusted_issuer_get"),
    ("PUT", "/orgs/{}/trusted-issuers/{}", "prov_trusted_issuer_put"),
    ("PATCH", "/orgs/{}/trusted-issuers/{}", "prov_trusted_issuer_patch"),
    ("DELETE", "/orgs/{}/trusted-issuers/{}", "prov_trusted_issuer_delete"),
    ("GET", "/users", "prov_users_list"),
    ("GET", "/users/{}", "prov_user_get"),
    ("PUT", "/users/{}", "prov_user_put"),
    ("PATCH", "/users/{}", "prov_user_patch"),
    ("DELETE", "/users/{}", "prov_user_delete"),
    ("GET", "/users/{}/memberships", "prov_user_memberships"),
    ("GET", "/roles", "prov_roles_list"),
    ("GET", "/roles/{}", "prov_role_get"),
    ("PUT", "/roles/{}", "prov_role_put"),
    ("PATCH", "/roles/{}", "prov_role_patch"),
    ("DELETE", "/roles/{}", "prov_role_delete"),
    ("GET", "/scopes", "prov_scopes_list"),
    ("GET", "/scopes/{}", "prov_scope_get"),
    ("PUT", "/scopes/{}", "prov_scope_put"),
    ("PATCH", "/scopes/{}", "prov_scope_patch"),
    ("DELETE", "/scopes/{}", "prov_scope_delete"),
    ("GET", "/audit", "prov_audit"),
    // Initial access tokens of dynamic registration (`initial_access_tokens`).
    ("POST", "/initial-access-tokens", "iat_create"),
    ("GET", "/initial-access-tokens", "iat_list"),
    ("DELETE", "/initial-access-tokens/{}", "iat_revoke"),
    // Self-registered and metadata document clients (`clients`).
    ("GET", "/clients", "clients_list"),
    ("GET", "/client-caps", "clients_caps"),
    ("GET", "/clients/{}", "clients_get"),
    ("PATCH", "/clients/{}", "clients_patch"),
    ("DELETE", "/clients/{}", "clients_delete"),
];

/// Check the platform admin token: 404 when none is configured (the API is
/// off), 401 for a wrong or missing token, 429 once one source has sent too
/// many wrong ones. The token is checked first: the right one is never
/// refused for failures others sent from the same address (a platform's
/// shared egress), while a guesser's failures still cost it its budget. A
/// 429-vs-401 answer tells a guesser nothing the right token would not.
/// The comparison is of SHA-256 digests, in constant time; the token itself
/// is never logged or kept in memory beyond the request.
pub async fn authenticate<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<(), ApiError> {
    let Some(expected) = ctx.config.platform_admin_token_hash.as_deref() else {
        return Err(ApiError::not_found("no such route"));
    };
    let presented = crate::bearer::presented(req).filter(|t| t.len() <= 512);
    if presented.is_some_and(|t| crypto::ct_eq(&crypto::sha256_hex(t), expected)) {
        return Ok(());
    }
    // Per source, as client authentication counts (an IPv6 sender as its /64).
    let key = format!("admin:{}", crate::client_auth::source(&req.ip));
    let limit = ctx.config.client_auth_max_failures;
    if limit > 0 && ctx.store.failures(&key, ctx.now - ctx.config.rate_window).await? >= limit {
        return Err(
            ApiError::new(429, "too_many_requests", "too many failed attempts; retry later")
                .with_retry_after(ctx.config.rate_window),
        );
    }
    ctx.store.record_failure(&key, ctx.now, ctx.config.rate_window).await?;
    Err(ApiError::unauthorized(
        "send the platform admin token as Authorization: Bearer <token>",
    ))
}

/// Route and serve a request under [`PREFIX`].
pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    if let Err(e) = authenticate(ctx, req).await {
        return e.into_response();
    }
    let rest = &req.path[PREFIX.len() - 1..];
    let Some((name, params)) = route(&req.method, rest) else {
        return ApiError::not_found(format!("no route for {} {}", req.method, req.path)).into_response();
    };
    match name {
        n if n.starts_with("login_") => login::handle(ctx, req, n, &params).await,
        n if n.starts_with("prov_") => provisioning::handle(ctx, req, n, &params).await,
        n if n.starts_with("iat_") => initial_access_tokens::handle(ctx, req, n, &params).await,
        n if n.starts_with("clients_") => clients::handle(ctx, req, n, &params).await,
        _ => ApiError::not_found("no such route").into_response(),
    }
}

fn route(method: &str, path: &str) -> Option<(&'static str, Vec<String>)> {
    let segs: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find_map(|(m, pattern, name)| {
        let pat: Vec<&str> = pattern.split('/').collect();
        if *m != method || pat.len() != segs.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pat.iter().zip(&segs) {
            if *p == "{}" {
                if s.is_empty() || s.len() > MAX_SEGMENT {
                    return None;
                }
                params.push(s.to_string());
            } else if p != s {
                return None;
            }
        }
        Some((*name, params))
    })
}
