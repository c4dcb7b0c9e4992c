//! Settings of DPoP (RFC 9449): `DPOP_REQUIRED`, `DPOP_NONCE`, `DPOP_PROOF_MAX_AGE_SECONDS`.

use super::choice;

/// Which clients must send a DPoP proof at the token endpoint (besides each
/// client whose metadata says `dpop_bound_access_tokens: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopRequired {
    Off,
    /// Public clients: the ones that cannot keep a secret.
    Public,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpop {
    pub required: DpopRequired,
    /// Server nonces (§8, §9): every proof must carry a recent `DPoP-Nonce`.
    pub nonce: bool,
    /// The `iat` window: a proof older than this is refused (and the length
    /// of a nonce's time slot).
    pub max_age: i64,
}

impl Default for Dpop {
    fn default() -> Self {
        Self {
            required: DpopRequired::Off,
            nonce: true,
            max_age: 60,
        }
    }
}

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Dpop, String> {
    let d = Dpop::default();
    let max_age = match get("DPOP_PROOF_MAX_AGE_SECONDS").as_deref().map(str::trim) {
        None | Some("") => d.max_age,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (10..=300).contains(&n) => n,
            _ => return Err(format!("DPOP_PROOF_MAX_AGE_SECONDS must be 10 to 300, got {v:?}")),
        },
    };
    Ok(Dpop {
        required: choice(
            get,
            "DPOP_REQUIRED",
            &[
                ("off", DpopRequired::Off),
                ("public", DpopRequired::Public),
                ("all", DpopRequired::All),
            ],
        )?,
        nonce: choice(get, "DPOP_NONCE", &[("on", true), ("off", false)])?,
        max_age,
    })
}
