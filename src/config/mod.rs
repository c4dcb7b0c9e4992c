//! Server configuration, read from `wrangler.toml` `[vars]` (or any key/value
//! source). Defaults follow SPEC.md; every lifetime and prefix is a setting
//! because the platforms we replace disagree on them.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

mod dcr;
mod defaults;
mod device;
mod dpop;
mod fapi;
mod id_jag;
mod par;
mod subject;
mod urls;

pub use dcr::{Dcr, DcrPolicy, MAX_SECRET_EXPIRES_IN};
pub use defaults::{DEFAULT_CIMD_MAX_DOCUMENT_BYTES, MAX_WEBHOOK_SECRET_OVERLAP};
pub use device::{Device, DEVICE_INTERVAL_RANGE, DEVICE_TTL_RANGE};
pub use dpop::{Dpop, DpopRequired};
pub use fapi::FAPI2_MAX_CODE_TTL;
pub use id_jag::IdJag;
pub use par::PAR_TTL_RANGE;
pub use subject::{SubjectType, MIN_SUBJECT_SALT};

use urls::{parse_hosts, valid_issuer, valid_login_url};
pub use urls::{parse_resources, MAX_RESOURCES};

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

/// Who signs users in (docs/operators.md "Delegated sign-in").
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
    /// The EC P-256 keys of `JWT_SIGNING_KEYS` (a Worker secret): the first
    /// signs (ES256: access tokens, ES256 ID tokens), all verify.
    pub jwt_keys: Vec<crate::crypto::Jwk>,
    /// Its RSA keys: the first signs RS256 ID tokens, all verify.
    pub rsa_keys: Vec<crate::crypto::RsaJwk>,
    /// `OPENID`: this server is an OpenID Provider (ID tokens, discovery at
    /// `/.well-known/openid-configuration`, `openid profile email` built in).
    pub openid: bool,
    /// `ID_TOKEN_TTL_SECONDS`: an ID token's `exp` is `iat` plus this.
    pub id_token_ttl: i64,
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
    /// RFC 7591 dynamic client registration (`DCR`, `DCR_*`).
    pub dcr: Dcr,
    /// DPoP (RFC 9449): `DPOP_*`.
    pub dpop: Dpop,
    /// The ID-JAG grant: `ID_JAG*` (`crate::grants::id_jag`).
    pub id_jag: IdJag,
    /// `AZURE_DEVOPS_COMPAT`: the Azure DevOps wire format next to OAuth 2.1
    /// (`crate::compat::azure_devops`); only its profile turns it on.
    pub azure_devops_compat: bool,
    /// `CIMD`: accept an https URL as `client_id` (Client ID Metadata
    /// Documents, `crate::cimd`). Off by default: such a client is unvetted.
    pub cimd: bool,
    /// `CIMD_ALLOW_HTTP_LOOPBACK`: development only, documents on
    /// `http://127.0.0.1:<port>/…` or `http://localhost…` (local tests).
    pub cimd_allow_http_loopback: bool,
    /// Longest wait for a metadata document, in seconds.
    pub cimd_fetch_timeout: i64,
    /// Most clients identified by URL stored at once.
    pub cimd_max_clients: i64,
    /// Metadata document fetches per minute from one source address, and to
    /// one document host: an authorize with a new URL is a fetch before any
    /// sign-in, and a failed document is never cached.
    pub cimd_fetches_per_source: i64,
    pub cimd_fetches_per_host: i64,
    /// `CIMD_ALLOWED_HOSTS`: document hosts this server trusts (each with its
    /// subdomains); empty: any host (an open server).
    pub cimd_allowed_hosts: Vec<String>,
    /// Largest metadata document read, in bytes.
    pub cimd_max_document_bytes: usize,
    /// Delegated sign-in challenges one source may open per minute (each is
    /// a row written before anyone signed in).
    pub login_challenges_per_source: i64,
    /// `SUBJECT_TYPE`: the `sub` apps see (`crate::oidc::subject`).
    pub subject_type: SubjectType,
    /// `SUBJECT_SALT` (a Worker secret): the key of pairwise subjects.
    pub subject_salt: Option<String>,
    /// `PAR_REQUIRED`: every authorization request must be pushed (RFC 9126 §5).
    pub par_required: bool,
    /// `PAR_TTL_SECONDS`: how long a `request_uri` waits for the browser.
    pub par_ttl: i64,
    /// `FAPI2`: the FAPI 2.0 Security Profile; only private_key_jwt client
    /// authentication, and the settings it needs are checked at start.
    pub fapi2: bool,
    /// The device authorization grant (RFC 8628; `config::device`).
    pub device: Device,
}

