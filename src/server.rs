//! The server: routes a plain [`Request`] to the endpoint module that owns it.
//! The worker adapter and the native tests both call [`Server::handle`].
//!
//! Layer: wiring (routing and the runtime; may import anything); see docs/architecture.md.

use std::cell::RefCell;

use crate::bearer::cache;
use crate::config::{BearerMode, Config};
use crate::context::{Ctx, Outcome};
use crate::crypto::{Es256, JwsVerify, Kdf, Rs256, RustKdf};
use crate::endpoints;
use crate::http::{Request, Response, MAX_BODY};
use crate::store::kv::EdgeKv;
use crate::store::{Driver, Store};
use crate::tasks::Task;

mod routes;
pub use routes::{back_office, route};
use routes::{both, cors_route, route_of, DISCOVERY, PAGE_ROUTES, REVOKING_ROUTES};

pub struct Server<D: Driver> {
    pub store: Store<D>,
    pub config: Config,
    /// PBKDF2 for sign-in; the worker swaps in WebCrypto.
    pub kdf: Box<dyn Kdf>,
    /// ES256 for JWT access tokens; the worker swaps in WebCrypto.
    pub es256: Box<dyn Es256>,
    /// RS256 for ID tokens; the worker swaps in WebCrypto.
    pub rs256: Box<dyn Rs256>,
    /// Clients' JWS signatures (DPoP proofs, client assertions); the worker swaps in WebCrypto.
    pub jws: Box<dyn JwsVerify>,
    /// The KV namespace of `BEARER_MODE=edge`.
    pub edge: Option<Box<dyn EdgeKv>>,
    /// Outbound GET of client metadata documents (`crate::cimd`); the worker
    /// swaps in `fetch`, native tests a stub.
    pub fetcher: Box<dyn crate::http::Fetcher>,
    /// The discovery documents as last built; the worker shares one per
    /// isolate (its configuration cannot change), a native `Server` has its own.
    pub docs: std::rc::Rc<Docs>,
}

impl<D: Driver> Server<D> {
    pub fn new(store: Store<D>, config: Config) -> Self {
        Self {
            store,
            config,
            kdf: Box::new(RustKdf),
            #[cfg(not(target_arch = "wasm32"))]
            es256: Box::new(crate::crypto::RustEs256),
            #[cfg(target_arch = "wasm32")]
            es256: Box::new(crate::crypto::NoEs256),
            #[cfg(not(target_arch = "wasm32"))]
            rs256: Box::new(crate::crypto::RustRs256),
            #[cfg(target_arch = "wasm32")]
            rs256: Box::new(crate::crypto::NoRs256),
            #[cfg(not(target_arch = "wasm32"))]
            jws: Box::new(crate::crypto::RustJwsVerify),
            #[cfg(target_arch = "wasm32")]
            jws: Box::new(crate::crypto::NoJwsVerify),
            edge: None,
            fetcher: Box::new(crate::http::NoFetcher),
            docs: Default::default(),
        }
    }

