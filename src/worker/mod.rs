//! Cloudflare Workers adapter: bindings in, plain requests to the core, plain
//! responses out, one JSON log line per request, deferred work handed to
//! `waitUntil`, and the cron trigger. No protocol decision is made here.
//!
//! Layer: wiring (routing and the runtime; may import anything); see docs/architecture.md.

mod d1;
mod es256;
mod fetcher;
mod jws_verify;
mod kdf;
mod kv;
mod rs256;

use worker::{event, web_sys, Context, Env, Fetch, Headers, Method, Request, RequestInit, Result};

use crate::config::{BearerMode, Config};
use crate::http;
use crate::server::Server;
use crate::store::kv::EdgeKv;
use crate::store::Store;
use crate::tasks::{self, Outbound, Task};

thread_local! {
    // `[vars]` cannot change during an isolate's life (a new deployment gets
    // new isolates), so they are read once, not on every request.
    static CONFIG: std::cell::OnceCell<std::result::Result<Config, String>> = const { std::cell::OnceCell::new() };
    // The discovery documents built from that configuration (`server::Docs`).
    static DOCS: std::rc::Rc<crate::server::Docs> = Default::default();
}

fn config(env: &Env) -> std::result::Result<Config, String> {
    CONFIG.with(|c| {
        c.get_or_init(|| Config::from_lookup(|k| env.var(k).ok().map(|v| v.to_string())))
            .clone()
    })
}

