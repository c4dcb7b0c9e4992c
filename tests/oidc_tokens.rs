//! ID tokens through the whole server, natively (issue 17 item 2): RS256 by
//! default and ES256 for a client that registered it, each verified with the
//! `rsa` / `p256` crates against the public key alone; refresh keeps `sub`
//! and `auth_time`; the exchange stays one storage round trip.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use edge_oauth::config::Config;
use edge_oauth::crypto::{parse_key_set, Jwk};
use edge_oauth::server::Server;
use edge_oauth::store::Store;
use serde_json::Value;

type Srv = Server<edge_oauth::store::native::NativeDriver>;

fn ec_key() -> Jwk {
    let sk = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let pt = sk.verifying_key().to_encoded_point(false);
    Jwk {
        kid: "e1".into(),
        x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
        y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
        d: URL_SAFE_NO_PAD.encode([5; 32]),
    }
}

fn oidc_server() -> Srv {
    let set = parse_key_set(include_str!("keys/rsa.json")).unwrap();
    Server::new(
        Store::new(driver()),
        Config {
            rsa_keys: vec![set.rsa[0].clone()],
            jwt_keys: vec![ec_key()],
            ..Config::default()
        },
    )
}

fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

fn input_and_sig(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input, URL_SAFE_NO_PAD.decode(sig).unwrap())
}

fn verify_rs256(s: &Srv, token: &str) -> bool {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let k = &s.config.rsa_keys[0];
    let int = |v: &str| rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(v).unwrap());
    let pk = rsa::RsaPublicKey::new(int(&k.n), int(&k.e)).unwrap();
    let (input, sig) = input_and_sig(token);
    VerifyingKey::<sha2::Sha256>::new(pk)
        .verify(input.as_bytes(), &Signature::try_from(sig.as_slice()).unwrap())
        .is_ok()
}

fn verify_es256(s: &Srv, token: &str) -> bool {
    use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
    let k = &s.config.jwt_keys[0];
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(&k.x).unwrap());
    sec1.extend(URL_SAFE_NO_PAD.decode(&k.y).unwrap());
    let (input, sig) = input_and_sig(token);
    VerifyingKey::from_sec1_bytes(&sec1)
        .unwrap()
        .verify(input.as_bytes(), &Signature::from_slice(&sig).unwrap())
        .is_ok()
}

/// Alice approves `id` for `scope` (with `nonce`) as `actor`; the code.
fn approve_with(c: &mut Client, id: &str, scope: &str, nonce: &str, actor: &str) -> String {
    let extra = format!("&nonce={}", urlencode(nonce));
    let q = authorize_query(id, &extra).replace(
        "scope=profile:read%20posts:write",
        &format!("scope={}", urlencode(scope)),
    );
    let page = c.get(&q);
    assert_eq!(page.status, 200, "{}", page.body_text());
    let csrf = csrf_in(&page.body_text());
    let ch = edge_oauth::pkce::s256(VERIFIER);
    let r = c.post_form(
        "/oauth/authorize",
        &[
            ("client_id", id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "s1"),
            ("nonce", nonce),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("csrf", &csrf),
            ("org", "org_acme"),
            ("actor", actor),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body_text());
    location_param(&r, "code").expect("code in redirect")
}

fn flow(s: &Srv, alg: Option<&str>, scope: &str, actor: &str) -> (String, String, Value) {
    let mut c = Client::new(s);
    let (id, secret) = register_app(
        &mut c,
        serde_json::json!({"name": "RP", "redirect_uris": [CB], "scopes": ["posts:read"], "actor_modes": ["self", "app"]}),
    );
    let secret = secret.unwrap();
    if let Some(a) = alg {
        s.store
            .db
            .exec(&format!(
                "UPDATE apps SET id_token_signed_response_alg = '{a}' WHERE id = '{id}'"
            ))
            .unwrap();
    }
    c.sign_in("alice@acme.test", "alice-password");
    let code = approve_with(&mut c, &id, scope, "n-1", actor);
    let t = exchange(&mut c, &id, &secret, &code);
    assert_eq!(t.status, 200, "{}", t.body_text());
    (id, secret, json(&t))
}

#[test]
fn rs256_by_default_verified_with_the_public_key_and_renewed_on_refresh() {
    let s = oidc_server();
    let (id, secret, t) = flow(&s, None, "openid posts:read", "self");
    let idt = t["id_token"].as_str().expect("an ID token");
    assert_eq!(
        part(idt, 0),
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "r1"})
    );
    assert!(verify_rs256(&s, idt));
    let cl = part(idt, 1);
    assert_eq!(cl["sub"], "usr_alice");
    assert_eq!(
        (cl["aud"].as_str(), cl["azp"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(cl["nonce"], "n-1");
    assert_eq!(cl["iss"], BASE);
    assert!(cl["auth_time"].is_i64() && cl["sid"].is_string());
    let mut c = Client::new(&s);
    c.now += 120;
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let again = json(&r)["id_token"].as_str().unwrap().to_string();
    assert!(verify_rs256(&s, &again));
    let cl2 = part(&again, 1);
    assert_eq!(
        (&cl2["sub"], &cl2["auth_time"], &cl2["sid"]),
        (&cl["sub"], &cl["auth_time"], &cl["sid"])
    );
    assert!(cl2.get("nonce").is_none());
    assert_eq!(cl2["iat"].as_i64().unwrap(), cl["iat"].as_i64().unwrap() + 120);
}

#[test]
fn es256_for_a_client_that_registered_it() {
    let s = oidc_server();
    let (_, _, t) = flow(&s, Some("ES256"), "openid", "self");
    let idt = t["id_token"].as_str().unwrap();
    assert_eq!(part(idt, 0)["alg"], "ES256");
    assert!(verify_es256(&s, idt));
    assert!(!verify_rs256(&s, idt), "not an RS256 signature");
}

#[test]
fn none_without_openid_or_for_the_app_actor() {
    let s = oidc_server();
    assert!(flow(&s, None, "posts:read", "self").2.get("id_token").is_none());
    assert!(flow(&s, None, "openid posts:read", "app").2.get("id_token").is_none());
}
