//! The server: routes a plain [`Request`] to the endpoint module that owns it.
//! The worker adapter and the native tests both call [`Server::handle`].

use crate::config::Config;
use crate::endpoints;
use crate::http::{Request, Response, MAX_BODY};
use crate::store::{Driver, Store};

pub struct Server<D: Driver> {
    pub store: Store<D>,
    pub config: Config,
}

/// Per-request facts the endpoints need: the clock and the issuer identifier.
pub struct Ctx<'a, D: Driver> {
    pub store: &'a Store<D>,
    pub config: &'a Config,
    pub now: i64,
    pub issuer: String,
}

/// What one request did, for the structured log line (never a secret).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub route: &'static str,
}

impl<D: Driver> Server<D> {
    pub fn new(store: Store<D>, config: Config) -> Self {
        Self { store, config }
    }

    pub async fn handle(&self, req: &Request, now: i64) -> (Response, Outcome) {
        let ctx = Ctx {
            store: &self.store,
            config: &self.config,
            now,
            issuer: self.config.issuer.clone().unwrap_or_else(|| req.origin()),
        };
        let route = route_name(&req.method, &req.path);
        let resp = if req.body.len() > MAX_BODY {
            crate::error::ApiError::new(413, "invalid_request", "request body too large")
                .into_response()
        } else {
            dispatch(&ctx, req, route).await
        };
        (resp, Outcome { route })
    }
}

fn route_name(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("GET", "/") => "home",
        ("GET", "/health") => "health",
        ("GET", "/.well-known/oauth-authorization-server") => "metadata",
        ("GET", "/oauth/authorize") => "authorize",
        ("POST", "/oauth/authorize") => "consent",
        ("POST", "/oauth/token") => "token",
        ("POST", "/oauth/revoke") => "revoke",
        ("POST", "/oauth/introspect") => "introspect",
        ("GET", "/signin") => "signin_page",
        ("POST", "/signin") => "signin",
        ("POST", "/signout") => "signout",
        ("GET", "/api/v1/me") => "me",
        ("GET", "/api/v1/posts") => "posts_list",
        ("POST", "/api/v1/posts") => "posts_create",
        ("GET", "/api/v1/apps") => "apps_list",
        ("POST", "/api/v1/apps") => "apps_create",
        ("GET", p) if p.starts_with("/api/v1/apps/") => "apps_get",
        ("OPTIONS", _) => "preflight",
        _ => "not_found",
    }
}

/// Routes with CORS: metadata, token, revoke, introspect and the API. Never
/// the authorize, consent or sign-in pages (RFC 9700 §4.16).
fn cors_route(route: &str) -> bool {
    matches!(
        route,
        "metadata"
            | "token"
            | "revoke"
            | "introspect"
            | "me"
            | "posts_list"
            | "posts_create"
            | "apps_list"
            | "apps_create"
            | "apps_get"
    )
}

async fn dispatch<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &'static str) -> Response {
    let resp = match route {
        "home" => endpoints::pages::home(ctx, req).await,
        "health" => Response::json(200, &serde_json::json!({"ok": true})),
        "metadata" => endpoints::metadata::handle(ctx).await,
        "authorize" => endpoints::authorize::show(ctx, req).await,
        "consent" => endpoints::authorize::decide(ctx, req).await,
        "token" => endpoints::token::handle(ctx, req).await,
        "revoke" => endpoints::revoke::handle(ctx, req).await,
        "introspect" => endpoints::introspect::handle(ctx, req).await,
        "signin_page" => endpoints::signin::page(ctx, req).await,
        "signin" => endpoints::signin::submit(ctx, req).await,
        "signout" => endpoints::signin::signout(ctx, req).await,
        "me" | "posts_list" | "posts_create" => endpoints::resource::handle(ctx, req, route).await,
        "apps_list" | "apps_create" | "apps_get" => endpoints::apps::handle(ctx, req, route).await,
        "preflight" => {
            let path_route = route_name("POST", &req.path);
            let get_route = route_name("GET", &req.path);
            if cors_route(path_route) || cors_route(get_route) {
                return Response::new(204).cors();
            }
            Response::new(404)
        }
        _ => crate::error::ApiError::not_found(format!("no route for {} {}", req.method, req.path))
            .into_response(),
    };
    if cors_route(route) {
        resp.cors()
    } else {
        resp
    }
}
