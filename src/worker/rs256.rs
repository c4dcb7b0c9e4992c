//! RS256 through WebCrypto (RSASSA-PKCS1-v1_5, SHA-256): ID tokens are signed
//! by the runtime's native RSA, so the wasm build carries no RSA code.

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::CryptoKey;

use super::es256::subtle;
use crate::crypto::{Rs256, RsaJwk};

pub struct WebCryptoRs256;

thread_local! {
    // Imported keys, per isolate (an RSA import parses and checks the key:
    // never per request). Keyed by usage, kid and modulus.
    static KEYS: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
    // `{name: "RSASSA-PKCS1-v1_5", hash: "SHA-256"}`, built once per isolate.
    static ALGORITHM: Option<js_sys::Object> =
        js_sys::JSON::parse(r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#).ok().map(JsCast::unchecked_into);
}

fn algorithm() -> Result<js_sys::Object, JsValue> {
    ALGORITHM
        .with(|a| a.clone())
        .ok_or_else(|| JsValue::from_str("no RSASSA parameters"))
}

async fn key(jwk: &RsaJwk, usage: &str) -> Result<CryptoKey, JsValue> {
    let id = format!("{usage}\0{}\0{}", jwk.kid, jwk.n);
    if let Some(k) = KEYS.with_borrow(|m| m.get(&id).cloned()) {
        return Ok(k);
    }
    let data = if usage == "sign" { jwk.private() } else { jwk.public() };
    let data: js_sys::Object = js_sys::JSON::parse(&data.to_string())?.unchecked_into();
    let usages = js_sys::Array::of1(&JsValue::from_str(usage));
    let promise = subtle()?.import_key_with_object("jwk", &data, &algorithm()?, false, &usages)?;
    let k: CryptoKey = JsFuture::from(promise).await?.unchecked_into();
    KEYS.with_borrow_mut(|m| m.insert(id, k.clone()));
    Ok(k)
}

async fn sign(jwk: &RsaJwk, message: &[u8]) -> Result<Vec<u8>, JsValue> {
    let k = key(jwk, "sign").await?;
    let promise = subtle()?.sign_with_object_and_u8_array(&algorithm()?, &k, message)?;
    Ok(js_sys::Uint8Array::new(&JsFuture::from(promise).await?).to_vec())
}

async fn verify(jwk: &RsaJwk, message: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
    let k = key(jwk, "verify").await?;
    let promise = subtle()?.verify_with_object_and_u8_array_and_u8_array(&algorithm()?, &k, signature, message)?;
    Ok(JsFuture::from(promise).await?.as_bool() == Some(true))
}

impl Rs256 for WebCryptoRs256 {
    fn sign<'a>(
        &'a self,
        key: &'a RsaJwk,
        message: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + 'a>> {
        Box::pin(async move { sign(key, message).await.map_err(|e| format!("WebCrypto: {e:?}")) })
    }

    fn verify<'a>(
        &'a self,
        key: &'a RsaJwk,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
        Box::pin(async move { verify(key, message, signature).await.unwrap_or(false) })
    }
}
