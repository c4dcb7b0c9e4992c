//! ID tokens (OIDC Core §2, §3.1.3.6, §12.2): JWS signing with our keys (RS256
//! or ES256, per client), `at_hash`, and reading one of ours back as a hint
//! (`id_token_hint` at authorize and logout).
//!
//! As in `crate::jwt`, a few lines of serde_json + base64 rather than a JWT
//! library: two algorithms, one header shape, and every other choice refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::context::Ctx;
use crate::jwt::{low_s, Jws, Reject};
use crate::store::{AppRow, Driver};

/// A JWS algorithm this server signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: every OpenID Provider's (Core §15.1).
    Rs256,
    /// ECDSA P-256 with SHA-256 (signatures in their low-S form).
    Es256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    /// The client's `id_token_signed_response_alg` (unset: RS256, OIDC
    /// Registration §2).
    pub fn of(app: &AppRow) -> Result<Alg, String> {
        match app.id_token_signed_response_alg.as_deref() {
            None | Some("") => Ok(Alg::Rs256),
            Some(a) => Alg::parse(a).ok_or_else(|| format!("id_token_signed_response_alg {a:?} is not supported")),
        }
    }
}

/// The algorithms the configured keys sign ID tokens with: RS256 (an RSA
/// key is required with `OPENID=on`), and ES256 when an EC key exists.
/// Discovery lists these; client metadata may choose only among them.
pub fn algorithms(config: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    if !config.rsa_keys.is_empty() {
        v.push("RS256");
    }
    if !config.jwt_keys.is_empty() {
        v.push("ES256");
    }
    v
}

/// Sign `claims` as a compact JWS with the first key of `alg`'s kind, its
/// `kid` in the header, `typ` as given (`JWT` for ID tokens, `logout+jwt`
/// for logout tokens).
pub async fn sign_jws<D: Driver>(ctx: &Ctx<'_, D>, alg: Alg, typ: &str, claims: &Value) -> Result<String, String> {
    let kid = match alg {
        Alg::Rs256 => &ctx.config.rsa_keys.first().ok_or("no RSA key in JWT_SIGNING_KEYS")?.kid,
        Alg::Es256 => &ctx.config.jwt_keys.first().ok_or("no EC key in JWT_SIGNING_KEYS")?.kid,
    };
    let header = json!({"alg": alg.name(), "typ": typ, "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match alg {
        Alg::Rs256 => ctx.rs256.sign(&ctx.config.rsa_keys[0], input.as_bytes()).await?,
        Alg::Es256 => {
            let mut sig = ctx.es256.sign(&ctx.config.jwt_keys[0], input.as_bytes()).await?;
            low_s::normalize(&mut sig);
            sig
        }
    };
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// `at_hash` (Core §3.1.3.6): the left half of the access token's hash, by
/// the ID token's algorithm's hash (SHA-256 for both of ours).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Every claim an ID token may carry (the fields of [`Claims`]).
pub const CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "sid",
    "acr",
    "amr",
    "org_id",
];

/// The claims of an ID token (Core §2), plus the org the grant is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub azp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    pub org_id: String,
}

/// What an ID token states, as the code or grant recorded it.
pub struct Facts<'a> {
    pub user_id: &'a str,
    pub org_id: &'a str,
    /// The access token issued beside it (its `at_hash`).
    pub access_token: Option<&'a str>,
    /// Only at the code exchange, and only when the request had one.
    pub nonce: Option<&'a str>,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    /// A JSON array, as stored.
    pub amr: Option<&'a str>,
    pub sid: Option<&'a str>,
}

/// The claims of `app`'s ID token for `f`, issued now.
pub fn claims<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, f: &Facts<'_>) -> Claims {
    Claims {
        iss: ctx.issuer.clone(),
        sub: super::subject::subject(ctx.config, app, f.user_id),
        aud: app.id.clone(),
        exp: ctx.now + ctx.config.id_token_ttl,
        iat: ctx.now,
        // Sessions record it since migration 0016; a grant older than that
        // (none can hold `openid`, which was not built in) says "now".
        auth_time: f.auth_time.unwrap_or(ctx.now),
        nonce: f.nonce.map(str::to_string),
        azp: app.id.clone(),
        at_hash: f.access_token.map(at_hash),
        sid: f.sid.map(str::to_string),
        acr: f.acr.filter(|a| !a.is_empty()).map(str::to_string),
        amr: f
            .amr
            .and_then(|a| serde_json::from_str::<Vec<String>>(a).ok())
            .filter(|a| !a.is_empty()),
        org_id: f.org_id.to_string(),
    }
}

/// Sign `app`'s ID token for `f` with the algorithm the client registered.
pub async fn sign<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, f: &Facts<'_>) -> Result<String, String> {
    let alg = Alg::of(app)?;
    let claims = serde_json::to_value(claims(ctx, app, f)).map_err(|e| e.to_string())?;
    sign_jws(ctx, alg, "JWT", &claims).await
}

/// What an `id_token_hint` names (OIDC Core §3.1.2.1, RP-Initiated Logout §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    /// The client ids it was issued to (`aud`, a string or an array).
    pub aud: Vec<String>,
    pub sid: Option<String>,
    pub exp: Option<i64>,
    pub auth_time: Option<i64>,
    pub org_id: Option<String>,
}

/// Longest hint read: ours are well under 2 KB (RS256 with a 4096-bit key
/// and every claim).
const MAX_HINT: usize = 8192;

/// Read an ID token we issued: one of our keys (by `kid`, of the header's
/// algorithm, RS256 or ES256 only), its signature, our `iss`. Expiry is not
/// checked (a hint may be expired, RP-Initiated Logout §2); what the hint
/// may do is the caller's check (its `aud`, `sub`, `sid`).
pub async fn verify_hint<D: Driver>(ctx: &Ctx<'_, D>, token: &str) -> Result<Hint, Reject> {
    let jws = Jws::split(token, MAX_HINT)?;
    let header = &jws.header;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .ok_or(Reject::Algorithm)?;
    // An access token (`at+jwt`) or a logout token is not an ID token.
    match header.get("typ").and_then(Value::as_str) {
        None => {}
        Some(t) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(Reject::Type),
    }
    // Only our keys: a header naming its own (`jwk`, `jku`, `x5u`) is ignored.
    let kid = header.get("kid").and_then(Value::as_str).ok_or(Reject::UnknownKey)?;
    let input = jws.input;
    let sig = jws.signature()?;
    let good = match alg {
        Alg::Rs256 => {
            let key = ctx
                .config
                .rsa_keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or(Reject::UnknownKey)?;
            ctx.rs256.verify(key, input, &sig).await
        }
        Alg::Es256 => {
            let key = ctx
                .config
                .jwt_keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or(Reject::UnknownKey)?;
            low_s::is_low_s(&sig) && ctx.es256.verify(key, input, &sig).await
        }
    };
    if !good {
        return Err(Reject::Signature);
    }
    let claims: Value = jws.payload()?;
    if claims.get("iss").and_then(Value::as_str) != Some(ctx.issuer.as_str()) {
        return Err(Reject::Issuer);
    }
    let sub = claims.get("sub").and_then(Value::as_str).ok_or(Reject::Malformed)?;
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => return Err(Reject::Audience),
    };
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Hint {
        sub: sub.to_string(),
        aud,
        sid: text("sid"),
        exp: claims.get("exp").and_then(Value::as_i64),
        auth_time: claims.get("auth_time").and_then(Value::as_i64),
        org_id: text("org_id"),
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
