//! Work a request leaves behind, done after its response is sent (the worker
//! hands it to `waitUntil`): audit records and webhook deliveries. Also the
//! scheduled jobs: retrying deliveries and sweeping what has expired.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use serde_json::json;

use crate::config::Config;
use crate::crypto;
use crate::error::StoreError;
use crate::store::kv::{self, EdgeKv};
use crate::store::{DeliveryRow, Driver, Stmt, Store, WebhookTarget, LOGOUT_EVENT};

#[derive(Debug, Clone)]
pub enum Task {
    /// Statements that record what happened (the audit log).
    Write(Vec<Stmt>),
    /// A webhook event for an app: delivered if the app subscribed to it.
    Event {
        app_id: String,
        org_id: Option<String>,
        event: &'static str,
        data: serde_json::Value,
    },
    /// Edge mode: copy a new access token's record (by hash) to KV.
    Mirror(String),
    /// Edge mode: delete the KV copies that revocations queued.
    Evict,
    /// Attempt these queued deliveries now (back-channel logout tokens that
    /// a session end queued in its own batch); the cron retries failures.
    Deliver(Vec<String>),
}

/// Outbound HTTP, for webhook deliveries. The worker uses `fetch`.
#[allow(async_fn_in_trait)]
pub trait Outbound {
    /// POST `body`; the response status, or why there was none. It must give
    /// up after a bounded time (`WEBHOOK_TIMEOUT_SECONDS` in the worker) and
    /// say so, so a receiver that never answers costs one slot for that long.
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String>;
}

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// What a delivery sends, when the core does not build it from the webhook
/// payload: headers and body.
pub struct Sealed {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Builds the request of a back-channel logout delivery
/// ([`crate::store::LOGOUT_EVENT`]) at each attempt: its logout token expires
/// two minutes after it is signed, so a retry needs a new one. The wiring
/// passes one (`oidc::backchannel` signs, with the request context's keys);
/// `Err`: nothing can be sent (the app is gone, no key).
pub trait Sealer {
    fn seal<'a>(&'a self, d: &'a DeliveryRow, now: i64) -> Fut<'a, Result<Sealed, String>>;
}

/// No sealer: a logout delivery's attempt fails with the reason, and is retried.
pub struct NoSealer;

impl Sealer for NoSealer {
    fn seal<'a>(&'a self, _: &'a DeliveryRow, _: i64) -> Fut<'a, Result<Sealed, String>> {
        Box::pin(async { Err("no logout token signer".to_string()) })
    }
}

/// Attempts before a delivery is given up, and the backoff between them:
/// 1, 2, 4, 8, 16 minutes (driven by the cron trigger).
pub const MAX_ATTEMPTS: i64 = 6;

pub fn backoff(attempts: i64) -> i64 {
    60 * (1 << (attempts - 1).clamp(0, 10))
}

pub async fn run<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    edge: Option<&dyn EdgeKv>,
    task: Task,
    now: i64,
) -> Result<(), StoreError> {
    run_sealed(store, out, &NoSealer, edge, task, now).await
}

