//! Settings of RFC 7591 dynamic client registration (`DCR` and `DCR_*`).

use super::choice;

/// Longest client secret lifetime: ten years (Azure DevOps allows at most
/// one; ten keeps `now + secret_expires_in` far from overflow).
pub const MAX_SECRET_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;

/// Who may register a client at `/oauth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcrPolicy {
    /// No registration endpoint (404, not advertised).
    Off,
    /// Anyone, public clients only (`token_endpoint_auth_method: none`).
    Open,
    /// Whoever holds an initial access token the platform minted; public or
    /// confidential clients.
    InitialAccessToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dcr {
    pub policy: DcrPolicy,
    /// Registrations per source address (IPv6: per /64) per hour.
    pub rate_per_hour: i64,
    /// Most dynamic clients stored at once.
    pub max_clients: i64,
    /// A dynamic client never sent through authorize within this many days
    /// of its registration is deleted by the sweep.
    pub unused_days: i64,
    /// Lifetime of a dynamic confidential client's secret, seconds; 0: never
    /// expires (`client_secret_expires_at: 0`).
    pub secret_ttl: i64,
    /// Scopes a dynamic client may declare; empty: the whole catalogue.
    pub scopes: Vec<String>,
}

impl Default for Dcr {
    fn default() -> Self {
        Self {
            policy: DcrPolicy::Off,
            rate_per_hour: 20,
            max_clients: 10_000,
            unused_days: 7,
            secret_ttl: 0,
            scopes: Vec::new(),
        }
    }
}

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Dcr, String> {
    let d = Dcr::default();
    let bounded = |key: &str, default: i64, lo: i64, hi: i64| -> Result<i64, String> {
        match get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{key} must be a whole number from {lo} to {hi}, got {v:?}")),
        }
    };
    Ok(Dcr {
        policy: choice(
            get,
            "DCR",
            &[
                ("off", DcrPolicy::Off),
                ("open", DcrPolicy::Open),
                ("initial_access_token", DcrPolicy::InitialAccessToken),
            ],
        )?,
        rate_per_hour: bounded("DCR_RATE_PER_HOUR", d.rate_per_hour, 1, 100_000)?,
        max_clients: bounded("DCR_MAX_CLIENTS", d.max_clients, 1, 10_000_000)?,
        unused_days: bounded("DCR_UNUSED_DAYS", d.unused_days, 1, 3650)?,
        secret_ttl: bounded("DCR_CLIENT_SECRET_TTL_SECONDS", d.secret_ttl, 0, MAX_SECRET_EXPIRES_IN)?,
        scopes: scope_list(&get("DCR_SCOPES").unwrap_or_default())?,
    })
}

/// `DCR_SCOPES`: scope names separated by spaces or commas. Whether each is in
/// the catalogue is checked at registration (the catalogue lives in D1).
fn scope_list(text: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = text
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = list
        .iter()
        .find(|s| !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
    {
        return Err(format!("DCR_SCOPES: {bad:?} is not a scope name"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Dcr, String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(&|k: &str| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_off_and_bounded() {
        let d = with(&[]).unwrap();
        assert_eq!(d, Dcr::default());
        assert_eq!(d.policy, DcrPolicy::Off);
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(with(&[("DCR", "open")]).unwrap().policy, DcrPolicy::Open);
        assert_eq!(
            with(&[("DCR", "initial_access_token")]).unwrap().policy,
            DcrPolicy::InitialAccessToken
        );
        for bad in [
            ("DCR", "on"),
            ("DCR_RATE_PER_HOUR", "0"),
            ("DCR_MAX_CLIENTS", "-1"),
            ("DCR_UNUSED_DAYS", "0"),
            ("DCR_UNUSED_DAYS", "x"),
            ("DCR_CLIENT_SECRET_TTL_SECONDS", "999999999999"),
        ] {
            assert!(with(&[bad]).is_err(), "{bad:?}");
        }
        assert_eq!(
            with(&[("DCR_SCOPES", "profile:read, posts:read")]).unwrap().scopes,
            vec!["profile:read", "posts:read"]
        );
    }
}
