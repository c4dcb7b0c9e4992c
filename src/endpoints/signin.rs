//! Sign-in and sign-out. The session cookie is random; only its hash is kept.
//! Failed sign-ins are rate limited per account and per client address.

use crate::context::Ctx;
use crate::crypto;
use crate::error::StoreError;
use crate::http::{Request, Response};
use crate::session;
use crate::store::Driver;
use crate::templates;

/// Only same-site paths, so sign-in cannot be turned into an open redirect.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && p.len() <= 4096 => p.to_string(),
        _ => "/".to_string(),
    }
}

pub async fn page<D: Driver>(_ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let q = req.query_params();
    Response::html(200, templates::signin(&safe_return_to(q.get("return_to")), None, ""))
}

pub async fn submit<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Response::html(400, templates::error_page("Bad request", &e)),
    };
    let return_to = safe_return_to(form.get("return_to"));
    let email = form.get("email").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let page = |status, msg: &str| Response::html(status, templates::signin(&return_to, Some(msg), email));
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return page(400, "Enter your email and password.");
    }
    match check(ctx, req, email, password).await {
        Ok(Ok(user_id)) => start_session(ctx, req, &user_id, &return_to).await,
        Ok(Err(Refusal::Mismatch)) => page(401, "That email and password do not match an account."),
        Ok(Err(Refusal::Limited)) => page(429, "Too many failed sign-ins. Wait a few minutes and try again.")
            .header("Retry-After", &ctx.config.rate_window.to_string()),
        Err(e) => Response::html(500, templates::error_page("Server error", &e.0)),
    }
}

enum Refusal {
    Mismatch,
    Limited,
}

/// Verify a password under the rate limit: per account, and five times looser
/// per client address, so passwords cannot be guessed at line speed.
async fn check<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    email: &str,
    password: &str,
) -> Result<Result<String, Refusal>, StoreError> {
    let limit = ctx.config.signin_max_failures;
    let account = format!("signin:{}", email.to_lowercase());
    let ip = format!("signin-ip:{}", req.ip);
    let since = ctx.now - ctx.config.rate_window;
    if limit > 0
        && (ctx.store.failures(&account, since).await? >= limit
            || (!req.ip.is_empty() && ctx.store.failures(&ip, since).await? >= limit * 5))
    {
        return Ok(Err(Refusal::Limited));
    }
    let user = ctx.store.user_by_email(email).await?;
    let ok = match user
        .as_ref()
        .and_then(|u| crypto::parse_password_hash(&u.password_hash))
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
    match user.filter(|_| ok) {
        Some(u) => {
            ctx.store.clear_failures(&account).await?;
            Ok(Ok(u.id))
        }
        None => {
            ctx.store
                .record_failure(&account, ctx.now, ctx.config.rate_window)
                .await?;
            if !req.ip.is_empty() {
                ctx.store.record_failure(&ip, ctx.now, ctx.config.rate_window).await?;
            }
            Ok(Err(Refusal::Mismatch))
        }
    }
}

async fn start_session<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, user_id: &str, return_to: &str) -> Response {
    let token = crypto::new_token(&ctx.config.prefixes.session);
    let expires = ctx.now + ctx.config.session_ttl;
    if let Err(e) = ctx
        .store
        .create_session(&crypto::sha256_hex(&token), user_id, ctx.now, expires)
        .await
    {
        return Response::html(500, templates::error_page("Server error", &e.0));
    }
    Response::see_other(return_to).header("Set-Cookie", &session::set_cookie(req, &token, ctx.config.session_ttl))
}

pub async fn signout<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = req.form().unwrap_or_default();
    if let Ok(Some(s)) = session::current(ctx, req).await {
        if !session::csrf_ok(&s, form.get("csrf")) {
            return Response::html(
                403,
                templates::error_page("Forbidden", "The form has expired. Go back and try again."),
            );
        }
        if let Err(e) = ctx.store.delete_session(&s.token_hash).await {
            return Response::html(500, templates::error_page("Server error", &e.0));
        }
    }
    Response::see_other("/").header("Set-Cookie", &session::set_cookie(req, "", 0))
}
