//! The settings' parsing and validation.

use super::*;
use std::collections::HashMap;

/// The settings as given, with an RSA key added to `JWT_SIGNING_KEYS` (as
/// every deployment with `OPENID=on` has one) unless the test names `OPENID`.
fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let mut m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !m.contains_key("OPENID") {
        let rsa: serde_json::Value = serde_json::from_str(RSA).unwrap();
        let rsa = rsa["keys"][0].clone();
        let keys = match m
            .get("JWT_SIGNING_KEYS")
            .map(|t| serde_json::from_str::<serde_json::Value>(t))
        {
            None => Some(serde_json::json!({ "keys": [rsa] })),
            Some(Ok(mut set)) => match set["keys"].as_array_mut() {
                Some(a) => {
                    a.push(rsa);
                    Some(set)
                }
                None => None,
            },
            Some(Err(_)) => None,
        };
        if let Some(k) = keys {
            m.insert("JWT_SIGNING_KEYS".into(), k.to_string());
        }
    }
    Config::from_lookup(|k| m.get(k).cloned())
}

const RSA: &str = include_str!("../../tests/keys/rsa.json");

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
    assert_eq!((c.max_live_app_tokens, c.refresh_reuse_grace), (5, 10));
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

#[test]
fn azure_devops_compat_is_off_by_default_and_needs_its_profile_settings() {
    assert!(!cfg(&[]).unwrap().azure_devops_compat);
    let profile = [
        ("AZURE_DEVOPS_COMPAT", "true"),
        ("PKCE_REQUIRED", "public"),
        ("ACCESS_TOKEN_FORMAT", "jwt"),
        ("JWT_SIGNING_KEYS", KEYS),
    ];
    assert!(cfg(&profile).unwrap().azure_devops_compat);
    // Without PKCE_REQUIRED=public its exchange could never succeed; without
    // JWT access tokens `token_type: "jwt"` would be a lie.
    assert!(cfg(&profile[..2]).unwrap_err().contains("AZURE_DEVOPS_COMPAT"));
    assert!(cfg(&[profile[0], profile[2], profile[3]])
        .unwrap_err()
        .contains("PKCE_REQUIRED"));
    assert!(cfg(&[("AZURE_DEVOPS_COMPAT", "yes")]).is_err());
}

#[test]
fn cimd_is_off_by_default_and_http_loopback_is_development_only() {
    let c = cfg(&[]).unwrap();
    assert!(!c.cimd && !c.cimd_allow_http_loopback);
    assert_eq!((c.cimd_fetch_timeout, c.cimd_max_clients), (5, 10_000));
    assert_eq!((c.cimd_fetches_per_source, c.cimd_fetches_per_host), (30, 60));
    assert!(cfg(&[("CIMD_FETCHES_PER_SOURCE_PER_MINUTE", "0")]).is_err());
    assert!(cfg(&[("CIMD_FETCHES_PER_HOST_PER_MINUTE", "x")]).is_err());
    assert_eq!(
        cfg(&[("CIMD_ALLOWED_HOSTS", "MCP-Client.example, tools.example")])
            .unwrap()
            .cimd_allowed_hosts,
        ["mcp-client.example", "tools.example"]
    );
    assert!(cfg(&[("CIMD_ALLOWED_HOSTS", "https://x.example")]).is_err());
    assert!(cfg(&[("CIMD", "on")]).unwrap().cimd);
    assert!(cfg(&[("CIMD", "yes")]).is_err());
    assert!(cfg(&[("CIMD_FETCH_TIMEOUT_SECONDS", "0")]).is_err());
    assert!(cfg(&[("CIMD_FETCH_TIMEOUT_SECONDS", "31")]).is_err());
    assert!(cfg(&[("CIMD_MAX_CLIENTS", "0")]).is_err());
    assert_eq!(cfg(&[]).unwrap().cimd_max_document_bytes, 5120);
    assert_eq!(
        cfg(&[("CIMD_MAX_DOCUMENT_BYTES", "16384")])
            .unwrap()
            .cimd_max_document_bytes,
        16384
    );
    assert!(cfg(&[("CIMD_MAX_DOCUMENT_BYTES", "65537")]).is_err());
    // Without ISSUER the worker answers loopback requests only.
    assert!(cfg(&[("CIMD_ALLOW_HTTP_LOOPBACK", "true")]).is_ok());
    assert!(cfg(&[
        ("CIMD_ALLOW_HTTP_LOOPBACK", "true"),
        ("ISSUER", "http://127.0.0.1:8787")
    ])
    .is_ok());
    assert!(cfg(&[
        ("CIMD_ALLOW_HTTP_LOOPBACK", "true"),
        ("ISSUER", "http://localhost:8787")
    ])
    .is_ok());
    let e = cfg(&[
        ("CIMD_ALLOW_HTTP_LOOPBACK", "true"),
        ("ISSUER", "https://auth.example.com"),
    ])
    .unwrap_err();
    assert!(e.contains("CIMD_ALLOW_HTTP_LOOPBACK"), "{e}");
    assert!(cfg(&[
        ("CIMD_ALLOW_HTTP_LOOPBACK", "false"),
        ("ISSUER", "https://auth.example.com")
    ])
    .is_ok());
}

