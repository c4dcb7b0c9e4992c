//! Each algorithm verifies its own signature and refuses a changed message,
//! another key, and a key of another kind.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{JwsVerify, RustJwsVerify};
use crate::jose::{Alg, PublicJwk};

fn run(alg: Alg, key: &PublicJwk, msg: &[u8], sig: &[u8]) -> bool {
    pollster::block_on(RustJwsVerify.verify(alg, key, msg, sig))
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn ec(seed: u8) -> (p256::ecdsa::SigningKey, PublicJwk) {
    let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let pt = sk.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(pt.x().unwrap()), "y": b64(pt.y().unwrap())});
    (sk, PublicJwk::from_value(&jwk).unwrap())
}

fn ed(seed: u8) -> (ed25519_dalek::SigningKey, PublicJwk) {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(sk.verifying_key().as_bytes())});
    (sk, PublicJwk::from_value(&jwk).unwrap())
}

fn rsa(i: usize) -> (rsa::RsaPrivateKey, PublicJwk) {
    let set: Value = serde_json::from_str(include_str!("../../../tests/keys/rsa.json")).unwrap();
    let k = &set["keys"][i];
    let int = |m: &str| rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(k[m].as_str().unwrap()).unwrap());
    let sk = rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")]).unwrap();
    let jwk = json!({"kty": "RSA", "n": k["n"], "e": k["e"]});
    (sk, PublicJwk::from_value(&jwk).unwrap())
}

#[test]
fn es256_verifies_and_refuses() {
    use p256::ecdsa::{signature::Signer, Signature};
    let (sk, pk) = ec(7);
    let (_, other) = ec(8);
    let sig: Signature = sk.sign(b"hello");
    let sig = sig.to_bytes().to_vec();
    assert!(run(Alg::Es256, &pk, b"hello", &sig));
    assert!(!run(Alg::Es256, &pk, b"hellO", &sig));
    assert!(!run(Alg::Es256, &other, b"hello", &sig));
    assert!(!run(Alg::Es256, &pk, b"hello", &sig[..63]));
    assert!(!run(Alg::EdDsa, &pk, b"hello", &sig), "an EC key never verifies EdDSA");
}

#[test]
fn eddsa_verifies_and_refuses() {
    use ed25519_dalek::Signer;
    let (sk, pk) = ed(3);
    let (_, other) = ed(4);
    let sig = sk.sign(b"hello").to_bytes().to_vec();
    assert!(run(Alg::EdDsa, &pk, b"hello", &sig));
    assert!(!run(Alg::EdDsa, &pk, b"hellO", &sig));
    assert!(!run(Alg::EdDsa, &other, b"hello", &sig));
    assert!(!run(Alg::Es256, &pk, b"hello", &sig));
}

#[test]
fn rs256_and_ps256_verify_and_refuse() {
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    let (sk, pk) = rsa(0);
    let (_, other) = rsa(1);
    let pkcs = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(sk.clone())
        .sign(b"hello")
        .to_vec();
    assert!(run(Alg::Rs256, &pk, b"hello", &pkcs));
    assert!(!run(Alg::Rs256, &pk, b"hellO", &pkcs));
    assert!(!run(Alg::Rs256, &other, b"hello", &pkcs));
    assert!(
        !run(Alg::Ps256, &pk, b"hello", &pkcs),
        "a PKCS#1 v1.5 signature is not a PSS one"
    );
    let pss = rsa::pss::SigningKey::<sha2::Sha256>::new(sk)
        .sign_with_rng(&mut Os, b"hello")
        .to_vec();
    assert!(run(Alg::Ps256, &pk, b"hello", &pss));
    assert!(!run(Alg::Ps256, &pk, b"hellO", &pss));
    assert!(!run(Alg::Rs256, &pk, b"hello", &pss));
    assert!(!run(Alg::EdDsa, &pk, b"hello", &pss));
}

/// The platform CSPRNG as `rand_core` wants it (PSS salts).
struct Os;

impl rsa::rand_core::RngCore for Os {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::getrandom(dest).unwrap();
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for Os {}
