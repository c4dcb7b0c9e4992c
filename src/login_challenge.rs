//! Delegated sign-in's login challenge: its prefixes, lifetime, landing URL and token shape, shared by the browser's half (endpoints) and the platform's (admin).
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use crate::http::Params;

/// Where the platform sends the browser back (the `redirect_to` of accept and reject).
pub const LANDING_PATH: &str = "/oauth/login/verify";
/// A challenge lives 10 minutes: long enough for a password manager and a
/// second factor, short enough that a stale one is useless.
pub const CHALLENGE_TTL: i64 = 600;
pub const CHALLENGE_PREFIX: &str = "lc_";
pub const VERIFIER_PREFIX: &str = "lv_";

/// The `redirect_to` the platform sends the browser to after accept or reject.
pub fn landing_url(issuer: &str, request: &str, verifier: &str) -> String {
    format!(
        "{issuer}{LANDING_PATH}?{request}&{}",
        Params::encode(&[("login_verifier", verifier)])
    )
}

/// A presented token of ours: the right prefix and a sane length.
pub fn shaped<'a>(value: Option<&'a str>, prefix: &str) -> Option<&'a str> {
    value.filter(|v| v.starts_with(prefix) && v.len() <= 128)
}
