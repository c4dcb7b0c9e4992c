//! Server nonces without storage (§8, §9): an HMAC of a time slot. The key
//! comes from the deployment's own secrets, so every isolate computes the
//! same nonce; a nonce is accepted in its slot and the next one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::Config;

thread_local! {
    // Without any secret configured (a development server), a per-isolate key:
    // nonces then hold within one isolate, and another one asks for its own.
    static FALLBACK: [u8; 32] = {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("the platform CSPRNG is available");
        k
    };
}

/// The nonce key: derived (never used as is) from the first private signing
/// key, else `SUBJECT_SALT`, else the isolate's own random key.
fn key(config: &Config) -> [u8; 32] {
    let secret = config
        .jwt_keys
        .first()
        .map(|k| k.d.clone())
        .or_else(|| config.rsa_keys.first().map(|k| k.d.clone()))
        .or_else(|| config.subject_salt.clone());
    match secret {
        Some(s) => Sha256::digest(format!("dpop-nonce\0{s}").as_bytes()).into(),
        None => FALLBACK.with(|k| *k),
    }
}

fn at_slot(config: &Config, slot: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(config)).expect("HMAC takes any key length");
    mac.update(&slot.to_be_bytes());
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
}

fn slot(config: &Config, now: i64) -> i64 {
    now.div_euclid(config.dpop.max_age.max(1))
}

/// The nonce to hand out now (`DPoP-Nonce`).
pub fn current(config: &Config, now: i64) -> String {
    at_slot(config, slot(config, now))
}

/// Was `nonce` handed out in this slot or the one before?
pub fn valid(config: &Config, nonce: &str, now: i64) -> bool {
    let s = slot(config, now);
    [s, s - 1]
        .iter()
        .any(|s| crate::crypto::ct_eq(nonce, &at_slot(config, *s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_holds_in_its_slot_and_the_next_only() {
        let c = Config {
            subject_salt: Some("salt".into()),
            ..Config::default()
        };
        let n = current(&c, 1_000_000);
        let slot = c.dpop.max_age;
        let start = 1_000_000 - 1_000_000 % slot;
        assert!(valid(&c, &n, start));
        assert!(valid(&c, &n, start + 2 * slot - 1), "the next slot still takes it");
        assert!(!valid(&c, &n, start + 2 * slot), "two slots on, it is stale");
        assert!(!valid(&c, &n, start - 1), "not before it was made");
        assert!(!valid(&c, "x", start));
        let other = Config {
            subject_salt: Some("another".into()),
            ..Config::default()
        };
        assert!(!valid(&other, &n, start), "another deployment's key makes other nonces");
    }
}
