//! Installs, actor modes, client_credentials, app lifecycle, users' and
//! admins' control, prompt handling and the audit log, through the core.

use crate::common;

use common::*;
use edge_oauth::http::{Request, Response};
use serde_json::json;

const CB: &str = "https://client.example/cb";

fn bearer(c: &mut Client, method: &str, path: &str, token: &str) -> Response {
    c.send(Request::new(method, &format!("{BASE}{path}")).with_header("authorization", &format!("Bearer {token}")))
}

fn consent(c: &mut Client, id: &str, scope: &str, org: &str, actor: &str) -> Response {
    let challenge = edge_oauth::pkce::s256(VERIFIER);
    let q = edge_oauth::http::Params::encode(&[
        ("client_id", id),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", scope),
        ("prompt", "consent"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let page = c.get(&format!("/oauth/authorize?{q}"));
    assert_eq!(page.status, 200, "{}", page.body_text());
    let csrf = csrf_in(&page.body_text());
    c.post_form(
        "/oauth/authorize",
        &[
            ("client_id", id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("csrf", &csrf),
            ("org", org),
            ("actor", actor),
            ("decision", "approve"),
        ],
    )
}

fn exchange(c: &mut Client, id: &str, secret: &str, code: &str) -> serde_json::Value {
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", id),
            ("client_secret", secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    json(&r)
}

fn authorize(c: &mut Client, id: &str, secret: &str, scope: &str, org: &str, actor: &str) -> serde_json::Value {
    let r = consent(c, id, scope, org, actor);
    assert_eq!(r.status, 303, "{}", r.body_text());
    let code = location_param(&r, "code").unwrap();
    exchange(c, id, secret, &code)
}

fn bot_app(c: &mut Client) -> (String, String) {
    let (id, s) = register_app(
        c,
        json!({"name": "Bot", "redirect_uris": [CB], "scopes": ["profile:read", "posts:read", "posts:write"], "actor_modes": ["app", "self"]}),
    );
    (id, s.unwrap())
}

#[test]
fn a_second_authorization_keeps_the_first_token_set_live() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let first = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    let second = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", first["access_token"].as_str().unwrap()).status,
        200,
        "another device's sign-in does not log this one out (MAX_LIVE_GRANTS)"
    );
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", second["access_token"].as_str().unwrap()).status,
        200
    );
}

#[test]
fn with_one_live_grant_per_org_a_new_authorization_replaces_the_previous_token_set() {
    let config = edge_oauth::config::Config {
        max_live_grants: 1,
        live_grants_per: edge_oauth::config::LiveGrantsPer::Org,
        ..edge_oauth::config::Config::default()
    };
    let s = edge_oauth::server::Server::new(edge_oauth::store::Store::new(driver()), config);
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let first = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    let mut carol = Client::new(&s);
    carol.sign_in("carol@acme.test", "carol-password");
    let second = authorize(&mut carol, &id, &secret, "profile:read", "org_acme", "self");
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", first["access_token"].as_str().unwrap()).status,
        401,
        "one live token per target organization, whoever authorizes (FeatureOS)"
    );
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", second["access_token"].as_str().unwrap()).status,
        200
    );
}

#[test]
fn app_actor_needs_an_admin_and_enables_client_credentials() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    let cc = |c: &mut Client| {
        c.post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
    };
    assert_eq!(cc(&mut c).status, 400, "not installed with the app actor anywhere yet");
    c.sign_in("carol@acme.test", "carol-password");
    assert_eq!(
        consent(&mut c, &id, "posts:read", "org_acme", "app").status,
        403,
        "members cannot install the bot"
    );
    let mut bob = Client::new(&s);
    bob.sign_in("bob@globex.test", "bob-password");
    authorize(&mut bob, &id, &secret, "posts:read posts:write", "org_globex", "app");
    let t = cc(&mut c);
    assert_eq!(t.status, 200, "{}", t.body_text());
    let t = json(&t);
    assert!(
        t.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );
    let me = json(&bearer(
        &mut c,
        "GET",
        "/api/v1/me",
        t["access_token"].as_str().unwrap(),
    ));
    assert_eq!(me["actor"], "app");
    assert_eq!(me["org"]["slug"], "globex");
    assert!(me["user"].is_null());
    assert_eq!(me["permissions"], json!(["posts:read", "posts:write"]));
    let wide = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "profile:read"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(json(&wide)["error"], "invalid_scope");
}

#[test]
fn bot_only_app_uses_client_credentials_in_its_owner_org() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = register_app(
        &mut c,
        json!({"name": "Pure bot", "redirect_uris": [CB], "scopes": ["posts:read"], "actor_modes": ["app"]}),
    );
    let t = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret.unwrap()),
        ],
    );
    assert_eq!(t.status, 200, "{}", t.body_text());
    let me = json(&bearer(
        &mut c,
        "GET",
        "/api/v1/me",
        json(&t)["access_token"].as_str().unwrap(),
    ));
    assert_eq!(me["org"]["slug"], "acme");
}

