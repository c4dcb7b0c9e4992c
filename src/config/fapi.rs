//! `FAPI2`: the FAPI 2.0 Security Profile (profiles/fapi2.toml), and the
//! refusal to start with any setting that contradicts it.

use super::{choice, Config, DcrPolicy, PkceRequired};

/// FAPI 2.0 Security Profile §5.3.2.2: codes live at most 60 seconds.
pub const FAPI2_MAX_CODE_TTL: i64 = 60;

/// Parse `FAPI2` and, when on, check the settings already parsed: every
/// contradiction is named with the value the profile needs.
pub(super) fn parse(get: &impl Fn(&str) -> Option<String>, c: &mut Config) -> Result<(), String> {
    c.fapi2 = choice(get, "FAPI2", &[("off", false), ("on", true)])?;
    if !c.fapi2 {
        return Ok(());
    }
    let refuse = |why: &str| Err(format!("FAPI2=on (profiles/fapi2.toml) needs {why}"));
    if !c.par_required {
        return refuse("PAR_REQUIRED=on: every authorization request is pushed (RFC 9126)");
    }
    if c.pkce_required != PkceRequired::All {
        return refuse("PKCE_REQUIRED=all: S256 PKCE for every client");
    }
    // Item 1's setting (DPoP, RFC 9449); FAPI 2.0 issues no bearer token.
    let dpop = get("DPOP_REQUIRED").map(|v| v.trim().to_string()).unwrap_or_default();
    if dpop != "all" {
        return refuse("DPOP_REQUIRED=all: sender-constrained (DPoP) access tokens only, never bearer tokens");
    }
    if c.code_ttl > FAPI2_MAX_CODE_TTL {
        return refuse("CODE_TTL_SECONDS of at most 60");
    }
    if c.azure_devops_compat {
        return refuse("AZURE_DEVOPS_COMPAT=false: its apps take bearer tokens and send no PKCE");
    }
    // Both only ever admit public clients; FAPI 2.0 admits confidential ones only.
    if c.dcr.policy == DcrPolicy::Open {
        return refuse("DCR other than open: open registration admits public clients only");
    }
    if c.cimd {
        return refuse("CIMD=off: a client identified by its URL is public");
    }
    Ok(())
}
