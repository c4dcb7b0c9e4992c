//! OpenID client metadata (OIDC Registration §2, RP-Initiated Logout §3.1,
//! Back-Channel Logout §2.2): the one rule set for the five OpenID fields of
//! every kind of client (platform apps, RFC 7591/7592, metadata documents).
//! The sector identifier document itself is fetched and judged in
//! `crate::cimd::sector`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::{Config, SubjectType};
use crate::redirect_uri;
use crate::registration::{AppUpdate, NewApp};
use crate::store::AppRow;

/// Most post-logout redirect URIs per client (as redirect URIs).
pub const MAX_POST_LOGOUT_URIS: usize = 20;
/// Longest URI of any of the fields (as redirect URIs).
pub const MAX_URI_LEN: usize = 2000;

/// The five fields as sent. Kept as raw JSON so a wrong type is refused
/// with the field's name, whichever body carried it.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct OpenIdInput {
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
}

/// The five fields once accepted, as stored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpenIdClient {
    /// `None`: RS256, the algorithm every relying party can verify.
    pub id_token_signed_response_alg: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub sector_identifier_uri: Option<String>,
}

/// What the server can honour: the ID token algorithms its keys allow, and
/// whether subjects are pairwise.
#[derive(Debug, Clone)]
pub struct Policy {
    pub algs: Vec<&'static str>,
    pub pairwise: bool,
    /// `CIMD_ALLOW_HTTP_LOOPBACK` (development): a sector identifier
    /// document on a loopback http URL, as for metadata documents.
    pub allow_http_loopback: bool,
}

/// The narrowest: RS256 only, public subjects, no loopback documents.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            algs: vec!["RS256"],
            pairwise: false,
            allow_http_loopback: false,
        }
    }
}

impl Policy {
    pub fn from_config(config: &Config) -> Self {
        // As `oidc::id_token::algorithms` (which this layer cannot import):
        // RS256 always (the default; OPENID=on requires an RSA key), ES256
        // only while JWT_SIGNING_KEYS holds an EC key to sign it with.
        let mut algs = vec!["RS256"];
        if !config.jwt_keys.is_empty() {
            algs.push("ES256");
        }
        Policy {
            algs,
            pairwise: config.subject_type == SubjectType::Pairwise,
            allow_http_loopback: config.cimd_allow_http_loopback,
        }
    }
}

fn string(field: &str, v: &Option<Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

/// A URI under the redirect URI rules (https, or http on loopback; no
/// fragment, wildcard or credentials; at most [`MAX_URI_LEN`]), its refusal
/// naming `field`.
fn redirect_like(field: &str, uri: &str) -> Result<(), String> {
    redirect_uri::validate_for_registration(uri).map_err(|e| match e.strip_prefix("redirect URI") {
        Some(rest) => format!("{field}{rest}"),
        None => format!("{field}: {e}"),
    })
}

/// The sector identifier URL (OIDC Core §8.1): https on a named public
/// host, fetched by this server, so no IP literal, loopback, credentials,
/// fragment; loopback http only in development.
pub fn check_sector_uri(raw: &str, allow_http_loopback: bool) -> Result<url::Url, String> {
    check_fetch_uri("sector_identifier_uri", raw, allow_http_loopback)
}

/// A URL this server fetches (a sector identifier document, a client's JWK
/// set): the rules of [`check_sector_uri`], the refusal naming `field`.
pub fn check_fetch_uri(field: &str, raw: &str, allow_http_loopback: bool) -> Result<url::Url, String> {
    let f = field;
    if raw.len() > MAX_URI_LEN {
        return Err(format!("{f} is longer than {MAX_URI_LEN} characters"));
    }
    let u = url::Url::parse(raw).map_err(|_| format!("{f} must be an absolute https URL"))?;
    let host = u.host_str().unwrap_or("").to_ascii_lowercase();
    let loopback = names_loopback(&host);
    match u.scheme() {
        "https" if !loopback || allow_http_loopback => {}
        "http" if loopback && allow_http_loopback => {}
        "https" => return Err(format!("{f} names a loopback host; it must be a public https URL")),
        _ => return Err(format!("{f} must use https")),
    }
    if !loopback && matches!(u.host(), Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))) {
        return Err(format!("{f} must name a host, not an IP address"));
    }
    if host.is_empty() || host.ends_with('.') {
        return Err(format!("{f} must name a host (without a trailing dot)"));
    }
    if raw.contains('#') {
        return Err(format!("{f} must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("{f} must not contain a user name or password"));
    }
    Ok(u)
}

/// `localhost`, `*.localhost` (RFC 6761 §6.3), 127.0.0.0/8 and `[::1]`.
fn names_loopback(host: &str) -> bool {
    redirect_uri::is_loopback_host(host)
        || host.ends_with(".localhost")
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// The distinct hosts of `uris`, sorted.
pub fn hosts(uris: &[String]) -> Vec<String> {
    let mut h: Vec<String> = uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_ascii_lowercase))
        .collect();
    h.sort();
    h.dedup();
    h
}

