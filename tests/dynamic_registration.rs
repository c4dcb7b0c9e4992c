//! RFC 7591 dynamic registration through the core with the native SQLite
//! store: the flow end to end, the cap, and the sweep of unused clients.

use crate::common;

use common::*;
use edge_oauth::config::{Config, DcrPolicy};
use edge_oauth::http::Request;
use edge_oauth::server::Server;
use edge_oauth::store::Store;
use serde_json::json;

fn dcr_server(policy: DcrPolicy, max: i64) -> Server<edge_oauth::store::native::NativeDriver> {
    let mut cfg = Config::default();
    cfg.dcr.policy = policy;
    cfg.dcr.max_clients = max;
    cfg.dcr.rate_per_hour = 1000;
    Server::new(Store::new(driver()), cfg)
}

fn register(c: &mut Client, body: serde_json::Value) -> edge_oauth::http::Response {
    c.send(
        Request::new("POST", &format!("{BASE}/oauth/register"))
            .with_header("content-type", "application/json")
            .with_body(body.to_string()),
    )
}

fn public_client(c: &mut Client) -> serde_json::Value {
    let r = register(
        c,
        json!({"redirect_uris": [CB], "token_endpoint_auth_method": "none", "client_name": "Native MCP"}),
    );
    assert_eq!(r.status, 201, "{}", r.body_text());
    json(&r)
}

#[test]
fn a_public_client_registers_authorizes_and_calls_the_api() {
    let s = dcr_server(DcrPolicy::Open, 100);
    let mut c = Client::new(&s);
    let reg = public_client(&mut c);
    let id = reg["client_id"].as_str().unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert!(reg.get("client_secret").is_none());
    c.sign_in("alice@acme.test", "alice-password");
    let page = c.get(&authorize_query(id, ""));
    assert!(page.body_text().contains("Unverified app"), "{}", page.body_text());
    let code = approve(&mut c, id);
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", id),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let at = json(&r)["access_token"].as_str().unwrap().to_string();
    let me = bearer_get(&mut c, "/api/v1/me", &at);
    assert_eq!(me.status, 200, "{}", me.body_text());
}

#[test]
fn the_cap_holds_and_the_sweep_removes_only_unused_clients() {
    let s = dcr_server(DcrPolicy::Open, 2);
    let mut c = Client::new(&s);
    let used = public_client(&mut c);
    let unused = public_client(&mut c);
    let full = register(&mut c, json!({"redirect_uris": [CB]}));
    assert_eq!(full.status, 429, "{}", full.body_text());
    assert!(full.get_header("Retry-After").is_some());
    c.sign_in("alice@acme.test", "alice-password");
    approve(&mut c, used["client_id"].as_str().unwrap());

    let cfg = &s.config;
    let sweep = |now| pollster::block_on(edge_oauth::tasks::sweep(&s.store, cfg, now, 500)).unwrap();
    let count = |r: &Vec<(String, i64)>| r.iter().find(|(n, _)| n == "unused_dynamic_clients").unwrap().1;
    assert_eq!(count(&sweep(NOW + 86400)), 0, "not before DCR_UNUSED_DAYS");
    assert_eq!(count(&sweep(NOW + cfg.dcr.unused_days * 86400)), 1);
    let app = |id: &serde_json::Value| pollster::block_on(s.store.app(id.as_str().unwrap())).unwrap();
    assert!(app(&used["client_id"]).is_some(), "a used client stays");
    assert!(app(&unused["client_id"]).is_none(), "the unused one is gone");
    // Its registration access token died with it (trigger).
    let read = c.send(
        Request::new("GET", unused["registration_client_uri"].as_str().unwrap()).with_header(
            "authorization",
            &format!("Bearer {}", unused["registration_access_token"].as_str().unwrap()),
        ),
    );
    assert_eq!(read.status, 401);
    // Its place is free again.
    assert_eq!(register(&mut c, json!({"redirect_uris": [CB]})).status, 201);
}
