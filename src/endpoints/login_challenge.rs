//! Delegated sign-in, the browser's half: off to the platform's login page with a login challenge, and back with the verifier.
//!
//! After Ory Hydra's login flow: `/oauth/authorize` without a session sends
//! the browser to `LOGIN_URL?login_challenge=…`; the platform signs the user
//! in its own way and accepts the challenge server-to-server
//! (`crate::admin::login`), which answers a `redirect_to` pointing here with a
//! `login_verifier`. Here the verifier is spent (once, whatever happens next),
//! checked against the browser it was issued to and the authorization request
//! it was issued for, and turned into our own session; the browser then goes
//! on to our consent screen.
//!
//! The browser binding: when the browser is sent away it gets a random
//! `eo_login` cookie (HttpOnly, SameSite=Lax: it comes back on the top-level
//! redirect from the platform's page), and the challenge keeps the cookie's
//! hash. A verifier presented by any other browser is refused, so a challenge
//! accepted for one person cannot sign another person's browser in (login
//! CSRF), and a leaked `redirect_to` is useless elsewhere. The cookie is the
//! browser's, not the challenge's: it is sent to every path that opens a
//! challenge (`Path=/`), which reuses it, so a second authorization (another
//! tab, or any site sending the browser to an authorize URL) keeps the first
//! one's binding instead of replacing it.
//!
//! Anonymous writes: each challenge is a row written for a browser nobody has
//! authenticated, so each sender (an IPv6 sender by its /64) has a budget of
//! `LOGIN_CHALLENGES_PER_SOURCE_PER_MINUTE`; past it, 429 and no row.

use crate::context::Ctx;
use crate::crypto;
use crate::endpoints::authorize::{self, AuthzRequest, Failure};
use crate::http::{Params, Request, Response};
use crate::login_challenge::{shaped, CHALLENGE_PREFIX, CHALLENGE_TTL, VERIFIER_PREFIX};
use crate::redirect_uri;
use crate::scope;
use crate::session;
use crate::store::login_challenges::NewChallenge;
use crate::store::Driver;
use crate::templates;

/// The browser-binding cookie, one per browser (see the module comment).
pub const BROWSER_COOKIE: &str = "eo_login";
/// Its path: every page that opens a challenge (authorize, the sign-in link
/// of our pages) must see it to reuse it, and the landing to check it.
const BROWSER_COOKIE_PATH: &str = "/";
const BROWSER_PREFIX: &str = "lb_";
/// The window of a sender's challenge budget, in seconds.
const BUDGET_WINDOW: i64 = 60;

/// The validated authorization request as a canonical query string: the
/// challenge stores it, the landing recomputes it, and they must be equal.
pub fn request_query(r: &AuthzRequest) -> String {
    // A pushed request stays on the server: its `request_uri` stands for it
    // (the platform sees `prompt` and `max_age` at its login page anyway).
    if let Some(uri) = &r.pushed {
        let fresh = authorize::freshness(r);
        let mut pairs: Vec<(&str, &str)> = vec![("client_id", &r.app.id), ("request_uri", uri)];
        pairs.extend(fresh.iter().map(|(k, v)| (*k, v.as_str())));
        return Params::encode(&pairs);
    }
    let scopes = scope::join(&r.scopes);
    let mut pairs: Vec<(&str, &str)> = vec![("client_id", &r.app.id), ("response_type", "code"), ("scope", &scopes)];
    if !r.redirect_param.is_empty() {
        pairs.push(("redirect_uri", &r.redirect_param));
    }
    if let Some(s) = &r.state {
        pairs.push(("state", s));
    }
    if let Some(n) = &r.nonce {
        pairs.push(("nonce", n));
    }
    if let Some(c) = &r.challenge {
        pairs.push(("code_challenge", c));
        pairs.push(("code_challenge_method", "S256"));
    }
    // `prompt` and `max_age` also set how fresh the platform's sign-in must
    // be (`crate::oidc::reauth::auth_time_floor` reads them back at accept).
    let fresh = authorize::freshness(r);
    pairs.extend(fresh.iter().map(|(k, v)| (*k, v.as_str())));
    pairs.extend(r.resources.iter().map(|res| ("resource", res.as_str())));
    Params::encode(&pairs)
}