/// The KV namespace of `BEARER_MODE=edge`; that mode without the binding is
/// a configuration error, not a silent fallback.
fn edge_kv(env: &Env, config: &Config) -> std::result::Result<Option<Box<dyn EdgeKv>>, String> {
    if config.bearer_mode != BearerMode::Edge {
        return Ok(None);
    }
    env.kv("BEARER_KV")
        .map(|kv| Some(Box::new(kv::Kv(kv)) as Box<dyn EdgeKv>))
        .map_err(|_| "BEARER_MODE=edge needs a KV namespace bound as BEARER_KV".to_string())
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

// The binding is looked up on the first statement: a request that reads no
// row (discovery, a bearer cache hit) makes no call for it.
fn store(env: &Env) -> Store<d1::D1Driver> {
    Store::new(d1::D1Driver(
        d1::Binding::new(env.clone()),
        Default::default(),
        Default::default(),
    ))
}

// The entry point takes the runtime's own Request, not `worker::Request`:
// converting to that reads `request.cf`, which workerd materialises on access
// (about a tenth of a metadata request's CPU in `make profile`), and parses
// the URL a second time.
fn to_core(req: &web_sys::Request) -> http::Request {
    // Method, URL and all headers cross in one string: one call instead of
    // five per header (about a sixth of a small request's CPU in `make profile`).
    let text = request_head(req);
    let mut lines = text.split('\n');
    let (method, url) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    let mut core = http::Request::new(method, url);
    while let (Some(k), Some(v)) = (lines.next(), lines.next()) {
        core.headers.push((k.to_ascii_lowercase(), v.to_string()));
    }
    core.ip = core.header("cf-connecting-ip").unwrap_or_default().to_string();
    core
}

async fn read_core_body(req: &web_sys::Request, core: &mut http::Request) -> Result<()> {
    // The core answers 413 above MAX_BODY. A body up to DRAIN_LIMIT is still
    // read (and dropped past MAX_BODY, so no request holds more than that),
    // so the client gets its 413 instead of a connection reset while it is
    // still sending; a larger one is not read at all. The stream is read
    // chunk by chunk and cancelled at the limit: Content-Length is only a
    // claim, and a chunked body has none, so neither decides how much is read.
    const DRAIN_LIMIT: usize = 1 << 20;
    let declared: usize = core.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if declared > DRAIN_LIMIT {
        core.body = vec![0; http::MAX_BODY + 1];
    } else if !matches!(core.method.as_str(), "GET" | "HEAD") {
        // `readBody` answers an empty array for a request without a body.
        let read =
            wasm_bindgen_futures::JsFuture::from(read_body(req.as_ref(), http::MAX_BODY as f64, DRAIN_LIMIT as f64))
                .await?;
        core.body = if read.is_null() {
            vec![0; http::MAX_BODY + 1]
        } else {
            js_sys::Uint8Array::new(&read).to_vec()
        };
    }
    Ok(())
}

fn from_core(resp: http::Response) -> Result<web_sys::Response> {
    let mut head = String::with_capacity(256);
    for (k, v) in resp.headers() {
        // `http::Response` admits no control character in a name or value;
        // this is the second lock on the door: a pair that could shift the
        // name/value alternation of the joined string never crosses.
        if k.contains(['\n', '\r']) || v.contains(['\n', '\r']) {
            continue;
        }
        head.push_str(k);
        head.push('\n');
        head.push_str(v);
        head.push('\n');
    }
    Ok(respond(resp.status, &head, &resp.body)?)
}

// Request and response headers cross the wasm boundary as one string each.
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function requestHead(req) {
  let s = req.method + "\n" + req.url + "\n";
  for (const [k, v] of req.headers) s += k + "\n" + v + "\n";
  return s;
}
export function logLine(s) {
  console.log(s);
}
export async function readBody(from, keep, limit) {
  if (!from.body) return new Uint8Array(0);
  const reader = from.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    // Past `keep` the body is refused anyway: drain without holding it.
    if (n <= keep) chunks.push(value);
  }
  if (n > keep) return null;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
export async function forward(env, req, header) {
  const to = env.BACK_OFFICE;
  if (!to) return null;
  let res;
  try {
    res = await to.fetch(req);
  } catch (e) {
    console.error(JSON.stringify({ level: "error", msg: "back office unreachable", error: String(e) }));
    return undefined;
  }
  if (!res.headers.has(header)) return [res, false];
  const out = new Response(res.body, res);
  out.headers.delete(header);
  return [out, true];
}
export async function schedule(env, cron) {
  const to = env.BACK_OFFICE;
  if (!to || typeof to.scheduled !== "function") throw new Error("no BACK_OFFICE binding");
  // workerd answers with the outcome; some hosts (wrangler dev) with nothing.
  const r = await to.scheduled({ cron });
  if (r?.outcome && r.outcome !== "ok") throw new Error(`back office scheduled: ${r.outcome}`);
}
export function respond(status, head, body) {
  const headers = new Headers();
  const p = head.split("\n");
  for (let i = 0; i + 1 < p.length; i += 2) headers.append(p[i], p[i + 1]);
  const empty = status === 101 || status === 204 || status === 205 || status === 304;
  return new Response(empty ? null : body.slice(), { status, headers });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(req: &web_sys::Request) -> String;
    /// One crossing per log line: the string is decoded by the glue, not
    /// made a JS value, passed and dropped in three calls.
    #[wasm_bindgen(js_name = logLine)]
    fn log_line(line: &str);
    /// The body of a request or a fetched response, or null when it is
    /// longer than `keep` bytes: up to `limit` it is read and dropped (so a
    /// client gets its 413), past `limit` the stream is cancelled. At most
    /// `keep` bytes are ever held.
    #[wasm_bindgen(js_name = readBody)]
    pub(crate) fn read_body(from: &wasm_bindgen::JsValue, keep: f64, limit: f64) -> js_sys::Promise;
    /// The request, body unread, to the back-office worker over the
    /// `BACK_OFFICE` service binding: null without the binding, undefined
    /// when it failed, else `[response, revoked]` with `header` dropped.
    #[wasm_bindgen(js_name = forward)]
    fn forward_js(env: &wasm_bindgen::JsValue, req: &web_sys::Request, header: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = schedule)]
    fn schedule_js(env: &wasm_bindgen::JsValue, cron: &str) -> js_sys::Promise;
    #[wasm_bindgen(catch)]
    fn respond(status: u16, head: &str, body: &[u8]) -> std::result::Result<web_sys::Response, wasm_bindgen::JsValue>;
}

