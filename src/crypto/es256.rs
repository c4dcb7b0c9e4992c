//! ES256 key material (an EC P-256 JWK) and the seam where the signature runs (WebCrypto or p256), as Kdf is for PBKDF2.

#[cfg(not(target_arch = "wasm32"))]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(not(target_arch = "wasm32"))]
use base64::Engine;
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

pub(crate) type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

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
