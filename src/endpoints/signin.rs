//! Sign-in and sign-out. The session cookie is random; only its hash is kept.
//!
//! Login CSRF: a sign-in POST must come from our own origin (Origin and
//! Sec-Fetch-Site, where the browser sends them) and carry the pre-session
//! token of the form (double submit: a random HttpOnly cookie set with the
//! form, and a value derived from it in a hidden field), so another site
//! cannot sign a victim in as the attacker.
//!
//! Failed sign-ins are rate limited so that nobody else can lock the rightful
//! user out of a browser they have signed in on (OWASP "device cookies"):
//! - a browser with a device cookie issued on a sign-in to this account
//!   counts against that device only;
//! - any other browser counts against its address (5x the limit) and against
//!   the account, which bounds guessing spread over many addresses.
//!
//! The slots are taken before the password is checked and given back on
//! success, so parallel attempts cannot overrun the limit.

use crate::context::Ctx;
use crate::crypto;
use crate::http::{Request, Response};
use crate::session::{self, DEVICE_COOKIE, DEVICE_PREFIX, SIGNIN_COOKIE, SIGNIN_PREFIX};
use crate::store::{Driver, SignedIn, Slot};
use crate::templates;

/// How long a loaded sign-in form stays usable.
const FORM_TTL: i64 = 24 * 3600;

/// Longest `return_to` (bytes): our own paths are short, and in delegated
/// mode the value is kept in a row an anonymous request writes.
pub const MAX_RETURN_TO: usize = 2048;

/// A same-origin path that the URL parser, resolving it against the request,
/// leaves exactly as it is; anything else is "/". Browsers drop TAB, CR and
/// LF from URLs and read `\` as `/`, so `/\t/evil` or `/\evil` would leave the
/// site; control characters would also split a header.
pub fn safe_return_to(req: &Request, raw: Option<&str>) -> String {
    let home = || "/".to_string();
    let Some(raw) = raw else { return home() };
    if raw.len() > MAX_RETURN_TO || !raw.starts_with('/') || raw.chars().any(char::is_control) {
        return home();
    }
    let Ok(base) = url::Url::parse(&req.url) else {
        return home();
    };
    match base.join(raw) {
        Ok(u) if u.origin() == base.origin() && &u[url::Position::BeforePath..] == raw => raw.to_string(),
        _ => home(),
    }
}

/// The browser's pre-session token, or a new one (then also its cookie).
fn form_token(req: &Request) -> (String, Option<String>) {
    match session::own_cookie(req, SIGNIN_COOKIE, SIGNIN_PREFIX) {
        Some(t) => (t, None),
        None => {
            let t = crypto::new_token(SIGNIN_PREFIX);
            let c = session::cookie(req, SIGNIN_COOKIE, &t, "/signin", FORM_TTL);
            (t, Some(c))
        }
    }
}

/// The sign-in form, with its pre-session token (and cookie, if new).
fn form_page(req: &Request, status: u16, return_to: &str, error: Option<&str>, email: &str) -> Response {
    let (token, set) = form_token(req);
    // `same-origin`, not the pages' `no-referrer`: under `no-referrer` a
    // browser sends `Origin: null` with the form, which the origin check
    // above would refuse where Sec-Fetch-Site is not sent (older Safari).
    let page = Response::html(
        status,
        templates::signin(return_to, error, email, &crypto::csrf_token(&token)),
    )
    .set_header("Referrer-Policy", "same-origin");
    match set {
        Some(c) => page.header("Set-Cookie", &c),
        None => page,
    }
}

/// Delegated mode: users sign in on the platform's own page, never here.
fn delegated<D: Driver>(ctx: &Ctx<'_, D>) -> Option<Response> {
    (ctx.config.signin_mode == crate::config::SigninMode::Delegated).then(|| {
        Response::html(
            404,
            templates::error_page(
                "Not available",
                "Sign-in happens on the platform's own page. Start again from the app.",
            ),
        )
    })
}

