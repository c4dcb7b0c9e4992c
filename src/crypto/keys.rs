//! `JWT_SIGNING_KEYS`: one JWK set holding EC P-256 and RSA private keys side by side.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::{Jwk, RsaJwk};

/// The parsed set, each kind in the order given: the first of a kind signs,
/// every key verifies (rotation: put the new key first, keep the old one
/// until what it signed has expired).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// ES256: JWT access tokens and ES256 ID tokens.
    pub ec: Vec<Jwk>,
    /// RS256: ID tokens (the algorithm OIDC Core §15.1 requires of a provider).
    pub rsa: Vec<RsaJwk>,
}

/// Smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Deserialize)]
struct Set {
    keys: Vec<Raw>,
}

#[derive(Deserialize)]
struct Raw {
    kty: Option<String>,
    crv: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<String>,
    n: Option<String>,
    e: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
}

/// Parse a JWK set of private keys (EC P-256 and RSA), strictly: a key we
/// could not sign with is a deployment error, not a key to skip.
pub fn parse_key_set(text: &str) -> Result<KeySet, String> {
    let set: Set = serde_json::from_str(text).map_err(|e| format!("JWT_SIGNING_KEYS is not a JWK set: {e}"))?;
    if set.keys.is_empty() {
        return Err("JWT_SIGNING_KEYS holds no key".into());
    }
    let mut out = KeySet::default();
    let mut kids: Vec<String> = Vec::new();
    for (i, k) in set.keys.into_iter().enumerate() {
        let bad = |why: &str| format!("JWT_SIGNING_KEYS key {i}: {why}");
        let kid = k
            .kid
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("needs a kid"))?;
        if kids.contains(&kid) {
            return Err(bad("kid is used twice"));
        }
        kids.push(kid.clone());
        // Returns the value when it decodes to a length `ok` accepts.
        let field = |v: &Option<String>, name: &str, ok: &dyn Fn(usize) -> bool, what: &str| {
            let v = v.clone().ok_or_else(|| bad(&format!("needs {name}")))?;
            match URL_SAFE_NO_PAD.decode(&v) {
                Ok(b) if ok(significant(&b)) => Ok(v),
                _ => Err(bad(&format!("{name} must be {what} of base64url"))),
            }
        };
        match (k.kty.as_deref(), k.crv.as_deref()) {
            (Some("EC"), Some("P-256")) => {
                if k.alg.as_deref().is_some_and(|a| a != "ES256") {
                    return Err(bad("an EC P-256 key signs ES256 only (alg)"));
                }
                let c = |v: &Option<String>, name: &str| {
                    let v = v.clone().ok_or_else(|| bad(&format!("needs {name}")))?;
                    match URL_SAFE_NO_PAD.decode(&v) {
                        Ok(b) if b.len() == 32 => Ok(v),
                        _ => Err(bad(&format!("{name} must be 32 bytes of base64url"))),
                    }
                };
                out.ec.push(Jwk {
                    x: c(&k.x, "x")?,
                    y: c(&k.y, "y")?,
                    d: c(&k.d, "d (a private key)")?,
                    kid,
                });
            }
            (Some("RSA"), _) => {
                if k.alg.as_deref().is_some_and(|a| a != "RS256") {
                    return Err(bad("an RSA key signs RS256 only (alg)"));
                }
                let any = |n: usize| n > 0;
                let n = field(&k.n, "n", &|n| n * 8 >= MIN_RSA_BITS, "a modulus of at least 2048 bits")?;
                let e = field(&k.e, "e", &|n| (1..=8).contains(&n), "an exponent")?;
                let pk = |v: &Option<String>, name: &str| field(v, name, &any, "a private key part (RSA with CRT)");
                out.rsa.push(RsaJwk {
                    d: pk(&k.d, "d")?,
                    p: pk(&k.p, "p")?,
                    q: pk(&k.q, "q")?,
                    dp: pk(&k.dp, "dp")?,
                    dq: pk(&k.dq, "dq")?,
                    qi: pk(&k.qi, "qi")?,
                    n,
                    e,
                    kid,
                });
            }
            _ => return Err(bad("must be kty EC with crv P-256 (ES256) or kty RSA (RS256)")),
        }
    }
    Ok(out)
}

/// Bytes of a big-endian integer without its leading zeros.
fn significant(b: &[u8]) -> usize {
    b.len() - b.iter().take_while(|x| **x == 0).count()
}

/// The EC keys of a set (the JWT access tokens' keys).
pub fn parse_keys(text: &str) -> Result<Vec<Jwk>, String> {
    parse_key_set(text).map(|s| s.ec)
}
