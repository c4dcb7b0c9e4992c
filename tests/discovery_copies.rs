//! Discovery documents are built once per isolate and served as copies
//! (`server::Docs`): a copy is never staler than the scope catalogue's
//! per-isolate minute, and never answers for another origin or configuration.
use crate::common;

use common::*;
use edge_oauth::config::{Config, DcrPolicy};
use edge_oauth::http::Request;
use edge_oauth::server::Server;
use edge_oauth::store::Store;

const METADATA: &str = "/.well-known/oauth-authorization-server";

fn scopes(c: &mut Client) -> Vec<String> {
    let r = c.get(METADATA);
    assert_eq!(r.status, 200);
    serde_json::from_value(json(&r)["scopes_supported"].clone()).unwrap()
}

#[test]
fn metadata_copy_follows_the_catalogue_within_its_minute() {
    let s = server();
    let mut c = Client::new(&s);
    let first = c.get(METADATA);
    assert_eq!(first.body, c.get(METADATA).body, "the copy is the document");
    s.store
        .db
        .exec("INSERT INTO scopes VALUES ('extra:read','Extra')")
        .unwrap();
    c.now += 59;
    assert!(
        !scopes(&mut c).contains(&"extra:read".to_string()),
        "within the catalogue's minute"
    );
    c.now += 1;
    assert!(
        scopes(&mut c).contains(&"extra:read".to_string()),
        "rebuilt once the catalogue is"
    );
}

#[test]
fn a_copy_belongs_to_its_server_configuration_and_origin() {
    let open = Server::new(
        Store::new(driver()),
        Config {
            dcr: edge_oauth::config::Dcr {
                policy: DcrPolicy::Open,
                ..Config::default().dcr
            },
            ..Config::default()
        },
    );
    let closed = server();
    assert!(json(&Client::new(&open).get(METADATA))["registration_endpoint"].is_string());
    assert!(json(&Client::new(&closed).get(METADATA))["registration_endpoint"].is_null());
    // Without ISSUER (loopback), the issuer and the resource follow the request's origin.
    let mut c = Client::new(&closed);
    let a = c.send(Request::new("GET", &format!("http://127.0.0.1:8787{METADATA}")));
    let b = c.send(Request::new("GET", &format!("http://localhost:8787{METADATA}")));
    assert_eq!(json(&a)["issuer"], "http://127.0.0.1:8787");
    assert_eq!(json(&b)["issuer"], "http://localhost:8787");
    let rm = "/.well-known/oauth-protected-resource/api/v1";
    let a = c.send(Request::new("GET", &format!("http://127.0.0.1:8787{rm}")));
    let b = c.send(Request::new("GET", &format!("http://localhost:8787{rm}")));
    assert_eq!(json(&a)["resource"], "http://127.0.0.1:8787/api/v1");
    assert_eq!(json(&b)["resource"], "http://localhost:8787/api/v1");
}

const OPENID: &str = "/.well-known/openid-configuration";

#[test]
fn the_openid_document_is_a_copy_too_following_the_catalogue_and_its_issuer() {
    let s = server();
    let mut c = Client::new(&s);
    let first = c.get(OPENID);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, c.get(OPENID).body, "the copy is the document");
    assert_eq!(json(&first)["issuer"], json(&c.get(METADATA))["issuer"]);
    s.store
        .db
        .exec("INSERT INTO scopes VALUES ('extra:write','Extra')")
        .unwrap();
    c.now += 60;
    let doc = json(&c.get(OPENID));
    let scopes: Vec<String> = serde_json::from_value(doc["scopes_supported"].clone()).unwrap();
    assert!(
        scopes.contains(&"extra:write".to_string()),
        "rebuilt once the catalogue is"
    );
    assert!(scopes.contains(&"openid".to_string()));
    let a = c.send(Request::new("GET", &format!("http://localhost:8787{OPENID}")));
    assert_eq!(json(&a)["issuer"], "http://localhost:8787");
    // OPENID=off: no document (and no copy of one).
    let off = Server::new(
        Store::new(driver()),
        Config {
            openid: false,
            ..Config::default()
        },
    );
    assert_eq!(Client::new(&off).get(OPENID).status, 404);
}
