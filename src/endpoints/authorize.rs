//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1): GET shows
//! sign-in or consent, POST carries the user's decision.
//!
//! Validation order (RFC 6749 §4.1.2.1): the client and redirect URI are
//! checked first, and a failure there is shown as a page, never redirected,
//! so a forged request cannot bounce a browser to an attacker's URI. Every
//! later failure is returned to the (now trusted) redirect URI.

use crate::config::{PkceRequired, SigninMode};
use crate::context::Ctx;
use crate::crypto;
use crate::endpoints::login_challenge;
use crate::http::{Params, Request, Response};
use crate::pkce;
use crate::redirect_uri;
use crate::scope;
use crate::session::{self, Session};
use crate::store::{AppRow, CodeRow, Driver};
use crate::templates::{self, ConsentView};

/// A validated authorization request.
pub struct AuthzRequest {
    pub app: AppRow,
    /// `redirect_uri` exactly as sent (empty if omitted); the code is bound to it.
    pub redirect_param: String,
    /// Where the browser goes back to.
    pub redirect_to: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub challenge: Option<String>,
    pub prompt: Option<String>,
}

pub enum Failure {
    /// Shown to the user; the client or redirect URI cannot be trusted.
    Page {
        status: u16,
        title: &'static str,
        message: String,
    },
    /// Sent back to the client's redirect URI.
    Redirect {
        to: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

impl Failure {
    fn respond(self, issuer: &str, post: bool) -> Response {
        match self {
            Failure::Page { status, title, message } => Response::html(status, templates::error_page(title, &message)),
            Failure::Redirect {
                to,
                error,
                description,
                state,
            } => redirect(
                &to,
                &[("error", error), ("error_description", &description)],
                state.as_deref(),
                issuer,
                post,
            ),
        }
    }
}

/// Back to the client, with `state` and `iss` (RFC 9207). 303 after a POST.
fn redirect(to: &str, params: &[(&str, &str)], state: Option<&str>, issuer: &str, post: bool) -> Response {
    let mut all: Vec<(&str, &str)> = params.to_vec();
    if let Some(s) = state {
        all.push(("state", s));
    }
    all.push(("iss", issuer));
    let location = redirect_uri::with_params(to, &all);
    if post {
        Response::see_other(&location)
    } else {
        Response::found(&location)
    }
}

const SINGLE: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
];

/// `known`: the app's row when the caller already read it (`show` reads it in
/// the same batch as the session and prior consents).
pub async fn validate<D: Driver>(
    ctx: &Ctx<'_, D>,
    p: &Params,
    known: Option<Option<AppRow>>,
) -> Result<AuthzRequest, Failure> {
    let page = |status, title, message: &str| Failure::Page {
        status,
        title,
        message: message.to_string(),
    };
    if let Some(name) = p.repeated(&["client_id", "redirect_uri"]) {
        return Err(page(
            400,
            "Invalid request",
            &format!("The {name} parameter appears more than once."),
        ));
    }
    let Some(client_id) = p.get("client_id") else {
        return Err(page(400, "Invalid request", "The request has no client_id."));
    };
    let app = match known {
        Some(app) => Ok(app),
        None => ctx.store.app(client_id).await,
    };
    let app = match app {
        Ok(Some(a)) if a.status == "active" => a,
        Ok(_) => {
            return Err(page(
                400,
                "Unknown application",
                "No active application has this client_id.",
            ))
        }
        Err(e) => return Err(page(500, "Server error", &e.0)),
    };
    let registered = app.redirect_uri_list();
    let redirect_param = p.get("redirect_uri").unwrap_or("").to_string();
    let redirect_to = if redirect_param.is_empty() {
        match registered.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(page(
                    400,
                    "Invalid redirect URI",
                    "The request has no redirect_uri and the app registered several.",
                ))
            }
        }
    } else if redirect_uri::matches(&registered, &redirect_param) {
        redirect_param.clone()
    } else {
        return Err(page(
            400,
            "Invalid redirect URI",
            "The redirect_uri does not exactly match any URI registered for this app.",
        ));
    };
    let state = p.get("state").map(str::to_string);
    let fail = |error, description: &str| Failure::Redirect {
        to: redirect_to.clone(),
        error,
        description: description.to_string(),
        state: state.clone(),
    };
    if let Some(name) = p.repeated(SINGLE) {
        return Err(fail(
            "invalid_request",
            &format!("the {name} parameter appears more than once"),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(fail("invalid_request", "state is longer than 1024 characters"));
    }
    match p.get("response_type") {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported (the implicit grant is not, per OAuth 2.1)",
            ))
        }
    }
    let challenge = p.get("code_challenge").map(str::to_string);
    match (p.get("code_challenge_method"), &challenge) {
        (Some("S256"), Some(_)) | (None, Some(_)) => {}
        (Some("S256"), None) => return Err(fail("invalid_request", "code_challenge_method without code_challenge")),
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "only the S256 code_challenge_method is supported",
            ))
        }
        // OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1: PKCE for every client (a
        // code stolen from a confidential client's redirect is otherwise
        // injectable); PKCE_REQUIRED=public keeps it optional for confidential
        // clients only where a platform's apps send none (Azure DevOps).
        (None, None) if app.is_public() || ctx.config.pkce_required == PkceRequired::All => {
            let who = if app.is_public() {
                "public clients"
            } else {
                "every client"
            };
            return Err(fail(
                "invalid_request",
                &format!("{who} must use PKCE (code_challenge with S256)"),
            ));
        }
        (None, None) => {}
    }
    // RFC 7636 §4.3: no method means `plain`, which we refuse; a bare challenge
    // is accepted only when it has the exact shape of an S256 value.
    if challenge.as_deref().is_some_and(|c| !pkce::valid_challenge(c)) {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url S256 value of 43 characters",
        ));
    }
    let declared = app.scope_list();
    let scopes = match p.get("scope").map(scope::parse) {
        None => declared.clone(),
        Some(Err(e)) => return Err(fail("invalid_scope", &e)),
        Some(Ok(s)) if s.is_empty() => declared.clone(),
        Some(Ok(s)) => s,
    };
    if let Some(bad) = scope::first_outside(&scopes, &declared) {
        return Err(fail(
            "invalid_scope",
            &format!("the app did not declare the scope {bad:?}"),
        ));
    }
    if scopes.is_empty() {
        return Err(fail("invalid_scope", "no scope requested and the app declares none"));
    }
    let prompt = p.get("prompt").map(str::to_string);
    if let Some(pr) = &prompt {
        if !matches!(pr.as_str(), "none" | "consent") {
            return Err(fail("invalid_request", "prompt must be none or consent"));
        }
    }
    Ok(AuthzRequest {
        app,
        redirect_param,
        redirect_to,
        scopes,
        state,
        challenge,
        prompt,
    })
}

