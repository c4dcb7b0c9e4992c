//! The authorization-code journey through the core, natively: the same
//! handlers the worker runs, with plain requests instead of workerd.

use crate::common;

use common::*;
use edge_oauth::http::Request;
use serde_json::json;

#[test]
fn journey_code_token_resource_refresh_revoke() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = app(&mut c);
    let first = c.get(&authorize_query(&id, ""));
    assert_eq!(first.status, 302, "not signed in: sent to sign-in");
    assert!(first.get_header("Location").unwrap().starts_with("/signin?return_to="));
    c.sign_in("alice@acme.test", "alice-password");
    let code = approve(&mut c, &id);

    let t = exchange(&mut c, &id, &secret, &code);
    assert_eq!(t.status, 200, "{}", t.body_text());
    assert_eq!(t.get_header("Cache-Control"), Some("no-store"));
    let tokens = json(&t);
    let at = tokens["access_token"].as_str().unwrap().to_string();
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);

    let me = bearer_get(&mut c, "/api/v1/me", &at);
    assert_eq!(me.status, 200);
    let me = json(&me);
    assert_eq!(me["org"]["slug"], "acme");
    assert_eq!(me["user"]["email"], "alice@acme.test");
    assert_eq!(me["permissions"], json!(["posts:write", "profile:read"]));

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
    let at2 = json(&r)["access_token"].as_str().unwrap().to_string();
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at2).status, 200);

    let rv = c.post_form(
        "/oauth/revoke",
        &[("token", &at2), ("client_id", &id), ("client_secret", &secret)],
    );
    assert_eq!(rv.status, 200);
    let dead = bearer_get(&mut c, "/api/v1/me", &at2);
    assert_eq!(dead.status, 401);
    assert!(dead.get_header("WWW-Authenticate").unwrap().contains("invalid_token"));
}

#[test]
fn replayed_code_revokes_issued_tokens() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let code = approve(&mut c, &id);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let at = json(&c.post_form("/oauth/token", &form))["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let replay = c.post_form("/oauth/token", &form);
    assert_eq!(replay.status, 400);
    assert_eq!(json(&replay)["error"], "invalid_grant");
    assert_eq!(bearer_get(&mut c, "/api/v1/me", &at).status, 401);
}

#[test]
fn member_cannot_use_write_scope_even_if_granted() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = app(&mut c);
    c.sign_in("carol@acme.test", "carol-password");
    let code = approve(&mut c, &id);
    let t = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    let at = json(&t)["access_token"].as_str().unwrap().to_string();
    let w = c.send(
        Request::new("POST", &format!("{BASE}/api/v1/posts")).with_header("authorization", &format!("Bearer {at}")),
    );
    assert_eq!(w.status, 403);
    assert!(w.get_header("WWW-Authenticate").unwrap().contains("insufficient_scope"));
}

#[test]
fn bad_client_or_redirect_gets_a_page_not_a_redirect() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = app(&mut c);
    let r = c.get("/oauth/authorize?client_id=app_nope&response_type=code");
    assert_eq!(r.status, 400);
    assert!(r.get_header("Location").is_none());
    let r = c.get(&format!(
        "/oauth/authorize?client_id={id}&redirect_uri={}&response_type=code",
        urlencode("https://evil.example/cb")
    ));
    assert_eq!(r.status, 400);
    assert!(r.get_header("Location").is_none());
}

#[test]
fn implicit_and_plain_pkce_are_refused_at_the_redirect() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = app(&mut c);
    let r = c.get(&format!(
        "/oauth/authorize?client_id={id}&redirect_uri={}&response_type=token&state=z",
        urlencode(CB)
    ));
    assert_eq!(r.status, 302);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("z"));
    let r = c.get(&format!(
        "/oauth/authorize?client_id={id}&redirect_uri={}&response_type=code&code_challenge={}&code_challenge_method=plain",
        urlencode(CB),
        VERIFIER
    ));
    assert_eq!(location_param(&r, "error").as_deref(), Some("invalid_request"));
}

#[test]
fn consent_post_needs_the_session_csrf_token() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let r = c.post_form(
        "/oauth/authorize",
        &[
            ("client_id", &id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("code_challenge", &edge_oauth::pkce::s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("csrf", "forged"),
            ("org", "org_acme"),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.get_header("Location").is_none());
}

#[test]
fn management_api_validates_and_never_returns_the_secret_again() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = app(&mut c);
    let r = c.send(
        Request::new("GET", &format!("{BASE}/api/v1/apps/{id}"))
            .with_header("authorization", &format!("Bearer {API_KEY}")),
    );
    assert_eq!(r.status, 200);
    assert!(json(&r).get("client_secret").is_none());
    let bad = c.send(
        Request::new("POST", &format!("{BASE}/api/v1/apps"))
            .with_header("authorization", &format!("Bearer {API_KEY}"))
            .with_header("content-type", "application/json")
            .with_body(json!({"name": "", "redirect_uris": [CB], "scopes": ["posts:read"]}).to_string()),
    );
    assert_eq!(bad.status, 400);
    assert!(json(&bad)["error_description"].as_str().unwrap().contains("name"));
}
