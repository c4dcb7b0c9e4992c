//! Fresh sign-in (OIDC Core §3.1.2.1 `prompt=login`, `max_age`): when an
//! authorization needs one, the proof that brings a completed one back to
//! it, and what a delegated sign-in may say about how and when it happened.
//!
//! The proof: a sign-in returns the browser to the authorization it was made
//! for with `login_proof=<t>.<mac>`, `t` the sign-in's time and `mac` the
//! SHA-256 of the new session's cookie token and `t`. Every sign-in makes a
//! new session (a new token), the cookie is HttpOnly and never reaches an
//! app, and a proof lives [`PROOF_TTL`] seconds; so an app cannot forge one
//! to skip the sign-in it asked for, a person at an unlocked browser cannot
//! edit one into the URL, and an old URL in the history proves nothing.

use crate::crypto;
use crate::http::Params;

/// The internal authorize parameter carrying the proof.
pub const PROOF_PARAM: &str = "login_proof";
/// The resumed authorization follows the sign-in's redirect at once; a
/// longer life would only let a proof from the history be replayed.
pub const PROOF_TTL: i64 = 300;
/// A delegated sign-in's `auth_time` may run this far ahead of our clock
/// (the platform's clock); it is then recorded as now.
pub const AUTH_TIME_SKEW: i64 = 60;
/// The oldest `auth_time` a platform may report when no fresh sign-in was
/// asked for: browsers keep no cookie longer than 400 days, so no sign-in
/// session is older.
pub const AUTH_TIME_MAX_AGE: i64 = 400 * 86_400;
/// Bounds of the platform's `acr` and `amr` (RFC 8176 values are a few
/// letters: `pwd`, `otp`, `mfa`, `hwk`).
pub const MAX_ACR: usize = 255;
pub const MAX_AMR_VALUES: usize = 10;
pub const MAX_AMR_VALUE: usize = 32;

fn mac(session_token: &str, t: i64) -> String {
    crypto::sha256_hex(&format!("{PROOF_PARAM}\0{t}\0{session_token}"))
}

/// The proof of a sign-in made now that started the session `session_token`.
pub fn proof(session_token: &str, now: i64) -> String {
    format!("{now}.{}", mac(session_token, now))
}

/// `presented` proves a sign-in within [`PROOF_TTL`] that started the
/// session whose cookie token is `session_token`.
pub fn proof_ok(presented: Option<&str>, session_token: &str, now: i64) -> bool {
    let Some((t, m)) = presented.and_then(|p| p.split_once('.')) else {
        return false;
    };
    let Ok(t) = t.parse::<i64>() else { return false };
    t <= now && now - t <= PROOF_TTL && crypto::ct_eq(m, &mac(session_token, t))
}

/// `return_to` with the proof, when it is an authorization that asked for
/// one (it carries a `login_proof` parameter, empty until now: the
/// authorization endpoint adds it when it sends the browser to sign in);
/// otherwise unchanged, byte for byte.
pub fn resume(return_to: &str, session_token: &str, now: i64) -> String {
    let Some(query) = return_to.strip_prefix("/oauth/authorize?") else {
        return return_to.to_string();
    };
    let is_proof = |seg: &&str| seg.split('=').next() == Some(PROOF_PARAM);
    if !query.split('&').any(|s| is_proof(&s)) {
        return return_to.to_string();
    }
    let kept: Vec<&str> = query.split('&').filter(|s| !s.is_empty() && !is_proof(s)).collect();
    // The proof is digits, a dot and hex: nothing to encode.
    let proof = proof(session_token, now);
    match kept.as_slice() {
        [] => format!("/oauth/authorize?{PROOF_PARAM}={proof}"),
        _ => format!("/oauth/authorize?{}&{PROOF_PARAM}={proof}", kept.join("&")),
    }
}

/// An authorization to resume after a sign-in, asking for the proof.
pub fn awaiting_proof(authorize_path: &str) -> String {
    format!("{authorize_path}&{PROOF_PARAM}=")
}

/// Whether the session must sign in again before this authorization:
/// `prompt=login`, `max_age=0`, or a sign-in older than `max_age` seconds.
pub fn needs_fresh(login: bool, max_age: Option<i64>, auth_time: Option<i64>, now: i64) -> bool {
    login
        || match max_age {
            None => false,
            Some(0) => true,
            Some(m) => auth_time.is_none_or(|t| now - t > m),
        }
}

/// The oldest `auth_time` a platform may report for a challenge opened at
/// `created_at` for the authorization `request` (its canonical query): the
/// challenge's own opening when the authorization asked for a fresh sign-in
/// (`prompt=login`), `max_age` before it when it set one, and otherwise
/// [`AUTH_TIME_MAX_AGE`] before now.
pub fn auth_time_floor(request: &str, created_at: i64, now: i64) -> i64 {
    let p = Params::parse(request.as_bytes());
    let login = p
        .get("prompt")
        .is_some_and(|v| v.split(' ').any(|x| matches!(x, "login" | "select_account")));
    let max_age = p.get("max_age").and_then(|m| m.parse::<i64>().ok());
    match (login, max_age) {
        (true, _) | (false, Some(0)) => created_at,
        (false, Some(m)) => created_at - m,
        (false, None) => now - AUTH_TIME_MAX_AGE,
    }
}

