//! Randomness, hashing and comparisons. Every secret we hand out is 256 random
//! bits; what we keep is its SHA-256 (a stolen database yields no usable token).
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod es256;
mod jws_verify;
mod keys;
mod rs256;
#[cfg(not(target_arch = "wasm32"))]
pub use es256::RustEs256;
pub use es256::{Es256, Jwk, NoEs256};
#[cfg(not(target_arch = "wasm32"))]
pub use jws_verify::RustJwsVerify;
pub use jws_verify::{JwsVerify, NoJwsVerify};
pub use keys::{parse_key_set, parse_keys, KeySet, MIN_RSA_BITS};
#[cfg(not(target_arch = "wasm32"))]
pub use rs256::RustRs256;
pub use rs256::{NoRs256, Rs256, RsaJwk};

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the platform CSPRNG is available");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new secret, code or token: `prefix` + 256 random bits.
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", random_b64(32))
}

/// Opaque random identifier for rows that are not secrets (grants, users).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_b64(12))
}

/// A presented code or token is looked up only if it has our shape; anything
/// else is refused before touching storage.
pub fn well_formed(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix) && value.len() <= prefix.len() + 64
}

pub fn sha256_hex(input: &str) -> String {
    hex(&Sha256::digest(input.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Constant-time equality, for anything derived from a secret.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// The CSRF token of a session: bound to the session secret, so a page of
/// another site can neither read nor compute it, and nothing extra is stored.
pub fn csrf_token(session_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("csrf\0{session_token}").as_bytes()))
}

/// Password hashes are `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`.
/// PBKDF2 because the Workers runtime offers no memory-hard KDF in budget and
/// WebCrypto caps PBKDF2 at 100,000 iterations; the iteration count travels in
/// the hash so it can be raised without invalidating existing passwords.
pub fn hash_password(password: &str, iterations: u32) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the platform CSPRNG is available");
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut out);
    format!(
        "pbkdf2-sha256${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Iterations for new password hashes.
pub const DEFAULT_PASSWORD_ITERATIONS: u32 = 100_000;

/// Upper bound on the iterations we agree to compute for one sign-in, so a
/// corrupt or hostile hash row cannot burn the request's CPU budget.
const MAX_ITERATIONS: u32 = 1_000_000;

/// A stored password hash, parsed.
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub expected: Vec<u8>,
}

pub fn parse_password_hash(stored: &str) -> Option<PasswordHash> {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let iterations = iter.parse::<u32>().ok().filter(|n| (1..=MAX_ITERATIONS).contains(n))?;
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let expected = STANDARD_NO_PAD.decode(hash).ok().filter(|e| e.len() == 32)?;
    Some(PasswordHash {
        iterations,
        salt,
        expected,
    })
}

pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out.to_vec()
}

/// Does `derived` equal the stored hash? Constant time.
pub fn password_matches(derived: &[u8], h: &PasswordHash) -> bool {
    bool::from(derived.ct_eq(&h.expected[..]))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    parse_password_hash(stored)
        .is_some_and(|h| password_matches(&pbkdf2_sha256(password.as_bytes(), &h.salt, h.iterations), &h))
}

/// Salt for the work burnt when the user does not exist, so response time
/// does not reveal which emails have accounts.
pub const DUMMY_SALT: &[u8] = b"no-such-user-salt";

type KdfFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + 'a>>;

/// Where PBKDF2 runs. The worker uses WebCrypto's native implementation (far
/// less CPU than wasm); native tests use the Rust one.
pub trait Kdf {
    fn pbkdf2_sha256<'a>(&'a self, password: &'a [u8], salt: &'a [u8], iterations: u32) -> KdfFuture<'a>;
}

pub struct RustKdf;

impl Kdf for RustKdf {
    fn pbkdf2_sha256<'a>(&'a self, password: &'a [u8], salt: &'a [u8], iterations: u32) -> KdfFuture<'a> {
        Box::pin(async move { pbkdf2_sha256(password, salt, iterations) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_prefix_and_256_bits() {
        let t = new_token("at_");
        assert!(t.starts_with("at_"));
        assert_eq!(t.len(), 3 + 43);
        assert_ne!(new_token("at_"), new_token("at_"));
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn password_round_trip_and_rejects_wrong_or_malformed() {
        let h = hash_password("alice-password", 1000);
        assert!(verify_password("alice-password", &h));
        assert!(!verify_password("alice-passwore", &h));
        assert!(!verify_password("x", "pbkdf2-sha256$0$AA$AA"));
        assert!(!verify_password("x", "garbage"));
        assert!(!verify_password("x", "pbkdf2-sha256$99999999999$AA$AA"));
    }

    #[test]
    fn constant_time_eq_needs_equal_length_and_bytes() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
