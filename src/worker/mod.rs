//! Cloudflare Workers adapter: bindings in, plain requests to the core, plain
//! responses out, one JSON log line per request. No protocol decision here.

mod d1;

use worker::{event, Context, Env, Request, Response, Result};

use crate::config::Config;
use crate::http;
use crate::server::Server;
use crate::store::Store;

fn config(env: &Env) -> std::result::Result<Config, String> {
    Config::from_lookup(|k| env.var(k).ok().map(|v| v.to_string()))
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

async fn to_core(mut req: Request) -> Result<http::Request> {
    let url = req.url()?;
    let mut core = http::Request::new(req.method().as_ref(), url.as_str());
    core.headers = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    core.ip = req.headers().get("cf-connecting-ip")?.unwrap_or_default();
    // Read at most a little past the limit; the core answers 413 above it.
    let declared: usize = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if declared <= http::MAX_BODY && !matches!(core.method.as_str(), "GET" | "HEAD") {
        core.body = req.bytes().await.unwrap_or_default();
    } else if declared > http::MAX_BODY {
        core.body = vec![0; http::MAX_BODY + 1];
    }
    Ok(core)
}

fn from_core(resp: http::Response) -> Result<Response> {
    let mut out = Response::from_bytes(resp.body)?.with_status(resp.status);
    let headers = out.headers_mut();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    Ok(out)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let started = now_ms();
    let config = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "bad configuration", "error": e})
            );
            return Response::error("server misconfigured", 500);
        }
    };
    let core_req = to_core(req).await?;
    let server = Server::new(Store::new(d1::D1Driver(env.d1("DB")?)), config);
    let (resp, outcome) = server.handle(&core_req, (started / 1000.0) as i64).await;
    // Route, status and timing only: never a query string, body, cookie or token.
    worker::console_log!(
        "{}",
        serde_json::json!({
            "route": outcome.route,
            "method": core_req.method,
            "status": resp.status,
            "ms": now_ms() - started,
        })
    );
    from_core(resp)
}
