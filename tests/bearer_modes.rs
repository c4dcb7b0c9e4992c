//! Bearer validation modes and their guarantees (`store::kv`,
//! `bearer::cache`), natively: the same migrations, triggers and handlers as
//! the worker, with an in-memory KV.

use crate::common;

use common::*;
use edge_oauth::config::{BearerMode, Config};
use edge_oauth::crypto::sha256_hex;
use edge_oauth::server::Server;
use edge_oauth::store::kv::{self, MemoryKv};
use edge_oauth::store::Store;

type Srv = Server<edge_oauth::store::native::NativeDriver>;

fn server_with(config: Config, kv: bool) -> (Srv, MemoryKv) {
    let mut s = Server::new(Store::new(driver()), config);
    let mem = MemoryKv::default();
    if kv {
        s.edge = Some(Box::new(mem.clone()));
    }
    (s, mem)
}

fn edge_server() -> (Srv, MemoryKv) {
    server_with(
        Config {
            bearer_mode: BearerMode::Edge,
            ..Config::default()
        },
        true,
    )
}

fn kv_keys(kv: &MemoryKv) -> Vec<String> {
    let mut keys: Vec<String> = kv.0.borrow().keys().cloned().collect();
    keys.sort();
    keys
}

fn count(s: &Srv, sql: &str) -> i64 {
    s.store
        .db
        .query_one_text(&format!("SELECT CAST(({sql}) AS TEXT)"))
        .parse()
        .unwrap()
}

#[test]
fn edge_copies_only_access_tokens_to_kv_and_reads_kv_first() {
    let (s, kv) = edge_server();
    let mut c = Client::new(&s);
    let (_, _, at, rt) = tokens(&mut c);
    assert_eq!(kv_keys(&kv), vec![sha256_hex(&at)], "one key: the access token's hash");
    let (value, expires_at) = kv.0.borrow().values().next().cloned().unwrap();
    assert!(!value.contains(&at) && !value.contains(&rt), "no plaintext token in KV");
    assert_eq!(expires_at, NOW + 3600, "the copy expires with the token");
    // A change D1 does not watch (an org's slug) shows that KV answered.
    s.store
        .db
        .exec("UPDATE orgs SET slug = 'acme-renamed' WHERE id = 'org_acme'")
        .unwrap();
    let me = json(&bearer_get(&mut c, "/api/v1/me", &at));
    assert_eq!(me["org"]["slug"], "acme");
    // A KV miss falls back to D1: never a wrong 401.
    kv.0.borrow_mut().clear();
    let me = json(&bearer_get(&mut c, "/api/v1/me", &at));
    assert_eq!(me["org"]["slug"], "acme-renamed");
}

#[test]
fn edge_revocation_evicts_the_kv_copy_after_the_request() {
    let (s, kv) = edge_server();
    let mut c = Client::new(&s);
    let (id, secret, at, _) = tokens(&mut c);
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
    let r = c.post_form(
        "/oauth/revoke",
        &[("token", &at), ("client_id", &id), ("client_secret", &secret)],
    );
    assert_eq!(r.status, 200);
    assert!(
        kv_keys(&kv).is_empty(),
        "deleted from KV by the request's deferred drain"
    );
    assert_eq!(count(&s, "SELECT count(*) FROM bearer_evictions"), 0, "queue drained");
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401);
}

#[test]
fn edge_triggers_queue_every_change_that_matters_whoever_makes_it() {
    let (s, kv) = edge_server();
    let mut c = Client::new(&s);
    let (id, secret, at, rt) = tokens(&mut c);
    let queued = |s: &Srv| count(s, "SELECT count(*) FROM bearer_evictions");
    // Changes outside this worker (the platform's own jobs) are caught too.
    s.store.db.exec("UPDATE orgs SET name = 'Acme Inc'").unwrap();
    assert_eq!(queued(&s), 0, "an unrelated change queues nothing");
    s.store
        .db
        .exec("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice'")
        .unwrap();
    assert_eq!(queued(&s), 1, "a role change queues the user's tokens");
    pollster::block_on(kv::drain(&s.store, s.edge.as_deref().unwrap())).unwrap();
    assert!(kv_keys(&kv).is_empty());
    let me = json(&bearer_get(&mut c, "/api/v1/me", &at));
    assert_eq!(
        me["permissions"],
        serde_json::json!(["profile:read"]),
        "the new role, from D1"
    );
    for sql in [
        "DELETE FROM role_permissions WHERE role = 'member' AND permission = 'posts:read'",
        "UPDATE apps SET scopes = '[\"profile:read\"]'",
        "UPDATE apps SET status = 'suspended'",
        "DELETE FROM memberships WHERE user_id = 'usr_alice'",
    ] {
        s.store.db.exec("DELETE FROM bearer_evictions").unwrap();
        s.store.db.exec(sql).unwrap();
        assert_eq!(queued(&s), 1, "{sql}");
    }
    // Refresh reuse revokes the whole family: its access tokens are queued.
    s.store.db.exec("DELETE FROM bearer_evictions").unwrap();
    s.store
        .db
        .exec("UPDATE apps SET status = 'active', scopes = '[\"profile:read\",\"posts:read\",\"posts:write\"]'")
        .unwrap();
    s.store
        .db
        .exec("INSERT INTO memberships VALUES ('org_acme','usr_alice','owner')")
        .unwrap();
    s.store.db.exec("DELETE FROM bearer_evictions").unwrap();
    let refresh = |c: &mut Client| {
        c.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .status
    };
    assert_eq!(refresh(&mut c), 200);
    assert_eq!(kv_keys(&kv).len(), 1, "the rotated access token was copied");
    // Outside the default reuse grace (10 s since issue 15).
    c.now += 11;
    assert_eq!(refresh(&mut c), 400, "reuse");
    assert!(kv_keys(&kv).is_empty(), "the family's copies are gone");
}

#[test]
fn strict_mode_copies_nothing_and_queues_nothing() {
    let (s, kv) = server_with(Config::default(), true);
    let mut c = Client::new(&s);
    let (id, secret, at, _) = tokens(&mut c);
    assert!(kv_keys(&kv).is_empty());
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
    let r = c.post_form(
        "/oauth/revoke",
        &[("token", &at), ("client_id", &id), ("client_secret", &secret)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        bearer_get(&mut c, "/api/v1/me", &at).status,
        401,
        "revoke then call: 401 at once"
    );
    assert_eq!(count(&s, "SELECT count(*) FROM bearer_evictions"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM tokens WHERE mirrored IS NOT NULL"), 0);
}

#[test]
fn isolate_cache_is_stale_for_at_most_its_ttl() {
    let (s, _) = server_with(
        Config {
            bearer_cache_ttl: 5,
            ..Config::default()
        },
        false,
    );
    let mut c = Client::new(&s);
    let (_, _, at, _) = tokens(&mut c);
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200);
    // Revoked behind this isolate's back (another isolate, an operator).
    s.store
        .db
        .exec("UPDATE tokens SET revoked_at = 1 WHERE kind = 'access'")
        .unwrap();
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 200, "cached verdict");
    c.now += 5;
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401, "gone after the TTL");
    // A revocation this isolate handles clears its cache at once.
    c.now -= 5;
    let (id2, secret2, at2, _) = tokens(&mut c);
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at2).status, 200);
    let r = c.post_form(
        "/oauth/revoke",
        &[("token", &at2), ("client_id", &id2), ("client_secret", &secret2)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at2).status, 401);
}
