//! Issue 15 natively, the metadata document (CIMD) items whose logic is core:
//! `CIMD_ALLOWED_HOSTS` holds wherever a URL client is authenticated or its
//! token validated, in every bearer mode (item 11), and the document URL
//! check refuses host names that resolve to loopback (item 14).

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use edge_oauth::cimd::{Fetched, Fetcher};
use edge_oauth::config::{AccessTokenFormat, BearerMode, Config};
use edge_oauth::jwt::Jwk;
use edge_oauth::server::Server;
use edge_oauth::store::kv::MemoryKv;
use edge_oauth::store::Store;

const URL: &str = "https://mcp.example/client.json";

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

#[derive(Clone, Default)]
struct Stub(Rc<RefCell<usize>>);

impl Fetcher for Stub {
    fn get<'a>(&'a self, _: &'a str, _: i64, _: usize) -> Fut<'a, Result<Fetched, String>> {
        *self.0.borrow_mut() += 1;
        Box::pin(async move {
            Ok(Fetched {
                status: 200,
                content_type: Some("application/json".into()),
                cache_control: Some("max-age=600".into()),
                expires_at: None,
                body: serde_json::to_vec(&serde_json::json!({
                    "client_id": URL,
                    "redirect_uris": [CB],
                    "token_endpoint_auth_method": "none",
                    "scope": "profile:read posts:write"
                }))
                .unwrap(),
            })
        })
    }
}

fn key() -> Jwk {
    let sk = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let pt = sk.verifying_key().to_encoded_point(false);
    Jwk {
        kid: "k1".into(),
        x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
        y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
        d: URL_SAFE_NO_PAD.encode([9; 32]),
    }
}

fn form(c: &mut Client, path: &str, pairs: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = c.post_form(path, pairs);
    (r.status, serde_json::from_str(&r.body_text()).unwrap_or_default())
}

/// Tokens of a URL client issued while its host was allowed; then the host
/// leaves `CIMD_ALLOWED_HOSTS` (a redeploy with the same data): every door
/// the client or its tokens use is shut, and coming back reopens them
/// (nothing was spent meanwhile).
fn host_removed_shuts_every_door(mut config: Config, kv: bool) {
    config.cimd = true;
    let mut server = Server::new(Store::new(driver()), config);
    server.fetcher = Box::new(Stub::default());
    if kv {
        server.edge = Some(Box::new(MemoryKv::default()));
    }
    let (at, rt, introspector, secret) = {
        let mut c = Client::new(&server);
        let (introspector, secret) = app(&mut c);
        c.sign_in("alice@acme.test", "alice-password");
        let code = approve(&mut c, URL);
        let (status, t) = form(
            &mut c,
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", URL),
            ],
        );
        assert_eq!(status, 200, "{t}");
        let at = t["access_token"].as_str().unwrap().to_string();
        // Seen once while allowed: copied to KV, or cached in this isolate.
        assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
        (
            at,
            t["refresh_token"].as_str().unwrap().to_string(),
            introspector,
            secret,
        )
    };
    server.config.introspection_clients = vec![introspector.clone()];
    server.config.cimd_allowed_hosts = vec!["elsewhere.example".into()];
    {
        let mut c = Client::new(&server);
        c.now += 1;
        assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401, "the access token");
        let (status, e) = form(
            &mut c,
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", URL),
            ],
        );
        assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")), "refresh");
        let (status, _) = form(&mut c, "/oauth/revoke", &[("token", &at), ("client_id", URL)]);
        assert_eq!(status, 401, "revocation authenticates the client");
        let (status, _) = form(&mut c, "/oauth/introspect", &[("token", &at), ("client_id", URL)]);
        assert_eq!(status, 401, "introspection authenticates the client");
        for token in [&at, &rt] {
            let (status, v) = form(
                &mut c,
                "/oauth/introspect",
                &[
                    ("token", token),
                    ("client_id", &introspector),
                    ("client_secret", &secret),
                ],
            );
            assert_eq!(
                (status, v["active"].as_bool()),
                (200, Some(false)),
                "introspected by another client"
            );
        }
    }
    server.config.cimd_allowed_hosts = vec!["mcp.example".into()];
    let mut c = Client::new(&server);
    c.now += 2;
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200, "allowed again");
    let (status, t) = form(
        &mut c,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", URL),
        ],
    );
    assert_eq!(status, 200, "the refresh token was not spent while refused: {t}");
}

#[test]
fn allowed_hosts_hold_after_authorize_in_strict_mode() {
    host_removed_shuts_every_door(Config::default(), false);
}

#[test]
fn allowed_hosts_hold_after_authorize_in_edge_mode() {
    host_removed_shuts_every_door(
        Config {
            bearer_mode: BearerMode::Edge,
            ..Config::default()
        },
        true,
    );
}

#[test]
fn allowed_hosts_hold_after_authorize_with_the_isolate_cache() {
    host_removed_shuts_every_door(
        Config {
            bearer_cache_ttl: 60,
            ..Config::default()
        },
        false,
    );
}

#[test]
fn allowed_hosts_hold_after_authorize_with_jwt_access_tokens() {
    host_removed_shuts_every_door(
        Config {
            access_token_format: AccessTokenFormat::Jwt,
            jwt_keys: vec![key()],
            bearer_mode: BearerMode::Jwt,
            bearer_cache_ttl: 60,
            ..Config::default()
        },
        false,
    );
}

#[test]
fn a_document_url_whose_host_resolves_to_loopback_is_refused_outside_development() {
    for url in [
        "https://localhost./client.json",
        "https://app.localhost/client.json",
        "https://APP.localhost./client.json",
        "https://app.localhost./client.json",
        "https://mcp.example./client.json",
    ] {
        assert!(edge_oauth::cimd::check_url(url, false).is_err(), "{url}");
    }
    assert!(edge_oauth::cimd::check_url("https://mcp.example/client.json", false).is_ok());
    // Development (CIMD_ALLOW_HTTP_LOOPBACK) admits loopback, named as such.
    assert!(edge_oauth::cimd::check_url("http://app.localhost:3000/client.json", true).is_ok());
    assert!(edge_oauth::cimd::check_url("http://localhost:3000/client.json", true).is_ok());
}
