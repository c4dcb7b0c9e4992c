//! Server configuration, read from `wrangler.toml` `[vars]` (or any key/value
//! source). Defaults follow SPEC.md; every lifetime and prefix is a setting
//! because the platforms we replace disagree on them.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub client_id: String,
    pub client_secret: String,
    pub code: String,
    pub access: String,
    pub refresh: String,
    pub session: String,
    pub api_key: String,
}

/// Who signs users in (README "Delegated sign-in").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninMode {
    /// Our own email + password form (local development, platforms without one).
    Password,
    /// The platform's login page, through a login challenge (`crate::admin::login`).
    Delegated,
}

/// Where a bearer token's record is read from (see `store::kv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerMode {
    /// D1 on every call: revocation and role changes apply to the next request.
    Strict,
    /// KV first (a copy written at issuance, deleted on revocation), D1 on a
    /// miss: revocation applies once the KV delete propagates (up to ~60 s).
    Edge,
    /// JWT access tokens checked offline (signature, `exp`, `aud`, `iss`,
    /// `typ`), no storage read: revocation and role changes apply only when
    /// the token expires, and permissions are the token's `scope` claim.
    Jwt,
}

/// What an access token is (`crate::grants::mint_access` is the one seam).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// 256 random bits with a prefix; only this server can read it.
    Opaque,
    /// An ES256-signed RFC 9068 JWT that resource servers verify from the JWKS.
    Jwt,
}

/// Which clients must use PKCE (S256) in the authorization code flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceRequired {
    /// Every client (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1).
    All,
    /// Public clients only: for platforms whose documented apps send no PKCE
    /// (Azure DevOps).
    Public,
}

/// What the live-grant cap counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveGrantsPer {
    /// Per (app, org, actor, user): each user's devices share a budget; the
    /// app actor's install counts once per org whoever approved it.
    User,
    /// Per (app, org), whoever authorized and however (FeatureOS: "one live
    /// token per target organization").
    Org,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// RFC 8414 issuer; empty means "the origin the request came to".
    pub issuer: Option<String>,
    pub code_ttl: i64,
    pub access_ttl: i64,
    /// Refresh token idle lifetime; `None` means valid until revoked.
    pub refresh_idle_ttl: Option<i64>,
    pub session_ttl: i64,
    pub prefixes: Prefixes,
    /// Clients (resource servers) allowed to introspect tokens of any app.
    pub introspection_clients: Vec<String>,
    /// How long spent refresh tokens and revoked grants are kept, so a late
    /// replay is still recognised and revokes its family.
    pub spent_refresh_retention: i64,
    /// Fixed window for failure counting, in seconds.
    pub rate_window: i64,
    /// Failed sign-ins per account (and 5x that per client address) per window.
    pub signin_max_failures: i64,
    /// Lifetime of the device cookie a successful sign-in leaves in the
    /// browser, in seconds; 0 turns device cookies off (then every browser
    /// is subject to the account-wide failure counter).
    pub signin_device_ttl: i64,
    /// Failed client authentications per client id per window.
    pub client_auth_max_failures: i64,
    /// Rows deleted per table per cron run.
    pub sweep_limit: i64,
    pub bearer_mode: BearerMode,
    pub access_token_format: AccessTokenFormat,
    /// `JWT_SIGNING_KEYS` (a Worker secret): the first signs, all verify.
    pub jwt_keys: Vec<crate::jwt::Jwk>,
    /// Per-isolate cache of validated bearer tokens, in seconds; 0 is off.
    /// A revoked token may keep working for this long in other isolates.
    pub bearer_cache_ttl: i64,
    /// Also audit successful API reads (every GET), not only actions and refusals.
    pub audit_api_reads: bool,
    /// SHA-256 of `PLATFORM_ADMIN_TOKEN` (a Worker secret), which opens the
    /// back office (`crate::admin`); `None`: the back office is off (404).
    pub platform_admin_token_hash: Option<String>,
    /// Longest wait for a webhook receiver's answer, in seconds; then the
    /// attempt is a failure (`timed out`) and retried with backoff.
    pub webhook_timeout: i64,
    /// Webhook deliveries in flight at once in one cron run.
    pub webhook_concurrency: i64,
    /// Due deliveries of one app retried per cron run, so one app's dead
    /// receiver cannot take every slot.
    pub webhook_per_app: i64,
    /// Default seconds the previous webhook signing secret keeps signing
    /// after a rotation.
    pub webhook_secret_overlap: i64,
    pub pkce_required: PkceRequired,
    /// Live authorization-code token sets per key ([`LiveGrantsPer`]); the
    /// oldest beyond it are revoked when a new one is issued.
    pub max_live_grants: i64,
    pub live_grants_per: LiveGrantsPer,
    /// Live client_credentials tokens per (app, org); oldest evicted.
    pub max_live_app_tokens: i64,
    /// Seconds after a refresh token's rotation during which the same client
    /// may present it again and get a fresh pair instead of a family kill.
    pub refresh_reuse_grace: i64,
    pub signin_mode: SigninMode,
    /// The platform's login page (delegated mode): the browser is sent here
    /// with `login_challenge`.
    pub login_url: Option<String>,
    /// RFC 9728 protected resources (`RESOURCES`): resource identifiers,
    /// canonical (no trailing slash, no query or fragment). Empty: the demo
    /// API, `<issuer>/api/v1` (see `endpoints::resource_metadata`).
    pub resources: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: None,
            code_ttl: 300,
            access_ttl: 3600,
            refresh_idle_ttl: Some(90 * 24 * 3600),
            session_ttl: 12 * 3600,
            prefixes: Prefixes {
                client_id: "app_".into(),
                client_secret: "sec_".into(),
                code: "code_".into(),
                access: "at_".into(),
                refresh: "rt_".into(),
                session: "ses_".into(),
                api_key: "key_".into(),
            },
            introspection_clients: Vec::new(),
            spent_refresh_retention: 30 * 24 * 3600,
            rate_window: 900,
            signin_max_failures: 10,
            signin_device_ttl: 365 * 24 * 3600,
            client_auth_max_failures: 20,
            sweep_limit: 500,
            bearer_mode: BearerMode::Strict,
            access_token_format: AccessTokenFormat::Opaque,
            jwt_keys: Vec::new(),
            bearer_cache_ttl: 0,
            audit_api_reads: false,
            platform_admin_token_hash: None,
            webhook_timeout: 10,
            webhook_concurrency: 8,
            webhook_per_app: 3,
            webhook_secret_overlap: 24 * 3600,
            pkce_required: PkceRequired::All,
            max_live_grants: 10,
            live_grants_per: LiveGrantsPer::User,
            max_live_app_tokens: 5,
            refresh_reuse_grace: 0,
            signin_mode: SigninMode::Password,
            login_url: None,
            resources: Vec::new(),
        }
    }
}

