use super::*;

const URL: &str = "https://app.example/oauth/client.json";

fn doc(v: serde_json::Value) -> Fetched {
    Fetched {
        status: 200,
        content_type: Some("application/json; charset=utf-8".into()),
        body: serde_json::to_vec(&v).unwrap(),
        ..Fetched::default()
    }
}

fn cat() -> Vec<String> {
    vec!["profile:read".into(), "posts:read".into()]
}

fn good() -> serde_json::Value {
    serde_json::json!({
        "client_id": URL,
        "client_name": "Example <b>MCP</b>",
        "redirect_uris": ["https://app.example/callback"],
        "scope": "profile:read",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_uri": "https://app.example/"
    })
}

#[test]
fn client_id_urls_follow_the_draft() {
    assert!(check_url(URL, false).is_ok());
    assert!(check_url("https://app.example:8443/c", false).is_ok());
    for bad in [
        "http://app.example/c",
        "https://app.example",
        "https://app.example/",
        "https://app.example/c#frag",
        "https://user:pw@app.example/c",
        "https://user@app.example/c",
        "https://app.example/a/../c",
        "https://app.example/a/./c",
        "https://app.example/a/%2e%2e/c",
        "https://app.example/c?x=1",
        "https://127.0.0.1/c",
        "https://10.0.0.1/c",
        "https://[::1]/c",
        "https://localhost/c",
        "ftp://app.example/c",
        "not a url",
    ] {
        assert!(check_url(bad, false).is_err(), "{bad}");
    }
    let long = format!("https://app.example/{}", "a".repeat(MAX_URL_LEN));
    assert!(check_url(&long, false).is_err());
}

#[test]
fn http_loopback_only_with_the_development_setting() {
    assert!(check_url("http://127.0.0.1:8123/c.json", false).is_err());
    assert!(check_url("http://127.0.0.1:8123/c.json", true).is_ok());
    assert!(check_url("http://localhost:8123/c.json", true).is_ok());
    assert!(check_url("http://app.example/c.json", true).is_err());
}

#[test]
fn url_client_ids_are_recognised() {
    assert!(is_url_client_id(URL));
    assert!(is_url_client_id("HTTP://x/y"));
    assert!(!is_url_client_id("app_123"));
    assert!(!is_url_client_id("http"));
}

#[test]
fn cache_lifetime_respects_http_caching_within_a_day() {
    assert_eq!(cache_lifetime(Some("public, max-age=600"), None, 0), 600);
    assert_eq!(cache_lifetime(Some("no-store"), None, 0), 0);
    assert_eq!(cache_lifetime(Some("max-age=600, no-cache"), None, 0), 0);
    assert_eq!(cache_lifetime(Some("max-age=999999"), None, 0), MAX_CACHE_SECONDS);
    assert_eq!(cache_lifetime(Some("max-age=-5"), None, 0), 0);
    assert_eq!(cache_lifetime(Some("max-age=abc"), None, 0), 0);
    assert_eq!(cache_lifetime(None, Some(1_000 + 120), 1_000), 120);
    assert_eq!(cache_lifetime(None, Some(10), 1_000), 0);
    assert_eq!(
        cache_lifetime(Some("max-age=60"), Some(1_000_000), 0),
        60,
        "max-age wins over Expires"
    );
    assert_eq!(cache_lifetime(None, None, 0), DEFAULT_CACHE_SECONDS);
}

#[test]
fn a_good_document_becomes_a_public_self_only_client() {
    let a = judge(URL, "app.example", &doc(good()), &cat(), &Policy::default()).unwrap();
    assert_eq!(a.id, URL);
    assert_eq!(a.owner_org_id, None);
    assert_eq!(a.client_type, "public");
    assert_eq!(a.actor_mode_list(), vec!["self".to_string()]);
    assert_eq!(a.registration, "metadata_document");
    assert_eq!(a.scope_list(), vec!["profile:read".to_string()]);
    assert_eq!(a.name, "Example <b>MCP</b>", "stored as given, escaped on display");
    assert_eq!(a.homepage_url.as_deref(), Some("https://app.example/"));
}

#[test]
fn no_scope_means_any_catalogue_scope_and_no_name_means_the_host() {
    let mut v = good();
    v.as_object_mut().unwrap().remove("scope");
    v.as_object_mut().unwrap().remove("client_name");
    let a = judge(URL, "app.example", &doc(v), &cat(), &Policy::default()).unwrap();
    assert_eq!(
        a.scope_list(),
        vec!["posts:read".to_string(), "profile:read".to_string()]
    );
    assert_eq!(a.name, "app.example");
}

