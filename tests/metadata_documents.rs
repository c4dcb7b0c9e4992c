//! Client ID Metadata Documents natively (`edge_oauth::cimd`), the document
//! served by a stub [`Fetcher`]: the flow, the cache, the cap in SQLite and
//! the router's decoding of a URL client id in a path.

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use edge_oauth::cimd::{Fetched, Fetcher};
use edge_oauth::config::Config;
use edge_oauth::server::Server;
use edge_oauth::store::Store;

const URL: &str = "https://mcp.example/client.json";

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Serves one document for every URL and counts the fetches.
#[derive(Clone, Default)]
struct Stub(Rc<RefCell<(Fetched, usize)>>);

impl Fetcher for Stub {
    fn get<'a>(&'a self, _: &'a str, _: i64, _: usize) -> Fut<'a, Result<Fetched, String>> {
        let mut s = self.0.borrow_mut();
        s.1 += 1;
        let f = s.0.clone();
        Box::pin(async move { Ok(f) })
    }
}

fn document(cache_control: &str) -> Fetched {
    Fetched {
        status: 200,
        content_type: Some("application/json".into()),
        cache_control: Some(cache_control.into()),
        expires_at: None,
        body: serde_json::to_vec(&serde_json::json!({
            "client_id": URL,
            "client_name": "MCP client",
            "redirect_uris": [CB],
            "token_endpoint_auth_method": "none"
        }))
        .unwrap(),
    }
}

/// The registration record `save_metadata_document_client` writes with a new row.
fn audit() -> edge_oauth::store::Audit {
    edge_oauth::store::Audit {
        org_id: "_platform".into(),
        at: NOW,
        actor_type: "metadata_document_client".into(),
        actor_id: URL.into(),
        app_id: Some(URL.into()),
        action: "client.registered".into(),
        detail: serde_json::json!({}),
    }
}

fn cimd_server(stub: &Stub) -> Server<edge_oauth::store::native::NativeDriver> {
    let config = Config {
        cimd: true,
        ..Config::default()
    };
    let mut s = Server::new(Store::new(driver()), config);
    s.fetcher = Box::new(stub.clone());
    s
}

#[test]
fn a_url_client_authorizes_and_redeems_its_code_with_one_fetch_while_fresh() {
    let stub = Stub::default();
    stub.0.borrow_mut().0 = document("max-age=600");
    let server = cimd_server(&stub);
    let mut c = Client::new(&server);
    c.sign_in("alice@acme.test", "alice-password");
    let code = approve(&mut c, URL);
    assert_eq!(stub.0.borrow().1, 1, "consent page and decision share one fetch");
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", URL),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(stub.0.borrow().1, 1, "the token endpoint does not fetch");
    // Past max-age the next authorize fetches again.
    c.now += 601;
    // (Approved before, so no consent page: straight back with a code.)
    let r = c.get(&authorize_query(URL, ""));
    assert_eq!(r.status, 302, "{}", r.body_text());
    assert!(location_param(&r, "code").is_some());
    assert_eq!(stub.0.borrow().1, 2);
}

#[test]
fn off_by_default() {
    let stub = Stub::default();
    stub.0.borrow_mut().0 = document("max-age=600");
    let mut server = Server::new(Store::new(driver()), Config::default());
    server.fetcher = Box::new(stub.clone());
    let mut c = Client::new(&server);
    c.sign_in("alice@acme.test", "alice-password");
    let r = c.get(&authorize_query(URL, ""));
    assert_eq!(r.status, 400);
    assert!(r.body_text().contains("Unknown application"));
    assert_eq!(stub.0.borrow().1, 0);
}

#[test]
fn the_cap_admits_no_new_url_but_refreshes_a_stored_one() {
    let store = Store::new(driver());
    let mut row = edge_oauth::cimd::judge(
        URL,
        "mcp.example",
        &document("no-store"),
        &["profile:read".into()],
        &Default::default(),
    )
    .unwrap();
    row.created_at = NOW;
    row.metadata_expires_at = Some(NOW + 60);
    let saved = pollster::block_on(store.save_metadata_document_client(&row, 1, &audit()))
        .unwrap()
        .unwrap();
    assert_eq!((saved.version, saved.registration.as_str()), (1, "metadata_document"));
    // Refreshed at the cap; a new name is a new version.
    row.name = "Renamed".into();
    let again = pollster::block_on(store.save_metadata_document_client(&row, 1, &audit()))
        .unwrap()
        .unwrap();
    assert_eq!((again.version, again.name.as_str()), (2, "Renamed"));
    let mut other = row.clone();
    other.id = "https://other.example/client.json".into();
    assert!(
        pollster::block_on(store.save_metadata_document_client(&other, 1, &audit()))
            .unwrap()
            .is_none()
    );
    assert!(pollster::block_on(store.app(&other.id)).unwrap().is_none());
}

#[test]
fn a_stored_platform_app_is_never_overwritten_by_a_document() {
    let server = server();
    let mut c = Client::new(&server);
    let (id, _) = common::app(&mut c);
    let mut row = edge_oauth::cimd::judge(
        URL,
        "mcp.example",
        &document("no-store"),
        &["profile:read".into()],
        &Default::default(),
    )
    .unwrap();
    row.id = id.clone();
    assert!(
        pollster::block_on(server.store.save_metadata_document_client(&row, 100, &audit()))
            .unwrap()
            .is_none()
    );
    let kept = pollster::block_on(server.store.app(&id)).unwrap().unwrap();
    assert_eq!(kept.registration, "platform");
}

#[test]
fn a_url_client_id_is_one_encoded_path_segment() {
    let (route, params) = edge_oauth::server::route(
        "DELETE",
        "/api/v1/me/authorizations/https%3A%2F%2Fmcp.example%2Fclient.json",
    );
    assert_eq!(route, "my_authorization_revoke");
    assert_eq!(params, vec![URL.to_string()]);
    let long = format!("/api/v1/apps/{}", "a".repeat(256));
    assert_eq!(edge_oauth::server::route("GET", &long).0, "not_found");
    assert_eq!(edge_oauth::server::route("GET", "/api/v1/apps/%FF").0, "not_found");
}

#[test]
fn a_document_over_the_size_cap_is_refused_whatever_the_fetcher_returned() {
    let stub = Stub::default();
    let mut big = document("max-age=600");
    big.body = serde_json::to_vec(&serde_json::json!({
        "client_id": URL, "redirect_uris": [CB], "padding": "x".repeat(6000)
    }))
    .unwrap();
    stub.0.borrow_mut().0 = big;
    let server = cimd_server(&stub);
    let mut c = Client::new(&server);
    c.sign_in("alice@acme.test", "alice-password");
    let r = c.get(&authorize_query(URL, ""));
    assert_eq!(r.status, 400);
    // The page says only that it could not be fetched (issue 15 item 14).
    assert!(r.body_text().contains("could not be fetched"), "{}", r.body_text());
    assert!(pollster::block_on(server.store.app(URL)).unwrap().is_none());
    // A platform that raises CIMD_MAX_DOCUMENT_BYTES accepts it.
    let mut raised = cimd_server(&stub);
    raised.config.cimd_max_document_bytes = 16 * 1024;
    let mut c = Client::new(&raised);
    c.sign_in("alice@acme.test", "alice-password");
    assert_eq!(c.get(&authorize_query(URL, "")).status, 200);
}
