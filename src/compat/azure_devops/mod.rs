//! Azure DevOps's OAuth wire format (`AZURE_DEVOPS_COMPAT`): paths, texts, response and token shapes, self-revocation.
//!
//! Everything here is what the Azure DevOps document's Express app sends and
//! parses; the protocol acts behind it are the core's (the same redemption,
//! rotation, replay and family revocation, in the same single D1 batch). The
//! grant itself is [`grant`].
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod grant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::context::{Ctx, Profile};
use crate::crypto::{self, well_formed};
use crate::error::OAuthError;
use crate::http::{Params, Request, Response};
use crate::store::{Driver, TokenKind};

/// `grant_type` of the code exchange (RFC 7523 §2.1's URN, used for a code).
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `client_assertion_type` of every assertion request (RFC 7523 §2.2's URN;
/// the "assertion" is the client secret itself).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The authorize `response_type` its apps send for the code flow.
pub const RESPONSE_TYPE: &str = "Assertion";

/// The document's error texts (its "Common Issues and Troubleshooting").
pub const CODE_INVALID: &str = "The provided authorization code is invalid or has expired.";
pub const ASSERTION_INVALID: &str = "The client assertion is invalid.";
pub const SCOPE_FORBIDDEN: &str = "The access token is not authorized for the requested scope.";
/// Shown on the error page for a redirect URI that is not registered.
pub const REDIRECT_MISMATCH: &str = "AADSTS50011: The reply URL specified in the request does not match the \
                                     reply URLs configured for the application";
/// `error_description` of `access_denied` when the user clicks Deny.
pub const DENIED: &str = "User did not authorize the request";
/// The document gives no text for a bad refresh token; this one reads like its code's.
pub const REFRESH_INVALID: &str = "The provided refresh token is invalid or has expired.";

/// Its paths (`/oauth2/authorize`, `/oauth2/token`, `/oauth2/revoke`) as
/// ours, so an app changes only the host it calls. Off: unchanged (404).
pub fn route_path<'p>(config: &Config, path: &'p str) -> &'p str {
    if !config.azure_devops_compat {
        return path;
    }
    match path {
        "/oauth2/authorize" => "/oauth/authorize",
        "/oauth2/token" => "/oauth/token",
        "/oauth2/revoke" => "/oauth/revoke",
        other => other,
    }
}

/// `response_type=Assertion` is the code flow under the profile.
pub fn is_response_type(config: &Config, response_type: &str) -> bool {
    config.azure_devops_compat && response_type == RESPONSE_TYPE
}

/// The authorize error page's text for an unregistered redirect URI.
pub fn redirect_mismatch<'a>(config: &Config, core: &'a str) -> &'a str {
    if config.azure_devops_compat {
        REDIRECT_MISMATCH
    } else {
        core
    }
}

/// `error_description` sent back with `access_denied` after Deny.
pub fn denied<'a>(config: &Config, core: &'a str) -> &'a str {
    if config.azure_devops_compat {
        DENIED
    } else {
        core
    }
}

/// The profile: each hook calls the function of the same name, which still
/// checks `azure_devops_compat` itself.
pub struct AzureDevOps;

impl<D: Driver> Profile<D> for AzureDevOps {
    fn route_path<'p>(&self, config: &Config, path: &'p str) -> &'p str {
        route_path(config, path)
    }

    fn is_response_type(&self, config: &Config, response_type: &str) -> bool {
        is_response_type(config, response_type)
    }

    fn redirect_mismatch<'a>(&self, config: &Config, core: &'a str) -> &'a str {
        redirect_mismatch(config, core)
    }

    fn denied<'a>(&self, config: &Config, core: &'a str) -> &'a str {
        denied(config, core)
    }

    fn forbidden(&self, resp: Response) -> Response {
        forbidden(resp)
    }

    fn unwrapped<'t>(&self, config: &Config, token: &'t str) -> std::borrow::Cow<'t, str> {
        unwrapped(config, token)
    }

    fn self_revocation<'a>(
        &'a self,
        ctx: &'a Ctx<'a, D>,
        req: &'a Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>> + 'a>> {
        Box::pin(self_revocation(ctx, req))
    }

    fn token<'a>(
        &'a self,
        ctx: &'a Ctx<'a, D>,
        req: &'a Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>> + 'a>> {
        Box::pin(grant::handle(ctx, req))
    }
}

/// Which token request is in the assertion form: the exchange (its grant
/// type) or a refresh that carries `assertion` and no `refresh_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Exchange,
    Refresh,
}

