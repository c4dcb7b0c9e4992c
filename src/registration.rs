//! App registration rules (SPEC.md domain rules; fsckmsft, Fluxer, Fiskl).
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use serde::Deserialize;
use serde_json::Value;

use crate::config::MAX_SECRET_EXPIRES_IN;
use crate::redirect_uri;
use crate::scope;

/// Prefix of registration access tokens (RFC 7592).
pub const REGISTRATION_TOKEN_PREFIX: &str = "rat_";
/// Prefix of initial access tokens (RFC 7591 §3).
pub const INITIAL_TOKEN_PREFIX: &str = "iat_";

/// The JSON body of `POST /api/v1/apps`. Unknown fields are refused so a
/// typo (`redirect_uri` for `redirect_uris`) is an error, not a silent default.
/// (`Default` is for code that builds one and leaves the OpenID fields
/// unset, not the defaults of the JSON body.)
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub homepage_url: Option<String>,
    pub terms_url: Option<String>,
    pub privacy_url: Option<String>,
    pub icon: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default = "default_type")]
    pub client_type: String,
    #[serde(default = "default_modes")]
    pub actor_modes: Vec<String>,
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_events: Vec<String>,
    /// Secret lifetime in seconds (Azure DevOps lets a secret expire).
    pub secret_expires_in: Option<i64>,
    /// Owner org when signed in with a browser session (API keys imply it).
    pub org_id: Option<String>,
    /// Fluxer: whether any org may install the app's bot (actor `app`), or
    /// only the owner org.
    #[serde(default = "yes")]
    pub bot_public: bool,
    /// Fluxer: the bot needs a full code grant even in its owner org (no
    /// client_credentials without an install).
    #[serde(default)]
    pub bot_require_code_grant: bool,
    /// The OpenID fields (`crate::client_metadata::openid` checks them).
    #[serde(default)]
    pub id_token_signed_response_alg: Option<Value>,
    #[serde(default)]
    pub post_logout_redirect_uris: Option<Value>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<Value>,
    #[serde(default)]
    pub backchannel_logout_session_required: Option<Value>,
    #[serde(default)]
    pub sector_identifier_uri: Option<Value>,
    /// Client authentication and sender constraint
    /// (`crate::client_metadata::sender` checks them): `private_key_jwt`
    /// makes a confidential app that gets no secret.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<Value>,
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<Value>,
    #[serde(default)]
    pub jwks: Option<Value>,
    #[serde(default)]
    pub jwks_uri: Option<Value>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<Value>,
    /// May start the device authorization grant (RFC 8628); off by default.
    #[serde(default)]
    pub device_authorization: bool,
    /// The token exchange policy (RFC 8693; `grants::token_exchange::policy`
    /// checks it): `null` or absent, off.
    #[serde(default)]
    pub token_exchange: Option<Value>,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/v1/apps/{id}`: every field optional except the `version` the
/// client read (optimistic concurrency). `null` clears an optional URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    pub version: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub homepage_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub terms_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub privacy_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub icon: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub actor_modes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub webhook_url: Option<Option<String>>,
    pub webhook_events: Option<Vec<String>>,
    pub bot_public: Option<bool>,
    pub bot_require_code_grant: Option<bool>,
    /// The OpenID fields: absent keeps, `null` clears.
    #[serde(default, deserialize_with = "present")]
    pub id_token_signed_response_alg: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub post_logout_redirect_uris: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub backchannel_logout_uri: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub backchannel_logout_session_required: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub sector_identifier_uri: Option<Option<Value>>,
    /// Client authentication and sender constraint: absent keeps, `null`
    /// clears. A method switch between a secret and `private_key_jwt` erases
    /// the secret (or leaves the app without one until it rotates one).
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub dpop_bound_access_tokens: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub require_pushed_authorization_requests: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub jwks_uri: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub token_endpoint_auth_signing_alg: Option<Option<Value>>,
    /// The device authorization grant's switch: absent keeps.
    pub device_authorization: Option<bool>,
    /// The token exchange policy: absent keeps, `null` turns exchange off.
    #[serde(default, deserialize_with = "present")]
    pub token_exchange: Option<Option<Value>>,
}

/// A field that is present (even as `null`) becomes `Some(..)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn default_type() -> String {
    "confidential".into()
}
fn default_modes() -> Vec<String> {
    vec!["self".into()]
}