/// The authorize parameters to carry through the sign-in and consent forms.
fn carried(r: &AuthzRequest) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("client_id", r.app.id.clone()),
        ("response_type", "code".to_string()),
        ("scope", scope::join(&r.scopes)),
    ];
    if !r.redirect_param.is_empty() {
        v.push(("redirect_uri", r.redirect_param.clone()));
    }
    if let Some(s) = &r.state {
        v.push(("state", s.clone()));
    }
    if let Some(c) = &r.challenge {
        v.push(("code_challenge", c.clone()));
        v.push(("code_challenge_method", "S256".to_string()));
    }
    v
}

fn authorize_url(r: &AuthzRequest) -> String {
    let pairs = carried(r);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("/oauth/authorize?{}", Params::encode(&refs))
}

fn server_error(e: crate::error::StoreError) -> Response {
    Response::html(500, templates::error_page("Server error", &e.0))
}

/// GET /oauth/authorize
pub async fn show<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let params = req.query_params();
    // One round trip for the reads: the app, the session's user and the
    // user's prior consents for the app.
    let presented = session::presented(ctx, req);
    let reads = ctx
        .store
        .authorize_reads(
            params.get("client_id").unwrap_or(""),
            presented.as_ref().map(|(_, hash)| hash.as_str()),
            ctx.now,
        )
        .await;
    let (app, user, prior) = match reads {
        Ok(v) => v,
        Err(e) => return server_error(e),
    };
    let r = match validate(ctx, &params, Some(app)).await {
        Ok(r) => r,
        Err(f) => return f.respond(&ctx.issuer, false),
    };
    let session = presented
        .zip(user)
        .map(|((token, hash), user)| session::Session::new(user, &token, hash));
    let Some(session) = session else {
        if r.prompt.as_deref() == Some("none") {
            return redirect(
                &r.redirect_to,
                &[
                    ("error", "login_required"),
                    ("error_description", "the user is not signed in"),
                ],
                r.state.as_deref(),
                &ctx.issuer,
                false,
            );
        }
        if ctx.config.signin_mode == SigninMode::Delegated {
            return login_challenge::start(ctx, req, &r, false).await;
        }
        let to = format!("/signin?{}", Params::encode(&[("return_to", &authorize_url(&r))]));
        return Response::found(&to);
    };
    // A user who already approved these scopes for this app is not asked
    // again, unless the client asks for the consent screen (prompt=consent).
    if r.prompt.as_deref() != Some("consent") {
        let modes = r.app.actor_mode_list();
        // A prior consent to the app actor counts only while the user could
        // give it again on the form (owner/admin; Fluxer's bot_public): a
        // demoted admin is asked, and cannot renew the bot silently.
        let covering = prior.iter().find(|c| {
            modes.contains(&c.actor)
                && scope::first_outside(&r.scopes, &scope::from_json(&c.scopes)).is_none()
                && may_approve(&r.app, &c.org_id, &c.actor, c.role.as_deref())
        });
        if let Some(c) = covering {
            return issue_code(ctx, &r, &session.user.user_id, &c.org_id, &c.actor, false).await;
        }
    }
    if r.prompt.as_deref() == Some("none") {
        return redirect(
            &r.redirect_to,
            &[
                ("error", "consent_required"),
                ("error_description", "the user has not approved this app"),
            ],
            r.state.as_deref(),
            &ctx.issuer,
            false,
        );
    }
    consent_page(ctx, &r, &session).await
}

