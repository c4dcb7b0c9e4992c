//! Sender constraint and asymmetric client authentication metadata (RFC 9449
//! §5.2, RFC 9126 §6, RFC 7523 §2.2 with OIDC Registration §2): the one rule
//! set for the six fields of every kind of client (platform apps, RFC
//! 7591/7592, metadata documents).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::store::AppRow;

/// The method name, as registered and as stored in `apps.client_auth_method`.
pub use crate::store::PRIVATE_KEY_JWT;
/// What a client assertion may be signed with (never `none`, never HMAC).
pub const ALGS: &[&str] = &["ES256", "RS256", "PS256", "EdDSA"];
/// Most keys in a registered set (rotation needs two; ten is generous).
pub const MAX_KEYS: usize = 10;
/// Largest registered set, as JSON text (ten 4096-bit RSA keys fit).
pub const MAX_JWKS_BYTES: usize = 10_000;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;
/// Members of a JWK that belong to a private or secret key (RFC 7518 §6).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The five fields besides the method, as sent (raw JSON, so a wrong type
/// is refused with the field's name whichever body carried it).
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct SenderInput {
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
}

/// The six fields once accepted, as stored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SenderClient {
    pub dpop_bound_access_tokens: bool,
    pub require_pushed_authorization_requests: bool,
    pub private_key_jwt: bool,
    /// The JWK set as JSON text (members as registered, public only).
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
}

fn flag(field: &str, v: &Option<Value>) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{field} must be true or false")),
    }
}

fn b64_len(key: &Map<String, Value>, member: &str, at: &str) -> Result<usize, String> {
    let s = key
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at} lacks its \"{member}\" member"))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map(|b| b.len())
        .map_err(|_| format!("{at}: \"{member}\" is not base64url"))
}

/// The algorithms a key can verify (its `kty`), for a fixed signing alg.
fn key_fits(key: &Map<String, Value>, alg: &str) -> bool {
    match key.get("kty").and_then(Value::as_str) {
        Some("EC") => alg == "ES256",
        Some("RSA") => alg == "RS256" || alg == "PS256",
        Some("OKP") => alg == "EdDSA",
        _ => false,
    }
}

/// A public JWK set of EC P-256, RSA (≥ 2048 bits) and Ed25519 keys, no
/// private or symmetric member, at most [`MAX_KEYS`] keys and
/// [`MAX_JWKS_BYTES`]. Returns it as JSON text.
pub fn check_jwks(v: &Value) -> Result<String, String> {
    let keys = v
        .as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
        .ok_or("jwks must be a JSON object with a \"keys\" array (a JWK set)")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("jwks must hold 1 to {MAX_KEYS} keys"));
    }
    let text = v.to_string();
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("jwks is larger than {MAX_JWKS_BYTES} bytes"));
    }
    for (i, k) in keys.iter().enumerate() {
        let at = format!("jwks key {i}");
        let key = k.as_object().ok_or_else(|| format!("{at} is not a JSON object"))?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
            return Err(format!(
                "{at} carries private key material (\"{m}\"): register the public key only"
            ));
        }
        let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
        let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
        match (kty, crv) {
            ("EC", "P-256") => {
                if b64_len(key, "x", &at)? != 32 || b64_len(key, "y", &at)? != 32 {
                    return Err(format!("{at}: a P-256 key's x and y are 32 bytes each"));
                }
            }
            ("OKP", "Ed25519") => {
                if b64_len(key, "x", &at)? != 32 {
                    return Err(format!("{at}: an Ed25519 key's x is 32 bytes"));
                }
            }
            ("RSA", _) => {
                b64_len(key, "e", &at)?;
                if b64_len(key, "n", &at)? < MIN_RSA_BYTES {
                    return Err(format!("{at}: an RSA key must have at least 2048 bits"));
                }
            }
            _ => {
                return Err(format!(
                    "{at}: kty {kty:?} (crv {crv:?}) is not accepted; use EC P-256, RSA of at least 2048 bits, or OKP Ed25519"
                ))
            }
        }
        if let Some(alg) = key.get("alg") {
            if !alg.as_str().is_some_and(|a| ALGS.contains(&a)) {
                return Err(format!("{at}: alg {alg} is not one of {}", ALGS.join(", ")));
            }
        }
        if key.get("use").is_some_and(|u| u != "sig") {
            return Err(format!("{at}: \"use\" must be \"sig\""));
        }
    }
    // And what the token endpoint will read (`client_auth::keys`): a set
    // registered must be a set it can use.
    crate::jose::parse_set(&text).map_err(|e| format!("jwks {e}"))?;
    Ok(text)
}

