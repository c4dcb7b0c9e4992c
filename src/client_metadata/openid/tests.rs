use super::*;

fn policy(algs: &[&'static str], pairwise: bool) -> Policy {
    Policy {
        algs: algs.to_vec(),
        pairwise,
        allow_http_loopback: false,
    }
}

fn input(v: Value) -> OpenIdInput {
    serde_json::from_value(v).unwrap()
}

const CB: &str = "https://app.example/cb";

fn check(v: Value) -> Result<OpenIdClient, String> {
    validate(&input(v), &[CB.to_string()], &policy(&["RS256", "ES256"], false))
}

#[test]
fn nothing_sent_is_the_defaults() {
    let c = check(json!({})).unwrap();
    assert_eq!(c, OpenIdClient::default());
}

#[test]
fn each_field_accepted() {
    let c = check(json!({
        "id_token_signed_response_alg": "ES256",
        "post_logout_redirect_uris": ["https://app.example/bye", "http://127.0.0.1:8080/bye", "https://app.example/bye"],
        "backchannel_logout_uri": "https://app.example/bcl?x=1",
        "backchannel_logout_session_required": true,
        "sector_identifier_uri": "https://app.example/sector.json"
    }))
    .unwrap();
    assert_eq!(c.id_token_signed_response_alg.as_deref(), Some("ES256"));
    assert_eq!(
        c.post_logout_redirect_uris,
        vec!["https://app.example/bye", "http://127.0.0.1:8080/bye"],
        "repeats dropped"
    );
    assert_eq!(c.backchannel_logout_uri.as_deref(), Some("https://app.example/bcl?x=1"));
    assert!(c.backchannel_logout_session_required);
    assert_eq!(
        c.sector_identifier_uri.as_deref(),
        Some("https://app.example/sector.json")
    );
    // Round trip through a row and back.
    let nulls = check(json!({"id_token_signed_response_alg": null, "post_logout_redirect_uris": null})).unwrap();
    assert_eq!(nulls, OpenIdClient::default());
}

#[test]
fn each_refusal_names_the_field_and_the_reason() {
    let long = format!("https://app.example/{}", "a".repeat(MAX_URI_LEN));
    let many: Vec<String> = (0..=MAX_POST_LOGOUT_URIS)
        .map(|i| format!("https://app.example/{i}"))
        .collect();
    for (body, field, why) in [
        (
            json!({"id_token_signed_response_alg": "HS256"}),
            "id_token_signed_response_alg",
            "not supported",
        ),
        (
            json!({"id_token_signed_response_alg": "none"}),
            "id_token_signed_response_alg",
            "always signed",
        ),
        (
            json!({"id_token_signed_response_alg": 256}),
            "id_token_signed_response_alg",
            "must be a string",
        ),
        (
            json!({"post_logout_redirect_uris": "https://app.example/bye"}),
            "post_logout_redirect_uris",
            "array",
        ),
        (
            json!({"post_logout_redirect_uris": [1]}),
            "post_logout_redirect_uris",
            "array of strings",
        ),
        (
            json!({"post_logout_redirect_uris": many}),
            "post_logout_redirect_uris",
            "at most 20",
        ),
        (
            json!({"post_logout_redirect_uris": ["https://app.example/bye#f"]}),
            "post_logout_redirect_uri",
            "fragment",
        ),
        (
            json!({"post_logout_redirect_uris": ["http://app.example/bye"]}),
            "post_logout_redirect_uri",
            "https",
        ),
        (
            json!({"post_logout_redirect_uris": ["https://*.example/bye"]}),
            "post_logout_redirect_uri",
            "wildcard",
        ),
        (
            json!({"post_logout_redirect_uris": [long.clone()]}),
            "post_logout_redirect_uri",
            "longer than 2000",
        ),
        (
            json!({"post_logout_redirect_uris": ["javascript:alert(1)"]}),
            "post_logout_redirect_uri",
            "scheme",
        ),
        (
            json!({"backchannel_logout_uri": "http://app.example/bcl"}),
            "backchannel_logout_uri",
            "https",
        ),
        (
            json!({"backchannel_logout_uri": "https://app.example/bcl#f"}),
            "backchannel_logout_uri",
            "fragment",
        ),
        (
            json!({"backchannel_logout_uri": "/bcl"}),
            "backchannel_logout_uri",
            "absolute",
        ),
        (
            json!({"backchannel_logout_uri": ["https://app.example/bcl"]}),
            "backchannel_logout_uri",
            "string",
        ),
        (
            json!({"backchannel_logout_session_required": "yes"}),
            "backchannel_logout_session_required",
            "true or false",
        ),
        (
            json!({"sector_identifier_uri": "http://app.example/s.json"}),
            "sector_identifier_uri",
            "https",
        ),
        (
            json!({"sector_identifier_uri": "https://127.0.0.1/s.json"}),
            "sector_identifier_uri",
            "loopback",
        ),
        (
            json!({"sector_identifier_uri": "https://10.0.0.1/s.json"}),
            "sector_identifier_uri",
            "not an IP address",
        ),
        (
            json!({"sector_identifier_uri": "https://localhost/s.json"}),
            "sector_identifier_uri",
            "loopback",
        ),
        (
            json!({"sector_identifier_uri": "https://app.example/s.json#x"}),
            "sector_identifier_uri",
            "fragment",
        ),
        (
            json!({"sector_identifier_uri": "https://u:p@app.example/s.json"}),
            "sector_identifier_uri",
            "password",
        ),
        (
            json!({"sector_identifier_uri": "https://app.example./s.json"}),
            "sector_identifier_uri",
            "trailing dot",
        ),
        (
            json!({"sector_identifier_uri": long}),
            "sector_identifier_uri",
            "longer than 2000",
        ),
        (
            json!({"sector_identifier_uri": "s.json"}),
            "sector_identifier_uri",
            "absolute",
        ),
    ] {
        let e = check(body.clone()).unwrap_err();
        assert!(e.starts_with(field) || e.contains(&format!(" {field}")), "{body}: {e}");
        assert!(e.contains(why), "{body}: {e}");
    }
}

#[test]
fn es256_only_with_an_ec_key() {
    let v = input(json!({"id_token_signed_response_alg": "ES256"}));
    let e = validate(&v, &[CB.into()], &policy(&["RS256"], false)).unwrap_err();
    assert!(e.contains("no EC signing key") && e.contains("RS256"), "{e}");
    let mut config = Config::default();
    assert_eq!(Policy::from_config(&config).algs, vec!["RS256"]);
    config.jwt_keys = crate::crypto::parse_keys(
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLN0wx-jeWl_CeSbqTE4HQ"}]}"#,
    )
    .unwrap();
    assert_eq!(Policy::from_config(&config).algs, vec!["RS256", "ES256"]);
}

#[test]
fn pairwise_subjects_need_a_sector_when_redirect_uris_span_hosts() {
    let two = ["https://a.example/cb".to_string(), "https://b.example/cb".to_string()];
    let one_host = [
        "https://a.example/cb".to_string(),
        "https://a.example/other".to_string(),
    ];
    let none = input(json!({}));
    let e = validate(&none, &two, &policy(&["RS256"], true)).unwrap_err();
    assert!(
        e.contains("sector_identifier_uri") && e.contains("a.example, b.example"),
        "{e}"
    );
    assert!(
        validate(&none, &two, &policy(&["RS256"], false)).is_ok(),
        "public subjects: no sector needed"
    );
    assert!(validate(&none, &one_host, &policy(&["RS256"], true)).is_ok());
    // Loopback hosts name no sector: a native client on localhost and 127.0.0.1 spans nothing.
    let native = [
        "http://localhost:3000/cb".to_string(),
        "http://127.0.0.1:3000/cb".to_string(),
        "http://[::1]/cb".to_string(),
    ];
    assert!(validate(&none, &native, &policy(&["RS256"], true)).is_ok());
    let mixed = [
        "http://localhost:3000/cb".to_string(),
        "https://a.example/cb".to_string(),
    ];
    assert!(
        validate(&none, &mixed, &policy(&["RS256"], true)).is_ok(),
        "one host that names a sector"
    );
    let e = validate(
        &none,
        &[native[0].clone(), two[0].clone(), two[1].clone()],
        &policy(&["RS256"], true),
    )
    .unwrap_err();
    assert!(
        e.contains("(a.example, b.example)"),
        "loopback hosts are not listed: {e}"
    );
    let with = input(json!({"sector_identifier_uri": "https://a.example/sector.json"}));
    assert!(validate(&with, &two, &policy(&["RS256"], true)).is_ok());
}

#[test]
fn loopback_sector_documents_only_in_development() {
    let dev = Policy {
        allow_http_loopback: true,
        ..Policy::default()
    };
    assert!(check_sector_uri("http://127.0.0.1:9/s.json", true).is_ok());
    assert!(check_sector_uri("http://127.0.0.1:9/s.json", false).is_err());
    let v = input(json!({"sector_identifier_uri": "http://localhost:9/s.json"}));
    assert!(validate(&v, &[CB.into()], &dev).is_ok());
    assert!(validate(&v, &[CB.into()], &Policy::default()).is_err());
}

#[test]
fn updates_merge_into_what_the_app_has() {
    let c = check(json!({
        "post_logout_redirect_uris": ["https://app.example/bye"],
        "backchannel_logout_uri": "https://app.example/bcl",
        "backchannel_logout_session_required": true
    }))
    .unwrap();
    let as_input = c.as_input();
    assert_eq!(check(serde_json::to_value(value_of(&as_input)).unwrap()).unwrap(), c);
}

fn value_of(i: &OpenIdInput) -> Value {
    json!({
        "id_token_signed_response_alg": i.id_token_signed_response_alg,
        "post_logout_redirect_uris": i.post_logout_redirect_uris,
        "backchannel_logout_uri": i.backchannel_logout_uri,
        "backchannel_logout_session_required": i.backchannel_logout_session_required,
        "sector_identifier_uri": i.sector_identifier_uri,
    })
}