    /// The route a request goes to, before its body is read: the worker
    /// forwards the back office's routes without reading it.
    pub fn route_of(&self, method: &str, path: &str) -> &'static str {
        let profile = crate::compat::select::<D>(&self.config);
        route(method, profile.route_path(&self.config, path)).0
    }

    pub async fn handle(&self, req: &Request, now: i64) -> (Response, Outcome) {
        let profile = crate::compat::select::<D>(&self.config);
        let path = profile.route_path(&self.config, &req.path);
        let (route, params) = route(&req.method, path);
        let ctx = Ctx {
            store: &self.store,
            config: &self.config,
            now,
            issuer: self.config.issuer.clone().unwrap_or_else(|| req.origin()),
            params,
            effects: RefCell::new(Outcome {
                route,
                ..Outcome::default()
            }),
            kdf: self.kdf.as_ref(),
            es256: self.es256.as_ref(),
            rs256: self.rs256.as_ref(),
            jws: self.jws.as_ref(),
            edge: self.edge.as_deref(),
            fetcher: self.fetcher.as_ref(),
            source: crate::client_auth::source(&req.ip),
            profile,
        };
        // Not a request for this deployment's issuer: an unset ISSUER is only
        // derived from the request on loopback (development), never from a Host
        // header in production (it would be served and cached as the issuer).
        if self.config.issuer.is_none() && !req.is_loopback() {
            let mut outcome = ctx.effects.into_inner();
            outcome.error = Some("ISSUER is not set and the request is not on loopback".into());
            return (crate::error::unavailable(false), outcome);
        }
        let _ = self.store.db.take_failure();
        let resp = if req.body.len() > MAX_BODY {
            crate::error::ApiError::new(413, "invalid_request", "request body too large").into_response()
        } else if DISCOVERY.contains(&route) {
            self.docs.answer(&ctx, req, route).await
        } else {
            dispatch(&ctx, req, route).await
        };
        // A storage failure is a 503 whatever the endpoint made of it (an
        // outage must not read as "bad credentials"), and no 5xx carries
        // internal text: that goes to the log line.
        let failure = self.store.db.take_failure();
        let resp = if route != "ready" && (failure.is_some() && resp.status >= 400 || resp.status >= 500) {
            let html = PAGE_ROUTES.contains(&route) || route.starts_with("page_");
            let storage = failure.is_some();
            if html {
                crate::templates::unavailable(storage)
            } else {
                crate::error::unavailable(storage)
            }
        } else {
            resp
        };
        // Every answer of a CORS route carries CORS, errors included (a 404,
        // the 413 above, a 503): without it a browser client sees only
        // "Failed to fetch", not the answer.
        let mut resp = if cors_route(route, &req.path) {
            resp.cors()
        } else {
            resp
        };
        if req.method == "HEAD" {
            resp.body.clear();
        }
        // The worker's entry keeps a copy of a discovery document for as long
        // as this isolate's own copy stays valid (`src/worker/entry.mjs`).
        #[cfg(target_arch = "wasm32")]
        if resp.status == 200 && req.method == "GET" && DISCOVERY.contains(&route) {
            let seconds = if route == "jwks" {
                86_400
            } else {
                crate::catalogue::fresh_for(now)
            };
            if seconds > 0 {
                resp = resp.header(COPY_HEADER, &format!("{route} {seconds}"));
            }
        }
        if let Some(e) = failure {
            ctx.effects.borrow_mut().error = Some(e.0);
        }
        let revoked = ctx.effects.borrow().revoked;
        if revoked || REVOKING_ROUTES.contains(&route) {
            cache::clear();
            // The public worker that forwarded this clears its own cache too.
            #[cfg(not(feature = "public"))]
            {
                resp = resp.header(REVOKED_HEADER, "1");
            }
        }
        // Revocations queue KV evictions (migration 0003); carry them out now.
        if ctx.edge.is_some()
            && self.config.bearer_mode == BearerMode::Edge
            && (revoked || !matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS"))
        {
            ctx.defer(Task::Evict);
        }
        (resp, ctx.effects.into_inner())
    }
}

impl<D: Driver> Server<D> {
    /// The context of work done after a request or by the cron (no route,
    /// no caller): what signs back-channel logout tokens needs its keys and
    /// seams.
    fn task_ctx(&self, now: i64) -> Ctx<'_, D> {
        Ctx {
            store: &self.store,
            config: &self.config,
            now,
            issuer: self.config.issuer.clone().unwrap_or_default(),
            params: Vec::new(),
            effects: RefCell::new(Outcome::default()),
            kdf: self.kdf.as_ref(),
            es256: self.es256.as_ref(),
            rs256: self.rs256.as_ref(),
            jws: self.jws.as_ref(),
            edge: self.edge.as_deref(),
            fetcher: self.fetcher.as_ref(),
            source: String::new(),
            profile: crate::compat::select::<D>(&self.config),
        }
    }
}

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// The task runner's sealer: back-channel logout tokens signed with this
/// server's keys (`oidc::backchannel`).
impl<D: Driver> crate::tasks::Sealer for Server<D> {
    fn seal<'a>(&'a self, d: &'a crate::store::DeliveryRow, now: i64) -> Fut<'a, Result<crate::tasks::Sealed, String>> {
        Box::pin(async move { crate::oidc::backchannel::seal(&self.task_ctx(now), d).await })
    }
}

