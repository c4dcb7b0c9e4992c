//! Work a request leaves behind, done after its response is sent (the worker
//! hands it to `waitUntil`): audit records and webhook deliveries. Also the
//! scheduled jobs: retrying deliveries and sweeping what has expired.

use serde_json::json;

use crate::bearer::{self, edge::EdgeKv};
use crate::config::Config;
use crate::crypto;
use crate::error::StoreError;
use crate::store::{DeliveryRow, Driver, Stmt, Store};

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
}

/// Outbound HTTP, for webhook deliveries. The worker uses `fetch`.
#[allow(async_fn_in_trait)]
pub trait Outbound {
    /// POST `body`; the response status, or why there was none.
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String>;
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
    match task {
        Task::Mirror(hash) => match edge {
            Some(kv) => bearer::edge::mirror(store, kv, &hash, now).await,
            None => Ok(()),
        },
        Task::Evict => match edge {
            Some(kv) => bearer::edge::drain(store, kv).await.map(|_| ()),
            None => Ok(()),
        },
        Task::Write(stmts) => store.db.batch(stmts).await.map(|_| ()),
        Task::Event {
            app_id,
            org_id,
            event,
            data,
        } => {
            let Some(app) = store.app(&app_id).await? else {
                return Ok(());
            };
            let (Some(url), Some(secret)) = (app.webhook_url.clone(), app.webhook_secret.clone()) else {
                return Ok(());
            };
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
            attempt(store, out, &d, &secret, now).await
        }
    }
}

/// Headers a receiver verifies: `Webhook-Signature: t=<unix>,v1=<hex>` where
/// the hex is HMAC-SHA256(signing secret, "<t>.<body>"); a receiver rejects a
/// stale `t` (replay) and dedups on `Webhook-Id`.
pub fn signature_headers(id: &str, event: &str, secret: &str, body: &str, now: i64) -> Vec<(String, String)> {
    let sig = crypto::hmac_sha256_hex(secret.as_bytes(), format!("{now}.{body}").as_bytes());
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Webhook-Id".into(), id.to_string()),
        ("Webhook-Event".into(), event.to_string()),
        ("Webhook-Timestamp".into(), now.to_string()),
        ("Webhook-Signature".into(), format!("t={now},v1={sig}")),
    ]
}

async fn attempt<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    d: &DeliveryRow,
    secret: &str,
    now: i64,
) -> Result<(), StoreError> {
    let headers = signature_headers(&d.id, &d.event, secret, &d.payload, now);
    let result = out.post(&d.url, &headers, &d.payload).await;
    let attempts = d.attempts + 1;
    let (status, code, error, next) = match result {
        Ok(s) if (200..300).contains(&s) => ("delivered", Some(s as i64), None, None),
        other => {
            let (code, err) = match other {
                Ok(s) => (Some(s as i64), format!("receiver answered {s}")),
                Err(e) => (None, e),
            };
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

/// Cron: retry deliveries that are due, at most `limit` per run.
pub async fn retry_due<D: Driver, O: Outbound>(
    store: &Store<D>,
    out: &O,
    now: i64,
    limit: i64,
) -> Result<usize, StoreError> {
    let due = store.due_deliveries(now, limit).await?;
    let n = due.len();
    for d in due {
        let Some(app) = store.app(&d.app_id).await? else {
            continue;
        };
        let Some(secret) = app.webhook_secret else { continue };
        attempt(store, out, &d, &secret, now).await?;
    }
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
    store.sweep(now, config.spent_refresh_retention, limit).await
}