pub async fn page<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let q = req.query_params();
    if q.get("return_to").is_some_and(|t| t.len() > MAX_RETURN_TO) {
        return Response::html(
            400,
            templates::error_page(
                "Bad request",
                &format!("return_to is longer than {MAX_RETURN_TO} characters."),
            ),
        );
    }
    // Delegated: the pages' sign-in links go to the platform's login page,
    // with a challenge bound to the page the user wanted (the settings pages).
    if ctx.config.signin_mode == crate::config::SigninMode::Delegated {
        let to = safe_return_to(req, q.get("return_to"));
        return crate::endpoints::login_challenge::start_for_page(ctx, req, &to).await;
    }
    // OIDC `login_hint` (Core §3.1.2.1), passed on by the authorization
    // endpoint: prefills the email field (escaped by the template).
    let hint = q
        .get("login_hint")
        .filter(|h| h.len() <= 320 && !h.chars().any(char::is_control))
        .unwrap_or("");
    form_page(req, 200, &safe_return_to(req, q.get("return_to")), None, hint)
}

/// A request another site made the browser send. Sec-Fetch-Site, which page
/// script cannot set, decides where a browser sends it (Origin may then be
/// "null" for a page with a strict referrer policy); otherwise Origin must be
/// ours. A client that sends neither still needs the pre-session token.
fn cross_site<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return !matches!(site.trim(), "same-origin" | "none");
    }
    match req.header("origin").map(str::trim) {
        None => false,
        Some(o) => {
            let issuer_origin = url::Url::parse(&ctx.issuer)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            o != req.origin() && o != issuer_origin
        }
    }
}

/// The form's token matches the browser's pre-session cookie.
fn form_token_ok(req: &Request, presented: Option<&str>) -> bool {
    match (session::own_cookie(req, SIGNIN_COOKIE, SIGNIN_PREFIX), presented) {
        (Some(cookie), Some(p)) => crypto::ct_eq(p, &crypto::csrf_token(&cookie)),
        _ => false,
    }
}

