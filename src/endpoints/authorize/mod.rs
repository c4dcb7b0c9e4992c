//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1): GET shows
//! sign-in or consent, POST carries the user's decision.
//!
//! Validation order (RFC 6749 §4.1.2.1): the client and redirect URI are
//! checked first, and a failure there is shown as a page, never redirected,
//! so a forged request cannot bounce a browser to an attacker's URI. Every
//! later failure is returned to the (now trusted) redirect URI of a client
//! the platform vetted; for a self-registered or metadata document client
//! (whose URIs anyone may choose) it is a page too, until the user has
//! decided on the consent form (RFC 9700 §4.11.2).
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

mod code;
mod openid;
pub mod pushed;
mod request;

pub use openid::{forwarded, OidcParams, Prompt};
pub use request::{freshness, validate, validate_push, AuthzRequest, Failure};

use crate::config::SigninMode;
use crate::context::Ctx;
use crate::endpoints::login_challenge;
use crate::http::{Params, Request, Response};
use crate::oidc::reauth;
use crate::scope;
use crate::session::{self, Session};
use crate::store::Driver;
use crate::templates::unavailable_page;
use crate::templates::{self, ConsentView};
use code::{issue_code, may_approve};
use request::{authorize_url, carried, redirect};

/// GET /oauth/authorize
pub async fn show<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let params = req.query_params();
    // One round trip for the reads: the app, the session's user, the
    // user's prior consents for the app and, for a pushed request (RFC
    // 9126), its presentation.
    let presented = session::presented(ctx, req);
    let client_id = params.get("client_id").unwrap_or("");
    let presenting = params
        .get("request_uri")
        .and_then(pushed::key)
        .filter(|_| params.repeated(&["client_id", "request_uri"]).is_none())
        .map(|key| {
            let until = ctx.now + pushed::INTERACTION_SECONDS;
            crate::store::pushed::present_stmt(&key, client_id, ctx.now, until)
        });
    let reads = ctx
        .store
        .authorize_reads(
            client_id,
            presented.as_ref().map(|(_, hash)| hash.as_str()),
            ctx.now,
            presenting,
        )
        .await;
    let (app, user, prior, stored) = match reads {
        Ok(v) => v,
        Err(e) => return unavailable_page(e),
    };
    let r = match request::validate_presented(ctx, &params, Some(app), stored).await {
        Ok(r) => r,
        Err(f) => return f.respond(&ctx.issuer, false),
    };
    let session = presented.zip(user).map(|((token, hash), user)| {
        let s = session::Session::new(user, &token, hash);
        (s, token)
    });
    let Some((session, token)) = session else {
        if r.oidc.prompt.none {
            return r.refuse(&ctx.issuer, "login_required", "the user is not signed in", false);
        }
        return sign_in(ctx, req, &r, false).await;
    };
    // A fresh sign-in (`crate::oidc::reauth`): asked for by prompt=login or
    // max_age, or needed because id_token_hint names someone else; unless
    // this request is the one such a sign-in just resumed.
    let resumed = reauth::proof_ok(r.oidc.login_proof.as_deref(), &token, ctx.now);
    let someone_else = r
        .hint_sub
        .as_ref()
        .is_some_and(|sub| *sub != crate::oidc::subject::subject(ctx.config, &r.app, &session.user.user_id));
    let stale = reauth::needs_fresh(r.oidc.prompt.login, r.oidc.max_age, session.user.auth_time, ctx.now);
    if !resumed && (stale || someone_else) {
        if r.oidc.prompt.none {
            let why = if someone_else {
                "the signed-in user is not the one id_token_hint names"
            } else {
                "the user's sign-in is older than max_age allows"
            };
            return r.refuse(&ctx.issuer, "login_required", why, false);
        }
        return sign_in(ctx, req, &r, someone_else).await;
    }
    // A user who already approved these scopes for this app is not asked
    // again, unless the client asks for the consent screen (prompt=consent).
    let modes = r.app.actor_mode_list();
    let approved = |c: &&crate::store::ConsentRow| {
        modes.contains(&c.actor) && scope::first_outside(&r.scopes, &scope::from_json(&c.scopes)).is_none()
    };
    if !r.oidc.prompt.consent {
        // A prior consent to the app actor counts only while the user could
        // give it again on the form (owner/admin; Fluxer's bot_public): a
        // demoted admin is asked, and cannot renew the bot silently.
        let covering = prior
            .iter()
            .filter(approved)
            .find(|c| may_approve(&r.app, &c.org_id, &c.actor, c.role.as_deref()));
        if let Some(c) = covering {
            return issue_code(ctx, &r, &session, &c.org_id, &c.actor, false).await;
        }
    }
    if r.oidc.prompt.none {
        // Core §3.1.2.6 `consent_required` either way: a consent whose
        // organization or actor the user may no longer use is no consent
        // (the page would ask for a new one; the hardening tests pin it).
        let why = if prior.iter().any(|c| approved(&c)) {
            "the user must approve again which organization or actor this app acts for"
        } else {
            "the user has not approved this app"
        };
        return r.refuse(&ctx.issuer, "consent_required", why, false);
    }
    consent_page(ctx, &r, &session).await
}

/// Where our sign-in form sends the browser back: this authorization, and
/// when it asks for a fresh sign-in (`prompt=login`, `max_age`) a request
/// for the sign-in's proof (`crate::oidc::reauth`).
fn return_to(r: &AuthzRequest) -> String {
    let back = authorize_url(r);
    if r.oidc.prompt.login || r.oidc.max_age.is_some() {
        reauth::awaiting_proof(&back)
    } else {
        back
    }
}

