//! RS256 key material (an RSA JWK) and the seam where the signature runs
//! (WebCrypto in the worker, the `rsa` crate natively), as [`super::Es256`] is for ES256.

use serde_json::{json, Value};

use super::es256::Fut;

/// One RSA private key of `JWT_SIGNING_KEYS` (RFC 7518 §6.3), with its CRT
/// parts (WebCrypto imports a private JWK only whole). All base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaJwk {
    pub kid: String,
    pub n: String,
    pub e: String,
    pub d: String,
    pub p: String,
    pub q: String,
    pub dp: String,
    pub dq: String,
    pub qi: String,
}

impl RsaJwk {
    /// The public half as served in the JWKS.
    pub fn public(&self) -> Value {
        json!({"kty": "RSA", "n": self.n, "e": self.e, "kid": self.kid, "use": "sig", "alg": "RS256"})
    }

    /// The private JWK, for WebCrypto's `importKey("jwk", …)`.
    pub fn private(&self) -> Value {
        json!({"kty": "RSA", "n": self.n, "e": self.e, "d": self.d, "p": self.p, "q": self.q,
               "dp": self.dp, "dq": self.dq, "qi": self.qi, "ext": false})
    }
}

/// Where RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) runs.
pub trait Rs256 {
    fn sign<'a>(&'a self, key: &'a RsaJwk, message: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>>;
    fn verify<'a>(&'a self, key: &'a RsaJwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool>;
}

/// The `rsa` crate (native builds: `cargo test`, the benches); the wasm
/// build carries no RSA code.
#[cfg(not(target_arch = "wasm32"))]
pub struct RustRs256;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
    use rsa::signature::{SignatureEncoding, Signer, Verifier};
    use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
    use sha2::Sha256;

    use super::{Fut, Rs256, RsaJwk, RustRs256};

    thread_local! {
        // Building a private key checks and precomputes it: once per key,
        // as the worker imports each key once per isolate.
        static KEYS: RefCell<HashMap<String, SigningKey<Sha256>>> = RefCell::new(HashMap::new());
    }

    fn int(v: &str) -> Result<BigUint, String> {
        URL_SAFE_NO_PAD
            .decode(v)
            .map(|b| BigUint::from_bytes_be(&b))
            .map_err(|e| e.to_string())
    }

    fn signing_key(key: &RsaJwk) -> Result<SigningKey<Sha256>, String> {
        let id = format!("{}\0{}", key.kid, key.n);
        if let Some(k) = KEYS.with_borrow(|m| m.get(&id).cloned()) {
            return Ok(k);
        }
        let mut sk = RsaPrivateKey::from_components(
            int(&key.n)?,
            int(&key.e)?,
            int(&key.d)?,
            vec![int(&key.p)?, int(&key.q)?],
        )
        .map_err(|e| e.to_string())?;
        sk.precompute().map_err(|e| e.to_string())?;
        let k = SigningKey::<Sha256>::new(sk);
        KEYS.with_borrow_mut(|m| m.insert(id, k.clone()));
        Ok(k)
    }

    impl Rs256 for RustRs256 {
        fn sign<'a>(&'a self, key: &'a RsaJwk, message: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>> {
            Box::pin(async move {
                let sig: Signature = signing_key(key)?.try_sign(message).map_err(|e| e.to_string())?;
                Ok(sig.to_vec())
            })
        }

        fn verify<'a>(&'a self, key: &'a RsaJwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool> {
            Box::pin(async move {
                let (Ok(n), Ok(e)) = (int(&key.n), int(&key.e)) else {
                    return false;
                };
                let (Ok(pk), Ok(sig)) = (RsaPublicKey::new(n, e), Signature::try_from(signature)) else {
                    return false;
                };
                VerifyingKey::<Sha256>::new(pk).verify(message, &sig).is_ok()
            })
        }
    }
}

/// No RS256 available (a wasm build whose adapter installed none).
pub struct NoRs256;

impl Rs256 for NoRs256 {
    fn sign<'a>(&'a self, _: &'a RsaJwk, _: &'a [u8]) -> Fut<'a, Result<Vec<u8>, String>> {
        Box::pin(async { Err("no RS256 implementation".to_string()) })
    }
    fn verify<'a>(&'a self, _: &'a RsaJwk, _: &'a [u8], _: &'a [u8]) -> Fut<'a, bool> {
        Box::pin(async { false })
    }
}
