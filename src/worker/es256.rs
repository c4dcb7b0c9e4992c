//! ES256 through WebCrypto: the runtime's native ECDSA signs and verifies JWT
//! access tokens, so the wasm build carries no elliptic-curve code.

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};

use crate::crypto::{Es256, Jwk};

pub struct WebCryptoEs256;

thread_local! {
    // Imported keys, per isolate: `importKey` would otherwise run on every
    // request. Keyed by kid, usage and the key's x (a redeployed kid with
    // another key is a new entry).
    static KEYS: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

pub(super) fn subtle() -> Result<SubtleCrypto, JsValue> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(global.crypto()?.subtle())
}

fn algorithm(extra: &str) -> Result<js_sys::Object, JsValue> {
    Ok(js_sys::JSON::parse(&format!(r#"{{"name":"ECDSA",{extra}}}"#))?.unchecked_into())
}

thread_local! {
    // `{name: "ECDSA", hash: "SHA-256"}`, built once per isolate: it is read,
    // never changed, by every sign and verify.
    static ECDSA_SHA256: Option<js_sys::Object> = algorithm(r#""hash":"SHA-256""#).ok();
}

fn ecdsa_sha256() -> Result<js_sys::Object, JsValue> {
    ECDSA_SHA256
        .with(|a| a.clone())
        .ok_or_else(|| JsValue::from_str("no ECDSA parameters"))
}

async fn key(jwk: &Jwk, usage: &str) -> Result<CryptoKey, JsValue> {
    let id = format!("{usage}\0{}\0{}", jwk.kid, jwk.x);
    if let Some(k) = KEYS.with_borrow(|m| m.get(&id).cloned()) {
        return Ok(k);
    }
    let data = if usage == "sign" { jwk.private() } else { jwk.public() };
    let data: js_sys::Object = js_sys::JSON::parse(&data.to_string())?.unchecked_into();
    let usages = js_sys::Array::of1(&JsValue::from_str(usage));
    let promise =
        subtle()?.import_key_with_object("jwk", &data, &algorithm(r#""namedCurve":"P-256""#)?, false, &usages)?;
    let k: CryptoKey = JsFuture::from(promise).await?.unchecked_into();
    KEYS.with_borrow_mut(|m| m.insert(id, k.clone()));
    Ok(k)
}

async fn sign(jwk: &Jwk, message: &[u8]) -> Result<Vec<u8>, JsValue> {
    let k = key(jwk, "sign").await?;
    let promise = subtle()?.sign_with_object_and_u8_array(&ecdsa_sha256()?, &k, message)?;
    Ok(js_sys::Uint8Array::new(&JsFuture::from(promise).await?).to_vec())
}

async fn verify(jwk: &Jwk, message: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
    let k = key(jwk, "verify").await?;
    let promise = subtle()?.verify_with_object_and_u8_array_and_u8_array(&ecdsa_sha256()?, &k, signature, message)?;
    Ok(JsFuture::from(promise).await?.as_bool() == Some(true))
}

impl Es256 for WebCryptoEs256 {
    fn sign<'a>(
        &'a self,
        key: &'a Jwk,
        message: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + 'a>> {
        Box::pin(async move { sign(key, message).await.map_err(|e| format!("WebCrypto: {e:?}")) })
    }

    fn verify<'a>(
        &'a self,
        key: &'a Jwk,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
        Box::pin(async move { verify(key, message, signature).await.unwrap_or(false) })
    }
}
