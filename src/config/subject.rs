//! `SUBJECT_TYPE` and `SUBJECT_SALT`: which `sub` apps see (OIDC Core §8).

use super::{choice, BearerMode, Config};

/// How a user is named to an app (`crate::oidc::subject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectType {
    /// The user id: the same for every app.
    Public,
    /// Per sector identifier (OIDC Core §8.1): apps of different sectors
    /// cannot correlate a user by `sub`.
    Pairwise,
}

/// Shortest `SUBJECT_SALT`: a guessable salt would let anyone who knows a
/// user id compute its pairwise subjects.
pub const MIN_SUBJECT_SALT: usize = 32;

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>, c: &mut Config) -> Result<(), String> {
    c.subject_type = choice(
        get,
        "SUBJECT_TYPE",
        &[("public", SubjectType::Public), ("pairwise", SubjectType::Pairwise)],
    )?;
    c.subject_salt = get("SUBJECT_SALT")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(s) = &c.subject_salt {
        if s.len() < MIN_SUBJECT_SALT || s.len() > 512 {
            return Err(format!(
                "SUBJECT_SALT must be {MIN_SUBJECT_SALT} to 512 characters (e.g. `openssl rand -base64 32`)"
            ));
        }
    }
    if c.subject_type == SubjectType::Pairwise {
        if c.subject_salt.is_none() {
            return Err(
                "SUBJECT_TYPE=pairwise needs SUBJECT_SALT (a Worker secret: `wrangler secret put \
                        SUBJECT_SALT`; `make dev` writes one); never change it, every pairwise sub would change"
                    .into(),
            );
        }
        // BEARER_MODE=jwt takes the user from the token's `sub` and reads no
        // storage; a pairwise `sub` names no user, and putting the user id in
        // another claim would hand it to every app that reads its token.
        if c.bearer_mode == BearerMode::Jwt {
            return Err(
                "SUBJECT_TYPE=pairwise needs BEARER_MODE strict or edge: BEARER_MODE=jwt finds the user \
                        from the access token's sub, which pairwise makes app-specific"
                    .into(),
            );
        }
    }
    Ok(())
}