fn plain_error(status: u16, text: &str) -> Result<web_sys::Response> {
    let mut r = http::Response::new(status);
    r.body = text.as_bytes().to_vec();
    from_core(r)
}

/// Webhook deliveries through `fetch`, each abandoned after `timeout_secs`
/// (`WEBHOOK_TIMEOUT_SECONDS`): a receiver that never answers must not hold
/// the cron run or the request's `waitUntil`.
struct FetchOutbound {
    timeout_secs: i64,
}

impl Outbound for FetchOutbound {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> std::result::Result<u16, String> {
        let h = Headers::new();
        for (k, v) in headers {
            h.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(h)
            .with_body(Some(body.into()));
        let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
        let signal: worker::AbortSignal =
            web_sys::AbortSignal::timeout_with_u32((self.timeout_secs.clamp(1, 30) * 1000) as u32).into();
        match Fetch::Request(req).send_with_signal(&signal).await {
            Ok(r) => Ok(r.status_code()),
            Err(_) if signal.aborted() => Err(format!("timed out after {} s", self.timeout_secs)),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The core with this runtime's seams (WebCrypto, `fetch`): for requests,
/// and for deferred work and the cron, which sign back-channel logout tokens.
fn server(env: &Env, config: Config) -> Server<d1::D1Driver> {
    let mut server = Server::new(store(env), config);
    server.kdf = Box::new(kdf::WebCryptoKdf);
    server.es256 = Box::new(es256::WebCryptoEs256);
    server.rs256 = Box::new(rs256::WebCryptoRs256);
    server.jws = Box::new(jws_verify::WebCryptoJwsVerify);
    server.fetcher = Box::new(fetcher::WorkerFetcher);
    server
}

async fn run_tasks(env: Env, config: Config, list: Vec<Task>, now: i64, edge: Option<Box<dyn EdgeKv>>) {
    let out = FetchOutbound {
        timeout_secs: config.webhook_timeout,
    };
    let server = server(&env, config);
    for t in list {
        if let Err(e) = tasks::run_sealed(&server.store, &out, &server, edge.as_deref(), t, now).await {
            worker::console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "deferred task failed", "error": e.0})
            );
        }
    }
}

/// A back-office route reached the public worker: hand the request over
/// (`server::back_office`). The log line says where it went.
#[cfg(not(feature = "back-office"))]
async fn forward(
    env: &Env,
    req: &web_sys::Request,
    core: &http::Request,
    route: &str,
    started: f64,
) -> Result<web_sys::Response> {
    use wasm_bindgen::JsCast;
    let got =
        wasm_bindgen_futures::JsFuture::from(forward_js(env.as_ref(), req, crate::server::REVOKED_HEADER)).await?;
    let (resp, error) = if got.is_null() {
        (
            from_core(crate::server::elsewhere(core, "the back-office worker"))?,
            Some("no BACK_OFFICE binding"),
        )
    } else if got.is_undefined() {
        (
            from_core(crate::error::unavailable(false))?,
            Some("back office unreachable"),
        )
    } else {
        let pair: js_sys::Array = got.unchecked_into();
        if pair.get(1).as_bool() == Some(true) {
            crate::bearer::cache::clear();
        }
        (pair.get(0).unchecked_into::<web_sys::Response>(), None)
    };
    log_line(
        &serde_json::json!({
            "route": route,
            "method": core.method,
            "status": resp.status(),
            "ms": (now_ms() - started) as i64,
            "forwarded": "back-office",
            "d1": 0,
            "error": error,
        })
        .to_string(),
    );
    Ok(resp)
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let started = now_ms();
    let setup = config(&env).and_then(|c| edge_kv(&env, &c).map(|e| (c, e)));
    let (config, edge) = match setup {
        Ok(v) => v,
        Err(e) => {
            worker::console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "bad configuration", "error": e})
            );
            return plain_error(500, "server misconfigured");
        }
    };
    let mut core_req = to_core(&req);
    let mut server = server(&env, config);
    #[cfg(not(feature = "back-office"))]
    {
        let route = server.route_of(&core_req.method, &core_req.path);
        if crate::server::back_office(route) {
            return forward(&env, &req, &core_req, route, started).await;
        }
    }
    read_core_body(&req, &mut core_req).await?;
    server.docs = DOCS.with(|d| d.clone());
    server.edge = edge;
    let now = (started / 1000.0) as i64;
    let (resp, mut outcome) = server.handle(&core_req, now).await;
    let deferred = std::mem::take(&mut outcome.tasks);
    let n_tasks = deferred.len();
    if n_tasks > 0 {
        let edge = server.edge.take();
        ctx.wait_until(run_tasks(env.clone(), server.config.clone(), deferred, now, edge));
    }
    // Route, status, timing, app and org only: never a query string, body,
    // cookie, secret, code or token.
    log_line(
        &serde_json::json!({
            "route": outcome.route,
            "method": core_req.method,
            "status": resp.status,
            "ms": (now_ms() - started) as i64,
            "app": outcome.app,
            "org": outcome.org,
            "d1": server.store.db.1.get(),
            "deferred": n_tasks,
            "error": outcome.error,
        })
        .to_string(),
    );
    from_core(resp)
}