/// [`run`], with what signs back-channel logout tokens.
pub async fn run_sealed<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    sealer: &dyn Sealer,
    edge: Option<&dyn EdgeKv>,
    task: Task,
    now: i64,
) -> Result<(), StoreError> {
    match task {
        Task::Deliver(ids) => {
            let lease = RetryPolicy::default().lease;
            let target = WebhookTarget::default();
            for d in store.claim_deliveries(&ids, now, lease).await? {
                attempt(store, out, sealer, &d, &target, now).await?;
            }
            Ok(())
        }
        Task::Mirror(hash) => match edge {
            Some(kv) => kv::mirror(store, kv, &hash, now).await,
            None => Ok(()),
        },
        Task::Evict => match edge {
            Some(kv) => kv::drain(store, kv).await.map(|_| ()),
            None => Ok(()),
        },
        Task::Write(stmts) => store.db.batch(stmts).await.map(|_| ()),
        Task::Event {
            app_id,
            org_id,
            event,
            data,
        } => {
            let Some(target) = store.webhook_target(&app_id, now).await? else {
                return Ok(());
            };
            let Some(url) = target.url.clone() else {
                return Ok(());
            };
            if target.secret.is_none() {
                return Ok(());
            }
            if !store.subscribed(&app_id, org_id.as_deref(), event).await? {
                return Ok(());
            }
            let id = crypto::new_id("whd_");
            let payload = json!({
                "id": id, "type": event, "created_at": now, "app_id": app_id, "org_id": org_id, "data": data,
            })
            .to_string();
            let d = DeliveryRow {
                id,
                app_id,
                org_id,
                event: event.to_string(),
                url,
                payload,
                status: "pending".into(),
                attempts: 0,
                last_status: None,
                last_error: None,
                next_attempt_at: Some(now),
                created_at: now,
                updated_at: now,
            };
            store.insert_delivery(&d).await?;
            attempt(store, out, sealer, &d, &target, now).await
        }
    }
}

/// Headers a receiver verifies: `Webhook-Signature: t=<unix>,v1=<hex>` where
/// the hex is HMAC-SHA256(signing secret, "<t>.<body>"); a receiver rejects a
/// stale `t` (replay) and dedups on `Webhook-Id`. During a signing-secret
/// rotation's overlap there is one `v1=` per secret, the new one first
/// (Stripe's scheme): a receiver accepts the delivery if any matches.
pub fn signature_headers(id: &str, event: &str, secrets: &[&str], body: &str, now: i64) -> Vec<(String, String)> {
    let signed = format!("{now}.{body}");
    let mut sig = format!("t={now}");
    for s in secrets {
        sig.push_str(",v1=");
        sig.push_str(&crypto::hmac_sha256_hex(s.as_bytes(), signed.as_bytes()));
    }
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Webhook-Id".into(), id.to_string()),
        ("Webhook-Event".into(), event.to_string()),
        ("Webhook-Timestamp".into(), now.to_string()),
        ("Webhook-Signature".into(), sig),
    ]
}

async fn attempt<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    sealer: &dyn Sealer,
    d: &DeliveryRow,
    target: &WebhookTarget,
    now: i64,
) -> Result<(), StoreError> {
    if d.event == LOGOUT_EVENT {
        // Back-Channel Logout §2.8: the RP answers 200 (204 from some
        // frameworks); anything else is retried with the webhooks' backoff.
        let result = match sealer.seal(d, now).await {
            Ok(sealed) => match out.post(&d.url, &sealed.headers, &sealed.body).await {
                Ok(s) if s == 200 || s == 204 => Ok(s),
                Ok(s) => Err((Some(s), format!("receiver answered {s}"))),
                Err(e) => Err((None, e)),
            },
            Err(e) => Err((None, e)),
        };
        return record(store, d, result, now).await;
    }
    let secrets: Vec<&str> = [target.secret.as_deref(), target.previous_secret.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if secrets.is_empty() {
        // Nothing to sign with (the app is gone): no point retrying.
        return store
            .record_attempt(
                &d.id,
                "failed",
                d.attempts,
                None,
                Some("the app has no webhook signing secret"),
                None,
                now,
            )
            .await;
    }
    let headers = signature_headers(&d.id, &d.event, &secrets, &d.payload, now);
    let result = match out.post(&d.url, &headers, &d.payload).await {
        Ok(s) if (200..300).contains(&s) => Ok(s),
        Ok(s) => Err((Some(s), format!("receiver answered {s}"))),
        Err(e) => Err((None, e)),
    };
    record(store, d, result, now).await
}

/// Record an attempt's outcome: delivered, or the next attempt after the
/// backoff, or given up after [`MAX_ATTEMPTS`].
async fn record<D: Driver>(
    store: &Store<D>,
    d: &DeliveryRow,
    result: Result<u16, (Option<u16>, String)>,
    now: i64,
) -> Result<(), StoreError> {
    let attempts = d.attempts + 1;
    let (status, code, error, next) = match result {
        Ok(s) => ("delivered", Some(s as i64), None, None),
        Err((code, err)) => {
            let code = code.map(i64::from);
            if attempts >= MAX_ATTEMPTS {
                ("failed", code, Some(err), None)
            } else {
                ("pending", code, Some(err), Some(now + backoff(attempts)))
            }
        }
    };
    store
        .record_attempt(&d.id, status, attempts, code, error.as_deref(), next, now)
        .await
}

/// How one cron run retries deliveries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Deliveries per run.
    pub limit: i64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries of one app per run: a dead receiver holds at most this
    /// many slots (each for at most the outbound timeout).
    pub per_app: i64,
    /// Seconds a claimed delivery is hidden from other runs while its
    /// attempt is under way (more than a run can take).
    pub lease: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::from_config(&Config::default(), 50)
    }
}

