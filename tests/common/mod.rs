//! Native test fixtures: an in-memory SQLite with the real migrations, the
//! SPEC.md fixtures, and a server driven with plain requests.
#![allow(dead_code)]

use edge_oauth::config::Config;
use edge_oauth::crypto;
use edge_oauth::http::{Params, Request, Response};
use edge_oauth::pkce;
use edge_oauth::server::Server;
use edge_oauth::store::native::NativeDriver;
use edge_oauth::store::Store;
use serde_json::json;

pub const API_KEY: &str = "key_test_acme_admin_0123456789";
pub const NOW: i64 = 1_800_000_000;
pub const BASE: &str = "http://127.0.0.1:8787";

pub fn fixtures_sql() -> String {
    let pw = |p: &str| crypto::hash_password(p, 1000);
    format!(
        "INSERT INTO orgs (id, slug, name, created_at) VALUES ('org_acme','acme','Acme',0),('org_globex','globex','Globex',0);
         INSERT INTO users (id, email, name, password_hash, created_at) VALUES ('usr_alice','alice@acme.test','Alice','{}',0),
           ('usr_carol','carol@acme.test','Carol','{}',0),('usr_bob','bob@globex.test','Bob','{}',0);
         INSERT INTO memberships VALUES ('org_acme','usr_alice','owner'),('org_acme','usr_carol','member'),
           ('org_globex','usr_bob','admin');
         INSERT INTO role_permissions VALUES ('owner','profile:read'),('owner','posts:read'),('owner','posts:write'),
           ('owner','webhooks:manage'),('owner','oauth_app.manage'),('owner','org.admin'),('admin','org.admin'),('admin','profile:read'),('admin','posts:read'),
           ('admin','posts:write'),('admin','webhooks:manage'),('admin','oauth_app.manage'),
           ('member','profile:read'),('member','posts:read');
         INSERT INTO scopes VALUES ('profile:read','Read your profile'),('posts:read','Read posts'),
           ('posts:write','Write posts'),('webhooks:manage','Manage webhooks');
         INSERT INTO api_keys VALUES ('{}','org_acme','test-admin','admin',0);",
        pw("alice-password"),
        pw("carol-password"),
        pw("bob-password"),
        crypto::sha256_hex(API_KEY)
    )
}

pub fn driver() -> NativeDriver {
    let d = NativeDriver::migrated().expect("migrations apply");
    d.exec(&fixtures_sql()).expect("fixtures load");
    d
}

pub fn server() -> Server<NativeDriver> {
    Server::new(Store::new(driver()), Config::default())
}

pub struct Client<'a> {
    pub server: &'a Server<NativeDriver>,
    /// The session cookie's value.
    pub cookie: Option<String>,
    /// Every other cookie (the sign-in form's token, the device cookie).
    pub jar: Vec<(String, String)>,
    pub now: i64,
    pub outbound: Recorder,
}

/// One recorded delivery: URL, headers, body.
pub type Sent = (String, Vec<(String, String)>, String);

/// Records webhook deliveries instead of sending them; answers `status`.
#[derive(Default)]
pub struct Recorder {
    pub sent: std::cell::RefCell<Vec<Sent>>,
    pub status: std::cell::Cell<u16>,
}

impl edge_oauth::tasks::Outbound for Recorder {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String> {
        self.sent
            .borrow_mut()
            .push((url.to_string(), headers.to_vec(), body.to_string()));
        match self.status.get() {
            0 => Ok(200),
            s => Ok(s),
        }
    }
}

impl<'a> Client<'a> {
    pub fn new(server: &'a Server<NativeDriver>) -> Self {
        Self {
            server,
            cookie: None,
            jar: Vec::new(),
            now: NOW,
            outbound: Recorder::default(),
        }
    }

