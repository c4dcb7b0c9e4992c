//! Client JWS signatures (DPoP proofs, client assertions) through WebCrypto:
//! `importKey("jwk")` + `verify` for ES256, RS256, PS256 and Ed25519, so the
//! wasm build carries no signature code of its own.

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::CryptoKey;

use super::es256::subtle;
use crate::crypto::JwsVerify;
use crate::jose::{Alg, PublicJwk};

pub struct WebCryptoJwsVerify;

/// Imported keys kept per isolate. The keys are the clients' (anyone can
/// present one), so the map is bounded: past it, it starts again empty.
const MAX_KEYS: usize = 64;

thread_local! {
    // Keyed by algorithm and thumbprint: a client's key is imported once per
    // isolate, not on each of its requests.
    static KEYS: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

/// The `importKey` and `verify` parameters of each algorithm (RFC 7518 §3, RFC 8037).
fn params(alg: Alg) -> (&'static str, &'static str) {
    match alg {
        Alg::Es256 => (
            r#"{"name":"ECDSA","namedCurve":"P-256"}"#,
            r#"{"name":"ECDSA","hash":"SHA-256"}"#,
        ),
        Alg::Rs256 => (
            r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#,
            r#"{"name":"RSASSA-PKCS1-v1_5"}"#,
        ),
        Alg::Ps256 => (
            r#"{"name":"RSA-PSS","hash":"SHA-256"}"#,
            r#"{"name":"RSA-PSS","saltLength":32}"#,
        ),
        Alg::EdDsa => (r#"{"name":"Ed25519"}"#, r#"{"name":"Ed25519"}"#),
    }
}

fn object(json: &str) -> Result<js_sys::Object, JsValue> {
    Ok(js_sys::JSON::parse(json)?.unchecked_into())
}

async fn key(alg: Alg, jwk: &PublicJwk) -> Result<CryptoKey, JsValue> {
    let id = format!("{}\0{}", alg.name(), jwk.thumbprint());
    if let Some(k) = KEYS.with_borrow(|m| m.get(&id).cloned()) {
        return Ok(k);
    }
    let data = object(&jwk.to_json().to_string())?;
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()?.import_key_with_object("jwk", &data, &object(params(alg).0)?, false, &usages)?;
    let k: CryptoKey = JsFuture::from(promise).await?.unchecked_into();
    KEYS.with_borrow_mut(|m| {
        if m.len() >= MAX_KEYS {
            m.clear();
        }
        m.insert(id, k.clone())
    });
    Ok(k)
}

async fn verify(alg: Alg, jwk: &PublicJwk, message: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
    if !jwk.fits(alg) {
        return Ok(false);
    }
    let k = key(alg, jwk).await?;
    let promise =
        subtle()?.verify_with_object_and_u8_array_and_u8_array(&object(params(alg).1)?, &k, signature, message)?;
    Ok(JsFuture::from(promise).await?.as_bool() == Some(true))
}

impl JwsVerify for WebCryptoJwsVerify {
    fn verify<'a>(
        &'a self,
        alg: Alg,
        key: &'a PublicJwk,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
        Box::pin(async move { verify(alg, key, message, signature).await.unwrap_or(false) })
    }
}
