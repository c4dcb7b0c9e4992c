//! The route table: which path and method go to which endpoint, which routes
//! carry CORS, which are pages, which revoke, and which worker serves each.
//!
//! Layer: wiring (routing and the runtime; may import anything); see docs/architecture.md.

use crate::endpoints;

/// Routes that answer with HTML pages (their errors are pages too).
pub(super) const PAGE_ROUTES: &[&str] = &[
    "home",
    "authorize",
    "consent",
    "signin_page",
    "signin",
    "signout",
    "login_verify",
    "logout",
    "device_page",
    "device_decide",
];

/// Routes that can revoke tokens or narrow what they allow: the isolate that
/// handles one drops its bearer cache (`bearer::cache`), so its own next
/// request sees the change. Other isolates see it within the cache TTL.
/// An act elsewhere that does the same marks its request (`Ctx::revoked`).
/// The token endpoint revokes too: issuing evicts the oldest live token sets
/// (`MAX_LIVE_GRANTS`, `MAX_LIVE_APP_TOKENS`) and a refresh token's reuse
/// ends its family.
pub(super) const REVOKING_ROUTES: &[&str] = &[
    "token",
    "revoke",
    // RFC 7592 DELETE revokes every grant of the client; an update may
    // narrow its declared scopes, which bound every token it holds.
    "register_update",
    "register_delete",
    // The back office: provisioning narrows roles, removes members, deletes users.
    "admin",
    "apps_update",
    "apps_delete",
    "apps_deactivate",
    "my_authorization_revoke",
    "org_installation_revoke",
    "page_connected_revoke",
    "page_app_update",
    "page_app_delete",
    "page_install_revoke",
];

/// Path patterns; `{}` captures one segment.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/", "home"),
    ("GET", "/health", "health"),
    ("GET", "/ready", "ready"),
    ("GET", "/.well-known/oauth-authorization-server", "metadata"),
    ("GET", "/.well-known/jwks.json", "jwks"),
    ("GET", "/.well-known/openid-configuration", "openid_configuration"),
    // `/.well-known/oauth-protected-resource[/…]`: routed in `route` (any depth).
    ("GET", "/oauth/authorize", "authorize"),
    ("POST", "/oauth/authorize", "consent"),
    ("POST", "/oauth/token", "token"),
    ("POST", "/oauth/par", "par"),
    ("POST", "/oauth/device_authorization", "device_authorization"),
    ("GET", "/device", "device_page"),
    ("POST", "/device", "device_decide"),
    ("POST", "/oauth/revoke", "revoke"),
    ("POST", "/oauth/introspect", "introspect"),
    ("GET", "/oauth/userinfo", "userinfo"),
    ("POST", "/oauth/userinfo", "userinfo"),
    ("POST", "/oauth/register", "register"),
    ("GET", "/oauth/register/{}", "register_read"),
    ("PUT", "/oauth/register/{}", "register_update"),
    ("DELETE", "/oauth/register/{}", "register_delete"),
    ("GET", "/oauth/login/verify", "login_verify"),
    ("GET", "/signin", "signin_page"),
    ("POST", "/signin", "signin"),
    ("POST", "/signout", "signout"),
    ("GET", "/oauth/logout", "logout"),
    ("POST", "/oauth/logout", "logout"),
    ("GET", "/api/v1/me", "me"),
    ("GET", "/api/v1/posts", "posts_list"),
    ("POST", "/api/v1/posts", "posts_create"),
    ("GET", "/api/v1/apps", "apps_list"),
    ("POST", "/api/v1/apps", "apps_create"),
    ("GET", "/api/v1/apps/@me", "apps_current"),
    ("GET", "/api/v1/apps/{}", "apps_get"),
    ("PATCH", "/api/v1/apps/{}", "apps_update"),
    ("DELETE", "/api/v1/apps/{}", "apps_delete"),
    ("POST", "/api/v1/apps/{}/secret", "apps_rotate_secret"),
    ("POST", "/api/v1/apps/{}/webhook-secret", "apps_rotate_webhook_secret"),
    ("POST", "/api/v1/apps/{}/deactivate", "apps_deactivate"),
    ("POST", "/api/v1/apps/{}/reactivate", "apps_reactivate"),
    ("GET", "/api/v1/apps/{}/installations", "apps_installations"),
    ("GET", "/api/v1/apps/{}/deliveries", "apps_deliveries"),
    ("GET", "/api/v1/me/authorizations", "my_authorizations"),
    ("DELETE", "/api/v1/me/authorizations/{}", "my_authorization_revoke"),
    ("GET", "/api/v1/orgs/{}/installations", "org_installations"),
    ("DELETE", "/api/v1/orgs/{}/installations/{}", "org_installation_revoke"),
    ("GET", "/api/v1/orgs/{}/audit", "org_audit"),
    ("GET", "/api/v1/webhooks/subscription", "webhook_sub_get"),
    ("PUT", "/api/v1/webhooks/subscription", "webhook_sub_put"),
    ("DELETE", "/api/v1/webhooks/subscription", "webhook_sub_delete"),
    ("GET", "/settings/apps", "page_connected"),
    ("POST", "/settings/apps/revoke", "page_connected_revoke"),
    ("GET", "/settings/developer", "page_developer"),
    ("POST", "/settings/developer/apps", "page_app_create"),
    ("GET", "/settings/developer/apps/{}", "page_app_edit"),
    ("POST", "/settings/developer/apps/{}", "page_app_update"),
    ("POST", "/settings/developer/apps/{}/secret", "page_app_rotate"),
    ("POST", "/settings/developer/apps/{}/delete", "page_app_delete"),
    (
        "POST",
        "/settings/developer/installations/revoke",
        "page_install_revoke",
    ),
];