    pub fn send(&mut self, mut req: Request) -> Response {
        let mut cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(c) = &self.cookie {
            cookies.push(format!("eo_session={c}"));
        }
        if !cookies.is_empty() {
            req = req.with_header("cookie", &cookies.join("; "));
        }
        let (resp, outcome) = pollster::block_on(self.server.handle(&req, self.now));
        // What the worker hands to waitUntil, done right after the response.
        for task in outcome.tasks {
            pollster::block_on(edge_oauth::tasks::run(
                &self.server.store,
                &self.outbound,
                self.server.edge.as_deref(),
                task,
                self.now,
            ))
            .unwrap();
        }
        for (k, set) in resp.headers() {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if name == "eo_session" {
                self.cookie = (!value.is_empty()).then(|| value.to_string());
            } else {
                self.jar.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    self.jar.push((name.to_string(), value.to_string()));
                }
            }
        }
        resp
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(Request::new("GET", &format!("{BASE}{path}")))
    }

    /// A form POST; a sign-in POST first loads the sign-in form, as a
    /// browser would, for its pre-session token (unless `csrf` is given).
    pub fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let token;
        let mut pairs = pairs.to_vec();
        if path == "/signin" && !pairs.iter().any(|(k, _)| *k == "csrf") {
            token = csrf_in(&self.get("/signin").body_text());
            pairs.push(("csrf", &token));
        }
        self.send(
            Request::new("POST", &format!("{BASE}{path}"))
                .with_header("content-type", "application/x-www-form-urlencoded")
                .with_body(Params::encode(&pairs)),
        )
    }

    pub fn sign_in(&mut self, email: &str, password: &str) {
        let r = self.post_form(
            "/signin",
            &[("email", email), ("password", password), ("return_to", "/")],
        );
        assert_eq!(r.status, 303, "{}", r.body_text());
    }
}

pub fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body_text()))
}

pub fn register_app(c: &mut Client, body: serde_json::Value) -> (String, Option<String>) {
    let r = c.send(
        Request::new("POST", &format!("{BASE}/api/v1/apps"))
            .with_header("authorization", &format!("Bearer {API_KEY}"))
            .with_header("content-type", "application/json")
            .with_body(body.to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body_text());
    let v = json(&r);
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().map(str::to_string),
    )
}

/// Value of a query parameter in a Location header.
pub fn location_param(r: &Response, name: &str) -> Option<String> {
    let loc = r.get_header("Location")?;
    let u = url::Url::parse(loc).ok()?;
    let v = u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    v
}

/// The CSRF token in a rendered page.
pub fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("page has a csrf field") + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

// The authorization-code flow, for tests that need tokens.

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CB: &str = "https://client.example/cb";

pub fn authorize_query(client_id: &str, extra: &str) -> String {
    format!(
        "/oauth/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=profile:read%20posts:write&state=s1&code_challenge={}&code_challenge_method=S256{extra}",
        urlencode(CB),
        pkce::s256(VERIFIER)
    )
}

pub fn urlencode(s: &str) -> String {
    edge_oauth::http::Params::encode(&[("x", s)])
        .trim_start_matches("x=")
        .to_string()
}

pub fn approve(c: &mut Client, client_id: &str) -> String {
    let page = c.get(&authorize_query(client_id, ""));
    assert_eq!(page.status, 200, "{}", page.body_text());
    let csrf = csrf_in(&page.body_text());
    let ch = pkce::s256(VERIFIER);
    let r = c.post_form(
        "/oauth/authorize",
        &[
            ("client_id", client_id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "profile:read posts:write"),
            ("state", "s1"),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("csrf", &csrf),
            ("org", "org_acme"),
            ("actor", "self"),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body_text());
    assert_eq!(location_param(&r, "state").as_deref(), Some("s1"));
    assert_eq!(location_param(&r, "iss").as_deref(), Some(BASE));
    location_param(&r, "code").expect("code in redirect")
}

pub fn app(c: &mut Client) -> (String, String) {
    let (id, secret) = register_app(
        c,
        json!({"name": "Native", "redirect_uris": [CB], "scopes": ["profile:read", "posts:read", "posts:write"]}),
    );
    (id, secret.unwrap())
}

pub fn bearer_get(c: &mut Client, path: &str, token: &str) -> edge_oauth::http::Response {
    c.send(Request::new("GET", &format!("{BASE}{path}")).with_header("authorization", &format!("Bearer {token}")))
}

/// The token request for a code (client_secret_post, the flow's PKCE verifier).
pub fn exchange(c: &mut Client, id: &str, secret: &str, code: &str) -> Response {
    c.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
}

/// Alice's access and refresh tokens for a fresh app, through the code flow.
pub fn tokens(c: &mut Client) -> (String, String, String, String) {
    let (id, secret) = app(c);
    if c.cookie.is_none() {
        c.sign_in("alice@acme.test", "alice-password");
    }
    let code = approve(c, &id);
    let t = exchange(c, &id, &secret, &code);
    assert_eq!(t.status, 200, "{}", t.body_text());
    let v = json(&t);
    (
        id,
        secret,
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// A management API call with the org API key.
pub fn api(c: &mut Client, method: &str, path: &str, body: Option<serde_json::Value>) -> Response {
    let mut r =
        Request::new(method, &format!("{BASE}{path}")).with_header("authorization", &format!("Bearer {API_KEY}"));
    if let Some(b) = body {
        r = r
            .with_header("content-type", "application/json")
            .with_body(b.to_string());
    }
    c.send(r)
}
