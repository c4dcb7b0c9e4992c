//! Webhooks: signing secrets and their rotation, subscriptions, deliveries and the
//! retry queue.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// Where an app's webhooks go and the secrets that sign them (all `None`:
/// the app is gone).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookTarget {
    pub url: Option<String>,
    pub secret: Option<String>,
    /// The secret before the last rotation, while its overlap lasts.
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub app_id: String,
    pub org_id: Option<String>,
    pub event: String,
    pub url: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<D: Driver> Store<D> {
    /// Replace the webhook signing secret. The previous one stays valid until
    /// `previous_until` (deliveries carry both signatures meanwhile), so
    /// receivers can switch over; `None` drops it at once. Returns the app,
    /// or `None` when it is gone.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let mut res = self
            .db
            .batch(vec![
                audit.stmt_if(
                    audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted')"),
                    params![id],
                ),
                // Read the outgoing secret before the update replaces it.
                Stmt::new(
                    "INSERT INTO webhook_secret_previous (app_id, secret, expires_at) \
                     SELECT id, webhook_secret, ?2 FROM apps WHERE id = ?1 AND status != 'deleted' AND webhook_secret IS NOT NULL AND ?2 IS NOT NULL \
                     ON CONFLICT (app_id) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at",
                    params![id, previous_until],
                ),
                Stmt::new(
                    "DELETE FROM webhook_secret_previous WHERE app_id = ?1 AND ?2 IS NULL",
                    params![id, previous_until],
                ),
                Stmt::new(
                    "UPDATE apps SET webhook_secret = ?2, version = version + 1, updated_at = ?3 \
                     WHERE id = ?1 AND status != 'deleted' RETURNING *",
                    params![id, secret, now],
                ),
            ])
            .await?
            .into_iter();
        Ok(super::decode::<AppRow>(res.nth(3).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Where and with what an app's webhooks are signed: its URL, its secret
    /// and, during a rotation's overlap, the previous secret.
    pub async fn webhook_target(&self, app_id: &str, now: i64) -> Result<Option<WebhookTarget>, StoreError> {
        self.one(Stmt::new(
            "SELECT a.webhook_url AS url, a.webhook_secret AS secret, p.secret AS previous_secret, p.expires_at AS previous_expires_at \
             FROM apps a LEFT JOIN webhook_secret_previous p ON p.app_id = a.id AND p.expires_at > ?2 WHERE a.id = ?1",
            params![app_id, now],
        ))
        .await
    }

    pub async fn subscription(&self, app_id: &str, org_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        #[derive(Deserialize)]
        struct S {
            events: String,
        }
        let row: Option<S> = self
            .one(Stmt::new(
                "SELECT events FROM webhook_subscriptions WHERE app_id = ?1 AND org_id = ?2",
                params![app_id, org_id],
            ))
            .await?;
        Ok(row.map(|s| crate::scope::from_json(&s.events)))
    }

    pub async fn set_subscription(
        &self,
        app_id: &str,
        org_id: &str,
        events: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let act = match events {
            Some(e) => Stmt::new(
                "INSERT INTO webhook_subscriptions (app_id, org_id, events, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET events = excluded.events, updated_at = excluded.updated_at",
                params![app_id, org_id, e, now],
            ),
            None => Stmt::new(
                "DELETE FROM webhook_subscriptions WHERE app_id = ?1 AND org_id = ?2",
                params![app_id, org_id],
            ),
        };
        self.db.batch(vec![act, audit.stmt()]).await.map(|_| ())
    }

    /// Org events go to subscribers in that org; app-wide events (no org) to
    /// an app that subscribed to them in any org.
    pub async fn subscribed(&self, app_id: &str, org_id: Option<&str>, event: &str) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct N {
            n: i64,
        }
        let n: Option<N> = self
            .one(Stmt::new(
                "SELECT count(*) AS n FROM webhook_subscriptions s, json_each(s.events) e \
                 WHERE s.app_id = ?1 AND (?2 IS NULL OR s.org_id = ?2) AND e.value = ?3",
                params![app_id, org_id.map(str::to_string), event],
            ))
            .await?;
        Ok(n.is_some_and(|n| n.n > 0))
    }

    pub async fn insert_delivery(&self, d: &DeliveryRow) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO webhook_deliveries (id, app_id, org_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8, ?8)",
            params![&d.id, &d.app_id, d.org_id.clone(), &d.event, &d.url, &d.payload, d.next_attempt_at, d.created_at],
        ))
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn record_attempt(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        code: Option<i64>,
        error: Option<&str>,
        next: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, last_status = ?4, last_error = ?5, next_attempt_at = ?6, updated_at = ?7 \
             WHERE id = ?1",
            params![id, status, attempts, code, error.map(str::to_string), next, now],
        ))
        .await
    }

    /// Claim the deliveries due now, oldest first, at most `per_app` of any
    /// one app (so one app's backlog or dead receiver cannot fill a run) and
    /// `limit` in all. Claiming moves their `next_attempt_at` to `now +
    /// lease` in the same statement, so an overlapping cron run does not send
    /// them twice; the attempt's outcome then sets the real next time.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        per_app: i64,
        lease: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut rows: Vec<DeliveryRow> = self
            .all(Stmt::new(
                "UPDATE webhook_deliveries SET next_attempt_at = ?1 + ?4 WHERE id IN (\
                   SELECT id FROM (SELECT id, next_attempt_at, \
                     row_number() OVER (PARTITION BY app_id ORDER BY next_attempt_at, rowid) AS n \
                     FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1) \
                   WHERE n <= ?3 ORDER BY next_attempt_at LIMIT ?2) \
                 RETURNING *",
                params![now, limit, per_app, lease],
            ))
            .await?;
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(rows)
    }

    pub async fn deliveries_of_app(&self, app_id: &str, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT * FROM webhook_deliveries WHERE app_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2",
            params![app_id, limit],
        ))
        .await
    }
}
