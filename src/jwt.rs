//! JWT access tokens (RFC 9068): ES256 keys from a JWK set, signing, the JWKS
//! document, and verification for resource servers that read no storage.
//!
//! The signature itself runs behind [`Es256`] (WebCrypto in the worker, the
//! `p256` crate natively), as PBKDF2 runs behind `crypto::Kdf`. Parsing is a
//! few lines of serde_json + base64: only one algorithm (ES256) and one
//! header shape are accepted, so a general JWT library would add wasm size
//! and algorithm choices we would then have to refuse.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub mod low_s;

#[cfg(not(target_arch = "wasm32"))]
pub use crate::crypto::RustEs256;
pub use crate::crypto::{parse_keys, Es256, Jwk, NoEs256};

/// The JWKS document: public keys only.
pub fn jwks(keys: &[Jwk]) -> Value {
    json!({"keys": keys.iter().map(Jwk::public).collect::<Vec<_>>()})
}

/// RFC 9068 §2.2 claims, plus the org and actor mode of this server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The user for the `self` actor, the client for the `app` actor (§2.2).
    pub sub: String,
    /// The token's audience (RFC 8707): the resources it may be used at.
    pub aud: crate::audience::Audience,
    pub exp: i64,
    pub iat: i64,
    /// The token's storage handle: its SHA-256 is what D1 keeps (revocation,
    /// introspection, `strict` bearer mode).
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub org_id: String,
    /// `self` (on behalf of the user) or `app` (the app's bot identity).
    pub actor: String,
    /// RFC 9449 §6.1: the DPoP key a bound token needs a proof by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// RFC 8693 §4.1: who acts for `sub`, on a token from an exchange
    /// (nested for a chain). A resource in `BEARER_MODE=jwt` still checks
    /// such a token against storage (`bearer`), so the chain's revocation counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

/// RFC 7800 confirmation: the JWK SHA-256 thumbprint of a DPoP key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cnf {
    pub jkt: String,
}

/// Sign `claims` with the first key of the set (the others only verify).
pub async fn sign(es: &dyn Es256, keys: &[Jwk], claims: &Claims) -> Result<String, String> {
    let key = keys.first().ok_or("no signing key")?;
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).map_err(|e| e.to_string())?)
    );
    let mut sig = es.sign(key, input.as_bytes()).await?;
    // Only the low-S form verifies (`low_s`); WebCrypto returns either.
    low_s::normalize(&mut sig);
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Does this look like a JWS compact serialization (rather than an opaque token)?
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// What a verification expects besides a good signature.
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// Resources of this deployment: `aud` must name at least one (which
    /// one a resource needs is its own check, `bearer::require`).
    pub audience: &'a [String],
    pub now: i64,
    /// Revocation and introspection accept an expired token (RFC 7009 §2.2:
    /// revoking it is harmless; RFC 7662 answers `active: false` from storage).
    pub allow_expired: bool,
}

/// Why a token was refused (for tests and logs; the client sees `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    Malformed,
    /// `alg` other than ES256 (`none` included: RFC 8725 §3.1).
    Algorithm,
    Type,
    UnknownKey,
    Signature,
    Expired,
    Issuer,
    Audience,
}

/// A JWS compact serialization taken apart (RFC 7515 §7.1), nothing checked
/// but its shape and its header's JSON: what access tokens and ID token hints
/// share before each applies its own rules.
pub(crate) struct Jws<'t> {
    pub header: Value,
    /// The signing input, `header.payload` as sent.
    pub input: &'t [u8],
    payload: &'t str,
    signature: &'t str,
}

impl<'t> Jws<'t> {
    /// Three base64url parts, at most `max` bytes in all, a JSON header.
    pub(crate) fn split(token: &'t str, max: usize) -> Result<Self, Reject> {
        if token.len() > max {
            return Err(Reject::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Reject::Malformed);
        };
        let header = serde_json::from_slice(&decode(h)?).map_err(|_| Reject::Malformed)?;
        Ok(Jws {
            header,
            input: &token.as_bytes()[..h.len() + 1 + p.len()],
            payload: p,
            signature: s,
        })
    }

    pub(crate) fn signature(&self) -> Result<Vec<u8>, Reject> {
        decode(self.signature)
    }

    /// The payload as `T`; read it only once the signature verified.
    pub(crate) fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, Reject> {
        serde_json::from_slice(&decode(self.payload)?).map_err(|_| Reject::Malformed)
    }
}