/// Check the fields of a client whose method is (`private_key_jwt`) or is not
/// private_key_jwt. `allow_http_loopback`: a `jwks_uri` on loopback http
/// (development, as for metadata documents). The refusal names the field.
pub fn validate(input: &SenderInput, private_key_jwt: bool, allow_http_loopback: bool) -> Result<SenderClient, String> {
    let dpop = flag("dpop_bound_access_tokens", &input.dpop_bound_access_tokens)?;
    let par = flag(
        "require_pushed_authorization_requests",
        &input.require_pushed_authorization_requests,
    )?;
    let jwks = match &input.jwks {
        None | Some(Value::Null) => None,
        Some(v) => Some(check_jwks(v)?),
    };
    let jwks_uri = match &input.jwks_uri {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            super::openid::check_fetch_uri("jwks_uri", s, allow_http_loopback)?;
            Some(s.clone())
        }
        Some(_) => return Err("jwks_uri must be a string".into()),
    };
    let alg = match &input.token_endpoint_auth_signing_alg {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if ALGS.contains(&a.as_str()) => Some(a.clone()),
        Some(a) => {
            return Err(format!(
                "token_endpoint_auth_signing_alg {a} is refused (client assertions are signed with a public key); use one of: {}",
                ALGS.join(", ")
            ))
        }
    };
    if !private_key_jwt {
        for (field, set) in [
            ("jwks", jwks.is_some()),
            ("jwks_uri", jwks_uri.is_some()),
            ("token_endpoint_auth_signing_alg", alg.is_some()),
        ] {
            if set {
                return Err(format!(
                    "{field} is used only with token_endpoint_auth_method \"{PRIVATE_KEY_JWT}\""
                ));
            }
        }
    } else {
        match (&jwks, &jwks_uri) {
            (Some(_), Some(_)) => {
                return Err("jwks and jwks_uri exclude each other: send the keys inline or by URL, not both".into())
            }
            (None, None) => {
                return Err(format!(
                    "token_endpoint_auth_method \"{PRIVATE_KEY_JWT}\" needs the client's public keys: jwks or jwks_uri"
                ))
            }
            _ => {}
        }
        if let (Some(a), Some(v)) = (&alg, &input.jwks) {
            let keys = v.get("keys").and_then(Value::as_array).into_iter().flatten();
            if !keys.filter_map(Value::as_object).any(|k| key_fits(k, a)) {
                return Err(format!(
                    "token_endpoint_auth_signing_alg {a} fits none of the keys in jwks"
                ));
            }
        }
    }
    Ok(SenderClient {
        dpop_bound_access_tokens: dpop,
        require_pushed_authorization_requests: par,
        private_key_jwt,
        jwks,
        jwks_uri,
        token_endpoint_auth_signing_alg: alg,
    })
}

impl SenderClient {
    pub fn of(app: &AppRow) -> Self {
        SenderClient {
            dpop_bound_access_tokens: app.dpop_bound_access_tokens == 1,
            require_pushed_authorization_requests: app.require_pushed_authorization_requests == 1,
            private_key_jwt: app.client_auth_method.as_deref() == Some(PRIVATE_KEY_JWT),
            jwks: app.jwks.clone(),
            jwks_uri: app.jwks_uri.clone(),
            token_endpoint_auth_signing_alg: app.token_endpoint_auth_signing_alg.clone(),
        }
    }

    /// Write the fields into a row about to be stored.
    pub fn apply(&self, app: &mut AppRow) {
        app.dpop_bound_access_tokens = self.dpop_bound_access_tokens as i64;
        app.require_pushed_authorization_requests = self.require_pushed_authorization_requests as i64;
        app.client_auth_method = self.private_key_jwt.then(|| PRIVATE_KEY_JWT.to_string());
        app.jwks = self.jwks.clone();
        app.jwks_uri = self.jwks_uri.clone();
        app.token_endpoint_auth_signing_alg = self.token_endpoint_auth_signing_alg.clone();
    }

    /// The input that would register these fields again (an update merges
    /// what it changes into this).
    pub fn as_input(&self) -> SenderInput {
        SenderInput {
            dpop_bound_access_tokens: Some(self.dpop_bound_access_tokens.into()),
            require_pushed_authorization_requests: Some(self.require_pushed_authorization_requests.into()),
            jwks: self.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: self.jwks_uri.clone().map(Value::from),
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg.clone().map(Value::from),
        }
    }
}

/// The fields of `app` for a response. `omit_absent` (RFC 7591 responses):
/// leave out what is not set, rather than `null`. The method itself is the
/// caller's (each surface names it its own way).
pub fn to_json(app: &AppRow, omit_absent: bool) -> Map<String, Value> {
    let c = SenderClient::of(app);
    let mut m = Map::new();
    m.insert("dpop_bound_access_tokens".into(), c.dpop_bound_access_tokens.into());
    m.insert(
        "require_pushed_authorization_requests".into(),
        c.require_pushed_authorization_requests.into(),
    );
    let jwks = c.jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok());
    for (k, v) in [
        ("jwks", jwks),
        ("jwks_uri", c.jwks_uri.map(Value::from)),
        (
            "token_endpoint_auth_signing_alg",
            c.token_endpoint_auth_signing_alg.map(Value::from),
        ),
    ] {
        if v.is_some() || !omit_absent {
            m.insert(k.into(), v.unwrap_or(json!(null)));
        }
    }
    m
}

#[cfg(test)]
mod tests;
