//! Scope rules (RFC 6749 §3.3): space-delimited, an app requests only what it
//! declared, a refresh may only narrow, and what a token can do is its scopes
//! intersected with the actor's current permissions.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

use std::collections::BTreeSet;

/// OpenID Connect's scopes (Core §3.1.2.1, §5.4): built in with `OPENID=on`,
/// asked for without being declared, never in the platform's catalogue.
pub const OPENID: &str = "openid";
pub const OPENID_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Whether `s` is one of [`OPENID_SCOPES`].
pub fn is_openid_scope(s: &str) -> bool {
    OPENID_SCOPES.contains(&s)
}

/// RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Parse a scope parameter into a sorted, de-duplicated list.
pub fn parse(raw: &str) -> Result<Vec<String>, String> {
    let mut set = BTreeSet::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !valid_token(s) {
            return Err(format!("scope {s:?} is malformed"));
        }
        set.insert(s.to_string());
    }
    if set.len() > 50 {
        return Err("too many scopes".into());
    }
    Ok(set.into_iter().collect())
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// The first scope of `requested` not in `allowed`, if any.
pub fn first_outside<'a>(requested: &'a [String], allowed: &[String]) -> Option<&'a str> {
    requested.iter().find(|s| !allowed.contains(s)).map(String::as_str)
}

pub fn intersect(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|s| b.contains(s)).cloned().collect()
}

pub fn to_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

pub fn from_json(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dedups_and_sorts() {
        assert_eq!(
            parse("posts:read  profile:read posts:read").unwrap(),
            vec!["posts:read", "profile:read"]
        );
        assert!(parse("posts:read \"evil\"").is_err());
        assert!(parse("a\\b").is_err());
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn subset_and_intersection() {
        let declared = vec!["posts:read".to_string(), "profile:read".to_string()];
        let req = vec!["posts:write".to_string()];
        assert_eq!(first_outside(&req, &declared), Some("posts:write"));
        assert_eq!(first_outside(&declared, &declared), None);
        assert_eq!(intersect(&declared, &["posts:read".to_string()]), vec!["posts:read"]);
    }
}
