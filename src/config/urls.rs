//! The URL-valued settings (`ISSUER`, `LOGIN_URL`, `RESOURCES`), checked at
//! startup: a wrong one must stop the worker, not serve a wrong issuer.

/// https, or http on a loopback host (development only).
fn https_or_loopback(u: &url::Url) -> bool {
    u.scheme() == "https" || u.scheme() == "http" && u.host_str().is_some_and(crate::redirect_uri::is_loopback_host)
}

/// An origin on a loopback host (http or https): local development.
pub(super) fn is_loopback_origin(origin: &str) -> bool {
    url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(crate::redirect_uri::is_loopback_host))
        .unwrap_or(false)
}

/// RFC 8414 §2: an https URL with no query or fragment (http only on a
/// loopback host, for development). Endpoints live at its root, so no path.
pub(super) fn valid_issuer(issuer: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "ISSUER must be an https origin such as https://auth.example.com ({why}), got {issuer:?}"
        ))
    };
    let Ok(u) = url::Url::parse(issuer) else {
        return bad("not a URL");
    };
    if !https_or_loopback(&u) {
        return bad("https only");
    }
    if u.query().is_some() || u.fragment().is_some() || u.path() != "/" || !u.username().is_empty() {
        return bad("no path, query, fragment or user info");
    }
    if u.origin().ascii_serialization() != issuer {
        return bad("write it as its origin");
    }
    Ok(())
}

/// Most resources one deployment lists (each is a document and a match per
/// challenge).
pub const MAX_RESOURCES: usize = 32;

/// `RESOURCES`: resource identifiers separated by commas or spaces. Each an
/// absolute https URL (http only on a loopback host, for development) with no
/// query, fragment or user info (RFC 9728 §3.1 builds the metadata URL from
/// host and path, so those would be lost). Written canonically: the URL
/// parser's form, without a trailing slash.
pub fn parse_resources(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in raw.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
        let bad = |why: &str| {
            Err(format!(
                "RESOURCES must list resource identifiers such as https://api.example.com/v1 ({why}), got {item:?}"
            ))
        };
        if item.len() > 512 {
            return bad("at most 512 characters");
        }
        let Ok(u) = url::Url::parse(item) else {
            return bad("not an absolute URL");
        };
        if !https_or_loopback(&u) {
            return bad("https only, or http on a loopback host");
        }
        if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
            return bad("no query, fragment or user info");
        }
        let path = u.path().trim_end_matches('/');
        if path.split('/').any(|seg| seg == "." || seg == "..") || path.contains("//") {
            return bad("no empty, . or .. path segments");
        }
        if path.starts_with("/.well-known/") || path == "/.well-known" {
            return bad("not under /.well-known/");
        }
        let canonical = format!("{}{path}", u.origin().ascii_serialization());
        if out.contains(&canonical) {
            return bad("listed twice");
        }
        out.push(canonical);
    }
    if out.len() > MAX_RESOURCES {
        return Err(format!(
            "RESOURCES lists at most {MAX_RESOURCES} resources, got {}",
            out.len()
        ));
    }
    Ok(out)
}

/// The platform's login page: an absolute https URL (http only on a loopback
/// host, for development), no fragment (we append `login_challenge` to its query).
pub(super) fn valid_login_url(raw: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "LOGIN_URL must be an https URL of the platform's login page ({why}), got {raw:?}"
        ))
    };
    let Ok(u) = url::Url::parse(raw) else {
        return bad("not a URL");
    };
    if !https_or_loopback(&u) {
        return bad("https only, or http on a loopback host");
    }
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return bad("no fragment or user info");
    }
    if u.query_pairs().any(|(k, _)| k == "login_challenge") {
        return bad("login_challenge is ours to add");
    }
    Ok(())
}

/// A comma- or space-separated list of DNS host names (lowercased).
pub(super) fn parse_hosts(raw: &str) -> Result<Vec<String>, String> {
    raw.split([',', ' '])
        .filter(|h| !h.is_empty())
        .map(|h| {
            let h = h.to_ascii_lowercase();
            let ok = h.len() <= 253
                && h.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if ok {
                Ok(h)
            } else {
                Err(format!("CIMD_ALLOWED_HOSTS: {h:?} is not a host name"))
            }
        })
        .collect()
}