pub const WEBHOOK_EVENTS: &[&str] = &[
    "app.installed",
    "authorization.revoked",
    "app.deleted",
    "secret.rotated",
];

fn check_url(field: &str, v: &Option<String>) -> Result<(), String> {
    let Some(v) = v else { return Ok(()) };
    if v.len() > 2000 {
        return Err(format!("{field} is longer than 2000 characters"));
    }
    let u = url::Url::parse(v).map_err(|_| format!("{field} must be an absolute URL"))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if u.host_str().is_some_and(redirect_uri::is_loopback_host) => Ok(()),
        _ => Err(format!("{field} must use https")),
    }
}

/// `secret_expires_in`: 1 s to ten years. A larger value used to wrap
/// `now + s` into a negative (already expired, or never checked) expiry.
pub fn check_secret_expires_in(v: Option<i64>) -> Result<(), String> {
    match v {
        Some(s) if !(1..=MAX_SECRET_EXPIRES_IN).contains(&s) => Err(format!(
            "secret_expires_in must be 1 to {MAX_SECRET_EXPIRES_IN} seconds (ten years)"
        )),
        _ => Ok(()),
    }
}

/// Longest `icon` data URL, in bytes.
pub const MAX_ICON_BYTES: usize = 200_000;

/// An icon is an https URL or a base64 `data:` URL of a PNG, GIF, JPEG or
/// WebP image. Anything else (`javascript:`, `data:text/html`, SVG, which
/// can carry script) would run in whatever page a client renders it in.
fn check_icon(icon: Option<&str>) -> Result<(), String> {
    use base64::Engine;
    let Some(icon) = icon else { return Ok(()) };
    if icon.len() > MAX_ICON_BYTES {
        return Err(format!("icon is larger than {MAX_ICON_BYTES} bytes"));
    }
    let bad = || "icon must be an https URL or a data:image/(png|gif|jpeg|webp);base64 URL".to_string();
    if let Some(rest) = icon.strip_prefix("data:") {
        let (mime, data) = rest.split_once(";base64,").ok_or_else(bad)?;
        if !matches!(mime, "image/png" | "image/gif" | "image/jpeg" | "image/webp") {
            return Err(bad());
        }
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| "icon's data: URL is not valid base64".to_string())?;
        return Ok(());
    }
    if icon.len() > 2000 {
        return Err("icon URL is longer than 2000 characters".into());
    }
    match url::Url::parse(icon) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(()),
        _ => Err(bad()),
    }
}

/// Validate a registration against the scope catalogue. Returns the cleaned
/// scopes and redirect URIs, or the first problem in words a developer can act on.
pub fn validate(app: &NewApp, catalogue: &[String]) -> Result<(), String> {
    let name_len = app.name.trim().chars().count();
    if !(1..=100).contains(&name_len) {
        return Err("name must be 1 to 100 characters".into());
    }
    if app.description.chars().count() > 400 {
        return Err("description must be at most 400 characters".into());
    }
    check_url("homepage_url", &app.homepage_url)?;
    check_url("terms_url", &app.terms_url)?;
    check_url("privacy_url", &app.privacy_url)?;
    check_url("webhook_url", &app.webhook_url)?;
    check_icon(app.icon.as_deref())?;
    if app.redirect_uris.is_empty() {
        return Err("redirect_uris needs at least one URI".into());
    }
    if app.redirect_uris.len() > 20 {
        return Err("at most 20 redirect_uris".into());
    }
    for u in &app.redirect_uris {
        redirect_uri::validate_for_registration(u)?;
    }
    if app.scopes.is_empty() {
        return Err("scopes needs at least one scope from the catalogue".into());
    }
    for s in &app.scopes {
        if !catalogue.contains(s) {
            return Err(format!(
                "scope {s:?} is not in the catalogue ({})",
                catalogue.join(", ")
            ));
        }
    }
    if !matches!(app.client_type.as_str(), "confidential" | "public") {
        return Err("client_type must be confidential or public".into());
    }
    if app.actor_modes.is_empty() || app.actor_modes.iter().any(|m| m != "app" && m != "self") {
        return Err("actor_modes must be a non-empty list of \"app\" and/or \"self\"".into());
    }
    for e in &app.webhook_events {
        if !WEBHOOK_EVENTS.contains(&e.as_str()) {
            return Err(format!(
                "webhook event {e:?} is unknown (known: {})",
                WEBHOOK_EVENTS.join(", ")
            ));
        }
    }
    if !app.webhook_events.is_empty() && app.webhook_url.is_none() {
        return Err("webhook_events need a webhook_url".into());
    }
    check_secret_expires_in(app.secret_expires_in)?;
    if app.secret_expires_in.is_some() && app.client_type == "public" {
        return Err("public clients have no secret to expire".into());
    }
    Ok(())
}