#[test]
fn openid_needs_an_rsa_key_and_says_where_to_get_one() {
    let err = cfg(&[("OPENID", "on")]).unwrap_err();
    assert!(
        err.contains("RSA key") && err.contains("make dev") && err.contains("wrangler secret put"),
        "{err}"
    );
    // The default is on: an EC-only set is not enough.
    let err = cfg(&[("OPENID", ""), ("JWT_SIGNING_KEYS", KEYS)]).unwrap_err();
    assert!(err.contains("OPENID=on"), "{err}");
    let c = cfg(&[("OPENID", "off")]).unwrap();
    assert!(!c.openid && !c.publishes_jwks());
    let c = cfg(&[]).unwrap();
    assert!(c.openid && c.publishes_jwks());
    assert_eq!((c.id_token_ttl, c.subject_type), (3600, SubjectType::Public));
    assert_eq!(c.rsa_keys[0].kid, "r1");
    assert!(cfg(&[("OPENID", "yes")]).is_err());
}

#[test]
fn id_token_lifetime_and_subject_type_are_bounded_choices() {
    assert_eq!(cfg(&[("ID_TOKEN_TTL_SECONDS", "600")]).unwrap().id_token_ttl, 600);
    assert!(cfg(&[("ID_TOKEN_TTL_SECONDS", "59")]).is_err());
    assert!(cfg(&[("ID_TOKEN_TTL_SECONDS", "86401")]).is_err());
    // Pairwise needs its salt (see the test below).
    let salt = "s".repeat(MIN_SUBJECT_SALT);
    assert_eq!(
        cfg(&[("SUBJECT_TYPE", "pairwise"), ("SUBJECT_SALT", &salt)])
            .unwrap()
            .subject_type,
        SubjectType::Pairwise
    );
    assert!(cfg(&[("SUBJECT_TYPE", "email")]).is_err());
}

#[test]
fn rsa_keys_are_parsed_strictly() {
    let set: serde_json::Value = serde_json::from_str(RSA).unwrap();
    let key = set["keys"][0].clone();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut k = key.clone();
        f(&mut k);
        cfg(&[
            ("OPENID", "on"),
            ("JWT_SIGNING_KEYS", &serde_json::json!({ "keys": [k] }).to_string()),
        ])
    };
    assert!(with(&|_| {}).is_ok());
    // A 1024-bit modulus.
    let short = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [0xffu8; 128]);
    let err = with(&|k| k["n"] = serde_json::json!(short)).unwrap_err();
    assert!(err.contains("2048"), "{err}");
    let err = with(&|k| {
        k.as_object_mut().unwrap().remove("qi");
    })
    .unwrap_err();
    assert!(err.contains("needs qi"), "{err}");
    assert!(with(&|k| {
        k.as_object_mut().unwrap().remove("d");
    })
    .is_err());
    assert!(with(&|k| k["alg"] = serde_json::json!("RS512")).is_err());
    assert!(with(&|k| k["kid"] = serde_json::json!("")).is_err());
    let twice = serde_json::json!({ "keys": [key.clone(), key.clone()] }).to_string();
    assert!(cfg(&[("OPENID", "on"), ("JWT_SIGNING_KEYS", &twice)])
        .unwrap_err()
        .contains("twice"));
}

#[test]
fn pairwise_subjects_need_a_salt_and_a_bearer_mode_that_reads_storage() {
    let c = cfg(&[]).unwrap();
    assert_eq!((c.subject_type, c.subject_salt), (SubjectType::Public, None));
    let salt = "s".repeat(MIN_SUBJECT_SALT);
    let c = cfg(&[("SUBJECT_TYPE", "pairwise"), ("SUBJECT_SALT", &salt)]).unwrap();
    assert_eq!(c.subject_type, SubjectType::Pairwise);
    assert_eq!(c.subject_salt.as_deref(), Some(salt.as_str()));
    assert!(cfg(&[("SUBJECT_TYPE", "pairwise")])
        .unwrap_err()
        .contains("SUBJECT_SALT"));
    assert!(cfg(&[("SUBJECT_TYPE", "pairwise"), ("SUBJECT_SALT", "short")])
        .unwrap_err()
        .contains("SUBJECT_SALT must be"));
    assert!(cfg(&[("SUBJECT_TYPE", "opaque")]).unwrap_err().contains("SUBJECT_TYPE"));
    let jwt = cfg(&[
        ("SUBJECT_TYPE", "pairwise"),
        ("SUBJECT_SALT", &salt),
        ("BEARER_MODE", "jwt"),
        ("ACCESS_TOKEN_FORMAT", "jwt"),
        ("JWT_SIGNING_KEYS", KEYS),
    ]);
    assert!(jwt.unwrap_err().contains("BEARER_MODE strict or edge"));
    // JWT access tokens are fine with pairwise subjects: strict mode reads the token's row.
    assert!(cfg(&[
        ("SUBJECT_TYPE", "pairwise"),
        ("SUBJECT_SALT", &salt),
        ("ACCESS_TOKEN_FORMAT", "jwt"),
        ("JWT_SIGNING_KEYS", KEYS),
    ])
    .is_ok());
}