pub async fn submit<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    if let Some(r) = delegated(ctx) {
        return r;
    }
    if cross_site(ctx, req) {
        return Response::html(
            403,
            templates::error_page("Forbidden", "Sign-in forms are accepted only from this site."),
        );
    }
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Response::html(400, templates::error_page("Bad request", &e)),
    };
    let return_to = safe_return_to(req, form.get("return_to"));
    let email = form.get("email").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    if !form_token_ok(req, form.get("csrf")) {
        return form_page(
            req,
            403,
            &return_to,
            Some("The sign-in form expired. Try again."),
            email,
        );
    }
    let page = |status, msg: &str| form_page(req, status, &return_to, Some(msg), email);
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return page(400, "Enter your email and password.");
    }
    let email_key = email.to_lowercase();
    let device = session::own_cookie(req, DEVICE_COOKIE, DEVICE_PREFIX);
    let device_hash = device.as_deref().map(crypto::sha256_hex).unwrap_or_default();
    let account = match ctx.store.signin_account(email, &device_hash, ctx.now).await {
        Ok(a) => a,
        Err(e) => return crate::templates::unavailable_page(e),
    };
    let known_device = account.as_ref().is_some_and(|a| a.known_device != 0);
    let slots = slots(ctx, req, &email_key, known_device.then_some(device_hash.as_str()));
    match ctx.store.take_slots(&slots, ctx.now, ctx.config.rate_window).await {
        Ok(true) => {}
        Ok(false) => {
            return page(429, "Too many failed sign-ins. Wait a few minutes and try again.")
                .header("Retry-After", &ctx.config.rate_window.to_string())
        }
        Err(e) => return crate::templates::unavailable_page(e),
    }
    let ok = match account
        .as_ref()
        .and_then(|a| crypto::parse_password_hash(&a.password_hash))
    {
        Some(h) => crypto::password_matches(
            &ctx.kdf.pbkdf2_sha256(password.as_bytes(), &h.salt, h.iterations).await,
            &h,
        ),
        None => {
            // Same work as a real check, so timing does not reveal accounts.
            let n = crypto::DEFAULT_PASSWORD_ITERATIONS;
            ctx.kdf.pbkdf2_sha256(password.as_bytes(), crypto::DUMMY_SALT, n).await;
            false
        }
    };
    match account.filter(|_| ok) {
        // The slots stay taken: they are the failure's record.
        None => page(401, "That email and password do not match an account."),
        Some(a) => {
            // Only a device cookie already issued to *this* account is kept
            // (its expiry renewed); any other value is replaced, never
            // adopted. Adopting one issued to another account would let
            // whoever holds that value (a cookie planted by a sibling
            // subdomain or a plain-http answer) count as this account's
            // device: guess outside the account counter, and fill the
            // device counter the rightful browser depends on.
            let device_value = match device {
                Some(d) if a.known_device != 0 => d,
                _ => crypto::new_token(DEVICE_PREFIX),
            };
            let remember = ctx.config.signin_device_ttl > 0;
            let token = crypto::new_token(&ctx.config.prefixes.session);
            let session_hash = crypto::sha256_hex(&token);
            let device_hash = if remember {
                crypto::sha256_hex(&device_value)
            } else {
                String::new()
            };
            let replaced = session::presented(ctx, req).map(|(_, hash)| hash);
            let signed_in = SignedIn {
                session_hash: &session_hash,
                user_id: &a.id,
                session_expires_at: ctx.now + ctx.config.session_ttl,
                device_hash: &device_hash,
                device_expires_at: ctx.now + ctx.config.signin_device_ttl,
                now: ctx.now,
                slots: &slots,
                replaces: replaced.as_deref(),
            };
            if let Err(e) = ctx.store.signed_in(&signed_in).await {
                return crate::templates::unavailable_page(e);
            }
            // Back to the authorization this sign-in was for, with the proof
            // that it happened (`crate::oidc::reauth`).
            let next = crate::oidc::reauth::resume(&return_to, &token, ctx.now);
            let resp = Response::see_other(&next)
                .header("Set-Cookie", &session::set_cookie(req, &token, ctx.config.session_ttl));
            if remember {
                resp.header(
                    "Set-Cookie",
                    &session::cookie(
                        req,
                        DEVICE_COOKIE,
                        &device_value,
                        "/signin",
                        ctx.config.signin_device_ttl,
                    ),
                )
            } else {
                resp
            }
        }
    }
}

/// The failure counters a sign-in attempt must find room in (none when the
/// limit is off).
fn slots<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, email_key: &str, known_device: Option<&str>) -> Vec<Slot> {
    let limit = ctx.config.signin_max_failures;
    if limit <= 0 {
        return Vec::new();
    }
    if let Some(hash) = known_device {
        return vec![Slot {
            key: format!("signin-device:{hash}"),
            limit,
        }];
    }
    let mut slots = vec![Slot {
        key: format!("signin:{email_key}"),
        limit,
    }];
    // The sender as client authentication keys it: an IPv6 sender by its
    // /64, which one host can draw fresh addresses from.
    let source = crate::client_auth::source(&req.ip);
    if !source.is_empty() {
        slots.push(Slot {
            key: format!("signin-ip:{source}"),
            limit: limit.saturating_mul(5),
        });
    }
    slots
}

pub async fn signout<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = req.form().unwrap_or_default();
    // A storage failure is not a sign-out: the session would stay valid
    // while the browser is told it ended (`Server::handle` answers 503).
    let current = match session::current(ctx, req).await {
        Ok(s) => s,
        Err(e) => return crate::templates::unavailable_page(e),
    };
    if let Some(s) = current {
        if !session::csrf_ok(&s, form.get("csrf")) {
            return Response::html(
                403,
                templates::error_page("Forbidden", "The form has expired. Go back and try again."),
            );
        }
        // Back-channel logout tokens are queued in the same batch.
        if let Err(e) = crate::oidc::logout::end_session(ctx, &s.token_hash).await {
            return crate::templates::unavailable_page(e);
        }
    }
    Response::see_other("/").header("Set-Cookie", &session::set_cookie(req, "", 0))
}