impl Config {
    /// Whether `jwks_uri` is advertised and served: only while something it
    /// verifies is issued (JWT access tokens), never for unused keys.
    /// ID tokens too: with `OPENID=on` every key is listed (RS256 and, per
    /// client, ES256 ID tokens are verified from it).
    pub fn publishes_jwks(&self) -> bool {
        (self.access_token_format == AccessTokenFormat::Jwt && !self.jwt_keys.is_empty())
            || (self.openid && !self.rsa_keys.is_empty())
    }

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
        c.bearer_mode = choice(
            &get,
            "BEARER_MODE",
            &[
                ("strict", BearerMode::Strict),
                ("edge", BearerMode::Edge),
                ("jwt", BearerMode::Jwt),
            ],
        )?;
        c.access_token_format = choice(
            &get,
            "ACCESS_TOKEN_FORMAT",
            &[("opaque", AccessTokenFormat::Opaque), ("jwt", AccessTokenFormat::Jwt)],
        )?;
        if let Some(text) = get("JWT_SIGNING_KEYS").filter(|t| !t.trim().is_empty()) {
            let set = crate::crypto::parse_key_set(&text)?;
            c.jwt_keys = set.ec;
            c.rsa_keys = set.rsa;
        }
        if c.access_token_format == AccessTokenFormat::Jwt && c.jwt_keys.is_empty() {
            return Err("ACCESS_TOKEN_FORMAT=jwt needs an EC P-256 key in JWT_SIGNING_KEYS \
                        (a JWK set secret; `make dev` generates one)"
                .into());
        }
        c.openid = choice(&get, "OPENID", &[("on", true), ("off", false)])?;
        // OIDC Core §15.1: a provider signs ID tokens with RS256 at least.
        if c.openid && c.rsa_keys.is_empty() {
            return Err(
                "OPENID=on needs an RSA key in JWT_SIGNING_KEYS (RS256 ID tokens): `make dev` writes \
                        one to .dev.vars; in production run `make deploy` (it generates the set) or \
                        `wrangler secret put JWT_SIGNING_KEYS` with a JWK set holding an RSA and an EC key; \
                        or set OPENID=off"
                    .into(),
            );
        }
        c.id_token_ttl = num("ID_TOKEN_TTL_SECONDS", c.id_token_ttl)?;
        if !(60..=86_400).contains(&c.id_token_ttl) {
            return Err(format!(
                "ID_TOKEN_TTL_SECONDS must be 60 to 86400, got {}",
                c.id_token_ttl
            ));
        }
        if c.bearer_mode == BearerMode::Jwt && c.access_token_format != AccessTokenFormat::Jwt {
            return Err("BEARER_MODE=jwt needs ACCESS_TOKEN_FORMAT=jwt".into());
        }
        c.bearer_cache_ttl = num("BEARER_CACHE_TTL_SECONDS", c.bearer_cache_ttl)?;
        if c.bearer_cache_ttl > 300 {
            return Err("BEARER_CACHE_TTL_SECONDS is a staleness bound; more than 300 is refused".into());
        }
        c.audit_api_reads = choice(&get, "AUDIT_API_READS", &[("false", false), ("true", true)])?;
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
            MAX_WEBHOOK_SECRET_OVERLAP,
        )?;
        c.pkce_required = choice(
            &get,
            "PKCE_REQUIRED",
            &[("all", PkceRequired::All), ("public", PkceRequired::Public)],
        )?;
        c.live_grants_per = choice(
            &get,
            "LIVE_GRANTS_PER",
            &[("user", LiveGrantsPer::User), ("org", LiveGrantsPer::Org)],
        )?;
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
        c.signin_mode = choice(
            &get,
            "SIGNIN_MODE",
            &[("password", SigninMode::Password), ("delegated", SigninMode::Delegated)],
        )?;
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
        c.dcr = dcr::parse(&get)?;
        c.dpop = dpop::parse(&get)?;
        c.id_jag = id_jag::parse(&get)?;
        c.resources = parse_resources(&get("RESOURCES").unwrap_or_default())?;
        c.azure_devops_compat = choice(&get, "AZURE_DEVOPS_COMPAT", &[("false", false), ("true", true)])?;
        // Its apps send no PKCE and are told `token_type: "jwt"`: with either
        // setting otherwise, the compat exchange could never succeed, or would
        // hand out opaque tokens it calls JWTs.
        if c.azure_devops_compat
            && (c.pkce_required != PkceRequired::Public || c.access_token_format != AccessTokenFormat::Jwt)
        {
            return Err(
                "AZURE_DEVOPS_COMPAT=true needs PKCE_REQUIRED=public and ACCESS_TOKEN_FORMAT=jwt \
                        (profiles/azure-devops.toml)"
                    .into(),
            );
        }
        c.cimd = choice(&get, "CIMD", &[("off", false), ("on", true)])?;
        c.cimd_allow_http_loopback = choice(&get, "CIMD_ALLOW_HTTP_LOOPBACK", &[("false", false), ("true", true)])?;
        // A deployed worker has a non-loopback ISSUER (without one it answers
        // only loopback requests), so this development door cannot be left
        // open in production: the worker refuses to start.
        if c.cimd_allow_http_loopback && c.issuer.as_deref().is_some_and(|i| !urls::is_loopback_origin(i)) {
            return Err(
                "CIMD_ALLOW_HTTP_LOOPBACK=true is for local development only; ISSUER is not a loopback origin".into(),
            );
        }
        c.cimd_fetch_timeout = bounded("CIMD_FETCH_TIMEOUT_SECONDS", c.cimd_fetch_timeout, 1, 30)?;
        c.cimd_max_clients = bounded("CIMD_MAX_CLIENTS", c.cimd_max_clients, 1, 1_000_000)?;
        c.cimd_fetches_per_source = bounded(
            "CIMD_FETCHES_PER_SOURCE_PER_MINUTE",
            c.cimd_fetches_per_source,
            1,
            100_000,
        )?;
        c.cimd_fetches_per_host = bounded("CIMD_FETCHES_PER_HOST_PER_MINUTE", c.cimd_fetches_per_host, 1, 100_000)?;
        c.login_challenges_per_source = bounded(
            "LOGIN_CHALLENGES_PER_SOURCE_PER_MINUTE",
            c.login_challenges_per_source,
            1,
            100_000,
        )?;
        c.cimd_allowed_hosts = parse_hosts(&get("CIMD_ALLOWED_HOSTS").unwrap_or_default())?;
        // The draft recommends 5 KB; some published documents (inline logos,
        // many redirect URIs) are larger, so a platform may raise it, to 64 KiB.
        c.cimd_max_document_bytes =
            bounded("CIMD_MAX_DOCUMENT_BYTES", c.cimd_max_document_bytes as i64, 1024, 65536)? as usize;
        c.introspection_clients = get("INTROSPECTION_CLIENTS")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        subject::parse(&get, &mut c)?;
        par::parse(&get, &mut c)?;
        c.device = device::parse(&get)?;
        // Last: it checks the settings above.
        fapi::parse(&get, &mut c)?;
        Ok(c)
    }
}

/// A setting with a fixed set of values; the first is the default (unset or
/// empty), anything else is refused with the list of allowed values.
fn choice<T: Copy>(get: &impl Fn(&str) -> Option<String>, key: &str, options: &[(&str, T)]) -> Result<T, String> {
    match get(key).as_deref().map(str::trim) {
        None | Some("") => Ok(options[0].1),
        Some(v) => options
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                format!("{key} must be {}, got {v:?}", names.join(" or "))
            }),
    }
}

#[cfg(test)]
mod tests;