/// Off to sign in (again): our form, or the platform's page in delegated
/// mode. `force`: the sign-in must be fresh although the request did not
/// say `prompt=login` (an id_token_hint naming someone else).
async fn sign_in<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, r: &AuthzRequest, force: bool) -> Response {
    if ctx.config.signin_mode == SigninMode::Delegated {
        return login_challenge::start(ctx, req, r, false, force).await;
    }
    let back = return_to(r);
    let mut q = vec![("return_to", back.as_str())];
    if let Some(h) = &r.oidc.login_hint {
        q.push(("login_hint", h));
    }
    Response::found(&format!("/signin?{}", Params::encode(&q)))
}

async fn consent_page<D: Driver>(ctx: &Ctx<'_, D>, r: &AuthzRequest, s: &Session) -> Response {
    let (orgs, owner, catalogue) = match ctx
        .store
        .consent_facts(&s.user.user_id, r.app.owner_org_id.as_deref())
        .await
    {
        Ok(facts) => facts,
        Err(e) => return unavailable_page(e),
    };
    if orgs.is_empty() {
        return Response::html(
            403,
            templates::error_page(
                "No organization",
                "You are not a member of any organization, so there is nothing to authorize.",
            ),
        );
    }
    let scopes: Vec<_> = catalogue.into_iter().filter(|c| r.scopes.contains(&c.name)).collect();
    let modes = r.app.actor_mode_list();
    let hidden = carried(r);
    // No org owns a self-registered client: name what vouches for it
    // instead (its document's host, or nobody).
    let owner_name = owner
        .map(|o| o.name)
        .unwrap_or_else(|| crate::cimd::host_of(&r.app).unwrap_or_else(|| "an unverified developer".into()));
    Response::html(
        200,
        templates::consent(&ConsentView {
            app: &r.app,
            owner_name: &owner_name,
            user_email: &s.user.email,
            orgs: &orgs,
            actor_modes: &modes,
            scopes: &scopes,
            hidden: &hidden,
            csrf: &s.csrf,
            redirect_to: &r.redirect_to,
            identity: &openid::shared_identity(&r.scopes, &s.user.email),
        }),
    )
}

/// POST /oauth/authorize: the consent decision.
pub async fn decide<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Response::html(400, templates::error_page("Bad request", &e)),
    };
    let r = match validate(ctx, &form, None).await {
        Ok(r) => r,
        Err(f) => return f.respond(&ctx.issuer, true),
    };
    let session = match session::current(ctx, req).await {
        Ok(Some(s)) => s,
        Ok(None) if ctx.config.signin_mode == SigninMode::Delegated => {
            return login_challenge::start(ctx, req, &r, true, false).await
        }
        Ok(None) => {
            let to = format!("/signin?{}", Params::encode(&[("return_to", &return_to(&r))]));
            return Response::see_other(&to);
        }
        Err(e) => return unavailable_page(e),
    };
    // The consent form must come from our own page in this session.
    if !session::csrf_ok(&session, form.get("csrf")) {
        return Response::html(
            403,
            templates::error_page(
                "Request refused",
                "This consent form was not issued to your session. Start again from the app.",
            ),
        );
    }
    match form.get("decision") {
        Some("deny") => {
            let description = ctx.profile.denied(ctx.config, "the user denied the request");
            return r.refuse(&ctx.issuer, "access_denied", description, true);
        }
        Some("approve") => {}
        _ => return Response::html(400, templates::error_page("Bad request", "The form has no decision.")),
    }
    let orgs = match ctx.store.memberships(&session.user.user_id).await {
        Ok(o) => o,
        Err(e) => return unavailable_page(e),
    };
    let Some(membership) = form.get("org").and_then(|id| orgs.iter().find(|m| m.org_id == id)) else {
        return Response::html(
            400,
            templates::error_page("Bad request", "Choose an organization you belong to."),
        );
    };
    let modes = r.app.actor_mode_list();
    let actor = form
        .get("actor")
        .unwrap_or_else(|| modes.first().map(String::as_str).unwrap_or("self"));
    if !modes.iter().any(|m| m == actor) {
        return Response::html(
            400,
            templates::error_page("Bad request", "This app does not allow that actor mode."),
        );
    }
    // Installing a bot identity is an org-level decision (FeatureOS).
    if actor == "app" && !matches!(membership.role.as_str(), "owner" | "admin") {
        return Response::html(
            403,
            templates::error_page(
                "Admin required",
                "Only an admin of the organization can install this app as its own actor.",
            ),
        );
    }
    // Fluxer: a bot that is not public can only be added by its owner org.
    if actor == "app" && r.app.bot_public == 0 && r.app.owner_org_id.as_deref() != Some(membership.org_id.as_str()) {
        return Response::html(
            403,
            templates::error_page(
                "Not available",
                "This app's bot can only be added by the organization that owns it.",
            ),
        );
    }
    let scopes_json = scope::to_json(&r.scopes);
    let user_id = &session.user.user_id;
    // The consent and its audit record are one batch: no code without both.
    let audit = ctx.audit_entry(
        &membership.org_id,
        "user",
        user_id,
        Some(&r.app.id),
        "authorization.granted",
        serde_json::json!({"actor": actor, "scopes": r.scopes}),
    );
    if let Err(e) = ctx
        .store
        .save_consent(
            user_id,
            &r.app.id,
            &membership.org_id,
            actor,
            &scopes_json,
            ctx.now,
            &audit,
        )
        .await
    {
        return unavailable_page(e);
    }
    issue_code(ctx, &r, &session, &membership.org_id, actor, true).await
}