impl Config {
    /// The protected resources (RFC 9728): `RESOURCES`, or by default the
    /// demo API under the issuer.
    pub fn resource_list(&self, issuer: &str) -> Vec<String> {
        if self.resources.is_empty() {
            vec![format!("{issuer}/api/v1")]
        } else {
            self.resources.clone()
        }
    }

    /// Build from a lookup (the worker passes `env.var`). Bad values are
    /// reported, not silently replaced: a typo in a lifetime must not deploy.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut c = Config::default();
        let num = |key: &str, default: i64| -> Result<i64, String> {
            match get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("{key} must be a whole number of seconds, got {v:?}")),
            }
        };
        c.issuer = get("ISSUER")
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty());
        if let Some(i) = &c.issuer {
            valid_issuer(i)?;
        }
        c.code_ttl = num("CODE_TTL_SECONDS", c.code_ttl)?;
        c.access_ttl = num("ACCESS_TTL_SECONDS", c.access_ttl)?;
        let idle = num("REFRESH_IDLE_TTL_SECONDS", c.refresh_idle_ttl.unwrap_or(0))?;
        c.refresh_idle_ttl = (idle > 0).then_some(idle);
        c.session_ttl = num("SESSION_TTL_SECONDS", c.session_ttl)?;
        c.spent_refresh_retention = num("SPENT_TOKEN_RETENTION_SECONDS", c.spent_refresh_retention)?;
        c.rate_window = num("RATE_LIMIT_WINDOW_SECONDS", c.rate_window)?.max(1);
        c.signin_max_failures = num("SIGNIN_MAX_FAILURES", c.signin_max_failures)?;
        c.signin_device_ttl = num("SIGNIN_DEVICE_TTL_SECONDS", c.signin_device_ttl)?;
        if c.signin_device_ttl > 5 * 365 * 24 * 3600 {
            return Err("SIGNIN_DEVICE_TTL_SECONDS must be at most five years (157680000)".into());
        }
        c.client_auth_max_failures = num("CLIENT_AUTH_MAX_FAILURES", c.client_auth_max_failures)?;
        c.sweep_limit = num("SWEEP_LIMIT", c.sweep_limit)?.max(1);
        c.bearer_mode = match get("BEARER_MODE").as_deref().map(str::trim) {
            None | Some("") | Some("strict") => BearerMode::Strict,
            Some("edge") => BearerMode::Edge,
            Some("jwt") => BearerMode::Jwt,
            Some(v) => {
                return Err(format!(
                    "BEARER_MODE must be \"strict\", \"edge\" or \"jwt\", got {v:?}"
                ))
            }
        };
        c.access_token_format = match get("ACCESS_TOKEN_FORMAT").as_deref().map(str::trim) {
            None | Some("") | Some("opaque") => AccessTokenFormat::Opaque,
            Some("jwt") => AccessTokenFormat::Jwt,
            Some(v) => return Err(format!("ACCESS_TOKEN_FORMAT must be \"opaque\" or \"jwt\", got {v:?}")),
        };
        if let Some(text) = get("JWT_SIGNING_KEYS").filter(|t| !t.trim().is_empty()) {
            c.jwt_keys = crate::jwt::parse_keys(&text)?;
        }
        if c.access_token_format == AccessTokenFormat::Jwt && c.jwt_keys.is_empty() {
            return Err(
                "ACCESS_TOKEN_FORMAT=jwt needs JWT_SIGNING_KEYS (a JWK set secret; `make dev` generates one)".into(),
            );
        }
        if c.bearer_mode == BearerMode::Jwt && c.access_token_format != AccessTokenFormat::Jwt {
            return Err("BEARER_MODE=jwt needs ACCESS_TOKEN_FORMAT=jwt".into());
        }
        c.bearer_cache_ttl = num("BEARER_CACHE_TTL_SECONDS", c.bearer_cache_ttl)?;
        if c.bearer_cache_ttl > 300 {
            return Err("BEARER_CACHE_TTL_SECONDS is a staleness bound; more than 300 is refused".into());
        }
        c.audit_api_reads = match get("AUDIT_API_READS").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(format!("AUDIT_API_READS must be \"true\" or \"false\", got {v:?}")),
        };
        let bounded = |key: &str, default: i64, lo: i64, hi: i64| -> Result<i64, String> {
            let n = num(key, default)?;
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(format!("{key} must be {lo} to {hi}, got {n}"))
            }
        };
        c.webhook_timeout = bounded("WEBHOOK_TIMEOUT_SECONDS", c.webhook_timeout, 1, 30)?;
        c.webhook_concurrency = bounded("WEBHOOK_CONCURRENCY", c.webhook_concurrency, 1, 32)?;
        c.webhook_per_app = bounded("WEBHOOK_MAX_PER_APP_PER_RUN", c.webhook_per_app, 1, 50)?;
        c.webhook_secret_overlap = bounded(
            "WEBHOOK_SECRET_OVERLAP_SECONDS",
            c.webhook_secret_overlap,
            0,
            crate::endpoints::apps::MAX_WEBHOOK_SECRET_OVERLAP,
        )?;
        c.pkce_required = match get("PKCE_REQUIRED").as_deref().map(str::trim) {
            None | Some("") | Some("all") => PkceRequired::All,
            Some("public") => PkceRequired::Public,
            Some(v) => return Err(format!("PKCE_REQUIRED must be \"all\" or \"public\", got {v:?}")),
        };
        c.live_grants_per = match get("LIVE_GRANTS_PER").as_deref().map(str::trim) {
            None | Some("") | Some("user") => LiveGrantsPer::User,
            Some("org") => LiveGrantsPer::Org,
            Some(v) => return Err(format!("LIVE_GRANTS_PER must be \"user\" or \"org\", got {v:?}")),
        };
        c.max_live_grants = num("MAX_LIVE_GRANTS", c.max_live_grants)?;
        c.max_live_app_tokens = num("MAX_LIVE_APP_TOKENS", c.max_live_app_tokens)?;
        // A cap of 0 would revoke every token as it is issued; 1000 bounds the
        // rows one user can keep live.
        for (key, v) in [
            ("MAX_LIVE_GRANTS", c.max_live_grants),
            ("MAX_LIVE_APP_TOKENS", c.max_live_app_tokens),
        ] {
            if !(1..=1000).contains(&v) {
                return Err(format!("{key} must be between 1 and 1000, got {v}"));
            }
        }
        c.refresh_reuse_grace = num("REFRESH_REUSE_GRACE_SECONDS", c.refresh_reuse_grace)?;
        if c.refresh_reuse_grace > 60 {
            return Err("REFRESH_REUSE_GRACE_SECONDS weakens reuse detection; more than 60 is refused".into());
        }
        if c.code_ttl == 0 || c.access_ttl == 0 || c.session_ttl == 0 {
            return Err("CODE_TTL_SECONDS, ACCESS_TTL_SECONDS and SESSION_TTL_SECONDS must be positive".into());
        }
        let p = &mut c.prefixes;
        for (key, slot) in [
            ("PREFIX_CLIENT_ID", &mut p.client_id),
            ("PREFIX_CLIENT_SECRET", &mut p.client_secret),
            ("PREFIX_CODE", &mut p.code),
            ("PREFIX_ACCESS_TOKEN", &mut p.access),
            ("PREFIX_REFRESH_TOKEN", &mut p.refresh),
            ("PREFIX_SESSION", &mut p.session),
            ("PREFIX_API_KEY", &mut p.api_key),
        ] {
            if let Some(v) = get(key).filter(|v| !v.is_empty()) {
                if v.len() > 16 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return Err(format!("{key} must be up to 16 characters of [A-Za-z0-9_-]"));
                }
                *slot = v;
            }
        }
        c.platform_admin_token_hash = match get("PLATFORM_ADMIN_TOKEN").map(|t| t.trim().to_string()) {
            None => None,
            Some(t) if t.is_empty() => None,
            // Guessable tokens would make the back office the weakest door.
            Some(t) if t.len() < 32 || t.len() > 512 => {
                return Err("PLATFORM_ADMIN_TOKEN must be 32 to 512 characters (e.g. `openssl rand -base64 32`)".into())
            }
            Some(t) => Some(crate::crypto::sha256_hex(&t)),
        };
        c.signin_mode = match get("SIGNIN_MODE").as_deref().map(str::trim) {
            None | Some("") | Some("password") => SigninMode::Password,
            Some("delegated") => SigninMode::Delegated,
            Some(v) => return Err(format!("SIGNIN_MODE must be \"password\" or \"delegated\", got {v:?}")),
        };
        c.login_url = get("LOGIN_URL").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if c.signin_mode == SigninMode::Delegated {
            let Some(url) = &c.login_url else {
                return Err("SIGNIN_MODE=delegated needs LOGIN_URL (the platform's login page)".into());
            };
            valid_login_url(url)?;
            // The platform accepts challenges through the back office; without
            // its token nobody could ever sign in.
            if c.platform_admin_token_hash.is_none() {
                return Err(
                    "SIGNIN_MODE=delegated needs PLATFORM_ADMIN_TOKEN (the platform accepts login challenges with it)"
                        .into(),
                );
            }
        }
        c.resources = parse_resources(&get("RESOURCES").unwrap_or_default())?;
        c.introspection_clients = get("INTROSPECTION_CLIENTS")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok(c)
    }
}

