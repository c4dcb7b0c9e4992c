//! The seam where a client's JWS signature is checked against a public JWK
//! (DPoP proofs, client assertions): WebCrypto in the worker
//! (`worker::jws_verify`), the p256, rsa and ed25519-dalek crates natively.

use super::es256::Fut;
use crate::jose::{Alg, PublicJwk};

/// Verify `signature` over `message` with `key` under `alg`. False when the
/// key does not fit the algorithm, the signature has the wrong shape, or it
/// does not verify: the caller learns nothing finer, and needs nothing finer.
pub trait JwsVerify {
    fn verify<'a>(&'a self, alg: Alg, key: &'a PublicJwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool>;
}

/// The native crates (`cargo test`, the benches); the wasm build carries none.
#[cfg(not(target_arch = "wasm32"))]
pub struct RustJwsVerify;

#[cfg(not(target_arch = "wasm32"))]
impl JwsVerify for RustJwsVerify {
    fn verify<'a>(&'a self, alg: Alg, key: &'a PublicJwk, message: &'a [u8], signature: &'a [u8]) -> Fut<'a, bool> {
        Box::pin(async move { native::verify(alg, key, message, signature).unwrap_or(false) })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::Sha256;

    use crate::jose::{Alg, PublicJwk};

    fn b(v: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(v).ok()
    }

    /// None: the key or signature could not even be read.
    pub(super) fn verify(alg: Alg, key: &PublicJwk, message: &[u8], signature: &[u8]) -> Option<bool> {
        match (alg, key) {
            (Alg::Es256, PublicJwk::Ec { x, y }) => {
                use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
                let mut sec1 = vec![4u8];
                sec1.extend(b(x)?);
                sec1.extend(b(y)?);
                let vk = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
                let sig = Signature::from_slice(signature).ok()?;
                Some(vk.verify(message, &sig).is_ok())
            }
            (Alg::EdDsa, PublicJwk::Okp { x }) => {
                use ed25519_dalek::{Signature, VerifyingKey};
                let vk = VerifyingKey::from_bytes(&b(x)?.try_into().ok()?).ok()?;
                let sig = Signature::from_slice(signature).ok()?;
                // Strict: no small-order keys, no non-canonical R (as WebCrypto's Ed25519).
                Some(vk.verify_strict(message, &sig).is_ok())
            }
            (Alg::Rs256 | Alg::Ps256, PublicJwk::Rsa { n, e }) => {
                use rsa::signature::Verifier;
                use rsa::{BigUint, RsaPublicKey};
                let pk = RsaPublicKey::new(BigUint::from_bytes_be(&b(n)?), BigUint::from_bytes_be(&b(e)?)).ok()?;
                if alg == Alg::Rs256 {
                    let sig = rsa::pkcs1v15::Signature::try_from(signature).ok()?;
                    Some(
                        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk)
                            .verify(message, &sig)
                            .is_ok(),
                    )
                } else {
                    let sig = rsa::pss::Signature::try_from(signature).ok()?;
                    Some(rsa::pss::VerifyingKey::<Sha256>::new(pk).verify(message, &sig).is_ok())
                }
            }
            _ => Some(false),
        }
    }
}

/// No verifier installed (a wasm build whose adapter installed none): every proof fails.
pub struct NoJwsVerify;

impl JwsVerify for NoJwsVerify {
    fn verify<'a>(&'a self, _: Alg, _: &'a PublicJwk, _: &'a [u8], _: &'a [u8]) -> Fut<'a, bool> {
        Box::pin(async { false })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