fn decode(part: &str) -> Result<Vec<u8>, Reject> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Reject::Malformed)
}

/// Verify an access token: ES256 only, `typ` at+jwt (RFC 9068 §4), a known
/// `kid`, the signature, then `iss`, `aud` and `exp`.
pub async fn verify(es: &dyn Es256, keys: &[Jwk], token: &str, expect: &Expect<'_>) -> Result<Claims, Reject> {
    let jws = Jws::split(token, 4096)?;
    let header = &jws.header;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(Reject::Algorithm);
    }
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(Reject::Type);
    }
    // A header naming its own key (`jwk`, `jku`, `x5u`) is never trusted: only ours.
    let kid = header.get("kid").and_then(Value::as_str).ok_or(Reject::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or(Reject::UnknownKey)?;
    let sig = jws.signature()?;
    // A high-S twin of a valid signature verifies in both backends; refuse it.
    if !low_s::is_low_s(&sig) || !es.verify(key, jws.input, &sig).await {
        return Err(Reject::Signature);
    }
    let claims: Claims = jws.payload()?;
    if claims.iss != expect.issuer {
        return Err(Reject::Issuer);
    }
    if !expect.audience.iter().any(|a| claims.aud.contains(a)) {
        return Err(Reject::Audience);
    }
    if !expect.allow_expired && claims.exp <= expect.now {
        return Err(Reject::Expired);
    }
    Ok(claims)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    // A fixed test key (generated for these tests only, never deployed).
    fn key(kid: &str, seed: u8) -> Jwk {
        use p256::ecdsa::SigningKey;
        let sk = SigningKey::from_slice(&[seed; 32]).unwrap();
        let pt = sk.verifying_key().to_encoded_point(false);
        Jwk {
            kid: kid.into(),
            x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
            y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
            d: URL_SAFE_NO_PAD.encode([seed; 32]),
        }
    }

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "https://as.test".into(),
            sub: "usr_1".into(),
            aud: crate::audience::Audience(vec![crate::audience::default_audience(
                &crate::config::Config::default(),
                "https://as.test",
            )]),
            exp: now + 60,
            iat: now,
            jti: "j1".into(),
            client_id: "app_1".into(),
            scope: "read".into(),
            org_id: "org_1".into(),
            actor: "self".into(),
            cnf: None,
            act: None,
        }
    }

    static API: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| vec!["https://as.test/api/v1".into()]);

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            issuer: "https://as.test",
            audience: &API,
            now,
            allow_expired: false,
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn signed_token_verifies_with_its_claims_and_header() {
        let keys = vec![key("a", 1)];
        let t = run(sign(&RustEs256, &keys, &claims(100))).unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "typ": "at+jwt", "kid": "a"}));
        assert_eq!(URL_SAFE_NO_PAD.decode(t.split('.').nth(2).unwrap()).unwrap().len(), 64);
        assert_eq!(run(verify(&RustEs256, &keys, &t, &expect(100))), Ok(claims(100)));
    }

    #[test]
    fn the_high_s_twin_of_a_token_is_refused() {
        let keys = vec![key("a", 1)];
        let t = run(sign(&RustEs256, &keys, &claims(100))).unwrap();
        let (input, s) = t.rsplit_once('.').unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        let (r, s) = sig.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(twin.to_bytes()));
        assert_eq!(
            run(verify(&RustEs256, &keys, &forged, &expect(100))),
            Err(Reject::Signature)
        );
    }

    #[test]
    fn only_the_first_key_signs_and_every_key_verifies() {
        let old = vec![key("a", 1)];
        let t1 = run(sign(&RustEs256, &old, &claims(100))).unwrap();
        let rotated = vec![key("b", 2), key("a", 1)];
        assert!(run(verify(&RustEs256, &rotated, &t1, &expect(100))).is_ok());
        let t2 = run(sign(&RustEs256, &rotated, &claims(100))).unwrap();
        assert!(t2.starts_with(&b64(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "b"}))));
        assert_eq!(
            run(verify(&RustEs256, &old, &t2, &expect(100))),
            Err(Reject::UnknownKey)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let keys = vec![key("a", 1)];
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims(100)).unwrap());
        let none = format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "a"}))
        );
        assert_eq!(
            run(verify(&RustEs256, &keys, &none, &expect(100))),
            Err(Reject::Algorithm)
        );
        let hs = format!(
            "{}.{payload}.AAAA",
            b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "a"}))
        );
        assert_eq!(
            run(verify(&RustEs256, &keys, &hs, &expect(100))),
            Err(Reject::Algorithm)
        );
        let untyped = format!(
            "{}.{payload}.AAAA",
            b64(&json!({"alg": "ES256", "typ": "JWT", "kid": "a"}))
        );
        assert_eq!(
            run(verify(&RustEs256, &keys, &untyped, &expect(100))),
            Err(Reject::Type)
        );
    }

    #[test]
    fn unknown_key_foreign_signature_and_tampering_are_refused() {
        let keys = vec![key("a", 1)];
        let foreign = run(sign(&RustEs256, &[key("a", 9)], &claims(100))).unwrap();
        assert_eq!(
            run(verify(&RustEs256, &keys, &foreign, &expect(100))),
            Err(Reject::Signature)
        );
        let other_kid = run(sign(&RustEs256, &[key("z", 1)], &claims(100))).unwrap();
        assert_eq!(
            run(verify(&RustEs256, &keys, &other_kid, &expect(100))),
            Err(Reject::UnknownKey)
        );
        let good = run(sign(&RustEs256, &keys, &claims(100))).unwrap();
        let mut c = claims(100);
        c.scope = "admin".into();
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_string(&c).unwrap()),
            parts[2]
        );
        assert_eq!(
            run(verify(&RustEs256, &keys, &tampered, &expect(100))),
            Err(Reject::Signature)
        );
        assert_eq!(
            run(verify(&RustEs256, &keys, "a.b", &expect(100))),
            Err(Reject::Malformed)
        );
    }

    #[test]
    fn expiry_issuer_and_audience_are_checked() {
        let keys = vec![key("a", 1)];
        let t = run(sign(&RustEs256, &keys, &claims(100))).unwrap();
        assert_eq!(run(verify(&RustEs256, &keys, &t, &expect(160))), Err(Reject::Expired));
        let late = Expect {
            allow_expired: true,
            ..expect(160)
        };
        assert!(run(verify(&RustEs256, &keys, &t, &late)).is_ok());
        let others = vec!["https://other.test/api".to_string()];
        let other_aud = Expect {
            audience: &others,
            ..expect(100)
        };
        assert_eq!(run(verify(&RustEs256, &keys, &t, &other_aud)), Err(Reject::Audience));
        let none = Expect {
            audience: &[],
            ..expect(100)
        };
        assert_eq!(run(verify(&RustEs256, &keys, &t, &none)), Err(Reject::Audience));
        // Several audiences: any one of the deployment's resources admits it.
        let mut c = claims(100);
        c.aud = crate::audience::Audience(vec!["https://other.test/api".into(), "https://as.test/api/v1".into()]);
        let multi = run(sign(&RustEs256, &keys, &c)).unwrap();
        assert!(run(verify(&RustEs256, &keys, &multi, &expect(100))).is_ok());
        assert_eq!(
            run(verify(&RustEs256, &keys, &multi, &other_aud)).map(|c| c.aud.0.len()),
            Ok(2)
        );
        let other_iss = Expect {
            issuer: "https://evil.test",
            ..expect(100)
        };
        assert_eq!(run(verify(&RustEs256, &keys, &t, &other_iss)), Err(Reject::Issuer));
    }

    #[test]
    fn key_sets_are_parsed_strictly_and_served_without_private_parts() {
        let k = key("a", 1);
        let text =
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": k.x, "y": k.y, "d": k.d}]}).to_string();
        let keys = parse_keys(&text).unwrap();
        assert_eq!(keys, vec![k.clone()]);
        let served = jwks(&keys);
        assert!(served["keys"][0].get("d").is_none());
        assert_eq!(served["keys"][0]["use"], "sig");
        assert_eq!(served["keys"][0]["alg"], "ES256");
        assert!(parse_keys(r#"{"keys":[]}"#).is_err());
        assert!(parse_keys("nope").is_err());
        let public_only = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": k.x, "y": k.y}]}).to_string();
        assert!(parse_keys(&public_only).is_err());
        let rsa = json!({"keys": [{"kty": "RSA", "kid": "a"}]}).to_string();
        assert!(parse_keys(&rsa).is_err());
        let one = json!({"kty": "EC", "crv": "P-256", "kid": "a", "x": k.x, "y": k.y, "d": k.d});
        let twice = json!({"keys": [one, one]}).to_string();
        assert!(parse_keys(&twice).is_err());
    }
}
