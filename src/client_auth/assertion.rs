//! What a client assertion (RFC 7523 §3, as private_key_jwt uses it) must
//! claim once its signature verified: issued by and about the client, for
//! this server, short-lived, with a `jti` to spend.

use serde::Deserialize;
use serde_json::Value;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest assertion read (a PS256 signature of a 4096-bit key is 683 characters).
pub const MAX_ASSERTION_BYTES: usize = 8192;
/// Longest lifetime, `exp` − `iat`: what bounds how long a `jti` is kept.
pub const MAX_LIFETIME: i64 = 60;
/// Clock skew allowed on `iat`, `nbf` and `exp`.
pub const SKEW: i64 = 5;
/// Longest `jti` accepted (it is stored as its SHA-256).
pub const MAX_JTI: usize = 256;

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
}

/// The client an assertion says it is (`sub`), read before the signature is
/// checked only to find the client's keys.
pub fn subject(payload: &[u8]) -> Option<String> {
    let c: Claims = serde_json::from_slice(payload).ok()?;
    c.sub.filter(|s| !s.is_empty())
}

/// Check the claims of an assertion from `client_id`, for one of
/// `audiences`, at `now`; the refusal says which claim failed.
pub fn check(c: &Claims, client_id: &str, audiences: &[String], now: i64) -> Result<(), String> {
    if c.iss.as_deref() != Some(client_id) || c.sub.as_deref() != Some(client_id) {
        return Err("the client assertion's iss and sub must both be the client_id".into());
    }
    let aud_ok = match &c.aud {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "the client assertion's aud must name this server: its issuer ({})",
            audiences.first().map(String::as_str).unwrap_or_default()
        ));
    }
    let (Some(exp), Some(iat)) = (c.exp, c.iat) else {
        return Err("the client assertion needs exp and iat".into());
    };
    if exp <= now - SKEW {
        return Err("the client assertion has expired".into());
    }
    if iat > now + SKEW || c.nbf.is_some_and(|n| n > now + SKEW) {
        return Err("the client assertion is not valid yet (iat or nbf in the future)".into());
    }
    if exp <= iat || exp - iat > MAX_LIFETIME {
        return Err(format!(
            "the client assertion must expire within {MAX_LIFETIME} seconds of its iat"
        ));
    }
    match c.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI => Ok(()),
        _ => Err(format!("the client assertion needs a jti (1 to {MAX_JTI} characters)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn claims(patch: Value) -> Claims {
        let mut v =
            json!({"iss": "c1", "sub": "c1", "aud": "https://as.example", "iat": NOW, "exp": NOW + 60, "jti": "j"});
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn check_at(patch: Value) -> Result<(), String> {
        let auds = [
            "https://as.example".to_string(),
            "https://as.example/oauth/token".to_string(),
        ];
        check(&claims(patch), "c1", &auds, NOW)
    }

    #[test]
    fn a_good_assertion_passes() {
        assert!(check_at(json!({})).is_ok());
        assert!(check_at(json!({"aud": "https://as.example/oauth/token"})).is_ok());
        assert!(check_at(json!({"aud": ["https://other.example", "https://as.example"]})).is_ok());
    }

    #[test]
    fn each_claim_is_checked() {
        for (patch, why) in [
            (json!({"iss": "c2"}), "iss and sub"),
            (json!({"sub": "c2"}), "iss and sub"),
            (json!({"aud": "https://other.example"}), "aud"),
            (json!({"aud": ["https://other.example"]}), "aud"),
            (json!({"aud": null}), "aud"),
            (json!({"exp": null}), "exp and iat"),
            (json!({"iat": null}), "exp and iat"),
            (json!({"iat": NOW - 120, "exp": NOW - 60}), "expired"),
            (json!({"iat": NOW + 30, "exp": NOW + 60}), "not valid yet"),
            (json!({"nbf": NOW + 30}), "not valid yet"),
            (json!({"exp": NOW + 61}), "within 60"),
            (json!({"exp": NOW}), "within 60"),
            (json!({"jti": null}), "jti"),
            (json!({"jti": ""}), "jti"),
            (json!({"jti": "x".repeat(257)}), "jti"),
        ] {
            let e = check_at(patch.clone()).unwrap_err();
            assert!(e.contains(why), "{patch}: {e}");
        }
    }

    #[test]
    fn the_subject_is_read_before_the_signature_only_to_find_keys() {
        assert_eq!(subject(br#"{"sub": "c1"}"#).as_deref(), Some("c1"));
        assert_eq!(subject(br#"{"sub": ""}"#), None);
        assert_eq!(subject(b"not json"), None);
    }
}
