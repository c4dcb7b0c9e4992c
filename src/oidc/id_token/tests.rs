use super::*;
use crate::crypto::{parse_key_set, Jwk, RustEs256, RustRs256};
use crate::store::native::NativeDriver;
use crate::store::Store;

const RSA: &str = include_str!("../../../tests/keys/rsa.json");

fn ec_key(kid: &str, seed: u8) -> Jwk {
    use p256::ecdsa::SigningKey;
    let sk = SigningKey::from_slice(&[seed; 32]).unwrap();
    let pt = sk.verifying_key().to_encoded_point(false);
    Jwk {
        kid: kid.into(),
        x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
        y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
        d: URL_SAFE_NO_PAD.encode([seed; 32]),
    }
}

/// The first RSA test key ("r1") and one EC key ("e1").
fn config() -> Config {
    let set = parse_key_set(RSA).unwrap();
    Config {
        rsa_keys: vec![set.rsa[0].clone()],
        jwt_keys: vec![ec_key("e1", 3)],
        ..Config::default()
    }
}

/// A config whose keys carry our kids but are another party's keys.
fn foreign() -> Config {
    let set = parse_key_set(RSA).unwrap();
    let mut other = set.rsa[1].clone();
    other.kid = "r1".into();
    Config {
        rsa_keys: vec![other],
        jwt_keys: vec![ec_key("e1", 9)],
        ..Config::default()
    }
}