#[test]
fn demoting_or_removing_the_user_narrows_or_kills_the_token() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let t = authorize(&mut c, &id, &secret, "posts:write profile:read", "org_acme", "self");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(bearer(&mut c, "POST", "/api/v1/posts", at).status, 201);
    s.store
        .db
        .exec("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice'")
        .unwrap();
    assert_eq!(bearer(&mut c, "POST", "/api/v1/posts", at).status, 403);
    s.store
        .db
        .exec("DELETE FROM memberships WHERE user_id = 'usr_alice'")
        .unwrap();
    assert_eq!(bearer(&mut c, "GET", "/api/v1/me", at).status, 401);
}

#[test]
fn update_uses_optimistic_concurrency_and_narrowing_scopes_narrows_tokens() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let at = authorize(&mut c, &id, &secret, "posts:write profile:read", "org_acme", "self")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = api(
        &mut c,
        "PATCH",
        &format!("/api/v1/apps/{id}"),
        Some(json!({"version": 1, "scopes": ["profile:read"]})),
    );
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    assert_eq!(json(&ok)["version"], 2);
    let stale = api(
        &mut c,
        "PATCH",
        &format!("/api/v1/apps/{id}"),
        Some(json!({"version": 1, "name": "Late"})),
    );
    assert_eq!(stale.status, 409);
    assert_eq!(json(&stale)["current_version"], 2);
    assert_eq!(
        bearer(&mut c, "POST", "/api/v1/posts", &at).status,
        403,
        "declared scopes narrowed live tokens"
    );
}

#[test]
fn rotated_or_expired_secret_is_invalid_client_and_tokens_live_on() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let t = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    let rot = api(
        &mut c,
        "POST",
        &format!("/api/v1/apps/{id}/secret"),
        Some(json!({"secret_expires_in": 60})),
    );
    assert_eq!(rot.status, 200);
    let new_secret = json(&rot)["client_secret"].as_str().unwrap().to_string();
    let refresh = |c: &mut Client, sec: &str, rt: &str| {
        c.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &id),
                ("client_secret", sec),
            ],
        )
    };
    let old = refresh(&mut c, &secret, t["refresh_token"].as_str().unwrap());
    assert_eq!(old.status, 401);
    assert_eq!(json(&old)["error"], "invalid_client");
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", t["access_token"].as_str().unwrap()).status,
        200
    );
    assert_eq!(
        refresh(&mut c, &new_secret, t["refresh_token"].as_str().unwrap()).status,
        200
    );
    c.now += 61;
    let expired = refresh(&mut c, &new_secret, "rt_whatever");
    assert_eq!(json(&expired)["error"], "invalid_client");
}

#[test]
fn deactivate_suspends_and_delete_kills_everything() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let at = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api(&mut c, "POST", &format!("/api/v1/apps/{id}/deactivate"), None).status,
        200
    );
    assert_eq!(bearer(&mut c, "GET", "/api/v1/me", &at).status, 401);
    assert_eq!(
        api(&mut c, "POST", &format!("/api/v1/apps/{id}/reactivate"), None).status,
        200
    );
    assert_eq!(bearer(&mut c, "GET", "/api/v1/me", &at).status, 200);
    let inst = json(&api(&mut c, "GET", &format!("/api/v1/apps/{id}/installations"), None));
    assert_eq!(inst["count"], 1);
    assert_eq!(api(&mut c, "DELETE", &format!("/api/v1/apps/{id}"), None).status, 204);
    assert_eq!(bearer(&mut c, "GET", "/api/v1/me", &at).status, 401);
    assert_eq!(api(&mut c, "GET", &format!("/api/v1/apps/{id}"), None).status, 404);
    assert_eq!(
        api(&mut c, "POST", &format!("/api/v1/apps/{id}/reactivate"), None).status,
        404,
        "irreversible"
    );
}

#[test]
fn prompt_none_reuses_prior_consent_and_prompt_consent_asks_again() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let q = |extra: &str| {
        format!(
            "/oauth/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=profile:read&state=s\
             &code_challenge={}&code_challenge_method=S256{extra}",
            edge_oauth::http::Params::encode(&[("x", CB)]).trim_start_matches("x="),
            edge_oauth::pkce::s256(VERIFIER)
        )
    };
    let none = c.get(&q("&prompt=none"));
    assert_eq!(location_param(&none, "error").as_deref(), Some("consent_required"));
    authorize(&mut c, &id, &secret, "profile:read posts:read", "org_acme", "self");
    let silent = c.get(&q("&prompt=none"));
    assert_eq!(silent.status, 302);
    assert!(location_param(&silent, "code").is_some(), "already approved: no UI");
    assert_eq!(c.get(&q("")).status, 302, "not asked again");
    assert_eq!(
        c.get(&q("&prompt=consent")).status,
        200,
        "prompt=consent shows the screen"
    );
    let mut anon = Client::new(&s);
    assert_eq!(
        location_param(&anon.get(&q("&prompt=none")), "error").as_deref(),
        Some("login_required")
    );
}