/// The cron (sweep, KV evictions, webhook retries) is the back office's; the
/// public worker has no Cron Trigger, and a scheduled event that reaches it
/// anyway (`wrangler dev --test-scheduled`'s `/__scheduled`) goes over the binding.
#[cfg(not(feature = "back-office"))]
#[event(scheduled)]
async fn scheduled(event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    if let Err(e) = wasm_bindgen_futures::JsFuture::from(schedule_js(env.as_ref(), &event.cron())).await {
        worker::console_error!(
            "{}",
            serde_json::json!({"level": "error", "msg": "scheduled: the back office did not run it", "error": format!("{e:?}")})
        );
    }
}

#[cfg(feature = "back-office")]
#[event(scheduled)]
async fn scheduled(event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let started = now_ms();
    let now = (started / 1000.0) as i64;
    let Ok(config) = config(&env) else {
        worker::console_error!(
            "{}",
            serde_json::json!({"level": "error", "msg": "scheduled: bad configuration or binding"})
        );
        return;
    };
    let store = store(&env);
    let swept = tasks::sweep(&store, &config, now, config.sweep_limit).await;
    let evicted = match edge_kv(&env, &config) {
        Ok(Some(kv)) => Some(crate::store::kv::drain(&store, kv.as_ref()).await),
        _ => None,
    };
    let out = FetchOutbound {
        timeout_secs: config.webhook_timeout,
    };
    let policy = tasks::RetryPolicy::from_config(&config, 50);
    let server = server(&env, config.clone());
    let retried = tasks::retry_due_sealed(&store, &out, &server, now, &policy).await;
    worker::console_log!(
        "{}",
        serde_json::json!({
            "route": "scheduled",
            "cron": event.cron(),
            "swept": match &swept {
                Ok(v) => serde_json::json!(v.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
                Err(e) => serde_json::json!({"error": e.0}),
            },
            "kv_evictions": match evicted {
                None => serde_json::Value::Null,
                Some(Ok(n)) => serde_json::json!(n),
                Some(Err(e)) => serde_json::json!({"error": e.0}),
            },
            "webhook_retries": match retried {
                Ok(n) => serde_json::json!(n),
                Err(e) => serde_json::json!({"error": e.0}),
            },
            "ms": (now_ms() - started) as i64,
        })
    );
}
