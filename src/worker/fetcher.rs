//! Client metadata documents fetched with the runtime's `fetch` (`crate::cimd`):
//! redirects are not followed (a 3xx reaches the core, which refuses it),
//! the whole exchange is abandoned after the timeout, and the body is read
//! as a stream and cancelled past the size cap, whatever Content-Length says.

use wasm_bindgen::JsValue;
use worker::{web_sys, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::cimd::{Fetched, Fetcher};

pub struct WorkerFetcher;

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

async fn get(url: &str, timeout_secs: i64, max_bytes: usize) -> Result<Fetched, String> {
    let headers = Headers::new();
    headers.set("accept", "application/json").map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let signal: worker::AbortSignal =
        web_sys::AbortSignal::timeout_with_u32((timeout_secs.clamp(1, 30) * 1000) as u32).into();
    let timed_out = || format!("no answer within {timeout_secs} s");
    let res = match Fetch::Request(req).send_with_signal(&signal).await {
        Ok(r) => r,
        Err(_) if signal.aborted() => return Err(timed_out()),
        Err(_) => return Err("the request failed".into()),
    };
    let header = |name: &str| res.headers().get(name).ok().flatten();
    let mut fetched = Fetched {
        status: res.status_code(),
        content_type: header("content-type"),
        cache_control: header("cache-control"),
        expires_at: header("expires")
            .map(|e| js_sys::Date::parse(&e))
            .filter(|ms| ms.is_finite())
            .map(|ms| (ms / 1000.0) as i64),
        body: Vec::new(),
    };
    // A redirect or error answer is refused on its status; its body is not read.
    if fetched.status != 200 {
        return Ok(fetched);
    }
    let raw: web_sys::Response = res.into();
    let body: JsValue =
        match wasm_bindgen_futures::JsFuture::from(super::read_body(raw.as_ref(), max_bytes as f64, max_bytes as f64))
            .await
        {
            Ok(b) => b,
            Err(_) if signal.aborted() => return Err(timed_out()),
            Err(_) => return Err("reading the answer failed".into()),
        };
    if body.is_null() {
        return Err(format!("the document is larger than {max_bytes} bytes"));
    }
    fetched.body = js_sys::Uint8Array::new(&body).to_vec();
    Ok(fetched)
}

impl Fetcher for WorkerFetcher {
    fn get<'a>(&'a self, url: &'a str, timeout_secs: i64, max_bytes: usize) -> Fut<'a, Result<Fetched, String>> {
        Box::pin(get(url, timeout_secs, max_bytes))
    }
}
