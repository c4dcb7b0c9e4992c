//! The device flow's verification page (RFC 8628 §3.3): GET /device shows
//! the code form (prefilled from `verification_uri_complete`), POST /device
//! reads a code (then our consent screen) or carries the decision.
//!
//! A signed-in user is required (our sign-in or the delegated one, back to
//! `/device?user_code=…`), and every POST carries the session's CSRF token.
//! Guessing is bounded three ways: each submission naming a code counts
//! against the source address ([`SUBMISSIONS_PER_SOURCE`] per
//! `RATE_WINDOW_SECONDS`), each code shows its consent screen at most
//! [`MAX_ATTEMPTS`] times (the lookup past it denies the code) and takes one
//! decision, and a code lives
//! `DEVICE_CODE_TTL_SECONDS`. A GET reads nothing but the session.

use crate::context::Ctx;
use crate::grants::device_code::{display, normalize, user_code_hash};
use crate::http::{Params, Request, Response};
use crate::session::{self, Session};
use crate::store::{Attempt, Attempted, Decision, DeviceRow, Driver};
use crate::templates::device::{self as pages, DeviceConsentView};
use crate::templates::{self, unavailable_page};

/// Code submissions (lookups and decisions) per source address per window.
pub const SUBMISSIONS_PER_SOURCE: i64 = 20;
/// Lookups one code accepts: a person types it once or twice and decides
/// once; a code looked up more often than this is being tried by someone
/// else, and is denied.
pub const MAX_ATTEMPTS: i64 = 5;

/// Where sign-in returns: this page, with the code when it has our shape.
fn back_to(code: Option<&str>) -> String {
    match code {
        Some(c) => format!("/device?{}", Params::encode(&[("user_code", display(c).as_str())])),
        None => "/device".into(),
    }
}

fn sign_in(code: Option<&str>, post: bool) -> Response {
    let to = format!("/signin?{}", Params::encode(&[("return_to", back_to(code).as_str())]));
    if post {
        Response::see_other(&to)
    } else {
        Response::found(&to)
    }
}

fn page(status: u16, body: String) -> Response {
    Response::html(status, body).no_store()
}

/// GET /device
pub async fn show<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let q = req.query_params();
    let code = q.get("user_code").and_then(normalize);
    let s = match session::current(ctx, req).await {
        Ok(Some(s)) => s,
        Ok(None) => return sign_in(code.as_deref(), false),
        Err(e) => return unavailable_page(e),
    };
    let shown = code.as_deref().map(display).unwrap_or_default();
    page(200, pages::entry(&shown, &s.csrf, &s.user.email, None))
}