/// Discovery documents (RFC 8414 metadata, the JWK set, RFC 9728 resource
/// metadata) are fetched by every client on start and change only with the
/// configuration and the scope catalogue: each is built once and then served
/// as a copy. A document that lists scopes is keyed by the catalogue's
/// per-isolate copy (`catalogue::fresh_at`), so it is never staler than that
/// copy (`SCOPES_TTL`, a minute); the JWK set depends on the configuration only.
/// Only 200s are kept, at most `DOCS_MAX` (path, origin and issuer are in
/// the key and come from the request; past the bound the copies are dropped).
#[derive(Default)]
pub struct Docs(RefCell<Vec<(DocKey, Response)>>);

const DOCS_MAX: usize = 16;

#[derive(PartialEq)]
struct DocKey {
    route: &'static str,
    path: String,
    // RFC 9728 documents answer for the resources on the request's origin.
    origin: String,
    issuer: String,
    scopes_at: Option<i64>,
}

impl Docs {
    async fn answer<D: Driver>(&self, ctx: &Ctx<'_, D>, req: &Request, route: &'static str) -> Response {
        let key = |scopes_at| DocKey {
            route,
            path: req.path.clone(),
            // Parsed only where it matters: a URL parse is a visible share of a copy's cost.
            origin: if route == "resource_metadata" {
                req.origin()
            } else {
                String::new()
            },
            issuer: ctx.issuer.clone(),
            scopes_at,
        };
        let stamp = || {
            if route == "jwks" {
                Some(0)
            } else {
                crate::catalogue::fresh_at(ctx.now)
            }
        };
        if let Some(at) = stamp() {
            let k = key(Some(at));
            if let Some((_, resp)) = self.0.borrow().iter().find(|(have, _)| *have == k) {
                return resp.clone();
            }
        }
        let resp = dispatch(ctx, req, route).await;
        if let (200, Some(at)) = (resp.status, stamp()) {
            let mut docs = self.0.borrow_mut();
            let k = key(Some(at));
            docs.retain(|(have, _)| {
                !(have.route == k.route && have.path == k.path && have.origin == k.origin && have.issuer == k.issuer)
            });
            if docs.len() >= DOCS_MAX {
                docs.clear();
            }
            docs.push((k, resp.clone()));
        }
        resp
    }
}

/// A back-office answer after an act that revoked tokens or narrowed what
/// they allow: the public worker that forwarded the request drops it and
/// clears its isolate's bearer cache, as one worker did before the split.
pub const REVOKED_HEADER: &str = "x-edge-oauth-revoked";

/// The mark of a discovery document the public worker's entry may answer
/// from its per-isolate copy for the given seconds (it drops the header).
#[cfg(target_arch = "wasm32")]
const COPY_HEADER: &str = "x-edge-oauth-copy";

async fn dispatch<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &'static str) -> Response {
    let resp = if both(route) {
        common(req, ctx, route).await
    } else if back_office(route) {
        back_office_dispatch(ctx, req, route).await
    } else {
        public_dispatch(ctx, req, route).await
    };
    // API answers are per caller (tokens, audit, authorizations): never cached.
    // CORS is added by `Server::handle`, for every answer of a CORS route.
    if req.path.starts_with("/api/") {
        resp.no_store()
    } else {
        resp
    }
}