fn with_ctx<T>(config: &Config, issuer: &str, f: impl FnOnce(&Ctx<'_, NativeDriver>) -> T) -> T {
    let store = Store::new(NativeDriver::migrated().unwrap());
    let ctx = Ctx {
        store: &store,
        config,
        now: 1000,
        issuer: issuer.into(),
        params: Vec::new(),
        effects: Default::default(),
        kdf: &crate::crypto::RustKdf,
        es256: &RustEs256,
        rs256: &RustRs256,
        jws: &crate::crypto::RustJwsVerify,
        edge: None,
        fetcher: &crate::http::NoFetcher,
        source: String::new(),
        profile: &crate::context::Core,
    };
    f(&ctx)
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn app(alg: Option<&str>) -> AppRow {
    serde_json::from_value(json!({
        "id": "app_rp", "name": "RP", "description": "", "redirect_uris": "[]", "scopes": "[]",
        "client_type": "public", "actor_modes": "[\"self\"]", "webhook_events": "[]", "status": "active",
        "version": 1, "created_at": 0, "updated_at": 0, "id_token_signed_response_alg": alg,
    }))
    .unwrap()
}

fn facts() -> Facts<'static> {
    Facts {
        user_id: "usr_alice",
        org_id: "org_acme",
        access_token: Some("at_abc"),
        nonce: Some("n-0S6_WzA2Mj"),
        auth_time: Some(900),
        acr: None,
        amr: Some(r#"["pwd"]"#),
        sid: Some("sid1"),
    }
}

fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

const ISS: &str = "https://as.test";

#[test]
fn rs256_is_the_default_and_the_token_carries_every_claim() {
    let c = config();
    with_ctx(&c, ISS, |ctx| {
        let t = run(sign(ctx, &app(None), &facts())).unwrap();
        assert_eq!(part(&t, 0), json!({"alg": "RS256", "typ": "JWT", "kid": "r1"}));
        assert_eq!(
            part(&t, 1),
            json!({"iss": ISS, "sub": "usr_alice", "aud": "app_rp", "exp": 4600, "iat": 1000, "auth_time": 900,
                   "nonce": "n-0S6_WzA2Mj", "azp": "app_rp", "at_hash": at_hash("at_abc"), "sid": "sid1",
                   "amr": ["pwd"], "org_id": "org_acme"})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(t.split('.').nth(2).unwrap()).unwrap().len(), 256);
        let hint = run(verify_hint(ctx, &t)).unwrap();
        assert_eq!(hint.sub, "usr_alice");
        assert_eq!(hint.aud, vec!["app_rp"]);
        assert_eq!(hint.sid.as_deref(), Some("sid1"));
    });
}

#[test]
fn es256_when_the_client_registered_it() {
    let c = config();
    with_ctx(&c, ISS, |ctx| {
        let t = run(sign(ctx, &app(Some("ES256")), &facts())).unwrap();
        assert_eq!(part(&t, 0), json!({"alg": "ES256", "typ": "JWT", "kid": "e1"}));
        assert_eq!(URL_SAFE_NO_PAD.decode(t.split('.').nth(2).unwrap()).unwrap().len(), 64);
        assert_eq!(run(verify_hint(ctx, &t)).unwrap().sub, "usr_alice");
        assert!(run(sign(ctx, &app(Some("HS256")), &facts())).is_err());
    });
    // ES256 chosen but no EC key: refused, never signed with another algorithm.
    let rsa_only = Config {
        jwt_keys: Vec::new(),
        ..config()
    };
    with_ctx(&rsa_only, ISS, |ctx| {
        assert!(run(sign(ctx, &app(Some("ES256")), &facts())).is_err());
        assert_eq!(algorithms(ctx.config), vec!["RS256"]);
    });
    assert_eq!(algorithms(&config()), vec!["RS256", "ES256"]);
}

#[test]
fn at_hash_is_the_left_half_of_the_sha256() {
    // OIDC Core §3.1.3.6; the value computed apart, with node:crypto
    // (`createHash("sha256").update(t).digest().subarray(0, 16)`, base64url).
    assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNGx"), "bF_vGeYMJ23GzsvmY7tHlw");
}

#[test]
fn optional_claims_are_left_out_when_unknown() {
    let c = config();
    with_ctx(&c, ISS, |ctx| {
        let f = Facts {
            nonce: None,
            access_token: None,
            sid: None,
            amr: None,
            acr: Some(""),
            ..facts()
        };
        let cl = serde_json::to_value(claims(ctx, &app(None), &f)).unwrap();
        for absent in ["nonce", "at_hash", "sid", "amr", "acr"] {
            assert!(cl.get(absent).is_none(), "{absent}: {cl}");
        }
        assert_eq!(cl["auth_time"], 900);
    });
}

#[test]
fn hints_are_ours_or_refused() {
    let c = config();
    let f = foreign();
    // Signed by another key under our kid: the signature fails.
    let (theirs_rs, theirs_es) = with_ctx(&f, ISS, |ctx| {
        (
            run(sign(ctx, &app(None), &facts())).unwrap(),
            run(sign(ctx, &app(Some("ES256")), &facts())).unwrap(),
        )
    });
    with_ctx(&c, ISS, |ctx| {
        assert_eq!(run(verify_hint(ctx, &theirs_rs)), Err(Reject::Signature));
        assert_eq!(run(verify_hint(ctx, &theirs_es)), Err(Reject::Signature));
        let good = run(sign(ctx, &app(None), &facts())).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        // Tampered claims.
        let mut cl = part(&good, 1);
        cl["sub"] = json!("usr_bob");
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(cl.to_string()), parts[2]);
        assert_eq!(run(verify_hint(ctx, &tampered)), Err(Reject::Signature));
        // alg none, HS256 (keyed with the public modulus, the classic confusion).
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", b64(json!({"alg": "none", "kid": "r1"})), parts[1]);
        assert_eq!(run(verify_hint(ctx, &none)), Err(Reject::Algorithm));
        let hs = format!(
            "{}.{}.{}",
            b64(json!({"alg": "HS256", "kid": "r1"})),
            parts[1],
            parts[2]
        );
        assert_eq!(run(verify_hint(ctx, &hs)), Err(Reject::Algorithm));
        // An access token is not an ID token.
        let at = format!(
            "{}.{}.{}",
            b64(json!({"alg": "RS256", "typ": "at+jwt", "kid": "r1"})),
            parts[1],
            parts[2]
        );
        assert_eq!(run(verify_hint(ctx, &at)), Err(Reject::Type));
        let unknown = format!(
            "{}.{}.{}",
            b64(json!({"alg": "RS256", "kid": "zz"})),
            parts[1],
            parts[2]
        );
        assert_eq!(run(verify_hint(ctx, &unknown)), Err(Reject::UnknownKey));
        assert_eq!(run(verify_hint(ctx, "a.b")), Err(Reject::Malformed));
        assert_eq!(run(verify_hint(ctx, &"a".repeat(9000))), Err(Reject::Malformed));
    });
    // Another issuer's token, signed with our very key: refused.
    let elsewhere = with_ctx(&c, "https://other.test", |ctx| {
        run(sign(ctx, &app(None), &facts())).unwrap()
    });
    with_ctx(&c, ISS, |ctx| {
        assert_eq!(run(verify_hint(ctx, &elsewhere)), Err(Reject::Issuer));
    });
}

#[test]
fn an_expired_hint_is_still_read_and_rotation_keeps_old_tokens_readable() {
    let old = config();
    let t = with_ctx(&old, ISS, |ctx| run(sign(ctx, &app(None), &facts())).unwrap());
    // Much later (exp long past), after a rotation put a new RSA key first.
    let set = parse_key_set(RSA).unwrap();
    let rotated = Config {
        rsa_keys: vec![set.rsa[1].clone(), set.rsa[0].clone()],
        ..config()
    };
    with_ctx(&rotated, ISS, |ctx| {
        let hint = run(verify_hint(ctx, &t)).unwrap();
        assert_eq!(hint.exp, Some(4600));
        let fresh = run(sign(ctx, &app(None), &facts())).unwrap();
        assert_eq!(part(&fresh, 0)["kid"], "r2");
    });
}

#[test]
fn sign_jws_carries_the_type_it_is_given() {
    let c = config();
    with_ctx(&c, ISS, |ctx| {
        let t = run(sign_jws(
            ctx,
            Alg::Rs256,
            "logout+jwt",
            &json!({"iss": ISS, "sub": "u"}),
        ))
        .unwrap();
        assert_eq!(part(&t, 0)["typ"], "logout+jwt");
        // A logout token is no ID token hint.
        assert_eq!(run(verify_hint(ctx, &t)), Err(Reject::Type));
    });
}

/// The client metadata rules accept exactly the algorithms the keys can sign.
#[test]
fn the_policy_offers_what_the_id_token_signer_can_sign() {
    let keys = crate::crypto::parse_key_set(include_str!("../../../tests/keys/rsa.json")).unwrap();
    let mut config = Config {
        rsa_keys: keys.rsa,
        ..Config::default()
    };
    assert_eq!(
        crate::client_metadata::openid::Policy::from_config(&config).algs,
        super::algorithms(&config)
    );
    config.jwt_keys = crate::crypto::parse_keys(
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLN0wx-jeWl_CeSbqTE4HQ"}]}"#,
    )
    .unwrap();
    assert_eq!(
        crate::client_metadata::openid::Policy::from_config(&config).algs,
        super::algorithms(&config)
    );
}

/// Discovery's list holds every field an ID token can carry.
#[test]
fn claims_lists_every_field_of_an_id_token() {
    let all = Claims {
        iss: "i".into(),
        sub: "s".into(),
        aud: "a".into(),
        exp: 1,
        iat: 1,
        auth_time: 1,
        nonce: Some("n".into()),
        azp: "a".into(),
        at_hash: Some("h".into()),
        sid: Some("s".into()),
        acr: Some("c".into()),
        amr: Some(vec!["pwd".into()]),
        org_id: "o".into(),
    };
    let fields: Vec<String> = serde_json::to_value(&all)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut listed: Vec<String> = CLAIMS.iter().map(|c| c.to_string()).collect();
    listed.sort();
    assert_eq!(fields, listed);
}