fn page(status: u16, title: &str, message: &str) -> Response {
    Response::html(status, templates::error_page(title, message)).no_store()
}

/// No session in delegated mode, or one that must sign in again
/// (`prompt=login`, `max_age`, an `id_token_hint` naming someone else):
/// open a challenge for this authorization request and send the browser to
/// the platform's login page (303 after the consent POST, 302 from a GET).
/// `LOGIN_URL` gets `prompt=login` when the sign-in must be fresh (`force`
/// or the request's own `prompt=login`), and the request's `max_age`,
/// `login_hint`, `ui_locales` and `acr_values`, as query parameters.
pub async fn start<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, r: &AuthzRequest, post: bool, force: bool) -> Response {
    ctx.note(&r.app.id, None);
    let extra = authorize::forwarded(&r.oidc, force);
    open(ctx, req, &r.app.id, &request_query(r), post, &extra).await
}

/// Delegated sign-in for one of our own pages (the settings pages' sign-in
/// link): the challenge is bound to that same-origin path instead of an
/// authorization request, and the landing returns the browser there.
pub async fn start_for_page<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, return_to: &str) -> Response {
    open(ctx, req, "", &page_query(return_to), false, &[]).await
}

/// The request a page challenge is bound to.
fn page_query(return_to: &str) -> String {
    Params::encode(&[("return_to", return_to)])
}