/// The platform's `acr`: printable ASCII, at most [`MAX_ACR`] bytes.
pub fn check_acr(acr: &str) -> Result<(), String> {
    if acr.is_empty() || acr.len() > MAX_ACR || !acr.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("acr must be 1 to {MAX_ACR} printable ASCII characters"));
    }
    Ok(())
}

/// The platform's `amr` as the JSON array a session keeps: at most
/// [`MAX_AMR_VALUES`] values of 1 to [`MAX_AMR_VALUE`] letters, digits, `.`,
/// `_`, `-` or `:`.
pub fn amr_json(amr: &[String]) -> Result<String, String> {
    let ok = |v: &String| {
        !v.is_empty()
            && v.len() <= MAX_AMR_VALUE
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    };
    if amr.is_empty() || amr.len() > MAX_AMR_VALUES || !amr.iter().all(ok) {
        return Err(format!(
            "amr must be an array of 1 to {MAX_AMR_VALUES} values, each 1 to {MAX_AMR_VALUE} letters, digits, '.', '_', '-' or ':'"
        ));
    }
    Ok(serde_json::to_string(amr).unwrap_or_else(|_| "[]".into()))
}

/// The `auth_time` to record for a delegated sign-in: `reported` if within
/// `[floor, now + AUTH_TIME_SKEW]` (clamped to now), else why not.
pub fn check_auth_time(reported: i64, floor: i64, now: i64) -> Result<i64, String> {
    if reported > now + AUTH_TIME_SKEW {
        return Err("auth_time is in the future".into());
    }
    if reported < floor {
        return Err(format!(
            "auth_time is older than this sign-in allows (at least {floor}: the authorization asked for a fresh sign-in, or this is over {} days ago)",
            AUTH_TIME_MAX_AGE / 86_400
        ));
    }
    Ok(reported.min(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_binds_session_and_time() {
        let p = proof("sess_a", 1000);
        assert!(proof_ok(Some(&p), "sess_a", 1000));
        assert!(proof_ok(Some(&p), "sess_a", 1000 + PROOF_TTL));
        assert!(!proof_ok(Some(&p), "sess_a", 1001 + PROOF_TTL), "expired");
        assert!(!proof_ok(Some(&p), "sess_b", 1000), "another session");
        assert!(!proof_ok(Some(&p), "sess_a", 999), "from the future");
        let forged = p.replacen("1000.", "1100.", 1);
        assert!(!proof_ok(Some(&forged), "sess_a", 1100), "time moved");
        for bad in ["", ".", "x.y", "1000", "1000."] {
            assert!(!proof_ok(Some(bad), "sess_a", 1000), "{bad:?}");
        }
        assert!(!proof_ok(None, "sess_a", 1000));
    }

    #[test]
    fn resume_appends_one_proof_to_authorize_only() {
        assert_eq!(resume("/settings/apps", "t", 5), "/settings/apps");
        let untouched = "/oauth/authorize?client_id=a&state=a%20b";
        assert_eq!(resume(untouched, "t", 5), untouched, "no proof asked for");
        assert!(resume(&awaiting_proof(untouched), "t", 5)
            .starts_with("/oauth/authorize?client_id=a&state=a%20b&login_proof=5."));
        let r = resume(
            "/oauth/authorize?client_id=a&login_proof=old&state=x&login_proof=",
            "t",
            5,
        );
        let p = Params::parse(r.strip_prefix("/oauth/authorize?").unwrap().as_bytes());
        assert_eq!(p.repeated(&[PROOF_PARAM]), None);
        assert!(proof_ok(p.get(PROOF_PARAM), "t", 5));
        assert_eq!(p.get("state"), Some("x"));
    }

    #[test]
    fn freshness_rules() {
        assert!(needs_fresh(true, None, Some(100), 100));
        assert!(needs_fresh(false, Some(0), Some(100), 100));
        assert!(!needs_fresh(false, Some(60), Some(100), 160));
        assert!(needs_fresh(false, Some(60), Some(100), 161));
        assert!(!needs_fresh(false, None, Some(0), 1_000_000));
    }

    #[test]
    fn delegated_facts() {
        assert_eq!(auth_time_floor("client_id=a&prompt=login", 500, 900), 500);
        assert_eq!(auth_time_floor("client_id=a&max_age=100", 500, 900), 400);
        assert_eq!(auth_time_floor("client_id=a", 500, 900), 900 - AUTH_TIME_MAX_AGE);
        assert_eq!(check_auth_time(930, 500, 900), Ok(900));
        assert!(check_auth_time(961, 500, 900).is_err());
        assert!(check_auth_time(499, 500, 900).is_err());
        assert!(check_acr("urn:mace:incommon:iap:silver").is_ok());
        assert!(check_acr("").is_err() && check_acr("a\nb").is_err() && check_acr(&"a".repeat(256)).is_err());
        assert_eq!(amr_json(&["pwd".into(), "otp".into()]).unwrap(), r#"["pwd","otp"]"#);
        assert!(amr_json(&[]).is_err());
        assert!(amr_json(&["a b".into()]).is_err());
        assert!(amr_json(&vec!["pwd".to_string(); 11]).is_err());
    }
}
