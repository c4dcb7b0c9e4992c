//! The foundation's own rules: what parses, what is refused, and the RFC 7638 vector.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use super::*;

const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

fn ec_jwk() -> serde_json::Value {
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])})
}

#[test]
fn algorithms_are_an_allow_list() {
    for a in Alg::ALL {
        assert_eq!(Alg::parse(a.name()), Some(a));
    }
    for bad in [
        "none", "None", "HS256", "HS384", "HS512", "es256", "ES384", "RS512", "ES256K", "",
    ] {
        assert_eq!(Alg::parse(bad), None, "{bad} must be refused");
    }
    assert_eq!(Alg::names(), "ES256 RS256 PS256 EdDSA");
}

#[test]
fn rfc7638_thumbprint_vector() {
    let k =
        PublicJwk::from_value(&json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}))
            .unwrap();
    assert_eq!(k.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn thumbprints_of_each_kind_hash_the_required_members_only() {
    let a = PublicJwk::from_value(&ec_jwk()).unwrap();
    let mut with_extras = ec_jwk();
    with_extras["kid"] = json!("k1");
    with_extras["use"] = json!("sig");
    assert_eq!(
        a.thumbprint(),
        PublicJwk::from_value(&with_extras).unwrap().thumbprint()
    );
    let okp = PublicJwk::from_value(&json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([9u8; 32])}))
        .unwrap();
    assert_ne!(okp.thumbprint(), a.thumbprint());
    assert_eq!(okp.thumbprint().len(), 43);
}

#[test]
fn private_members_and_unknown_kinds_are_refused() {
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let mut j = ec_jwk();
        j[member] = json!("AAAA");
        let e = PublicJwk::from_value(&j).unwrap_err();
        assert!(e.contains("private"), "{member}: {e}");
    }
    let bad = [
        json!({"kty": "oct", "k": "AAAA"}),
        json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}),
        json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 31]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])}),
        json!({"kty": "OKP", "crv": "X25519", "x": URL_SAFE_NO_PAD.encode([9u8; 32])}),
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"}),
        json!({"kty": "RSA", "n": format!("{RFC7638_N}="), "e": "AQAB"}),
        json!("EC"),
    ];
    for j in bad {
        assert!(PublicJwk::from_value(&j).is_err(), "{j} must be refused");
    }
}

#[test]
fn keys_fit_their_algorithms_only() {
    let ec = PublicJwk::from_value(&ec_jwk()).unwrap();
    let rsa = PublicJwk::from_value(&json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})).unwrap();
    let okp = PublicJwk::from_value(&json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([9u8; 32])}))
        .unwrap();
    assert!(ec.fits(Alg::Es256) && !ec.fits(Alg::Rs256) && !ec.fits(Alg::EdDsa));
    assert!(rsa.fits(Alg::Rs256) && rsa.fits(Alg::Ps256) && !rsa.fits(Alg::Es256));
    assert!(okp.fits(Alg::EdDsa) && !okp.fits(Alg::Es256));
    assert_eq!(
        okp.to_json(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([9u8; 32])})
    );
}

#[test]
fn sets_parse_with_kid_alg_and_use() {
    let text = json!({"keys": [
        {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "kid": "r", "alg": "PS256", "use": "sig"},
        ec_jwk(),
    ]})
    .to_string();
    let set = parse_set(&text).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set[0].kid.as_deref(), Some("r"));
    assert_eq!(set[0].alg, Some(Alg::Ps256));
    assert_eq!(set[0].use_.as_deref(), Some("sig"));
    assert_eq!(set[1].kid, None);
    let mut private = ec_jwk();
    private["d"] = json!("AAAA");
    let e = parse_set(&json!({"keys": [ec_jwk(), private]}).to_string()).unwrap_err();
    assert!(e.contains("key 1") && e.contains("private"), "{e}");
    assert!(parse_set("{\"keys\": 1}").is_err());
    assert!(parse_set(
        &json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "alg": "HS256"}]}).to_string()
    )
    .is_err());
}

fn compact(header: serde_json::Value, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[test]
fn compact_jws_parses_and_refuses() {
    let t = compact(json!({"alg": "ES256", "typ": "dpop+jwt"}), r#"{"a":1}"#, &[1, 2, 3]);
    let c = Compact::parse(&t, 8192).unwrap();
    assert_eq!(c.alg, Alg::Es256);
    assert_eq!(c.header_str("typ"), Some("dpop+jwt"));
    assert_eq!(c.signature, vec![1, 2, 3]);
    assert_eq!(c.input, t.rsplit_once('.').unwrap().0.as_bytes());
    assert_eq!(c.claims::<serde_json::Value>().unwrap(), json!({"a": 1}));

    for (h, why) in [
        (json!({"alg": "none"}), Reject::Algorithm),
        (json!({"alg": "HS256"}), Reject::Algorithm),
        (json!({"typ": "JWT"}), Reject::Algorithm),
        (json!({"alg": 1}), Reject::Algorithm),
        (json!({"alg": "ES256", "crit": ["b64"]}), Reject::Critical),
        (json!(["ES256"]), Reject::Malformed),
    ] {
        assert_eq!(
            Compact::parse(&compact(h.clone(), "{}", &[1]), 8192).err(),
            Some(why),
            "{h}"
        );
    }
    assert_eq!(Compact::parse(&t, 10).err(), Some(Reject::Malformed));
    assert_eq!(Compact::parse(&format!("{t}.x"), 8192).err(), Some(Reject::Malformed));
    assert_eq!(Compact::parse("a.b", 8192).err(), Some(Reject::Malformed));
    assert_eq!(
        Compact::parse(&t.replace('.', ".="), 8192).err(),
        Some(Reject::Malformed)
    );
}