type Edit = Box<dyn Fn(&mut serde_json::Map<String, serde_json::Value>)>;

#[test]
fn refused_documents() {
    let with = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = good();
        f(v.as_object_mut().unwrap());
        judge(URL, "app.example", &doc(v), &cat(), &Policy::default())
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "client_id",
            Box::new(|m| {
                m.insert("client_id".into(), "https://evil.example/oauth/client.json".into());
            }),
        ),
        (
            "client_id",
            Box::new(|m| {
                m.insert("client_id".into(), format!("{URL}/").into());
            }),
        ),
        (
            "client_id",
            Box::new(|m| {
                m.remove("client_id");
            }),
        ),
        (
            "secret",
            Box::new(|m| {
                m.insert("client_secret".into(), "s3cret".into());
            }),
        ),
        (
            "secret",
            Box::new(|m| {
                m.insert("client_secret_expires_at".into(), 0.into());
            }),
        ),
        (
            "token_endpoint_auth_method",
            Box::new(|m| {
                m.insert("token_endpoint_auth_method".into(), "client_secret_basic".into());
            }),
        ),
        (
            "token_endpoint_auth_method",
            Box::new(|m| {
                m.insert("token_endpoint_auth_method".into(), "private_key_jwt".into());
            }),
        ),
        (
            "grant type",
            Box::new(|m| {
                m.insert("grant_types".into(), serde_json::json!(["client_credentials"]));
            }),
        ),
        (
            "response_types",
            Box::new(|m| {
                m.insert("response_types".into(), serde_json::json!(["token"]));
            }),
        ),
        (
            "redirect_uris",
            Box::new(|m| {
                m.insert("redirect_uris".into(), serde_json::json!([]));
            }),
        ),
        (
            "https",
            Box::new(|m| {
                m.insert("redirect_uris".into(), serde_json::json!(["http://app.example/cb"]));
            }),
        ),
        (
            "wildcard",
            Box::new(|m| {
                m.insert("redirect_uris".into(), serde_json::json!(["https://*.example/cb"]));
            }),
        ),
        (
            "admin:all",
            Box::new(|m| {
                m.insert("scope".into(), "admin:all".into());
            }),
        ),
        (
            "logo_uri",
            Box::new(|m| {
                m.insert("logo_uri".into(), "javascript:alert(1)".into());
            }),
        ),
        (
            "client_uri",
            Box::new(|m| {
                m.insert("client_uri".into(), "javascript:alert(1)".into());
            }),
        ),
    ];
    for (needle, f) in cases {
        let e = with(&*f).unwrap_err();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

#[test]
fn refused_responses() {
    let mut f = doc(good());
    f.status = 302;
    assert!(judge(URL, "h", &f, &cat(), &Policy::default())
        .unwrap_err()
        .contains("redirects"));
    let mut f = doc(good());
    f.status = 404;
    assert!(judge(URL, "h", &f, &cat(), &Policy::default())
        .unwrap_err()
        .contains("404"));
    let mut f = doc(good());
    f.content_type = Some("text/html".into());
    assert!(judge(URL, "h", &f, &cat(), &Policy::default())
        .unwrap_err()
        .contains("application/json"));
    let mut f = doc(good());
    f.content_type = None;
    assert!(judge(URL, "h", &f, &cat(), &Policy::default()).is_err());
    let mut f = doc(good());
    f.body = b"[1,2]".to_vec();
    assert!(judge(URL, "h", &f, &cat(), &Policy::default()).is_err());
    let mut f = doc(good());
    f.content_type = Some("application/jwk-set+json".into());
    assert!(
        judge(URL, "h", &f, &cat(), &Policy::default()).is_ok(),
        "+json types are JSON"
    );
}

#[test]
fn trust_policy_is_a_host_or_its_subdomains() {
    let allowed = vec!["mcp-client.example".to_string()];
    assert!(host_allowed(&[], "anything.example"));
    assert!(host_allowed(&allowed, "mcp-client.example"));
    assert!(host_allowed(&allowed, "eu.MCP-client.example"));
    assert!(!host_allowed(&allowed, "evilmcp-client.example"));
    assert!(!host_allowed(&allowed, "mcp-client.example.evil"));
}
