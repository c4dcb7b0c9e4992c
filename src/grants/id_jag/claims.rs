//! What an ID-JAG must claim once its signature verified
//! (draft-ietf-oauth-identity-assertion-authz-grant §"Processing Rules",
//! RFC 7523 §3): for this server, for the authenticated client, short-lived,
//! with a `jti` to spend.

use serde::Deserialize;
use serde_json::Value;

/// Clock skew allowed on `iat`, `nbf` and `exp`.
pub const SKEW: i64 = 30;
/// Longest `jti` accepted (it is stored as its SHA-256).
pub const MAX_JTI: usize = 256;
/// Most resources one ID-JAG may name.
pub const MAX_RESOURCES: usize = 10;

#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub email: Option<String>,
    pub aud: Option<Value>,
    pub client_id: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    /// RFC 8707: a string or an array of strings.
    pub resource: Option<Value>,
    pub scope: Option<String>,
}

/// Check the claims of an ID-JAG for `client_id` at this `issuer`, at `now`,
/// lasting at most `max_age` seconds. The refusal says which claim failed.
pub fn check(c: &Claims, issuer: &str, client_id: &str, now: i64, max_age: i64) -> Result<(), String> {
    // The draft: a string, or an array of exactly one element, naming us.
    let aud_ok = match &c.aud {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.len() == 1 && list[0].as_str() == Some(issuer),
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "the ID-JAG's aud must be this server's issuer ({issuer}), alone"
        ));
    }
    if c.client_id.as_deref() != Some(client_id) {
        return Err("the ID-JAG was issued to another client (its client_id is not the authenticated client)".into());
    }
    let (Some(exp), Some(iat)) = (c.exp, c.iat) else {
        return Err("the ID-JAG needs exp and iat".into());
    };
    if exp <= now - SKEW {
        return Err("the ID-JAG has expired".into());
    }
    if iat > now + SKEW || c.nbf.is_some_and(|n| n > now + SKEW) {
        return Err("the ID-JAG is not valid yet (iat or nbf in the future)".into());
    }
    if exp <= iat || exp - iat > max_age {
        return Err(format!(
            "the ID-JAG must expire within {max_age} seconds of its iat (ID_JAG_MAX_AGE_SECONDS)"
        ));
    }
    match c.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI => {}
        _ => return Err(format!("the ID-JAG needs a jti (1 to {MAX_JTI} characters)")),
    }
    if c.sub.as_deref().is_none_or(str::is_empty) {
        return Err("the ID-JAG needs a sub".into());
    }
    Ok(())
}

/// The `resource` claim as a list (absent: empty).
pub fn resources(c: &Claims) -> Result<Vec<String>, String> {
    let raw: Vec<&str> = match &c.resource {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) if list.len() <= MAX_RESOURCES => list
            .iter()
            .map(|v| v.as_str().ok_or("the ID-JAG's resource must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(format!(
                "the ID-JAG's resource must be a string or up to {MAX_RESOURCES} strings"
            ))
        }
    };
    let mut out = Vec::new();
    for r in raw {
        let r = crate::audience::canonical(r).map_err(|e| format!("the ID-JAG's {e}"))?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const AS: &str = "https://as.example";

    fn claims(patch: Value) -> Claims {
        let mut v = json!({"iss": "https://idp.example", "sub": "u1", "aud": AS, "client_id": "c1",
            "iat": NOW, "exp": NOW + 300, "jti": "j"});
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn check_at(patch: Value) -> Result<(), String> {
        check(&claims(patch), AS, "c1", NOW, 300)
    }

    #[test]
    fn a_good_id_jag_passes() {
        assert!(check_at(json!({})).is_ok());
        assert!(check_at(json!({"aud": [AS]})).is_ok());
        assert!(
            check_at(json!({"iat": NOW + 20, "exp": NOW + 100})).is_ok(),
            "within the skew"
        );
    }

    #[test]
    fn each_claim_is_checked() {
        for (patch, why) in [
            (json!({"aud": "https://other.example"}), "aud"),
            (json!({"aud": [AS, "https://other.example"]}), "aud"),
            (json!({"aud": [AS, AS]}), "aud"),
            (json!({"aud": format!("{AS}/oauth/token")}), "aud"),
            (json!({"aud": null}), "aud"),
            (json!({"client_id": "c2"}), "another client"),
            (json!({"client_id": null}), "another client"),
            (json!({"exp": null}), "exp and iat"),
            (json!({"iat": null}), "exp and iat"),
            (json!({"iat": NOW - 400, "exp": NOW - 100}), "expired"),
            (json!({"iat": NOW + 60, "exp": NOW + 120}), "not valid yet"),
            (json!({"nbf": NOW + 60}), "not valid yet"),
            (json!({"exp": NOW + 301}), "within 300"),
            (json!({"exp": NOW}), "within 300"),
            (json!({"jti": null}), "jti"),
            (json!({"jti": ""}), "jti"),
            (json!({"jti": "x".repeat(257)}), "jti"),
            (json!({"sub": ""}), "sub"),
            (json!({"sub": null}), "sub"),
        ] {
            let e = check_at(patch.clone()).unwrap_err();
            assert!(e.contains(why), "{patch}: {e}");
        }
    }

    #[test]
    fn resources_are_a_string_or_a_list() {
        let r = |v: Value| resources(&claims(json!({"resource": v})));
        assert_eq!(
            r(json!("https://mcp.example/mcp")).unwrap(),
            ["https://mcp.example/mcp"]
        );
        assert_eq!(
            r(json!(["https://a.example/", "https://a.example"])).unwrap(),
            ["https://a.example"]
        );
        assert!(resources(&claims(json!({}))).unwrap().is_empty());
        assert!(r(json!(1)).is_err());
        assert!(r(json!([1])).is_err());
        assert!(r(json!("not a url")).is_err());
    }
}