async fn open<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    client_id: &str,
    request: &str,
    post: bool,
    extra: &[(&'static str, String)],
) -> Response {
    let Some(login_url) = ctx.config.login_url.as_deref() else {
        return page(500, "Server error", "LOGIN_URL is not configured.");
    };
    // One binding per browser, shared by its tabs: a second authorization in
    // another tab must not orphan the first one's challenge.
    let nonce =
        session::own_cookie(req, BROWSER_COOKIE, BROWSER_PREFIX).unwrap_or_else(|| crypto::new_token(BROWSER_PREFIX));
    let challenge = crypto::new_token(CHALLENGE_PREFIX);
    let key = format!("login-challenge:{}", crate::client_auth::source(&req.ip));
    let new = NewChallenge {
        challenge_hash: &crypto::sha256_hex(&challenge),
        browser_hash: &crypto::sha256_hex(&nonce),
        client_id,
        request,
        now: ctx.now,
        expires_at: ctx.now + CHALLENGE_TTL,
        budget: (&key, ctx.config.login_challenges_per_source, BUDGET_WINDOW),
    };
    match ctx.store.open_login_challenge(&new).await {
        Ok(true) => {}
        Ok(false) => {
            return page(
                429,
                "Too many sign-ins",
                "Too many sign-ins were started from your network. Wait a minute and try again.",
            )
            .header("Retry-After", &BUDGET_WINDOW.to_string())
        }
        Err(e) => return crate::templates::unavailable_page(e),
    }
    let mut params: Vec<(&str, &str)> = vec![("login_challenge", &challenge)];
    params.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    let to = redirect_uri::with_params(login_url, &params);
    let resp = if post {
        Response::see_other(&to)
    } else {
        Response::found(&to)
    };
    resp.header(
        "Set-Cookie",
        &session::cookie(req, BROWSER_COOKIE, &nonce, BROWSER_COOKIE_PATH, CHALLENGE_TTL),
    )
    .no_store()
}

/// GET /oauth/login/verify?<the authorization request>&login_verifier=…
pub async fn land<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let query = req.query_params();
    if query.repeated(&["login_verifier"]).is_some() {
        return page(
            400,
            "Invalid request",
            "The login_verifier parameter appears more than once.",
        );
    }
    let Some(verifier) = shaped(query.get("login_verifier"), VERIFIER_PREFIX) else {
        return page(400, "Invalid request", "This sign-in link has no valid login_verifier.");
    };
    let params = Params(query.0.iter().filter(|(k, _)| k != "login_verifier").cloned().collect());
    // A page challenge carries only the page to return to; anything else is
    // an authorization request, validated as the authorize endpoint would.
    let (r, request) = match params.get("return_to") {
        Some(to) if params.0.len() == 1 => (
            None,
            page_query(&crate::endpoints::signin::safe_return_to(req, Some(to))),
        ),
        _ => match authorize::validate(ctx, &params, None).await {
            Ok(r) => {
                let q = request_query(&r);
                (Some(r), q)
            }
            Err(Failure::Page { status, title, message }) => return page(status, title, &message),
            Err(Failure::Redirect { .. }) => {
                return page(
                    400,
                    "Invalid request",
                    "This sign-in link does not carry a valid authorization request. Start again from the app.",
                )
            }
        },
    };
    let browser_hash = req
        .cookie(BROWSER_COOKIE)
        .map(|c| crypto::sha256_hex(&c))
        .unwrap_or_default();
    let token = crypto::new_token(&ctx.config.prefixes.session);
    let session_hash = crypto::sha256_hex(&token);
    let replaced = session::presented(ctx, req).map(|(_, hash)| hash);
    let landed = ctx
        .store
        .land_login_verifier(
            &crypto::sha256_hex(verifier),
            &session_hash,
            &browser_hash,
            &request,
            ctx.now,
            ctx.now + ctx.config.session_ttl,
            replaced.as_deref(),
        )
        .await;
    let (landing, started) = match landed {
        Ok(Some(v)) => v,
        Ok(None) => {
            return page(
                400,
                "Sign-in link not valid",
                "This sign-in link has expired or was already used. Start again from the app.",
            )
        }
        Err(e) => return crate::templates::unavailable_page(e),
    };
    if let Some(r) = &r {
        ctx.note(&r.app.id, None);
    }
    // The same checks as the session insert's WHERE; these pick the message.
    if !crypto::ct_eq(&landing.browser_hash, &browser_hash) {
        return page(
            403,
            "Request refused",
            "This sign-in was started in another browser. Start again from the app.",
        );
    }
    if landing.request != request {
        return page(
            400,
            "Request refused",
            "This sign-in belongs to a different authorization request. Start again from the app.",
        );
    }
    if let (Some(_), None) = (&landing.error, &r) {
        return page(
            403,
            "Not signed in",
            "The platform did not sign you in. Start again from its page.",
        );
    }
    if let (Some(error), Some(r)) = (&landing.error, &r) {
        let description = landing
            .error_description
            .as_deref()
            .unwrap_or("the platform did not sign the user in");
        let mut params = vec![("error", error.as_str()), ("error_description", description)];
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        params.push(("iss", &ctx.issuer));
        return Response::found(&redirect_uri::with_params(&r.redirect_to, &params)).no_store();
    }
    if !started {
        return page(
            400,
            "Account not found",
            "The account the platform signed in no longer exists here. Start again from the app.",
        );
    }
    let next = match &r {
        // With the proof of this sign-in, so an authorization that asked
        // for a fresh one (`crate::oidc::reauth`) goes on instead of asking again.
        Some(_) => {
            let back = crate::oidc::reauth::awaiting_proof(&format!("/oauth/authorize?{request}"));
            crate::oidc::reauth::resume(&back, &token, ctx.now)
        }
        None => crate::endpoints::signin::safe_return_to(req, params.get("return_to")),
    };
    Response::found(&next)
        .header("Set-Cookie", &session::set_cookie(req, &token, ctx.config.session_ttl))
        .no_store()
}