async fn consent_page<D: Driver>(ctx: &Ctx<'_, D>, r: &AuthzRequest, s: &Session) -> Response {
    let (orgs, owner, catalogue) = match (
        ctx.store.memberships(&s.user.user_id).await,
        ctx.store.org(&r.app.owner_org_id).await,
        ctx.store.scope_catalogue().await,
    ) {
        (Ok(o), Ok(w), Ok(c)) => (o, w, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return server_error(e),
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
    let owner_name = owner.map(|o| o.name).unwrap_or_else(|| "unknown".into());
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
            return login_challenge::start(ctx, req, &r, true).await
        }
        Ok(None) => {
            let to = format!("/signin?{}", Params::encode(&[("return_to", &authorize_url(&r))]));
            return Response::see_other(&to);
        }
        Err(e) => return server_error(e),
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
            return redirect(
                &r.redirect_to,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied the request"),
                ],
                r.state.as_deref(),
                &ctx.issuer,
                true,
            )
        }
        Some("approve") => {}
        _ => return Response::html(400, templates::error_page("Bad request", "The form has no decision.")),
    }
    let orgs = match ctx.store.memberships(&session.user.user_id).await {
        Ok(o) => o,
        Err(e) => return server_error(e),
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
    if actor == "app" && r.app.bot_public == 0 && membership.org_id != r.app.owner_org_id {
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
        return server_error(e);
    }
    issue_code(ctx, &r, user_id, &membership.org_id, actor, true).await
}

/// Whether a member with `role` may approve `actor` for `app` in `org_id`:
/// installing the bot identity is an org-level decision (FeatureOS), and a
/// bot that is not public can only be added by its owner org (Fluxer).
fn may_approve(app: &AppRow, org_id: &str, actor: &str, role: Option<&str>) -> bool {
    actor != "app" || (matches!(role, Some("owner" | "admin")) && (app.bot_public != 0 || org_id == app.owner_org_id))
}

/// Mint a code bound to client, redirect URI and PKCE challenge, and send the
/// browser back with it (303 after the consent POST, 302 from a GET). The
/// store re-checks the user's standing in the same write (a role changed
/// since the reads): then no code, and the client is told as `prompt=none`
/// would be (GET) or as a denial (POST).
async fn issue_code<D: Driver>(
    ctx: &Ctx<'_, D>,
    r: &AuthzRequest,
    user_id: &str,
    org_id: &str,
    actor: &str,
    post: bool,
) -> Response {
    let code = crypto::new_token(&ctx.config.prefixes.code);
    let row = CodeRow {
        hash: crypto::sha256_hex(&code),
        app_id: r.app.id.clone(),
        org_id: org_id.to_string(),
        user_id: Some(user_id.to_string()),
        actor: actor.to_string(),
        scopes: scope::to_json(&r.scopes),
        redirect_uri: r.redirect_param.clone(),
        challenge: r.challenge.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + ctx.config.code_ttl,
        used_at: None,
        grant_id: None,
    };
    match ctx.store.insert_code(&row).await {
        Ok(true) => {}
        Ok(false) => {
            let error = if post { "access_denied" } else { "consent_required" };
            return redirect(
                &r.redirect_to,
                &[
                    ("error", error),
                    (
                        "error_description",
                        "the user may no longer approve this app in that organization",
                    ),
                ],
                r.state.as_deref(),
                &ctx.issuer,
                post,
            );
        }
        Err(e) => return server_error(e),
    }
    ctx.note(&r.app.id, Some(org_id));
    redirect(
        &r.redirect_to,
        &[("code", &code)],
        r.state.as_deref(),
        &ctx.issuer,
        post,
    )
}
