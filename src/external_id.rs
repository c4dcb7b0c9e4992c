//! The platform's ids (of users, orgs, memberships, API keys): the one rule every place that takes one applies.
//!
//! They arrive in back-office paths (`/admin/v1/users/{id}`) and in JSON
//! bodies (login accept's `external_id`, its memberships' `org`); an id one
//! of them accepts and another refuses names a user nobody can then manage
//! (delete, sign out), so both check it here.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

/// Longest id, in bytes of UTF-8 (numbers, UUIDs, `auth0|…` fit easily).
pub const MAX_LEN: usize = 128;

/// Why `id` is not one of the platform's ids, if it is not: 1 to
/// [`MAX_LEN`] bytes, no control characters, no `/` (a path segment).
pub fn invalid(id: &str) -> Option<String> {
    (id.is_empty() || id.len() > MAX_LEN || id.chars().any(|c| c.is_control() || c == '/'))
        .then(|| format!("an external id must be 1 to {MAX_LEN} characters, without control characters or '/'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_external_id() {
        for ok in [
            "1",
            "auth0|abc",
            "0b8f5b5e-2f4d-4c55-9b3a-1e2d3c4b5a69",
            &"x".repeat(MAX_LEN),
            "a b",
            "é",
        ] {
            assert_eq!(invalid(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            "a/b",
            "/",
            "a\nb",
            "\u{7f}",
            &"x".repeat(MAX_LEN + 1),
            &"é".repeat(65),
        ] {
            assert!(invalid(bad).is_some(), "{bad:?}");
        }
    }
}
