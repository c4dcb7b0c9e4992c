//! DPoP (RFC 9449): proof validation, the storage-free server nonces, and
//! what the token endpoint and the resources decide from a proof.
//!
//! Replay without a `jti` store: with `DPOP_NONCE=on` a proof must carry a
//! nonce of the current or the previous time slot (a slot is
//! `DPOP_PROOF_MAX_AGE_SECONDS` long), and its `iat` must be within that age
//! too, so a captured proof is accepted for at most two slots after the
//! nonce it carries was handed out, for the same method and URL only, and at
//! a resource for the same access token only (`ath`). Where the token
//! endpoint writes anyway, the proof's `jti` is also recorded and a second
//! use refused (`store::dpop`).
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

mod nonce;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::context::Ctx;
use crate::error::OAuthError;
use crate::http::Request;
use crate::jose::{Compact, PublicJwk};
use crate::store::Driver;

pub use nonce::{current as current_nonce, valid as valid_nonce};

/// How far ahead of our clock a proof's `iat` may be: client clocks run fast
/// as often as slow, and a few seconds cost nothing against replay.
pub const CLOCK_SKEW: i64 = 10;

/// Longest proof accepted (an RSA 8192 key in the header fits).
const MAX_PROOF: usize = 8192;

/// A verified proof: the key's thumbprint and what the `jti` check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key: what a token is bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

impl Proof {
    /// The key a `jti` is remembered under: per key, so two clients' ids never collide.
    pub fn replay_key(&self) -> String {
        crate::crypto::sha256_hex(&format!("{}\0{}", self.jkt, self.jti))
    }

    /// Until when a replay of this proof must be refused: after that its `iat` is too old anyway.
    pub fn replay_until(&self, max_age: i64) -> i64 {
        self.iat + max_age + CLOCK_SKEW
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Invalid(String),
    /// Good but for the nonce: the client retries with the `DPoP-Nonce` we send.
    UseNonce,
}

impl From<Refusal> for OAuthError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid(d) => OAuthError::InvalidDpopProof(d),
            Refusal::UseNonce => {
                OAuthError::UseDpopNonce("send the DPoP-Nonce this response carries in the proof".into())
            }
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Value>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// The request's one `DPoP` header: `Ok(None)` when there is none; two are refused (§4.3 step 1).
pub fn header(req: &Request) -> Result<Option<&str>, Refusal> {
    let mut all = req.headers.iter().filter(|(k, _)| k == "dpop").map(|(_, v)| v.trim());
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        // A JWS has no comma: a comma is two headers folded into one.
        (Some(v), None) if !v.contains(',') && !v.is_empty() => Ok(Some(v)),
        _ => Err(Refusal::Invalid("send exactly one DPoP header".into())),
    }
}

/// The base64url SHA-256 of an access token (the proof's `ath`, §4.2).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// `htu` compared as RFC 9449 §4.3 says: without query and fragment, after
/// RFC 3986 normalisation (scheme and host case, default port, dot segments).
fn normalised(u: &str) -> Option<String> {
    let mut url = url::Url::parse(u).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// Check `proof` against this request (§4.3): its shape and `typ`, an
/// accepted algorithm with a public key that verifies it, `htm`, `htu`, the
/// `iat` window, a `jti`, `ath` when an access token is presented, and the
/// nonce when `DPOP_NONCE=on`.
pub async fn verify<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    proof: &str,
    access_token: Option<&str>,
) -> Result<Proof, Refusal> {
    let bad = |why: &str| Refusal::Invalid(why.to_string());
    let jws = Compact::parse(proof, MAX_PROOF).map_err(|e| match e {
        crate::jose::Reject::Algorithm => {
            Refusal::Invalid(format!("the proof's alg must be one of {}", crate::jose::Alg::names()))
        }
        _ => bad("the proof is not a JWS of ours to read"),
    })?;
    if !jws
        .header_str("typ")
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(bad("the proof's typ must be dpop+jwt"));
    }
    let jwk = jws
        .header
        .get("jwk")
        .ok_or_else(|| bad("the proof's header needs its public key (jwk)"))?;
    let key = PublicJwk::from_value(jwk).map_err(|e| Refusal::Invalid(format!("the proof's jwk {e}")))?;
    if !key.fits(jws.alg) {
        return Err(bad("the proof's jwk does not fit its alg"));
    }
    if !ctx.jws.verify(jws.alg, &key, jws.input, &jws.signature).await {
        return Err(bad("the proof's signature does not verify with its jwk"));
    }
    let c: Claims = jws
        .claims()
        .map_err(|_| bad("the proof's claims are not a JSON object"))?;
    let jti = c
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("the proof needs a jti"))?;
    if c.htm.as_deref() != Some(req.method.as_str()) {
        return Err(bad("the proof's htm is not this request's method"));
    }
    let htu = c
        .htu
        .as_deref()
        .and_then(normalised)
        .ok_or_else(|| bad("the proof needs an htu URL"))?;
    if !targets(ctx, req).contains(&htu) {
        return Err(bad("the proof's htu is not this request's URL"));
    }
    let iat = c
        .iat
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| bad("the proof needs an iat"))?;
    if iat < ctx.now - ctx.config.dpop.max_age || iat > ctx.now + CLOCK_SKEW {
        return Err(bad("the proof's iat is outside the accepted window"));
    }
    if let Some(token) = access_token {
        if !c.ath.as_deref().is_some_and(|a| crate::crypto::ct_eq(a, &ath(token))) {
            return Err(bad("the proof's ath is not the hash of this access token"));
        }
    }
    if ctx.config.dpop.nonce {
        match c.nonce.as_deref() {
            Some(n) if valid_nonce(ctx.config, n, ctx.now) => {}
            // A nonce we did not issue, or one too old: either way the client retries with ours (§8).
            _ => return Err(Refusal::UseNonce),
        }
    }
    Ok(Proof {
        jkt: key.thumbprint(),
        jti,
        iat,
    })
}

/// The URLs a proof may name for this request: the one it came to and, when
/// `ISSUER` is set, the same path under the issuer (a proxy in front may
/// show the worker another host than the client used).
fn targets<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Vec<String> {
    let mut out: Vec<String> = normalised(&req.url).into_iter().collect();
    if ctx.config.issuer.is_some() {
        if let Some(u) = normalised(&format!("{}{}", ctx.issuer.trim_end_matches('/'), req.path)) {
            out.push(u);
        }
    }
    out
}
