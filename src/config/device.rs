//! Settings of the device authorization grant (RFC 8628): `DEVICE_CODE_TTL_SECONDS`,
//! `DEVICE_POLL_INTERVAL_SECONDS`, `PREFIX_DEVICE_CODE`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`).
    pub ttl: i64,
    /// The first polling interval (§3.2 `interval`); each `slow_down` adds 5 s
    /// to that device code's own interval (§3.5).
    pub interval: i64,
    /// Type prefix of device codes.
    pub prefix: String,
}

impl Default for Device {
    fn default() -> Self {
        Self {
            ttl: 600,
            interval: 5,
            prefix: "dc_".into(),
        }
    }
}

/// Bounds of `DEVICE_CODE_TTL_SECONDS`: under a minute nobody finishes typing
/// and signing in; past 30 minutes an unused user code is a guessing target
/// for longer than any person needs.
pub const DEVICE_TTL_RANGE: (i64, i64) = (60, 1800);
/// Bounds of `DEVICE_POLL_INTERVAL_SECONDS`.
pub const DEVICE_INTERVAL_RANGE: (i64, i64) = (1, 60);

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Device, String> {
    let d = Device::default();
    let bounded = |key: &str, default: i64, (lo, hi): (i64, i64)| -> Result<i64, String> {
        match get(key).as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{key} must be {lo} to {hi}, got {v:?}")),
        }
    };
    let prefix = match get("PREFIX_DEVICE_CODE").map(|v| v.trim().to_string()) {
        None => d.prefix.clone(),
        Some(v) if v.is_empty() => d.prefix.clone(),
        Some(v) if v.len() > 16 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
            return Err("PREFIX_DEVICE_CODE must be up to 16 characters of [A-Za-z0-9_-]".into())
        }
        Some(v) => v,
    };
    Ok(Device {
        ttl: bounded("DEVICE_CODE_TTL_SECONDS", d.ttl, DEVICE_TTL_RANGE)?,
        interval: bounded("DEVICE_POLL_INTERVAL_SECONDS", d.interval, DEVICE_INTERVAL_RANGE)?,
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Device, String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(&|k: &str| owned.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(with(&[]).unwrap(), Device::default());
        assert_eq!(with(&[("DEVICE_CODE_TTL_SECONDS", "900")]).unwrap().ttl, 900);
        assert!(with(&[("DEVICE_CODE_TTL_SECONDS", "10")]).is_err());
        assert!(with(&[("DEVICE_POLL_INTERVAL_SECONDS", "0")]).is_err());
        assert!(with(&[("PREFIX_DEVICE_CODE", "a b")]).is_err());
        assert_eq!(with(&[("PREFIX_DEVICE_CODE", "fodc_")]).unwrap().prefix, "fodc_");
    }
}
