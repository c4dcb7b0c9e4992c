//! `PAR_REQUIRED` and `PAR_TTL_SECONDS`: pushed authorization requests (RFC 9126).

use super::{choice, Config};

/// Bounds of `PAR_TTL_SECONDS`: RFC 9126 §2.2 suggests 5 to 600 seconds, and
/// FAPI 2.0 requires at most 600; under 10 a slow client cannot redirect in time.
pub const PAR_TTL_RANGE: (i64, i64) = (10, 600);

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>, c: &mut Config) -> Result<(), String> {
    c.par_required = choice(get, "PAR_REQUIRED", &[("off", false), ("on", true)])?;
    if let Some(v) = get("PAR_TTL_SECONDS")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        let (lo, hi) = PAR_TTL_RANGE;
        c.par_ttl = v
            .parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("PAR_TTL_SECONDS must be {lo} to {hi}, got {v:?}"))?;
    }
    Ok(())
}