impl RetryPolicy {
    pub fn from_config(c: &Config, limit: i64) -> Self {
        let concurrency = c.webhook_concurrency.max(1);
        // Waves of `concurrency`, each at most the timeout, plus slack.
        let waves = (limit + concurrency - 1) / concurrency;
        Self {
            limit,
            concurrency: concurrency as usize,
            per_app: c.webhook_per_app.max(1),
            lease: waves * c.webhook_timeout + 60,
        }
    }
}

/// Cron: retry deliveries that are due, at most `limit` per run, with the
/// default [`RetryPolicy`].
pub async fn retry_due<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    now: i64,
    limit: i64,
) -> Result<usize, StoreError> {
    let policy = RetryPolicy {
        limit,
        ..RetryPolicy::default()
    };
    retry_due_with(store, out, now, &policy).await
}

/// Cron: claim the due deliveries (oldest first, at most `per_app` of one
/// app) and attempt them concurrently, at most `concurrency` at once. A slow
/// receiver delays only its own deliveries: the others keep flowing through
/// the remaining slots, and the outbound timeout bounds the whole run.
pub async fn retry_due_with<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    now: i64,
    policy: &RetryPolicy,
) -> Result<usize, StoreError> {
    retry_due_sealed(store, out, &NoSealer, now, policy).await
}

/// [`retry_due_with`], with what signs back-channel logout tokens.
pub async fn retry_due_sealed<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    sealer: &dyn Sealer,
    now: i64,
    policy: &RetryPolicy,
) -> Result<usize, StoreError> {
    use futures_util::stream::{self, StreamExt};
    let due = store
        .claim_due_deliveries(now, policy.limit, policy.per_app, policy.lease)
        .await?;
    let n = due.len();
    let mut targets: std::collections::BTreeMap<String, WebhookTarget> = Default::default();
    for d in &due {
        if !targets.contains_key(&d.app_id) {
            let t = store.webhook_target(&d.app_id, now).await?.unwrap_or_default();
            targets.insert(d.app_id.clone(), t);
        }
    }
    let results: Vec<Result<(), StoreError>> = stream::iter(due.iter())
        .map(|d| attempt(store, out, sealer, d, &targets[&d.app_id], now))
        .buffer_unordered(policy.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(n)
}

/// Cron: delete what has expired, bounded per table per run so one run never
/// exceeds the Workers limits; repeated runs finish the job (idempotent).
pub async fn sweep<D: Driver>(
    store: &Store<D>,
    config: &Config,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut swept = store.sweep(now, config.spent_refresh_retention, limit).await?;
    swept.push((
        "login_challenges".into(),
        store.sweep_login_challenges(now, limit).await?,
    ));
    // Self-registered clients never sent through authorize (DCR_UNUSED_DAYS).
    swept.push((
        "unused_dynamic_clients".into(),
        store
            .sweep_unused_clients(now - config.dcr.unused_days * 86400, limit)
            .await?,
    ));
    swept.push((
        "initial_access_tokens".into(),
        store.sweep_initial_access_tokens(now, limit).await?,
    ));
    Ok(swept)
}
