//! Every setting's default, and the bounds a feature shares with its setting (foundation).

use super::*;

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
            rsa_keys: Vec::new(),
            openid: true,
            id_token_ttl: 3600,
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
            // The MCP TypeScript SDK refreshes once per pending request: two
            // at once present the same token (issue 15). 10 s covers that and
            // a retried lost response; reuse after it still kills the family.
            refresh_reuse_grace: 10,
            signin_mode: SigninMode::Password,
            login_url: None,
            resources: Vec::new(),
            dcr: Dcr::default(),
            dpop: super::Dpop::default(),
            id_jag: super::IdJag::default(),
            azure_devops_compat: false,
            cimd: false,
            cimd_allow_http_loopback: false,
            cimd_fetch_timeout: 5,
            cimd_max_clients: 10_000,
            cimd_fetches_per_source: 30,
            cimd_fetches_per_host: 60,
            cimd_allowed_hosts: Vec::new(),
            cimd_max_document_bytes: DEFAULT_CIMD_MAX_DOCUMENT_BYTES,
            login_challenges_per_source: 30,
            subject_type: SubjectType::Public,
            subject_salt: None,
            par_required: false,
            par_ttl: 60,
            fapi2: false,
            device: Device::default(),
        }
    }
}

/// Most a previous webhook secret may stay valid after a rotation.
pub const MAX_WEBHOOK_SECRET_OVERLAP: i64 = 7 * 24 * 3600;

/// Largest document read by default (the draft recommends 5 KB); the fetch
/// is cancelled past it. `CIMD_MAX_DOCUMENT_BYTES` changes it.
pub const DEFAULT_CIMD_MAX_DOCUMENT_BYTES: usize = 5 * 1024;