/// POST /device
pub async fn decide<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return page(400, templates::error_page("Bad request", &e)),
    };
    if let Some(name) = form.repeated(&["user_code", "decision", "org", "csrf"]) {
        return page(
            400,
            templates::error_page("Bad request", &format!("The {name} field appears more than once.")),
        );
    }
    let code = form.get("user_code").and_then(normalize);
    let s = match session::current(ctx, req).await {
        Ok(Some(s)) => s,
        Ok(None) => return sign_in(code.as_deref(), true),
        Err(e) => return unavailable_page(e),
    };
    // The form must come from our own page in this session.
    if !session::csrf_ok(&s, form.get("csrf")) {
        return page(
            403,
            templates::error_page(
                "Request refused",
                "This form was not issued to your session. Open the page again and enter the code.",
            ),
        );
    }
    let Some(code) = code else {
        let typed = form.get("user_code").unwrap_or("");
        let typed = if typed.len() > 32 { "" } else { typed };
        return page(
            400,
            pages::entry(
                typed,
                &s.csrf,
                &s.user.email,
                Some("A code is 8 letters, like BCDF-GHJK. Check the code on your device."),
            ),
        );
    };
    let decision = match form.get("decision") {
        None => None,
        Some("approve") => Some(true),
        Some("deny") => Some(false),
        Some(_) => {
            return page(
                400,
                templates::error_page("Bad request", "The form has no valid decision."),
            )
        }
    };
    let org = form.get("org").unwrap_or("");
    if decision == Some(true) && org.is_empty() {
        return page(
            400,
            templates::error_page("Bad request", "Choose an organization you belong to."),
        );
    }
    let hash = user_code_hash(&code);
    let key = format!("device-verify:{}", ctx.source);
    let attempt = Attempt {
        user_code_hash: &hash,
        now: ctx.now,
        budget: (&key, SUBMISSIONS_PER_SOURCE, ctx.config.rate_window),
        max_attempts: MAX_ATTEMPTS,
    };
    let d = decision.map(|approve| Decision {
        approve,
        org_id: org,
        user_id: &s.user.user_id,
        auth_time: s.user.auth_time,
        acr: s.user.acr.as_deref(),
        amr: s.user.amr.as_deref(),
        sid: s.user.sid.as_deref(),
    });
    let attempted = match ctx.store.attempt_device(&attempt, d.as_ref()).await {
        Ok(a) => a,
        Err(e) => return unavailable_page(e),
    };
    let row = match attempted {
        Attempted::OverBudget => {
            return page(
                429,
                templates::error_page(
                    "Too many attempts",
                    "Too many codes were entered from your network. Wait a while and try again.",
                ),
            )
            .header("Retry-After", &ctx.config.rate_window.to_string())
        }
        Attempted::Unknown if decision.is_some() => {
            return page(
                400,
                templates::error_page(
                    "Code not valid",
                    "This code has expired, was already used, or you are not a member of that organization. Start again on your device.",
                ),
            )
        }
        Attempted::Unknown => {
            return page(
                400,
                pages::entry(
                    &display(&code),
                    &s.csrf,
                    &s.user.email,
                    Some("This code is not valid or has expired. Check the code on your device."),
                ),
            )
        }
        Attempted::Exhausted => {
            return page(
                400,
                templates::error_page(
                    "Code no longer valid",
                    "This code was entered too many times and was cancelled. Start again on your device.",
                ),
            )
        }
        Attempted::Found(row) => row,
    };
    match decision {
        Some(approved) => {
            ctx.note(&row.app_id, (approved && !org.is_empty()).then_some(org));
            page(200, pages::done(approved))
        }
        None => consent(ctx, &s, &row, &code).await,
    }
}

/// Our consent screen for the device's request.
async fn consent<D: Driver>(ctx: &Ctx<'_, D>, s: &Session, row: &DeviceRow, code: &str) -> Response {
    let app = match ctx.store.app(&row.app_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return page(
                400,
                templates::error_page("Code not valid", "The app of this code no longer exists."),
            )
        }
        Err(e) => return unavailable_page(e),
    };
    ctx.note(&app.id, None);
    let (orgs, owner, catalogue) = match ctx
        .store
        .consent_facts(&s.user.user_id, app.owner_org_id.as_deref())
        .await
    {
        Ok(facts) => facts,
        Err(e) => return unavailable_page(e),
    };
    if orgs.is_empty() {
        return page(
            403,
            templates::error_page(
                "No organization",
                "You are not a member of any organization, so there is nothing to authorize.",
            ),
        );
    }
    let requested = crate::scope::from_json(&row.scopes);
    let scopes: Vec<_> = catalogue.into_iter().filter(|c| requested.contains(&c.name)).collect();
    let owner_name = owner
        .map(|o| o.name)
        .unwrap_or_else(|| crate::cimd::host_of(&app).unwrap_or_else(|| "an unverified developer".into()));
    page(
        200,
        pages::consent(&DeviceConsentView {
            app: &app,
            owner_name: &owner_name,
            user_email: &s.user.email,
            orgs: &orgs,
            scopes: &scopes,
            user_code: &display(code),
            csrf: &s.csrf,
        }),
    )
}
