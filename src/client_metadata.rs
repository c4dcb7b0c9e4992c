//! RFC 7591 client metadata: what a self-registered client (dynamic
//! registration, or a Client ID Metadata Document) may ask for, checked with
//! the rules of registered apps (`crate::registration`).
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod openid;
pub mod sender;

use serde::Deserialize;

use crate::error::ApiError;
use crate::redirect_uri;
use crate::registration::{self, NewApp};
use openid::{OpenIdClient, OpenIdInput, Policy};
use sender::{SenderClient, SenderInput, PRIVATE_KEY_JWT};

/// The metadata fields this server registers. Any other member is ignored
/// (RFC 7591 §2: "the authorization server MUST ignore any client metadata
/// sent by the client that it does not understand").
#[derive(Debug, Default, Deserialize)]
pub struct ClientMetadata {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    /// RFC 7592 update: the client's own id, and optionally its current secret.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Never registered from a request; a metadata document carrying it
    /// asks for a secret, and is refused (`crate::cimd`).
    pub client_secret_expires_at: Option<serde_json::Value>,
    /// The OpenID fields (`openid`, one rule set for every kind of client),
    /// as sent: a wrong type is refused there, naming the field.
    pub id_token_signed_response_alg: Option<serde_json::Value>,
    pub post_logout_redirect_uris: Option<serde_json::Value>,
    pub backchannel_logout_uri: Option<serde_json::Value>,
    pub backchannel_logout_session_required: Option<serde_json::Value>,
    pub sector_identifier_uri: Option<serde_json::Value>,
    /// Sender constraint and client authentication (`sender`), as sent.
    pub dpop_bound_access_tokens: Option<serde_json::Value>,
    pub require_pushed_authorization_requests: Option<serde_json::Value>,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<serde_json::Value>,
    pub token_endpoint_auth_signing_alg: Option<serde_json::Value>,
}

impl ClientMetadata {
    pub fn openid(&self) -> OpenIdInput {
        OpenIdInput {
            id_token_signed_response_alg: self.id_token_signed_response_alg.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: self.backchannel_logout_session_required.clone(),
            sector_identifier_uri: self.sector_identifier_uri.clone(),
        }
    }

    pub fn sender(&self) -> SenderInput {
        SenderInput {
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.clone(),
            require_pushed_authorization_requests: self.require_pushed_authorization_requests.clone(),
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg.clone(),
        }
    }
}

/// What a valid request registers.
#[derive(Debug)]
pub struct Registration {
    pub name: String,
    pub homepage_url: Option<String>,
    pub terms_url: Option<String>,
    pub privacy_url: Option<String>,
    pub icon: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub auth_method: &'static str,
    pub openid: OpenIdClient,
    pub sender: SenderClient,
    /// `grant_types` named the device authorization grant (RFC 8628):
    /// the client's `device_authorization` switch.
    pub device_authorization: bool,
}

/// RFC 8628's grant type, as a client registers it.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl Registration {
    pub fn is_public(&self) -> bool {
        self.auth_method == "none"
    }
    /// A confidential client that authenticates with a secret (not a key).
    pub fn has_secret(&self) -> bool {
        !self.is_public() && self.auth_method != PRIVATE_KEY_JWT
    }
}

pub fn invalid(d: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_client_metadata", d)
}

fn invalid_redirect(d: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_redirect_uri", d)
}

