//! ES256 key material (JWK set parsing) and the seam where the signature runs (WebCrypto or p256), as Kdf is for PBKDF2.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// One EC P-256 private key of `JWT_SIGNING_KEYS` (RFC 7517 / RFC 7518 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    /// base64url coordinates and private scalar, 32 bytes each.
    pub x: String,
    pub y: String,
    pub d: String,
}

impl Jwk {
    /// The public half as served in the JWKS (`d` stripped).
    pub fn public(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "use": "sig", "alg": "ES256"})
    }

    /// The private JWK, for WebCrypto's `importKey("jwk", …)`.
    pub fn private(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "d": self.d, "ext": false})
    }
}

/// Parse a JWK set of EC P-256 private keys: the first signs, every one verifies.
pub fn parse_keys(text: &str) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Raw>,
    }
    #[derive(Deserialize)]
    struct Raw {
        kty: Option<String>,
        crv: Option<String>,
        kid: Option<String>,
        x: Option<String>,
        y: Option<String>,
        d: Option<String>,
    }
    let set: Set = serde_json::from_str(text).map_err(|e| format!("JWT_SIGNING_KEYS is not a JWK set: {e}"))?;
    if set.keys.is_empty() {
        return Err("JWT_SIGNING_KEYS holds no key".into());
    }
    let mut out: Vec<Jwk> = Vec::new();
    for (i, k) in set.keys.into_iter().enumerate() {
        let bad = |why: &str| format!("JWT_SIGNING_KEYS key {i}: {why}");
        if k.kty.as_deref() != Some("EC") || k.crv.as_deref() != Some("P-256") {
            return Err(bad("must be kty EC, crv P-256 (ES256)"));
        }
        let kid = k.kid.filter(|s| !s.is_empty()).ok_or_else(|| bad("needs a kid"))?;
        if out.iter().any(|o| o.kid == kid) {
            return Err(bad("kid is used twice"));
        }
        let coord = |v: Option<String>, name: &str| -> Result<String, String> {
            let v = v.ok_or_else(|| bad(&format!("needs {name}")))?;
            match URL_SAFE_NO_PAD.decode(&v) {
                Ok(b) if b.len() == 32 => Ok(v),
                _ => Err(bad(&format!("{name} must be 32 bytes of base64url"))),
            }
        };
        out.push(Jwk {
            x: coord(k.x, "x")?,
            y: coord(k.y, "y")?,
            d: coord(k.d, "d (a private key)")?,
            kid,
        });
    }
    Ok(out)
}

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Where ES256 runs. Signatures are raw r||s (64 bytes), as JWS wants
/// (RFC 7518 §3.4) and WebCrypto produces.
pub trait Es256 {
    fn sign<'a>(&'a self, key: &'a Jwk, message: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>>;
    fn verify<'a>(&'a self, key: &'a Jwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool>;
}

/// The `p256` crate (native builds: `cargo test`, the benches).
#[cfg(not(target_arch = "wasm32"))]
pub struct RustEs256;

#[cfg(not(target_arch = "wasm32"))]
impl Es256 for RustEs256 {
    fn sign<'a>(&'a self, key: &'a Jwk, message: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>> {
        use p256::ecdsa::{signature::Signer, Signature, SigningKey};
        Box::pin(async move {
            let d = URL_SAFE_NO_PAD.decode(&key.d).map_err(|e| e.to_string())?;
            let sk = SigningKey::from_slice(&d).map_err(|e| e.to_string())?;
            let sig: Signature = sk.sign(message);
            Ok(sig.to_bytes().to_vec())
        })
    }

    fn verify<'a>(&'a self, key: &'a Jwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool> {
        use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
        Box::pin(async move {
            let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(&key.x), URL_SAFE_NO_PAD.decode(&key.y)) else {
                return false;
            };
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let (Ok(vk), Ok(sig)) = (VerifyingKey::from_sec1_bytes(&sec1), Signature::from_slice(signature)) else {
                return false;
            };
            vk.verify(message, &sig).is_ok()
        })
    }
}

/// No ES256 available (a wasm build whose adapter installed none).
pub struct NoEs256;

impl Es256 for NoEs256 {
    fn sign<'a>(&'a self, _: &'a Jwk, _: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>> {
        Box::pin(async { Err("no ES256 implementation".to_string()) })
    }
    fn verify<'a>(&'a self, _: &'a Jwk, _: &'a [u8], _: &'a [u8]) -> Fut<'a, bool> {
        Box::pin(async { false })
    }
}
