//! Sign-in and sign-out. The session cookie is random; only its hash is kept.

use crate::crypto;
use crate::http::{Request, Response};
use crate::server::Ctx;
use crate::session;
use crate::store::Driver;
use crate::templates;

/// Only same-site paths, so sign-in cannot be turned into an open redirect.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 4096 =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

pub async fn page<D: Driver>(_ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let q = req.query_params();
    Response::html(
        200,
        templates::signin(&safe_return_to(q.get("return_to")), None, ""),
    )
}

pub async fn submit<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Response::html(400, templates::error_page("Bad request", &e)),
    };
    let return_to = safe_return_to(form.get("return_to"));
    let email = form.get("email").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let retry = |msg: &str| Response::html(401, templates::signin(&return_to, Some(msg), email));
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return retry("Enter your email and password.");
    }
    let user = match ctx.store.user_by_email(email).await {
        Ok(u) => u,
        Err(e) => return Response::html(500, templates::error_page("Server error", &e.0)),
    };
    let Some(user) = user.filter(|u| crypto::verify_password(password, &u.password_hash)) else {
        return retry("That email and password do not match an account.");
    };
    let token = crypto::new_token(&ctx.config.prefixes.session);
    let expires = ctx.now + ctx.config.session_ttl;
    if let Err(e) = ctx
        .store
        .create_session(&crypto::sha256_hex(&token), &user.id, ctx.now, expires)
        .await
    {
        return Response::html(500, templates::error_page("Server error", &e.0));
    }
    Response::see_other(&return_to).header(
        "Set-Cookie",
        &session::set_cookie(req, &token, ctx.config.session_ttl),
    )
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
