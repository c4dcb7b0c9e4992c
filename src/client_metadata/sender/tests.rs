use super::*;

const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

fn ec() -> Value {
    json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a"})
}

fn rsa(bytes: usize) -> Value {
    json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(vec![0xc5u8; bytes]), "e": "AQAB", "kid": "r"})
}

fn input(v: Value) -> SenderInput {
    serde_json::from_value(v).unwrap()
}

fn check(v: Value, pk: bool) -> Result<SenderClient, String> {
    validate(&input(v), pk, false)
}

#[test]
fn nothing_sent_is_the_defaults() {
    assert_eq!(check(json!({}), false).unwrap(), SenderClient::default());
}

#[test]
fn each_field_accepted() {
    let c = check(
        json!({"dpop_bound_access_tokens": true, "require_pushed_authorization_requests": true,
               "jwks": {"keys": [ec(), rsa(256)]}, "token_endpoint_auth_signing_alg": "PS256"}),
        true,
    )
    .unwrap();
    assert!(c.dpop_bound_access_tokens && c.require_pushed_authorization_requests && c.private_key_jwt);
    assert_eq!(c.token_endpoint_auth_signing_alg.as_deref(), Some("PS256"));
    let c = check(json!({"jwks_uri": "https://rp.example/jwks"}), true).unwrap();
    assert_eq!(c.jwks_uri.as_deref(), Some("https://rp.example/jwks"));
    let ok = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X}]});
    assert!(check(json!({ "jwks": ok }), true).is_ok());
}

#[test]
fn refusals_name_the_field() {
    let mut private = ec();
    private["d"] = "AAAA".into();
    for (v, pk, why) in [
        (
            json!({"dpop_bound_access_tokens": "yes"}),
            false,
            "dpop_bound_access_tokens",
        ),
        (
            json!({"require_pushed_authorization_requests": 1}),
            false,
            "require_pushed_authorization_requests",
        ),
        (json!({"jwks": {"keys": [ec()]}}), false, "private_key_jwt"),
        (
            json!({"token_endpoint_auth_signing_alg": "ES256"}),
            false,
            "private_key_jwt",
        ),
        (json!({}), true, "jwks or jwks_uri"),
        (
            json!({"jwks": {"keys": [ec()]}, "jwks_uri": "https://a.example/j"}),
            true,
            "exclude",
        ),
        (json!({"jwks": {"keys": [private]}}), true, "private key material"),
        (
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            true,
            "private key material",
        ),
        (json!({"jwks": {"keys": [{"kty": "oct"}]}}), true, "kty"),
        (json!({"jwks": {"keys": [rsa(128)]}}), true, "2048"),
        (json!({"jwks": {"keys": []}}), true, "1 to 10"),
        (json!({"jwks": []}), true, "JWK set"),
        (
            json!({"jwks": {"keys": [ec()]}, "token_endpoint_auth_signing_alg": "HS256"}),
            true,
            "refused",
        ),
        (
            json!({"jwks": {"keys": [ec()]}, "token_endpoint_auth_signing_alg": "none"}),
            true,
            "refused",
        ),
        (
            json!({"jwks": {"keys": [ec()]}, "token_endpoint_auth_signing_alg": "RS256"}),
            true,
            "fits none",
        ),
        (json!({"jwks_uri": "http://a.example/j"}), true, "jwks_uri"),
        (json!({"jwks_uri": "https://10.1.2.3/j"}), true, "jwks_uri"),
        (json!({"jwks_uri": 5}), true, "jwks_uri"),
    ] {
        let e = check(v.clone(), pk).unwrap_err();
        assert!(e.contains(why), "{v}: {e}");
    }
}

#[test]
fn stored_fields_read_back_as_input() {
    let c = check(
        json!({"jwks": {"keys": [ec()]}, "dpop_bound_access_tokens": true}),
        true,
    )
    .unwrap();
    let mut row: AppRow = serde_json::from_value(json!({
        "id": "a", "owner_org_id": null, "name": "n", "description": "", "homepage_url": null, "terms_url": null,
        "privacy_url": null, "icon": null, "redirect_uris": "[]", "scopes": "[]", "client_type": "confidential",
        "actor_modes": "[]", "secret_hash": null, "secret_expires_at": null, "webhook_url": null,
        "webhook_events": "[]", "status": "active", "version": 1, "created_by": null, "created_at": 0, "updated_at": 0
    }))
    .unwrap();
    c.apply(&mut row);
    assert_eq!(row.client_auth_method.as_deref(), Some(PRIVATE_KEY_JWT));
    assert_eq!(SenderClient::of(&row), c);
    assert_eq!(validate(&c.as_input(), true, false).unwrap(), c);
}

#[test]
fn a_key_whose_alg_does_not_fit_its_kty_is_refused() {
    let mut k = ec();
    k["alg"] = "RS256".into();
    let e = check(json!({"jwks": {"keys": [k]}}), true).unwrap_err();
    assert!(e.contains("jwks key 0"), "{e}");
}