/// The discovery documents: CORS on every answer and preflight, and HEAD
/// answered as GET without the body (RFC 9110 §9.3.2).
pub(super) const DISCOVERY: &[&str] = &["metadata", "openid_configuration", "jwks", "resource_metadata"];

pub fn route(method: &str, path: &str) -> (&'static str, Vec<String>) {
    // The back office routes below its prefix itself (`admin`).
    if path.starts_with(crate::admin::PREFIX) {
        return ("admin", Vec::new());
    }
    if method == "HEAD" {
        let (name, params) = route("GET", path);
        if DISCOVERY.contains(&name) {
            return (name, params);
        }
    }
    if method == "GET" && endpoints::resource_metadata::is_metadata_path(path) {
        return ("resource_metadata", Vec::new());
    }
    let segs: Vec<&str> = path.split('/').collect();
    for (m, pattern, name) in ROUTES {
        if *m != method {
            continue;
        }
        let pat: Vec<&str> = pattern.split('/').collect();
        if pat.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let ok = pat.iter().zip(&segs).all(|(p, s)| {
            if *p == "{}" {
                // Percent-decoded: a metadata document client's id is its URL
                // (`crate::cimd`), sent as one encoded segment.
                match percent_encoding::percent_decode_str(s).decode_utf8() {
                    Ok(d) if !d.is_empty() && d.len() <= crate::cimd::MAX_URL_LEN => {
                        params.push(d.into_owned());
                        true
                    }
                    _ => false,
                }
            } else {
                p == s
            }
        });
        if ok {
            return (name, params);
        }
    }
    if method == "OPTIONS" {
        return ("preflight", Vec::new());
    }
    ("not_found", Vec::new())
}

/// Routes with CORS: the discovery documents (`DISCOVERY`), token, revoke, introspect, userinfo,
/// dynamic registration (browser-based MCP clients register themselves) and
/// everything under `/api/` (its 404s too). Never the authorize, consent,
/// sign-in or settings pages (RFC 9700 §4.16), nor the `/admin/v1/` back
/// office (server to server).
pub(super) fn cors_route(route: &str, path: &str) -> bool {
    DISCOVERY.contains(&route)
        || matches!(
            route,
            "token"
                | "par"
                | "device_authorization"
                | "revoke"
                | "introspect"
                | "userinfo"
                | "register"
                | "register_read"
                | "register_update"
                | "register_delete"
        )
        || path.starts_with("/api/")
        || endpoints::resource_metadata::is_metadata_path(path)
}

/// Routes the back-office worker serves (`--features back-office`): the
/// platform's `/admin/v1/`, the management API (apps, installations,
/// authorizations, audit, webhook subscriptions) and the settings pages.
/// The public worker forwards them over its `BACK_OFFICE` service binding
/// (`worker::forward`); everything else is the public worker's.
pub fn back_office(route: &str) -> bool {
    route == "admin"
        || route.starts_with("apps_")
        || route.starts_with("my_")
        || route.starts_with("org_")
        || route.starts_with("webhook_sub_")
        || route.starts_with("page_")
}

/// Routes any worker answers itself.
pub(super) fn both(route: &str) -> bool {
    matches!(route, "health" | "ready" | "preflight" | "not_found")
}

pub(super) fn route_of(method: &str, path: &str) -> &'static str {
    route(method, path).0
}