/// Check the fields of a client whose redirect URIs are `redirect_uris`
/// (already valid). The refusal names the field and the reason.
pub fn validate(input: &OpenIdInput, redirect_uris: &[String], policy: &Policy) -> Result<OpenIdClient, String> {
    let alg = string("id_token_signed_response_alg", &input.id_token_signed_response_alg)?;
    if let Some(a) = &alg {
        if !policy.algs.contains(&a.as_str()) {
            let why = match a.as_str() {
                "ES256" => "this server holds no EC signing key",
                "none" => "ID tokens are always signed",
                _ => "not supported",
            };
            return Err(format!(
                "id_token_signed_response_alg {a:?} is refused ({why}); use one of: {}",
                policy.algs.join(", ")
            ));
        }
    }
    let post_logout = match &input.post_logout_redirect_uris {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_POST_LOGOUT_URIS {
                return Err(format!("at most {MAX_POST_LOGOUT_URIS} post_logout_redirect_uris"));
            }
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let Value::String(s) = i else {
                    return Err("post_logout_redirect_uris must be an array of strings".into());
                };
                redirect_like("post_logout_redirect_uri", s)?;
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            out
        }
        Some(_) => return Err("post_logout_redirect_uris must be an array of strings".into()),
    };
    let backchannel = string("backchannel_logout_uri", &input.backchannel_logout_uri)?;
    if let Some(b) = &backchannel {
        redirect_like("backchannel_logout_uri", b)?;
    }
    let session_required = match &input.backchannel_logout_session_required {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("backchannel_logout_session_required must be true or false".into()),
    };
    let sector = string("sector_identifier_uri", &input.sector_identifier_uri)?;
    if let Some(s) = &sector {
        check_sector_uri(s, policy.allow_http_loopback)?;
    }
    // Loopback hosts name no sector (every native app on a machine shares
    // them; `oidc::subject` skips them too), so `localhost` beside
    // `127.0.0.1` is not a span.
    let spanned: Vec<String> = hosts(redirect_uris)
        .into_iter()
        .filter(|h| !names_loopback(h))
        .collect();
    if policy.pairwise && sector.is_none() && spanned.len() > 1 {
        return Err(format!(
            "redirect_uris span more than one host ({}) and subjects are pairwise on this server: \
             register a sector_identifier_uri whose document lists every redirect URI (OpenID Connect Core §8.1)",
            spanned.join(", ")
        ));
    }
    Ok(OpenIdClient {
        id_token_signed_response_alg: alg,
        post_logout_redirect_uris: post_logout,
        backchannel_logout_uri: backchannel,
        backchannel_logout_session_required: session_required,
        sector_identifier_uri: sector,
    })
}