async fn common<D: Driver>(req: &Request, ctx: &Ctx<'_, D>, route: &'static str) -> Response {
    match route {
        "health" => Response::json(200, &serde_json::json!({"ok": true})),
        "ready" => ready(ctx).await,
        "preflight" => {
            let any = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .any(|m| cors_route(route_of(m, &req.path), &req.path));
            if any {
                Response::new(204).cors()
            } else {
                Response::new(404)
            }
        }
        _ => crate::error::ApiError::not_found(format!("no route for {} {}", req.method, req.path)).into_response(),
    }
}

#[cfg(feature = "public")]
async fn public_dispatch<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &'static str) -> Response {
    use endpoints::*;
    match route {
        "home" => pages::home(ctx, req).await,
        "metadata" => metadata::handle(ctx).await,
        "resource_metadata" => resource_metadata::handle(ctx, req).await,
        "jwks" => jwks::handle(ctx),
        "openid_configuration" => openid_configuration::handle(ctx).await,
        "authorize" => authorize::show(ctx, req).await,
        "consent" => authorize::decide(ctx, req).await,
        "token" => token::handle(ctx, req).await,
        "revoke" => revoke::handle(ctx, req).await,
        "par" => par::handle(ctx, req).await,
        "device_authorization" => device::handle(ctx, req).await,
        "device_page" => device_page::show(ctx, req).await,
        "device_decide" => device_page::decide(ctx, req).await,
        "introspect" => introspect::handle(ctx, req).await,
        "userinfo" => userinfo::handle(ctx, req).await,
        r if r.starts_with("register") => register::handle(ctx, req, r).await,
        "login_verify" => login_challenge::land(ctx, req).await,
        "signin_page" => signin::page(ctx, req).await,
        "signin" => signin::submit(ctx, req).await,
        "signout" => signin::signout(ctx, req).await,
        "logout" => logout::handle(ctx, req).await,
        "me" | "posts_list" | "posts_create" => resource::handle(ctx, req, route).await,
        _ => crate::error::ApiError::not_found(format!("no route for {} {}", req.method, req.path)).into_response(),
    }
}

#[cfg(not(feature = "public"))]
async fn public_dispatch<D: Driver>(_: &Ctx<'_, D>, req: &Request, _: &'static str) -> Response {
    elsewhere(req, "the public worker")
}

#[cfg(feature = "back-office")]
async fn back_office_dispatch<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &'static str) -> Response {
    use endpoints::*;
    match route {
        "admin" => crate::admin::handle(ctx, req).await,
        "webhook_sub_get" | "webhook_sub_put" | "webhook_sub_delete" => webhooks::handle(ctx, req, route).await,
        r if r.starts_with("apps_") => apps::handle(ctx, req, route).await,
        r if r.starts_with("my_") || r.starts_with("org_") => authorizations::handle(ctx, req, route).await,
        _ => settings::handle(ctx, req, route).await,
    }
}

#[cfg(not(feature = "back-office"))]
async fn back_office_dispatch<D: Driver>(_: &Ctx<'_, D>, req: &Request, _: &'static str) -> Response {
    elsewhere(req, "the back-office worker")
}

/// A route of the other worker reached this one directly (its own hostname,
/// or the public worker without its `BACK_OFFICE` binding).
#[cfg(not(all(feature = "public", feature = "back-office")))]
pub fn elsewhere(req: &Request, worker: &str) -> Response {
    crate::error::ApiError::not_found(format!("{} {} is served by {worker}", req.method, req.path)).into_response()
}

/// Readiness for load balancers and monitors: the database answers and has
/// the schema. `/health` stays a liveness check without I/O.
async fn ready<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    match ctx.store.ready().await {
        Ok(()) => Response::json(200, &serde_json::json!({"ok": true, "database": "ok"})).no_store(),
        Err(_) => Response::json(503, &serde_json::json!({"ok": false, "database": "unavailable"}))
            .no_store()
            .header("Retry-After", &crate::error::RETRY_AFTER_SECONDS.to_string()),
    }
}