pub fn form_of(config: &Config, form: &Params) -> Option<Form> {
    if !config.azure_devops_compat {
        return None;
    }
    match form.get("grant_type") {
        // An ID-JAG (`typ: oauth-id-jag+jwt`) is the core's, on or off.
        Some(GRANT_JWT_BEARER) if crate::grants::id_jag::is_id_jag(form.get("assertion").unwrap_or_default()) => None,
        Some(GRANT_JWT_BEARER) => Some(Form::Exchange),
        Some("refresh_token") if form.get("assertion").is_some() && form.get("refresh_token").is_none() => {
            Some(Form::Refresh)
        }
        _ => None,
    }
}

/// The token response as the document shows it: `token_type` "jwt",
/// `expires_in` a string (its app `parseInt`s it; a typed client declares a
/// string), both tokens JWT-shaped, no `scope` (the document's four fields).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: String,
    pub refresh_token: String,
}

impl TokenResponse {
    pub fn new(access_token: String, refresh_plain: &str, expires_in: i64) -> Self {
        TokenResponse {
            access_token,
            token_type: "jwt",
            expires_in: expires_in.to_string(),
            refresh_token: wrap_refresh(refresh_plain),
        }
    }

    /// RFC 9449: a token bound to the proof's key says so.
    pub fn bound(self, dpop: bool) -> Self {
        if dpop {
            TokenResponse {
                token_type: "DPoP",
                ..self
            }
        } else {
            self
        }
    }
}

/// An error in the document's words: every bad code is its invalid_grant
/// text, every failed client assertion (wrong, rotated or expired secret,
/// unknown client) its invalid_client text. Other errors keep the core's.
pub fn error(form: Form, e: OAuthError) -> Response {
    match e {
        OAuthError::InvalidGrant(_) => OAuthError::InvalidGrant(
            match form {
                Form::Exchange => CODE_INVALID,
                Form::Refresh => REFRESH_INVALID,
            }
            .into(),
        ),
        OAuthError::InvalidClient { .. } => OAuthError::client(ASSERTION_INVALID, false),
        other => other,
    }
    .into_response()
}

/// 403 for a missing scope, with the document's JSON body (`{"message"}`).
pub fn forbidden(resp: Response) -> Response {
    let mut out = Response::json(403, &json!({ "message": SCOPE_FORBIDDEN }));
    for (k, v) in resp.headers() {
        if !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length") {
            out = out.header(k, v);
        }
    }
    out
}

// ---- the refresh token's shape ----------------------------------------------
//
// The document's clients never parse the refresh token: they keep it and send
// it back as `assertion`. So it stays the core's opaque token (stored as
// SHA-256, rotated, family-revoked), only shaped like the document's
// `"eyJ0eXAi..."`: `b64url({"typ":"rt"}).b64url({"rt":"<opaque>"}).` — no
// `alg`, so no JWT library takes it for a signed token, and no signing key
// it would outlive (a refresh token lives 90 days, a key need not).

const REFRESH_HEADER: &str = r#"{"typ":"rt"}"#;

pub fn wrap_refresh(plain: &str) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(REFRESH_HEADER),
        URL_SAFE_NO_PAD.encode(json!({ "rt": plain }).to_string())
    )
}

/// The opaque refresh token inside a JWT-shaped one, if it is ours and has
/// the refresh prefix; anything else (a code, an access token) is `None`.
pub fn unwrap_refresh(config: &Config, token: &str) -> Option<String> {
    if token.len() > 512 {
        return None;
    }
    let header = URL_SAFE_NO_PAD.encode(REFRESH_HEADER);
    let body = token
        .strip_prefix(header.as_str())?
        .strip_prefix('.')?
        .strip_suffix('.')?;
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    let plain = json.get("rt")?.as_str()?;
    well_formed(plain, &config.prefixes.refresh).then(|| plain.to_string())
}

/// A token as the core knows it: under the profile a JWT-shaped refresh
/// token is its opaque inside (for the core's revocation and introspection).
pub fn unwrapped<'t>(config: &Config, token: &'t str) -> std::borrow::Cow<'t, str> {
    match config
        .azure_devops_compat
        .then(|| unwrap_refresh(config, token))
        .flatten()
    {
        Some(inner) => std::borrow::Cow::Owned(inner),
        None => std::borrow::Cow::Borrowed(token),
    }
}

// ---- revocation as the document's helper sends it ---------------------------