/// RFC 8414 §2: an https URL with no query or fragment (http only on a
/// loopback host, for development). Endpoints live at its root, so no path.
fn valid_issuer(issuer: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "ISSUER must be an https origin such as https://auth.example.com ({why}), got {issuer:?}"
        ))
    };
    let Ok(u) = url::Url::parse(issuer) else {
        return bad("not a URL");
    };
    let loopback = u.host_str().is_some_and(crate::redirect_uri::is_loopback_host);
    if !(u.scheme() == "https" || u.scheme() == "http" && loopback) {
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
        let loopback = u.host_str().is_some_and(crate::redirect_uri::is_loopback_host);
        if !(u.scheme() == "https" || u.scheme() == "http" && loopback) {
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
fn valid_login_url(raw: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "LOGIN_URL must be an https URL of the platform's login page ({why}), got {raw:?}"
        ))
    };
    let Ok(u) = url::Url::parse(raw) else {
        return bad("not a URL");
    };
    let loopback = u.host_str().is_some_and(crate::redirect_uri::is_loopback_host);
    if !(u.scheme() == "https" || u.scheme() == "http" && loopback) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_follow_spec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.code_ttl, 300);
        assert_eq!(c.access_ttl, 3600);
        assert_eq!(c.refresh_idle_ttl, Some(7_776_000));
    }

    const KEYS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#;

    #[test]
    fn access_tokens_are_opaque_unless_jwt_is_chosen_with_keys() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.access_token_format, AccessTokenFormat::Opaque);
        assert!(c.jwt_keys.is_empty());
        let c = cfg(&[("ACCESS_TOKEN_FORMAT", "jwt"), ("JWT_SIGNING_KEYS", KEYS)]).unwrap();
        assert_eq!(c.access_token_format, AccessTokenFormat::Jwt);
        assert_eq!(c.jwt_keys[0].kid, "k1");
        assert!(cfg(&[("ACCESS_TOKEN_FORMAT", "jwt")])
            .unwrap_err()
            .contains("JWT_SIGNING_KEYS"));
        assert!(cfg(&[("ACCESS_TOKEN_FORMAT", "jwt"), ("JWT_SIGNING_KEYS", "{}")]).is_err());
        assert!(cfg(&[("ACCESS_TOKEN_FORMAT", "paseto")]).is_err());
    }

    #[test]
    fn jwt_bearer_mode_needs_jwt_access_tokens() {
        assert!(cfg(&[("BEARER_MODE", "jwt")]).is_err());
        let c = cfg(&[
            ("BEARER_MODE", "jwt"),
            ("ACCESS_TOKEN_FORMAT", "jwt"),
            ("JWT_SIGNING_KEYS", KEYS),
        ])
        .unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Jwt);
    }

    #[test]
    fn featureos_profile() {
        let c = cfg(&[
            ("PREFIX_CLIENT_ID", "foapp_"),
            ("PREFIX_ACCESS_TOKEN", "foot_"),
            ("ACCESS_TTL_SECONDS", "86400"),
            ("REFRESH_IDLE_TTL_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(c.prefixes.client_id, "foapp_");
        assert_eq!(c.prefixes.access, "foot_");
        assert_eq!(c.access_ttl, 86400);
        assert_eq!(c.refresh_idle_ttl, None);
    }

    #[test]
    fn bad_values_refused() {
        assert!(cfg(&[("ACCESS_TTL_SECONDS", "1h")]).is_err());
        assert!(cfg(&[("CODE_TTL_SECONDS", "-5")]).is_err());
        assert!(cfg(&[("PREFIX_ACCESS_TOKEN", "a b")]).is_err());
        assert!(cfg(&[("BEARER_MODE", "fast")]).is_err());
        assert!(cfg(&[("BEARER_CACHE_TTL_SECONDS", "3600")]).is_err());
        assert!(cfg(&[("AUDIT_API_READS", "yes")]).is_err());
        assert!(cfg(&[("WEBHOOK_TIMEOUT_SECONDS", "0")]).is_err());
        assert!(cfg(&[("WEBHOOK_TIMEOUT_SECONDS", "31")]).is_err());
        assert!(cfg(&[("WEBHOOK_CONCURRENCY", "0")]).is_err());
        assert!(cfg(&[("WEBHOOK_MAX_PER_APP_PER_RUN", "0")]).is_err());
        assert!(cfg(&[("WEBHOOK_SECRET_OVERLAP_SECONDS", "604801")]).is_err());
    }

    #[test]
    fn issuer_is_an_https_origin() {
        assert_eq!(
            cfg(&[("ISSUER", "https://auth.example.com/")])
                .unwrap()
                .issuer
                .as_deref(),
            Some("https://auth.example.com")
        );
        assert!(cfg(&[("ISSUER", "http://127.0.0.1:8787")]).is_ok());
        for bad in [
            "auth.example.com",
            "http://auth.example.com",
            "https://auth.example.com/x",
            "https://a.example?x=1",
            "https://u@a.example",
        ] {
            assert!(cfg(&[("ISSUER", bad)]).is_err(), "{bad}");
        }
        assert!(cfg(&[("PKCE_REQUIRED", "confidential")]).is_err());
        assert!(cfg(&[("LIVE_GRANTS_PER", "app")]).is_err());
        assert!(cfg(&[("MAX_LIVE_GRANTS", "0")]).is_err());
        assert!(cfg(&[("MAX_LIVE_APP_TOKENS", "1001")]).is_err());
        assert!(cfg(&[("REFRESH_REUSE_GRACE_SECONDS", "61")]).is_err());
        assert!(cfg(&[("REFRESH_REUSE_GRACE_SECONDS", "-1")]).is_err());
    }

    #[test]
    fn token_hardening_defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.pkce_required, PkceRequired::All);
        assert_eq!((c.max_live_grants, c.live_grants_per), (10, LiveGrantsPer::User));
        assert_eq!((c.max_live_app_tokens, c.refresh_reuse_grace), (5, 0));
        let c = cfg(&[
            ("PKCE_REQUIRED", "public"),
            ("LIVE_GRANTS_PER", "org"),
            ("REFRESH_REUSE_GRACE_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(
            (c.pkce_required, c.live_grants_per, c.refresh_reuse_grace),
            (PkceRequired::Public, LiveGrantsPer::Org, 60)
        );
    }

    #[test]
    fn bearer_modes() {
        assert_eq!(cfg(&[]).unwrap().bearer_mode, BearerMode::Strict);
        let c = cfg(&[("BEARER_MODE", "edge"), ("BEARER_CACHE_TTL_SECONDS", "5")]).unwrap();
        assert_eq!((c.bearer_mode, c.bearer_cache_ttl), (BearerMode::Edge, 5));
    }

    #[test]
    fn resources_are_absolute_https_urls() {
        assert!(cfg(&[]).unwrap().resources.is_empty());
        assert!(cfg(&[("RESOURCES", "  ")]).unwrap().resources.is_empty());
        let c = cfg(&[(
            "RESOURCES",
            "https://api.example.com/v1/, https://API.example.com:443  http://127.0.0.1:8787/mcp,http://[::1]/x",
        )])
        .unwrap();
        assert_eq!(
            c.resources,
            [
                "https://api.example.com/v1",
                "https://api.example.com",
                "http://127.0.0.1:8787/mcp",
                "http://[::1]/x"
            ]
        );
        for bad in [
            "api.example.com/v1",
            "/api/v1",
            "http://api.example.com/v1",
            "ftp://api.example.com",
            "https://api.example.com/v1?x=1",
            "https://api.example.com/v1#x",
            "https://u:p@api.example.com/v1",
            "https://api.example.com//v1",
            "https://api.example.com/.well-known/x",
            "https://api.example.com/v1 https://api.example.com/v1/",
            "javascript:alert(1)",
        ] {
            assert!(cfg(&[("RESOURCES", bad)]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("https://api.example.com/r{i}"))
            .collect();
        assert!(cfg(&[("RESOURCES", &many.join(","))]).is_err());
    }

    #[test]
    fn signin_modes() {
        const TOKEN: &str = "adm_0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(cfg(&[]).unwrap().signin_mode, SigninMode::Password);
        let c = cfg(&[
            ("SIGNIN_MODE", "delegated"),
            ("LOGIN_URL", "https://app.example/login?next=1"),
            ("PLATFORM_ADMIN_TOKEN", TOKEN),
        ])
        .unwrap();
        assert_eq!(c.signin_mode, SigninMode::Delegated);
        assert_eq!(c.login_url.as_deref(), Some("https://app.example/login?next=1"));
        let delegated = |url: &str| {
            cfg(&[
                ("SIGNIN_MODE", "delegated"),
                ("LOGIN_URL", url),
                ("PLATFORM_ADMIN_TOKEN", TOKEN),
            ])
        };
        assert!(delegated("http://127.0.0.1:9000/login").is_ok());
        for bad in [
            "",
            "app.example/login",
            "http://app.example/login",
            "https://app.example/login#x",
            "https://u:p@app.example/login",
            "https://app.example/login?login_challenge=x",
            "javascript:alert(1)",
        ] {
            assert!(delegated(bad).is_err(), "{bad:?}");
        }
        assert!(cfg(&[("SIGNIN_MODE", "delegated"), ("LOGIN_URL", "https://app.example/login")]).is_err());
        assert!(cfg(&[("SIGNIN_MODE", "sso")]).is_err());
        // LOGIN_URL alone does nothing in password mode.
        assert_eq!(
            cfg(&[("LOGIN_URL", "https://app.example/login")]).unwrap().signin_mode,
            SigninMode::Password
        );
    }
}