#[test]
fn users_and_admins_revoke_and_the_audit_log_records_it() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    let (other, other_secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    let a = authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    let b = authorize(&mut c, &other, &other_secret, "profile:read", "org_acme", "self");
    let list = json(&c.get("/api/v1/me/authorizations"));
    assert_eq!(list["authorizations"].as_array().unwrap().len(), 2);
    let csrf = csrf_in(&c.get("/").body_text());
    let r = c.send(
        Request::new("DELETE", &format!("{BASE}/api/v1/me/authorizations/{id}")).with_header("x-csrf-token", &csrf),
    );
    assert_eq!(r.status, 204, "{}", r.body_text());
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", a["access_token"].as_str().unwrap()).status,
        401
    );
    let bt = b["access_token"].as_str().unwrap();
    assert_eq!(
        bearer(&mut c, "GET", "/api/v1/me", bt).status,
        200,
        "other integrations untouched"
    );
    let inst = api(&mut c, "GET", "/api/v1/orgs/org_acme/installations", None);
    assert_eq!(inst.status, 200, "{}", inst.body_text());
    let inst = json(&inst);
    assert!(inst["installations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["app_id"] == other));
    assert_eq!(
        api(
            &mut c,
            "DELETE",
            &format!("/api/v1/orgs/org_acme/installations/{other}"),
            None
        )
        .status,
        204
    );
    assert_eq!(bearer(&mut c, "GET", "/api/v1/me", bt).status, 401);
    let refresh = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", b["refresh_token"].as_str().unwrap()),
            ("client_id", &other),
            ("client_secret", &other_secret),
        ],
    );
    assert_eq!(json(&refresh)["error"], "invalid_grant");
    let audit = json(&api(&mut c, "GET", "/api/v1/orgs/org_acme/audit?limit=200", None));
    let actions: Vec<(String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions[0],
        ("authorization.revoked".to_string(), "test-admin".to_string()),
        "newest first"
    );
    assert!(actions.contains(&("authorization.revoked".into(), "usr_alice".into())));
    assert!(
        !actions.iter().any(|(a, _)| a == "api.me.read"),
        "successful reads are not audited unless AUDIT_API_READS=true"
    );
    assert!(actions.contains(&("app.created".into(), "test-admin".into())));
    let page = json(&api(&mut c, "GET", "/api/v1/orgs/org_acme/audit?limit=2", None));
    let before = page["next_before"].as_i64().unwrap();
    let next = json(&api(
        &mut c,
        "GET",
        &format!("/api/v1/orgs/org_acme/audit?limit=2&before={before}"),
        None,
    ));
    assert!(
        next["events"][0]["id"].as_i64().unwrap() < before,
        "pagination goes back in time"
    );
}

#[test]
fn failed_client_authentication_is_rate_limited() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = bot_app(&mut c);
    for _ in 0..20 {
        let r = c.post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "sec_wrong"),
            ],
        );
        assert_eq!(r.status, 401);
    }
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "sec_wrong"),
        ],
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.get_header("Retry-After"), Some("900"));
    c.now += 901;
    let r = c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "sec_wrong"),
        ],
    );
    assert_eq!(r.status, 401, "the window reopens");
}

#[test]
fn failed_sign_ins_are_rate_limited_per_account() {
    let s = server();
    let mut c = Client::new(&s);
    for _ in 0..10 {
        let r = c.post_form("/signin", &[("email", "alice@acme.test"), ("password", "nope")]);
        assert_eq!(r.status, 401);
    }
    let r = c.post_form(
        "/signin",
        &[("email", "alice@acme.test"), ("password", "alice-password")],
    );
    assert_eq!(r.status, 429, "even the right password waits out the window");
    assert!(r.get_header("Retry-After").is_some());
}

