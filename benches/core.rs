//! Native micro-benchmark of the core (`make bench`): what a request costs in
//! CPU outside the runtime and D1.
//!
//! - `token request, core CPU`: everything the token endpoint computes for a
//!   code exchange except storage: form parsing, client credentials, secret
//!   hash and constant-time compare, PKCE S256, minting and hashing two
//!   tokens, the JSON response. This is the number to hold against the
//!   Workers Free plan's 10 ms CPU limit.
//! - `... through Server::handle (SQLite)`: whole requests against the
//!   in-memory SQLite store with the real migrations: an upper bound, since
//!   SQLite's own CPU is included here and spent by D1 elsewhere in production.

#[path = "../tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::hint::black_box;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use edge_oauth::client_auth;
use edge_oauth::config::Config;
use edge_oauth::crypto;
use edge_oauth::grants;
use edge_oauth::grants::TokenResponse;
use edge_oauth::http::{Params, Request, Response};
use edge_oauth::pkce;
use edge_oauth::server::Server;
use edge_oauth::store::Store;

fn token_request(id: &str, secret: &str, pairs: &[(&str, &str)]) -> Request {
    Request::new("POST", &format!("{BASE}/oauth/token"))
        .with_header("content-type", "application/x-www-form-urlencoded")
        .with_header("authorization", &basic(id, secret))
        .with_body(Params::encode(pairs))
}

/// A code exchange for a fresh code (prior consent: the authorize redirect
/// carries one at once).
fn exchange_request(client: &mut Client, id: &str, secret: &str) -> Request {
    let code = location_param(&client.get(&authorize_query(id, "")), "code").expect("code");
    token_request(
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn core_cpu(c: &mut Criterion) {
    let config = Config::default();
    let stored = crypto::sha256_hex("sec_example_secret_value_0123456789abcdef");
    let code = crypto::new_token("code_");
    let req = token_request(
        "app_example",
        "sec_example_secret_value_0123456789abcdef",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    let scopes = vec!["profile:read".to_string(), "posts:write".to_string()];
    c.bench_function("token request, core CPU (no storage)", |b| {
        b.iter(|| {
            let form = req.form().unwrap();
            let creds = client_auth::credentials(&config, &req, &form).unwrap();
            let good = crypto::ct_eq(&stored, &crypto::sha256_hex(creds.secret.as_deref().unwrap()));
            let challenge = pkce::s256(form.get("code_verifier").unwrap());
            let code_hash = crypto::sha256_hex(form.get("code").unwrap());
            let access = grants::mint_access(&config, NOW);
            let refresh = grants::mint_refresh(&config, NOW);
            let body = TokenResponse::bearer(access.plain, Some(refresh.plain), config.access_ttl, &scopes);
            let resp = Response::json(200, &body).no_store();
            black_box((good, challenge, code_hash, access.row, refresh.row, resp))
        })
    });
}

fn whole_requests(c: &mut Criterion) {
    let server = common::server();
    let mut client = Client::new(&server);
    let (id, secret, _, _) = tokens(&mut client);
    let handle = |s: &Server<_>, req: &Request| pollster::block_on(s.handle(req, NOW)).0;

    c.bench_function("code exchange through Server::handle (SQLite)", |b| {
        b.iter_batched(
            || exchange_request(&mut client, &id, &secret),
            |req| assert_eq!(handle(&server, &req).status, 200),
            BatchSize::SmallInput,
        )
    });

    // A second authorization replaces the first: take its refresh token.
    let first = handle(&server, &exchange_request(&mut client, &id, &secret));
    let chain = RefCell::new(json(&first)["refresh_token"].as_str().unwrap().to_string());
    let live = json(&first)["access_token"].as_str().unwrap().to_string();
    c.bench_function("refresh rotation through Server::handle (SQLite)", |b| {
        b.iter(|| {
            let rt = chain.borrow().clone();
            let r = handle(
                &server,
                &token_request(&id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]),
            );
            assert_eq!(r.status, 200);
            *chain.borrow_mut() = json(&r)["refresh_token"].as_str().unwrap().to_string();
        })
    });

    let me = Request::new("GET", &format!("{BASE}/api/v1/me")).with_header("authorization", &format!("Bearer {live}"));
    c.bench_function("bearer API GET through Server::handle (SQLite, strict)", |b| {
        b.iter(|| assert_eq!(handle(&server, &me).status, 200))
    });
}

fn bearer_cache(c: &mut Criterion) {
    let server = Server::new(
        Store::new(common::driver()),
        Config {
            bearer_cache_ttl: 300,
            ..Config::default()
        },
    );
    let mut client = Client::new(&server);
    let (_, _, access, _) = tokens(&mut client);
    let me =
        Request::new("GET", &format!("{BASE}/api/v1/me")).with_header("authorization", &format!("Bearer {access}"));
    c.bench_function("bearer API GET through Server::handle (isolate cache hit)", |b| {
        b.iter(|| assert_eq!(pollster::block_on(server.handle(&me, NOW)).0.status, 200))
    });
}

criterion_group!(benches, core_cpu, whole_requests, bearer_cache);
criterion_main!(benches);
