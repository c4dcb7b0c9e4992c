//! Redirect URI rules: registration (no wildcards, no fragments, https except
//! loopback http) and matching (exact, RFC 9700 §2.1; any port on loopback,
//! RFC 8252 §7.3).
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

use url::{Host, Url};

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

fn url_is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Check a redirect URI at registration. Returns the reason it is refused.
pub fn validate_for_registration(raw: &str) -> Result<(), String> {
    if raw.len() > 2000 {
        return Err("redirect URI is longer than 2000 characters".into());
    }
    if raw.contains('*') {
        return Err(format!(
            "redirect URI {raw:?} contains a wildcard; each URI must be exact"
        ));
    }
    let u = Url::parse(raw).map_err(|_| format!("redirect URI {raw:?} is not an absolute URL"))?;
    if u.fragment().is_some() || raw.contains('#') {
        return Err(format!("redirect URI {raw:?} must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("redirect URI {raw:?} must not contain credentials"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if url_is_loopback(&u) => Ok(()),
        "http" => Err(format!(
            "redirect URI {raw:?} uses http; only https is allowed, except on localhost, 127.0.0.1 and [::1]"
        )),
        s => Err(format!("redirect URI {raw:?} has scheme {s:?}; use https")),
    }
}

/// Does the requested URI match one registered? Exact string comparison,
/// except that on loopback hosts the port is ignored (native apps bind an
/// ephemeral port, RFC 8252 §7.3).
pub fn matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if !(req.scheme() == "http" && url_is_loopback(&req)) || req.fragment().is_some() {
        return false;
    }
    registered.iter().any(|r| {
        let Ok(reg) = Url::parse(r) else { return false };
        reg.scheme() == req.scheme()
            && reg.host() == req.host()
            && reg.path() == req.path()
            && reg.query() == req.query()
            && url_is_loopback(&reg)
            && same_text_but_port(r, requested)
    })
}

/// Guard against normalisation: the two strings must be equal once the port
/// is removed, so `http://localhost/a` never matches `http://LOCALHOST/a/../a`.
fn same_text_but_port(a: &str, b: &str) -> bool {
    strip_port(a) == strip_port(b)
}

fn strip_port(s: &str) -> String {
    let Some(rest) = s.strip_prefix("http://") else {
        return s.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => match rest.find('?') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        },
    };
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    format!("http://{host}{tail}")
}

/// Append `params` to a redirect URI that may already carry a query.
pub fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(validate_for_registration("https://app.example/cb").is_ok());
        assert!(validate_for_registration("http://localhost:3000/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1/cb").is_ok());
        assert!(validate_for_registration("http://[::1]:9/cb").is_ok());
        assert!(validate_for_registration("http://app.example/cb").is_err());
        assert!(validate_for_registration("https://*.example/cb").is_err());
        assert!(validate_for_registration("https://app.example/cb#x").is_err());
        assert!(validate_for_registration("javascript:alert(1)").is_err());
        assert!(validate_for_registration("/relative").is_err());
        assert!(validate_for_registration("https://u:p@app.example/cb").is_err());
    }

    #[test]
    fn hosts_are_ascii_punycode_for_idn() {
        // idna_adapter 1.0 (Cargo.toml): no Unicode tables in the bundle.
        assert!(validate_for_registration("https://xn--bcher-kva.example/cb").is_ok());
        assert!(validate_for_registration("https://bücher.example/cb").is_err());
    }

    #[test]
    fn exact_match_only() {
        let reg = vec!["https://app.example/cb".to_string()];
        assert!(matches(&reg, "https://app.example/cb"));
        assert!(!matches(&reg, "https://app.example/cb/"));
        assert!(!matches(&reg, "https://app.example/cb?x=1"));
        assert!(!matches(&reg, "https://APP.example/cb"));
        assert!(!matches(&reg, "https://app.example:443/cb"));
        assert!(!matches(&reg, "https://evil.example/cb"));
    }

    #[test]
    fn loopback_any_port() {
        let reg = vec![
            "http://127.0.0.1/cb".to_string(),
            "http://localhost:3000/cb".to_string(),
        ];
        assert!(matches(&reg, "http://127.0.0.1:51234/cb"));
        assert!(matches(&reg, "http://localhost:4000/cb"));
        assert!(!matches(&reg, "http://127.0.0.1:51234/other"));
        assert!(!matches(&reg, "http://127.0.0.1:51234/cb#f"));
        assert!(!matches(&reg, "https://127.0.0.1:51234/cb"));
    }

    #[test]
    fn params_appended() {
        assert_eq!(
            with_params("https://a.example/cb?x=1", &[("code", "c d")]),
            "https://a.example/cb?x=1&code=c+d"
        );
    }
}