impl OpenIdClient {
    pub fn of(app: &AppRow) -> Self {
        OpenIdClient {
            id_token_signed_response_alg: app.id_token_signed_response_alg.clone(),
            post_logout_redirect_uris: crate::scope::from_json(&app.post_logout_redirect_uris),
            backchannel_logout_uri: app.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: app.backchannel_logout_session_required == 1,
            sector_identifier_uri: app.sector_identifier_uri.clone(),
        }
    }

    /// Write the fields into a row about to be stored.
    pub fn apply(&self, app: &mut AppRow) {
        app.id_token_signed_response_alg = self.id_token_signed_response_alg.clone();
        app.post_logout_redirect_uris = crate::scope::to_json(&self.post_logout_redirect_uris);
        app.backchannel_logout_uri = self.backchannel_logout_uri.clone();
        app.backchannel_logout_session_required = self.backchannel_logout_session_required as i64;
        app.sector_identifier_uri = self.sector_identifier_uri.clone();
    }

    /// The input that would register these fields again (an update merges
    /// what it changes into this).
    pub fn as_input(&self) -> OpenIdInput {
        OpenIdInput {
            id_token_signed_response_alg: self.id_token_signed_response_alg.clone().map(Value::from),
            post_logout_redirect_uris: Some(json!(self.post_logout_redirect_uris)),
            backchannel_logout_uri: self.backchannel_logout_uri.clone().map(Value::from),
            backchannel_logout_session_required: Some(Value::Bool(self.backchannel_logout_session_required)),
            sector_identifier_uri: self.sector_identifier_uri.clone().map(Value::from),
        }
    }
}

/// The fields of a platform app's registration.
pub fn of_new_app(a: &NewApp) -> OpenIdInput {
    OpenIdInput {
        id_token_signed_response_alg: a.id_token_signed_response_alg.clone(),
        post_logout_redirect_uris: a.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: a.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: a.backchannel_logout_session_required.clone(),
        sector_identifier_uri: a.sector_identifier_uri.clone(),
    }
}

/// The fields of `app` once `u` is applied: what `u` names (`null`
/// clears), else what the app has.
pub fn merged(app: &AppRow, u: &AppUpdate) -> OpenIdInput {
    let cur = OpenIdClient::of(app).as_input();
    let pick = |new: &Option<Option<Value>>, old: Option<Value>| match new {
        Some(v) => v.clone(),
        None => old,
    };
    OpenIdInput {
        id_token_signed_response_alg: pick(&u.id_token_signed_response_alg, cur.id_token_signed_response_alg),
        post_logout_redirect_uris: pick(&u.post_logout_redirect_uris, cur.post_logout_redirect_uris),
        backchannel_logout_uri: pick(&u.backchannel_logout_uri, cur.backchannel_logout_uri),
        backchannel_logout_session_required: pick(
            &u.backchannel_logout_session_required,
            cur.backchannel_logout_session_required,
        ),
        sector_identifier_uri: pick(&u.sector_identifier_uri, cur.sector_identifier_uri),
    }
}

/// The fields of `app` for a response. `omit_absent` (RFC 7591 responses):
/// leave out what is not set, rather than `null`. The algorithm is the one
/// in force (RS256 when none was registered).
pub fn to_json(app: &AppRow, omit_absent: bool) -> Map<String, Value> {
    let c = OpenIdClient::of(app);
    let mut m = Map::new();
    m.insert(
        "id_token_signed_response_alg".into(),
        c.id_token_signed_response_alg.as_deref().unwrap_or("RS256").into(),
    );
    if !(omit_absent && c.post_logout_redirect_uris.is_empty()) {
        m.insert("post_logout_redirect_uris".into(), json!(c.post_logout_redirect_uris));
    }
    for (k, v) in [
        ("backchannel_logout_uri", c.backchannel_logout_uri),
        ("sector_identifier_uri", c.sector_identifier_uri),
    ] {
        if v.is_some() || !omit_absent {
            m.insert(k.into(), v.into());
        }
    }
    m.insert(
        "backchannel_logout_session_required".into(),
        c.backchannel_logout_session_required.into(),
    );
    m
}

#[cfg(test)]
mod tests;