/// Sorted, de-duplicated, as stored.
pub fn normalized(list: &[String]) -> Vec<String> {
    let mut v: Vec<String> = list.to_vec();
    v.sort();
    v.dedup();
    v
}

pub fn to_json(list: &[String]) -> String {
    scope::to_json(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NewApp {
        serde_json::from_value(serde_json::json!({
            "name": "Zapier-ish",
            "redirect_uris": ["https://app.example/cb"],
            "scopes": ["posts:read"]
        }))
        .unwrap()
    }

    fn cat() -> Vec<String> {
        vec!["posts:read".into(), "posts:write".into()]
    }

    #[test]
    fn accepts_minimal_app() {
        assert!(validate(&base(), &cat()).is_ok());
    }

    #[test]
    fn enforces_limits() {
        let mut a = base();
        a.name = "x".repeat(101);
        assert!(validate(&a, &cat()).unwrap_err().contains("name"));
        let mut a = base();
        a.description = "x".repeat(401);
        assert!(validate(&a, &cat()).unwrap_err().contains("description"));
        let mut a = base();
        a.scopes = vec!["admin:all".into()];
        assert!(validate(&a, &cat()).unwrap_err().contains("catalogue"));
        let mut a = base();
        a.redirect_uris = vec!["http://app.example/cb".into()];
        assert!(validate(&a, &cat()).is_err());
        let mut a = base();
        a.homepage_url = Some("javascript:alert(1)".into());
        assert!(validate(&a, &cat()).is_err());
    }

    #[test]
    fn icon_is_https_or_a_raster_data_url() {
        let with = |i: &str| {
            let mut a = base();
            a.icon = Some(i.into());
            validate(&a, &cat())
        };
        assert!(with("https://cdn.example/icon.png").is_ok());
        assert!(with("data:image/png;base64,iVBORw0KGgo=").is_ok());
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "http://cdn.example/icon.png",
            "data:text/html;base64,PHNjcmlwdD4=",
            "data:image/svg+xml;base64,PHN2Zz4=",
            "data:image/png,notbase64",
            "data:image/png;base64,@@@",
            "//cdn.example/i.png",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
        assert!(with(&format!("data:image/png;base64,{}", "A".repeat(MAX_ICON_BYTES))).is_err());
    }

    #[test]
    fn secret_expires_in_is_bounded() {
        let with = |s: i64| {
            let mut a = base();
            a.secret_expires_in = Some(s);
            validate(&a, &cat())
        };
        assert!(with(1).is_ok());
        assert!(with(MAX_SECRET_EXPIRES_IN).is_ok());
        for bad in [0, -1, MAX_SECRET_EXPIRES_IN + 1, i64::MAX] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_fields_refused() {
        let r: Result<NewApp, _> = serde_json::from_value(serde_json::json!({
            "name": "a", "redirect_uri": ["https://a.example"], "redirect_uris": [], "scopes": []
        }));
        assert!(r.is_err());
    }
}