/// Check a request. `allow_confidential`: whether a client with a secret may
/// be registered (policy `initial_access_token`); `allow_private_key_jwt`:
/// whether one authenticating with its own key may (a metadata document
/// client holds no secret, but may hold a key); `allowed_scopes` is
/// `DCR_SCOPES` (empty: the catalogue); `policy` what the OpenID fields may
/// ask for. The sector identifier document is not fetched here
/// (`crate::cimd::sector`).
pub fn validate(
    m: &ClientMetadata,
    allow_confidential: bool,
    allow_private_key_jwt: bool,
    catalogue: &[String],
    allowed_scopes: &[String],
    policy: &Policy,
) -> Result<Registration, ApiError> {
    let uris = m.redirect_uris.clone().unwrap_or_default();
    if uris.is_empty() {
        return Err(invalid_redirect("redirect_uris needs at least one redirect URI"));
    }
    if uris.len() > 20 {
        return Err(invalid_redirect("at most 20 redirect_uris"));
    }
    for u in &uris {
        redirect_uri::validate_for_registration(u).map_err(invalid_redirect)?;
    }
    let auth_method = match m.token_endpoint_auth_method.as_deref() {
        // RFC 7591's default is client_secret_basic; where only public
        // clients are registered, an omitted method is registered as `none`
        // (and the response says so).
        None if !allow_confidential => "none",
        None => "client_secret_basic",
        Some("none") => "none",
        Some("client_secret_basic") => "client_secret_basic",
        Some("client_secret_post") => "client_secret_post",
        Some(PRIVATE_KEY_JWT) => PRIVATE_KEY_JWT,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
            )))
        }
    };
    let allowed = match auth_method {
        "none" => true,
        PRIVATE_KEY_JWT => allow_private_key_jwt,
        _ => allow_confidential,
    };
    if !allowed {
        return Err(invalid(
            "this server registers only public clients without an initial access token: \
             use token_endpoint_auth_method \"none\" (with PKCE)",
        ));
    }
    let grants = m
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grants
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token" | DEVICE_CODE_GRANT))
    {
        return Err(invalid(format!(
            "grant type {g:?} is not available to self-registered clients (authorization_code, refresh_token, {DEVICE_CODE_GRANT})"
        )));
    }
    let device_authorization = grants.iter().any(|g| g == DEVICE_CODE_GRANT);
    if !grants.iter().any(|g| g == "authorization_code") {
        return Err(invalid("grant_types must include authorization_code"));
    }
    let responses = m.response_types.clone().unwrap_or_else(|| vec!["code".into()]);
    if responses.is_empty() || responses.iter().any(|r| r != "code") {
        return Err(invalid("response_types must be [\"code\"]"));
    }
    let offered: Vec<String> = catalogue
        .iter()
        .filter(|s| allowed_scopes.is_empty() || allowed_scopes.contains(s))
        .cloned()
        .collect();
    let requested: Vec<String> = m
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        // OpenID's scopes are built in (any client may ask for them at
        // authorize without declaring them, `crate::scope::OPENID_SCOPES`):
        // accepted here and not stored (RFC 7591 §2 lets the server replace
        // the requested value), unless the catalogue has one of that name.
        .filter(|s| !crate::scope::is_openid_scope(s) || offered.iter().any(|o| o == s))
        .map(str::to_string)
        .collect();
    if let Some(bad) = requested.iter().find(|s| !offered.contains(s)) {
        return Err(invalid(format!(
            "scope {bad:?} is not offered to self-registered clients ({})",
            offered.join(" ")
        )));
    }
    // No scope asked for: everything offered (MCP clients usually learn the
    // scopes they need at authorize time, from the resource's metadata).
    // (Only OpenID's asked for counts as none: a client declares at least
    // one of the catalogue's, and what it gets is still what authorize asks.)
    let scopes = if requested.is_empty() {
        offered
    } else {
        registration::normalized(&requested)
    };
    if let Some(logo) = &m.logo_uri {
        if !logo.starts_with("https://") {
            return Err(invalid("logo_uri must be an https URL"));
        }
    }
    let name = match m.client_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        // Something to show on consent: the host the codes go to.
        None => url::Url::parse(&uris[0])
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "Unnamed client".into()),
    };
    let app = NewApp {
        name,
        description: String::new(),
        homepage_url: m.client_uri.clone(),
        terms_url: m.tos_uri.clone(),
        privacy_url: m.policy_uri.clone(),
        icon: m.logo_uri.clone(),
        redirect_uris: uris,
        scopes,
        client_type: if auth_method == "none" {
            "public"
        } else {
            "confidential"
        }
        .into(),
        actor_modes: vec!["self".into()],
        webhook_url: None,
        webhook_events: Vec::new(),
        secret_expires_in: None,
        org_id: None,
        bot_public: false,
        bot_require_code_grant: false,
        ..NewApp::default()
    };
    registration::validate(&app, catalogue).map_err(|e| {
        // The app rules name the platform's fields; say the RFC 7591 ones.
        let e = e
            .replace("homepage_url", "client_uri")
            .replace("terms_url", "tos_uri")
            .replace("privacy_url", "policy_uri")
            .replace("icon", "logo_uri");
        let e = if e.starts_with("name ") {
            e.replacen("name", "client_name", 1)
        } else {
            e
        };
        invalid(e)
    })?;
    let openid = openid::validate(&m.openid(), &app.redirect_uris, policy).map_err(invalid)?;
    // RFC 7591 lets a client publish keys for uses this server has none
    // of (request objects, encryption): without private_key_jwt they are
    // ignored (§2), not refused, and not stored.
    let pk = auth_method == PRIVATE_KEY_JWT;
    let mut sent = m.sender();
    if !pk {
        sent.jwks = None;
        sent.jwks_uri = None;
        sent.token_endpoint_auth_signing_alg = None;
    }
    let sender = sender::validate(&sent, pk, policy.allow_http_loopback).map_err(invalid)?;
    Ok(Registration {
        name: app.name,
        homepage_url: app.homepage_url,
        terms_url: app.terms_url,
        privacy_url: app.privacy_url,
        icon: app.icon,
        redirect_uris: app.redirect_uris,
        scopes: app.scopes,
        auth_method,
        openid,
        sender,
        device_authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn cat() -> Vec<String> {
        ["profile:read", "posts:read", "posts:write"].map(String::from).to_vec()
    }

    fn policy() -> Policy {
        Policy {
            algs: vec!["RS256"],
            pairwise: false,
            allow_http_loopback: false,
        }
    }

    fn meta(v: Value) -> ClientMetadata {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: Value, confidential: bool) -> Result<Registration, ApiError> {
        validate(&meta(v), confidential, confidential, &cat(), &[], &policy())
    }

    #[test]
    fn minimal_public_client_gets_defaults() {
        let r = check(
            json!({"redirect_uris": ["http://127.0.0.1:33418/cb"], "extra": {"x": 1}}),
            false,
        )
        .unwrap();
        assert_eq!(r.auth_method, "none");
        assert_eq!(r.name, "127.0.0.1");
        assert_eq!(r.scopes, cat());
    }

    #[test]
    fn refusals_name_the_rfc_error() {
        let code = |v: Value, c: bool| check(v, c).unwrap_err().code;
        let cb = json!(["https://client.example/cb"]);
        assert_eq!(code(json!({}), false), "invalid_redirect_uri");
        assert_eq!(
            code(json!({"redirect_uris": ["javascript:alert(1)"]}), false),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb#f"]}), false),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code(json!({"redirect_uris": ["http://a.example/cb"]}), false),
            "invalid_redirect_uri"
        );
        for bad in [
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": cb, "grant_types": ["client_credentials"]}),
            json!({"redirect_uris": cb, "grant_types": ["implicit"]}),
            json!({"redirect_uris": cb, "grant_types": ["refresh_token"]}),
            json!({"redirect_uris": cb, "response_types": ["token"]}),
            json!({"redirect_uris": cb, "scope": "profile:read admin:all"}),
            json!({"redirect_uris": cb, "client_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": cb, "logo_uri": "data:image/png;base64,AAAA"}),
            json!({"redirect_uris": cb, "client_name": "x".repeat(101)}),
        ] {
            assert_eq!(code(bad.clone(), false), "invalid_client_metadata", "{bad}");
        }
        assert!(check(
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_post"}),
            true
        )
        .is_ok());
    }

    #[test]
    fn dcr_scopes_narrow_what_is_offered() {
        let m = meta(json!({"redirect_uris": ["https://c.example/cb"]}));
        let r = validate(
            &m,
            false,
            false,
            &cat(),
            &["posts:read".into(), "nope".into()],
            &policy(),
        )
        .unwrap();
        assert_eq!(r.scopes, vec!["posts:read"]);
        let m = meta(json!({"redirect_uris": ["https://c.example/cb"], "scope": "posts:write"}));
        assert!(validate(&m, false, false, &cat(), &["posts:read".into()], &policy()).is_err());
    }

    #[test]
    fn openid_scopes_are_accepted_and_not_stored() {
        let m = meta(json!({"redirect_uris": ["https://c.example/cb"], "scope": "openid profile email posts:read"}));
        assert_eq!(
            validate(&m, false, false, &cat(), &[], &policy()).unwrap().scopes,
            vec!["posts:read"]
        );
        // Only OpenID's: as if none was asked for (everything offered).
        let m = meta(json!({"redirect_uris": ["https://c.example/cb"], "scope": "openid email"}));
        assert_eq!(
            validate(&m, false, false, &cat(), &[], &policy()).unwrap().scopes,
            cat()
        );
        let m = meta(json!({"redirect_uris": ["https://c.example/cb"], "scope": "openid admin:all"}));
        assert!(validate(&m, false, false, &cat(), &[], &policy()).is_err());
    }
}
