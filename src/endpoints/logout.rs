//! `GET|POST /oauth/logout`, the end_session_endpoint (RP-Initiated Logout 1.0).
//!
//! A request with a valid `id_token_hint` naming the signed-in user ends the
//! session at once; any other request that finds a session shows a
//! confirmation page whose form is bound to the session (its CSRF token), so
//! a link or form on another site cannot sign anyone out by itself. A
//! refused request (a hint that is not ours or not for this client, an
//! unregistered `post_logout_redirect_uri`) gets an error page and never a
//! redirect.

use crate::context::Ctx;
use crate::http::{Params, Request, Response};
use crate::oidc::logout::{self, Checked, Refused};
use crate::session::{self, Session};
use crate::store::Driver;
use crate::templates::{self, esc, layout};

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    // OPENID=off: no ID tokens, so nothing to end a session by; not advertised.
    if !ctx.config.openid {
        return Response::html(
            404,
            templates::error_page("Not found", "OpenID Connect is off on this server."),
        );
    }
    let params = if req.method == "POST" {
        match req.form() {
            Ok(f) => f,
            Err(e) => return refused(&e),
        }
    } else {
        req.query_params()
    };
    // A cross-site POST carries no SameSite=Lax session cookie, so the
    // session would look absent and outlive the logout: answer it with the
    // same request as a top-level GET, which does carry the cookie.
    if req.method == "POST" && params.get("confirm").is_none() && session::presented(ctx, req).is_none() {
        if let Err(Refused::Bad(msg)) = logout::check_shape(&params) {
            return refused(&msg);
        }
        let pairs: Vec<(&str, &str)> = logout::PARAMS
            .iter()
            .filter_map(|k| params.get(k).map(|v| (*k, v)))
            .collect();
        return Response::see_other(&format!("/oauth/logout?{}", Params::encode(&pairs)));
    }
    let checked = match logout::check(ctx, &params).await {
        Ok(c) => c,
        Err(Refused::Bad(msg)) => return refused(&msg),
        Err(Refused::Store(e)) => return templates::unavailable_page(e),
    };
    if let Some(app) = &checked.client {
        ctx.note(&app.id, None);
    }
    let current = match session::current(ctx, req).await {
        Ok(s) => s,
        Err(e) => return templates::unavailable_page(e),
    };
    let Some(s) = current else {
        // Nothing to end (signed out already, or never signed in here).
        return finish(req, &checked);
    };
    // The confirmation form's own POST: bound to this session.
    let confirmed = req.method == "POST" && params.get("confirm").is_some();
    if confirmed && !session::csrf_ok(&s, params.get("csrf")) {
        return Response::html(
            403,
            templates::error_page("Forbidden", "The form has expired. Go back and try again."),
        );
    }
    if confirmed || logout::hint_names(ctx, &checked, &s.user.user_id) {
        if let Err(e) = logout::end_session(ctx, &s.token_hash).await {
            return templates::unavailable_page(e);
        }
        return finish(req, &checked);
    }
    Response::html(200, confirm_page(&s, &checked))
}

fn refused(msg: &str) -> Response {
    Response::html(400, templates::error_page("Cannot sign out from here", msg))
}

/// Signed out: to the client's registered URI (with `state`), or our page.
fn finish(req: &Request, checked: &Checked) -> Response {
    let clear = session::set_cookie(req, "", 0);
    match &checked.redirect {
        Some(to) => Response::see_other(to).header("Set-Cookie", &clear),
        None => Response::html(
            200,
            layout(
                "Signed out",
                r#"<h1>Signed out</h1><div class="card"><p>You are signed out. You can close this page.</p></div>"#,
            ),
        )
        .header("Set-Cookie", &clear),
    }
}

fn confirm_page(s: &Session, checked: &Checked) -> String {
    let asker = match &checked.client {
        Some(app) => format!("<p><strong>{}</strong> asks to sign you out.</p>", esc(&app.name)),
        None => String::new(),
    };
    let mut fields = vec![("csrf", s.csrf.clone()), ("confirm", "1".to_string())];
    fields.extend(checked.carry.iter().cloned());
    let hidden: String = fields
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, esc(k), esc(v)))
        .collect();
    layout(
        "Sign out?",
        &format!(
            r#"<h1>Sign out?</h1><div class="card">{asker}<p>You are signed in as <strong>{email}</strong>.</p>
<form method="post" action="/oauth/logout">{hidden}<button type="submit">Sign out</button><a href="/">Stay signed in</a></form></div>"#,
            email = esc(&s.user.email),
        ),
    )
}
