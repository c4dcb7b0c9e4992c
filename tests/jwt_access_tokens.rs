//! JWT access tokens (RFC 9068) through the whole server, natively: the
//! format seam in every grant, the `jti` as the storage handle (revocation,
//! introspection, strict and edge bearer modes), and `BEARER_MODE=jwt`.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use edge_oauth::config::{AccessTokenFormat, BearerMode, Config};
use edge_oauth::jwt::Jwk;
use edge_oauth::server::Server;
use edge_oauth::store::Store;

type Srv = Server<edge_oauth::store::native::NativeDriver>;

fn key(kid: &str, seed: u8) -> Jwk {
    let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let pt = sk.verifying_key().to_encoded_point(false);
    Jwk {
        kid: kid.into(),
        x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
        y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
        d: URL_SAFE_NO_PAD.encode([seed; 32]),
    }
}

fn jwt_server(mode: BearerMode) -> Srv {
    Server::new(
        Store::new(driver()),
        Config {
            access_token_format: AccessTokenFormat::Jwt,
            jwt_keys: vec![key("k1", 7)],
            bearer_mode: mode,
            ..Config::default()
        },
    )
}

fn claims(token: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn revoke(c: &mut Client, id: &str, secret: &str, token: &str) -> u16 {
    c.post_form(
        "/oauth/revoke",
        &[("token", token), ("client_id", id), ("client_secret", secret)],
    )
    .status
}

#[test]
fn jwt_format_stores_the_jti_hash_and_strict_mode_honours_revocation() {
    let s = jwt_server(BearerMode::Strict);
    let mut c = Client::new(&s);
    let (id, secret, at, rt) = tokens(&mut c);
    assert_eq!(at.split('.').count(), 3);
    assert!(rt.starts_with("rt_"), "refresh tokens stay opaque");
    let cl = claims(&at);
    assert_eq!(cl["sub"], "usr_alice");
    assert_eq!(cl["client_id"], id.as_str());
    assert_eq!(cl["org_id"], "org_acme");
    assert_eq!(cl["aud"], format!("{}/api/v1", cl["iss"].as_str().unwrap()));
    let stored = edge_oauth::crypto::sha256_hex(cl["jti"].as_str().unwrap());
    let n: i64 = s
        .store
        .db
        .query_one_text(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM tokens WHERE hash = '{stored}'"
        ))
        .parse()
        .unwrap();
    assert_eq!(n, 1, "D1 keeps the jti's SHA-256");
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
    // The jti alone is not a bearer token.
    assert_eq!(
        bearer_get(&mut c, "/api/v1/me", cl["jti"].as_str().unwrap()).status,
        401
    );
    let intro = c.post_form(
        "/oauth/introspect",
        &[("token", &at), ("client_id", &id), ("client_secret", &secret)],
    );
    assert_eq!(json(&intro)["active"], true);
    assert_eq!(revoke(&mut c, &id, &secret, &at), 200);
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401);
}

#[test]
fn jwt_bearer_mode_reads_no_storage_and_revocation_waits_for_expiry() {
    let s = jwt_server(BearerMode::Jwt);
    let mut c = Client::new(&s);
    let (id, secret, at, _) = tokens(&mut c);
    assert_eq!(revoke(&mut c, &id, &secret, &at), 200);
    let me = bearer_get(&mut c, "/api/v1/me", &at);
    assert_eq!(me.status, 200, "offline check: live until exp");
    c.now += 3600;
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401, "expired");
}

#[test]
fn refresh_issues_jwts_through_the_same_seam() {
    let s = jwt_server(BearerMode::Strict);
    let mut c = Client::new(&s);
    let (id, secret, _, rt) = tokens(&mut c);
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let at = json(&r)["access_token"].as_str().unwrap().to_string();
    let cl = claims(&at);
    assert_eq!(
        (cl["sub"].as_str(), cl["actor"].as_str(), cl["org_id"].as_str()),
        (Some("usr_alice"), Some("self"), Some("org_acme"))
    );
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
}