/// `Authorization: Bearer <token>` with `token=<that same token>` and no
/// client credentials: possession proves the right to end it (nothing more
/// than its holder could do with it anyway). An access token ends only
/// itself; a refresh token its grant. A different `token` is refused: a bearer
/// never revokes another token. `None`: not this form (the core decides).
pub async fn self_revocation<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<Response> {
    if !ctx.config.azure_devops_compat {
        return None;
    }
    let bearer = crate::bearer::presented(req)?;
    let form = req.form().ok()?;
    if form.get("client_id").is_some() || form.get("client_secret").is_some() {
        return None;
    }
    ctx.effects.borrow_mut().route = "revoke/bearer";
    if let Some(name) = form.repeated(&["token", "token_type_hint"]) {
        let e = OAuthError::InvalidRequest(format!("the {name} parameter appears more than once"));
        return Some(e.into_response());
    }
    let Some(token) = form.get("token") else {
        return Some(OAuthError::InvalidRequest("token is required".into()).into_response());
    };
    if !crypto::ct_eq(token, bearer) {
        let e = OAuthError::InvalidRequest(
            "with Authorization: Bearer, token must be that same token (a bearer may revoke only itself)".into(),
        );
        return Some(e.into_response());
    }
    // What is not ours (or not a token) is answered like an unknown token
    // (RFC 7009 §2.2): 200, nothing changed.
    let target = match unwrap_refresh(ctx.config, token) {
        Some(rt) => Some((rt, TokenKind::Refresh)),
        None if well_formed(token, &ctx.config.prefixes.refresh) => Some((token.to_string(), TokenKind::Refresh)),
        None => crate::bearer::storage_handle(ctx, token, true)
            .await
            .map(|h| (h, TokenKind::Access)),
    };
    if let Some((handle, kind)) = target {
        if let Err(e) = ctx
            .store
            .revoke_by_bearer(&crypto::sha256_hex(&handle), kind, ctx.now)
            .await
        {
            return Some(OAuthError::from(e).into_response());
        }
    }
    Some(Response::new(200).no_store())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_jwt_shaped_and_only_ours_unwrap() {
        let c = Config::default();
        let plain = crypto::new_token(&c.prefixes.refresh);
        let wrapped = wrap_refresh(&plain);
        assert!(wrapped.starts_with("eyJ0eXAi"), "{wrapped}");
        assert_eq!(wrapped.matches('.').count(), 2);
        assert_eq!(unwrap_refresh(&c, &wrapped), Some(plain.clone()));
        assert_eq!(unwrap_refresh(&c, &plain), None);
        let code = wrap_refresh(&crypto::new_token(&c.prefixes.code));
        assert_eq!(unwrap_refresh(&c, &code), None, "a wrapped code is not a refresh token");
        assert_eq!(unwrap_refresh(&c, &format!("{wrapped}x")), None);
        assert_eq!(unwrap_refresh(&c, "eyJ0eXAiOiJydCJ9.!!.",), None);
    }

    #[test]
    fn everything_is_off_by_default() {
        let off = Config::default();
        assert_eq!(route_path(&off, "/oauth2/token"), "/oauth2/token");
        assert!(!is_response_type(&off, "Assertion"));
        let form = Params::parse(format!("grant_type={GRANT_JWT_BEARER}&assertion=x").as_bytes());
        assert_eq!(form_of(&off, &form), None);
        let on = Config {
            azure_devops_compat: true,
            ..Config::default()
        };
        assert_eq!(route_path(&on, "/oauth2/token"), "/oauth/token");
        assert!(is_response_type(&on, "Assertion"));
        assert!(!is_response_type(&on, "assertion"));
        assert_eq!(form_of(&on, &form), Some(Form::Exchange));
        let refresh = Params::parse(b"grant_type=refresh_token&assertion=x");
        assert_eq!(form_of(&on, &refresh), Some(Form::Refresh));
        let core = Params::parse(b"grant_type=refresh_token&refresh_token=x");
        assert_eq!(form_of(&on, &core), None, "the core's refresh stays the core's");
    }

    #[test]
    fn an_id_jag_is_never_the_profiles() {
        let on = Config {
            azure_devops_compat: true,
            ..Config::default()
        };
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#);
        let jag = format!("{header}.e30.c2ln");
        let with =
            |a: &str| Params::parse(Params::encode(&[("grant_type", GRANT_JWT_BEARER), ("assertion", a)]).as_bytes());
        assert_eq!(form_of(&on, &with(&jag)), None, "the core's ID-JAG grant decides");
        assert_eq!(form_of(&on, &with("a-code")), Some(Form::Exchange));
    }

    #[test]
    fn the_rate_key_the_sql_builds_is_client_auths() {
        // store::assertion builds 'client:' || id || ':' || source in SQL.
        assert_eq!(
            crate::client_auth::rate_key("app_1", "203.0.113.7"),
            "client:app_1:203.0.113.7"
        );
    }
}
