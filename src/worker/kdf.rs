//! PBKDF2 through WebCrypto: the runtime's native code does the 100,000
//! iterations of a sign-in for a fraction of the CPU the wasm build needs.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, Pbkdf2Params, WorkerGlobalScope};

use crate::crypto::{self, Kdf};

/// workerd refuses PBKDF2 above this many iterations.
const WEBCRYPTO_MAX_ITERATIONS: u32 = 100_000;

pub struct WebCryptoKdf;

async fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, JsValue> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let subtle = global.crypto()?.subtle();
    let usages = js_sys::Array::of1(&JsValue::from_str("deriveBits"));
    let key_data = js_sys::Uint8Array::from(password);
    let key: CryptoKey = JsFuture::from(subtle.import_key_with_str("raw", &key_data, "PBKDF2", false, &usages)?)
        .await?
        .unchecked_into();
    let params = Pbkdf2Params::new(
        "PBKDF2",
        &JsValue::from_str("SHA-256"),
        iterations,
        &js_sys::Uint8Array::from(salt),
    );
    let bits = JsFuture::from(subtle.derive_bits_with_object(&params, &key, 256)?).await?;
    Ok(js_sys::Uint8Array::new(&bits).to_vec())
}

impl Kdf for WebCryptoKdf {
    fn pbkdf2_sha256<'a>(
        &'a self,
        password: &'a [u8],
        salt: &'a [u8],
        iterations: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + 'a>> {
        Box::pin(async move {
            if iterations <= WEBCRYPTO_MAX_ITERATIONS {
                if let Ok(out) = derive(password, salt, iterations).await {
                    return out;
                }
            }
            crypto::pbkdf2_sha256(password, salt, iterations)
        })
    }
}
