//! Validating an authorization request (RFC 6749 §4.1.1 and §4.1.2.1, OAuth 2.1
//! §4.1.1): client and redirect URI first, then everything else, and the
//! parameters carried through sign-in and consent.

use crate::cimd;
use crate::config::PkceRequired;
use crate::context::Ctx;
use crate::http::{Params, Response};
use crate::pkce;
use crate::redirect_uri;
use crate::scope;
use crate::store::{AppRow, Driver};
use crate::templates;

use super::openid::{self, OidcParams};

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
    /// `prompt`, `max_age`, the hints and the rest of OpenID Connect's
    /// request parameters (`super::openid`).
    pub oidc: OidcParams,
    /// The `sub` of a verified `id_token_hint`: who the client believes is
    /// signed in.
    pub hint_sub: Option<String>,
    /// OpenID Connect `nonce` (Core §3.1.2.1), echoed in the ID token.
    pub nonce: Option<String>,
    /// RFC 8707 `resource` values, canonical; empty: the default audience.
    pub resources: Vec<String>,
    /// RFC 9449 §10 `dpop_jkt`: only a proof by this key redeems the code.
    pub dpop_jkt: Option<String>,
    /// The `request_uri` of a pushed request (RFC 9126): then only it and
    /// `client_id` are carried, and the code's issue spends it.
    pub pushed: Option<String>,
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
    pub(super) fn respond(self, issuer: &str, post: bool) -> Response {
        match self {
            // A 429 page is a budget that reopens within the minute.
            Failure::Page {
                status: 429,
                title,
                message,
            } => Response::html(429, templates::error_page(title, &message)).header("Retry-After", "60"),
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

/// RFC 9700 §4.11.2: an error for a client the platform has not vetted
/// (self-registered, metadata document) is a page, not a redirect: anyone can
/// list any site as such a client's redirect URI, and our origin must not
/// bounce a browser there before the user has acted on our page.
fn unvetted_page(error: &str, description: &str) -> Failure {
    Failure::Page {
        status: 400,
        title: "Request refused",
        message: format!(
            "The app's authorization request cannot be accepted ({error}: {description}). \
             This app is not one the platform registered, so you are not sent back to it automatically."
        ),
    }
}

impl AuthzRequest {
    /// An error sent back to this request's redirect URI (RFC 6749 §4.1.2.1).
    /// `post`: the user's own decision on our consent form (CSRF checked);
    /// before one, an unvetted client's error is a page ([`unvetted_page`]).
    pub(super) fn refuse(&self, issuer: &str, error: &str, description: &str, post: bool) -> Response {
        if !post && !self.app.is_vetted() {
            return unvetted_page(error, description).respond(issuer, post);
        }
        redirect(
            &self.redirect_to,
            &[("error", error), ("error_description", description)],
            self.state.as_deref(),
            issuer,
            post,
        )
    }
}

/// Back to the client, with `state` and `iss` (RFC 9207). 303 after a POST.
pub(super) fn redirect(to: &str, params: &[(&str, &str)], state: Option<&str>, issuer: &str, post: bool) -> Response {
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
    "nonce",
    "dpop_jkt",
];

/// `known`: the app's row when the caller already read it (`show` reads it in
/// the same batch as the session and prior consents).
pub async fn validate<D: Driver>(
    ctx: &Ctx<'_, D>,
    p: &Params,
    known: Option<Option<AppRow>>,
) -> Result<AuthzRequest, Failure> {
    validate_presented(ctx, p, known, None).await
}

/// [`validate`], with the pushed request's parameters when the caller
/// presented its `request_uri` in its own batch (`super::pushed`).
pub async fn validate_presented<D: Driver>(
    ctx: &Ctx<'_, D>,
    p: &Params,
    known: Option<Option<AppRow>>,
    presented: Option<Option<String>>,
) -> Result<AuthzRequest, Failure> {
    let (p, pushed) = super::pushed::resolve(ctx, p, presented).await?;
    check(ctx, &p, known, pushed, false).await
}

/// A request pushed to POST /oauth/par by its authenticated client `app`,
/// validated as the authorize endpoint would; every failure after the
/// client is a [`Failure::Redirect`], so its error code survives.
pub async fn validate_push<D: Driver>(ctx: &Ctx<'_, D>, p: &Params, app: AppRow) -> Result<AuthzRequest, Failure> {
    check(ctx, p, Some(Some(app)), None, true).await
}

async fn check<D: Driver>(
    ctx: &Ctx<'_, D>,
    p: &Params,
    known: Option<Option<AppRow>>,
    pushed: Option<String>,
    pushing: bool,
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
    // A URL is a metadata document client (`crate::cimd`): known only while
    // CIMD is on, and fetched again once its cached document is stale.
    let app = match app {
        Ok(row) if cimd::is_url_client_id(client_id) => {
            if !ctx.config.cimd {
                Ok(None)
            } else {
                match cimd::resolve(ctx, client_id, row).await {
                    Ok(a) => Ok(Some(a)),
                    Err(cimd::Refused::Client(why)) => {
                        return Err(page(
                            400,
                            "Application refused",
                            &format!("This app identified itself by a web address, and {why}."),
                        ))
                    }
                    Err(cimd::Refused::Full) => {
                        ctx.effects.borrow_mut().error = Some("CIMD_MAX_CLIENTS reached".into());
                        return Err(page(
                            429,
                            "Try again later",
                            "This server accepts no more apps identified by their web address for now.",
                        ));
                    }
                    Err(cimd::Refused::Busy) => {
                        return Err(page(
                            429,
                            "Try again later",
                            "Too many apps identified by their web address were looked up from here, or at that address, in the last minute.",
                        ))
                    }
                    Err(cimd::Refused::Storage(e)) => Err(e),
                }
            }
        }
        other => other,
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
        Err(_) => {
            return Err(page(
                503,
                "Temporarily unavailable",
                "Something went wrong on our side. Try again in a moment.",
            ))
        }
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
        // The same rule for a client identified by URL: exact, except the
        // port of a loopback URI (RFC 8252 §7.3), which a native MCP client
        // picks when it starts listening.
        redirect_param.clone()
    } else {
        return Err(page(
            400,
            "Invalid redirect URI",
            ctx.profile.redirect_mismatch(
                ctx.config,
                "The redirect_uri does not exactly match any URI registered for this app.",
            ),
        ));
    };
    let state = p.get("state").map(str::to_string);
    let vetted = app.is_vetted() || pushing;
    let fail = |error, description: &str| {
        if vetted {
            Failure::Redirect {
                to: redirect_to.clone(),
                error,
                description: description.to_string(),
                state: state.clone(),
            }
        } else {
            unvetted_page(error, description)
        }
    };
    // RFC 9126 §5, §6: the setting, or the client's own metadata.
    if pushed.is_none() && !pushing && (ctx.config.par_required || app.require_pushed_authorization_requests != 0) {
        return Err(fail(
            "invalid_request",
            "this app must push its authorization request (RFC 9126): POST it to the \
             pushed_authorization_request_endpoint, then send only client_id and request_uri",
        ));
    }
    if let Some(name) = p.repeated(SINGLE).or_else(|| p.repeated(openid::SINGLE)) {
        return Err(fail(
            "invalid_request",
            &format!("the {name} parameter appears more than once"),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(fail("invalid_request", "state is longer than 1024 characters"));
    }
    // First among the rest: with a request object (refused here), the
    // other parameters may be inside it rather than in the query.
    let oidc = match openid::parse(p) {
        Ok(o) => o,
        Err((error, why)) => return Err(fail(error, &why)),
    };
    // Core §3.1.2.1: a hint must be an ID token we issued (expired is
    // fine) to this client; whose `sub` it names is `show`'s question.
    let hint_sub = match &oidc.id_token_hint {
        None => None,
        Some(h) => match crate::oidc::id_token::verify_hint(ctx, h).await {
            Ok(hint) if hint.aud.contains(&app.id) => Some(hint.sub),
            Ok(_) => return Err(fail("invalid_request", "id_token_hint was not issued to this client")),
            Err(_) => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not an ID token this server issued",
                ))
            }
        },
    };
    match p.get("response_type") {
        Some("code") => {}
        Some(t) if ctx.profile.is_response_type(ctx.config, t) => {}
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
    // `openid profile email` need no declaration while this is an OpenID Provider.
    let undeclared: Vec<String> = scopes
        .iter()
        .filter(|s| !(ctx.config.openid && scope::is_openid_scope(s)))
        .cloned()
        .collect();
    if let Some(bad) = scope::first_outside(&undeclared, &declared) {
        return Err(fail(
            "invalid_scope",
            &format!("the app did not declare the scope {bad:?}"),
        ));
    }
    if scopes.is_empty() {
        return Err(fail("invalid_scope", "no scope requested and the app declares none"));
    }
    let resources = match crate::audience::requested(p, &ctx.config.resource_list(&ctx.issuer)) {
        Ok(r) => r,
        Err(e) => return Err(fail("invalid_target", &e)),
    };
    let nonce = p.get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(fail("invalid_request", "nonce is longer than 512 characters"));
    }
    // A SHA-256 thumbprint, base64url: 43 characters (RFC 7638, RFC 9449 §10).
    let dpop_jkt = p.get("dpop_jkt").map(str::to_string);
    if dpop_jkt
        .as_ref()
        .is_some_and(|j| j.len() != 43 || !j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(fail(
            "invalid_request",
            "dpop_jkt must be a JWK SHA-256 thumbprint (43 characters of base64url)",
        ));
    }
    Ok(AuthzRequest {
        app,
        redirect_param,
        redirect_to,
        scopes,
        state,
        challenge,
        oidc,
        hint_sub,
        nonce,
        resources,
        dpop_jkt,
        pushed,
    })
}

/// The authorize parameters to carry through the sign-in and consent forms.
pub(super) fn carried(r: &AuthzRequest) -> Vec<(&'static str, String)> {
    if let Some(uri) = &r.pushed {
        return vec![("client_id", r.app.id.clone()), ("request_uri", uri.clone())];
    }
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
    if let Some(n) = &r.nonce {
        v.push(("nonce", n.clone()));
    }
    if let Some(j) = &r.dpop_jkt {
        v.push(("dpop_jkt", j.clone()));
    }
    if let Some(c) = &r.challenge {
        v.push(("code_challenge", c.clone()));
        v.push(("code_challenge_method", "S256".to_string()));
    }
    v.extend(r.resources.iter().map(|res| ("resource", res.clone())));
    v.extend(freshness(r));
    v
}

/// What decides, after a sign-in, whether it was fresh enough and whether
/// consent must be asked (`prompt`, `max_age`): carried with the request,
/// so the resumed authorization is the one the client asked for. The hints,
/// locales and `acr_values` only serve the sign-in itself and stay behind.
pub fn freshness(r: &AuthzRequest) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(p) = &r.oidc.prompt.raw {
        v.push(("prompt", p.clone()));
    }
    if let Some(m) = r.oidc.max_age {
        v.push(("max_age", m.to_string()));
    }
    v
}

pub(super) fn authorize_url(r: &AuthzRequest) -> String {
    let pairs = carried(r);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("/oauth/authorize?{}", Params::encode(&refs))
}