#[test]
fn webhooks_need_webhooks_manage_and_are_signed() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = register_app(
        &mut c,
        json!({"name": "Hooks", "redirect_uris": [CB], "scopes": ["profile:read", "webhooks:manage"],
               "webhook_url": "https://hooks.example/in"}),
    );
    let secret = secret.unwrap();
    let signing = json(&api(&mut c, "GET", &format!("/api/v1/apps/{id}"), None));
    assert!(
        signing.get("webhook_signing_secret").is_none(),
        "signing secret shown only at creation"
    );
    c.sign_in("carol@acme.test", "carol-password");
    let member = authorize(&mut c, &id, &secret, "profile:read webhooks:manage", "org_acme", "self");
    let put = |c: &mut Client, token: &str| {
        c.send(
            Request::new("PUT", &format!("{BASE}/api/v1/webhooks/subscription"))
                .with_header("authorization", &format!("Bearer {token}"))
                .with_header("content-type", "application/json")
                .with_body(json!({"events": ["authorization.revoked", "secret.rotated"]}).to_string()),
        )
    };
    assert_eq!(
        put(&mut c, member["access_token"].as_str().unwrap()).status,
        403,
        "a member's role lacks webhooks:manage"
    );
    let mut alice = Client::new(&s);
    alice.sign_in("alice@acme.test", "alice-password");
    let owner = authorize(
        &mut alice,
        &id,
        &secret,
        "profile:read webhooks:manage",
        "org_acme",
        "self",
    );
    assert_eq!(put(&mut alice, owner["access_token"].as_str().unwrap()).status, 200);
    let rot = api(&mut alice, "POST", &format!("/api/v1/apps/{id}/secret"), None);
    assert_eq!(rot.status, 200);
    let sent = alice.outbound.sent.borrow();
    assert_eq!(sent.len(), 1);
    let (url, headers, body) = &sent[0];
    assert_eq!(url, "https://hooks.example/in");
    let h = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(h("Webhook-Event"), "secret.rotated");
    let ts = h("Webhook-Timestamp");
    let signing_secret: String = s
        .store
        .db
        .query_one_text(&format!("SELECT webhook_secret FROM apps WHERE id = '{id}'"));
    let expected = edge_oauth::crypto::hmac_sha256_hex(signing_secret.as_bytes(), format!("{ts}.{body}").as_bytes());
    assert_eq!(h("Webhook-Signature"), format!("t={ts},v1={expected}"));
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["type"], "secret.rotated");
}

#[test]
fn failed_deliveries_are_retried_with_backoff_and_recorded() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = register_app(
        &mut c,
        json!({"name": "Hooks", "redirect_uris": [CB], "scopes": ["profile:read", "webhooks:manage"],
               "webhook_url": "https://hooks.example/in"}),
    );
    c.sign_in("alice@acme.test", "alice-password");
    let t = authorize(
        &mut c,
        &id,
        &secret.unwrap(),
        "profile:read webhooks:manage",
        "org_acme",
        "self",
    );
    let r = c.send(
        Request::new("PUT", &format!("{BASE}/api/v1/webhooks/subscription"))
            .with_header(
                "authorization",
                &format!("Bearer {}", t["access_token"].as_str().unwrap()),
            )
            .with_header("content-type", "application/json")
            .with_body(json!({"events": ["secret.rotated"]}).to_string()),
    );
    assert_eq!(r.status, 200);
    c.outbound.status.set(503);
    api(&mut c, "POST", &format!("/api/v1/apps/{id}/secret"), None);
    let d = json(&api(&mut c, "GET", &format!("/api/v1/apps/{id}/deliveries"), None));
    assert_eq!(d["deliveries"][0]["status"], "pending");
    assert_eq!(d["deliveries"][0]["attempts"], 1);
    assert_eq!(d["deliveries"][0]["next_attempt_at"], NOW + 60);
    let due = |now| pollster::block_on(edge_oauth::tasks::retry_due(&s.store, &c.outbound, now, 50)).unwrap();
    assert_eq!(due(NOW + 59), 0, "not before its backoff");
    assert_eq!(due(NOW + 60), 1);
    c.outbound.status.set(200);
    assert_eq!(due(NOW + 60 + 120), 1);
    let d = json(&api(&mut c, "GET", &format!("/api/v1/apps/{id}/deliveries"), None));
    assert_eq!(d["deliveries"][0]["status"], "delivered");
    assert_eq!(d["deliveries"][0]["attempts"], 3);
}

#[test]
fn the_sweep_deletes_expired_rows_in_bounded_idempotent_runs() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, secret) = bot_app(&mut c);
    c.sign_in("alice@acme.test", "alice-password");
    authorize(&mut c, &id, &secret, "profile:read", "org_acme", "self");
    let cfg = edge_oauth::config::Config::default();
    let later = NOW + cfg.session_ttl + 4000;
    let run = |limit| pollster::block_on(edge_oauth::tasks::sweep(&s.store, &cfg, later, limit)).unwrap();
    let first = run(1);
    let count = |name: &str, r: &Vec<(String, i64)>| r.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(count("codes", &first), 1);
    assert_eq!(count("sessions", &first), 1);
    assert_eq!(count("access_tokens", &first), 1, "bounded: one per table per run");
    let second = run(500);
    assert_eq!(count("codes", &second), 0, "idempotent");
    assert_eq!(count("access_tokens", &second), 0);
}
