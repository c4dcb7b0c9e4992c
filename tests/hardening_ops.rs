//! Issue 8, operations hardening, at the core's level (SQLite): audit records
//! share the act's transaction; webhook retries run concurrently up to the
//! cap, at most `per_app` of one app per run, and a claimed delivery is not
//! sent again by an overlapping run.

use crate::common;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use common::*;
use edge_oauth::tasks::{self, Outbound, RetryPolicy};
use serde_json::json;

#[test]
fn a_failed_audit_write_undoes_the_act() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = register_app(
        &mut c,
        json!({"name": "Audited", "redirect_uris": [CB], "scopes": ["profile:read"]}),
    );
    s.store
        .db
        .exec("CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END")
        .unwrap();
    let r = api(
        &mut c,
        "PATCH",
        &format!("/api/v1/apps/{id}"),
        Some(json!({"version": 1, "name": "Renamed"})),
    );
    assert_eq!(r.status, 503, "{}", r.body_text());
    assert!(!r.body_text().contains("audit down"));
    let r = api(&mut c, "POST", &format!("/api/v1/apps/{id}/deactivate"), None);
    assert_eq!(r.status, 503);
    let app = json(&api(&mut c, "GET", &format!("/api/v1/apps/{id}"), None));
    assert_eq!(
        (app["name"].as_str(), app["version"].as_i64(), app["status"].as_str()),
        (Some("Audited"), Some(1), Some("active"))
    );
    s.store.db.exec("DROP TRIGGER audit_down").unwrap();
    let r = api(
        &mut c,
        "PATCH",
        &format!("/api/v1/apps/{id}"),
        Some(json!({"version": 1, "name": "Renamed"})),
    );
    assert_eq!(r.status, 200);
    // A stale version changes nothing and records nothing.
    let r = api(
        &mut c,
        "PATCH",
        &format!("/api/v1/apps/{id}"),
        Some(json!({"version": 1, "name": "Again"})),
    );
    assert_eq!(r.status, 409);
    let n = s.store.db.query_one_text(&format!(
        "SELECT CAST(count(*) AS TEXT) FROM audit_events WHERE app_id = '{id}' AND action = 'app.updated'"
    ));
    assert_eq!(n, "1");
}

/// Answers 200 after yielding once, and counts how many posts are in flight.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
    urls: std::cell::RefCell<Vec<String>>,
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl Outbound for Gauge {
    async fn post(&self, url: &str, _: &[(String, String)], _: &str) -> Result<u16, String> {
        self.now.set(self.now.get() + 1);
        self.max.set(self.max.get().max(self.now.get()));
        self.urls.borrow_mut().push(url.to_string());
        YieldOnce(false).await;
        self.now.set(self.now.get() - 1);
        Ok(200)
    }
}

#[test]
fn retries_run_concurrently_up_to_the_cap_and_at_most_k_per_app() {
    let s = server();
    let mut c = Client::new(&s);
    let mut apps = Vec::new();
    for i in 0..4 {
        let (id, _) = register_app(
            &mut c,
            json!({"name": format!("Hooked {i}"), "redirect_uris": [CB], "scopes": ["profile:read"],
                   "webhook_url": format!("https://hooks{i}.example/in")}),
        );
        apps.push(id);
    }
    // App 0 has a backlog of 10, the others one each.
    let mut sql = String::new();
    for (a, id) in apps.iter().enumerate() {
        for k in 0..if a == 0 { 10 } else { 1 } {
            sql.push_str(&format!(
                "INSERT INTO webhook_deliveries (id, app_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
                 VALUES ('whd_{a}_{k}', '{id}', 'app.deleted', 'https://hooks{a}.example/in', '{{}}', 'pending', 1, {k}, {k}, {k});"
            ));
        }
    }
    s.store.db.exec(&sql).unwrap();
    let out = Gauge::default();
    let policy = RetryPolicy {
        limit: 50,
        concurrency: 4,
        per_app: 3,
        lease: 300,
    };
    let n = pollster::block_on(tasks::retry_due_with(&s.store, &out, NOW, &policy)).unwrap();
    assert_eq!(n, 3 + 3, "three of app 0's backlog, and every other app's delivery");
    assert_eq!(out.max.get(), 4, "in flight together, up to the cap");
    let urls = out.urls.borrow().clone();
    for a in 1..4 {
        assert!(
            urls.contains(&format!("https://hooks{a}.example/in")),
            "app {a} was not starved"
        );
    }
    assert_eq!(urls.iter().filter(|u| u.starts_with("https://hooks0.")).count(), 3);
    // The next run takes the next three of the backlog.
    let n = pollster::block_on(tasks::retry_due_with(&s.store, &out, NOW, &policy)).unwrap();
    assert_eq!(n, 3);
}

/// Never answers within the test: the attempt stays in flight.
struct Stuck;

impl Outbound for Stuck {
    async fn post(&self, _: &str, _: &[(String, String)], _: &str) -> Result<u16, String> {
        std::future::pending::<()>().await;
        unreachable!()
    }
}

#[test]
fn a_claimed_delivery_is_not_sent_again_by_an_overlapping_run() {
    let s = server();
    let mut c = Client::new(&s);
    let (id, _) = register_app(
        &mut c,
        json!({"name": "Hooked", "redirect_uris": [CB], "scopes": ["profile:read"], "webhook_url": "https://hooks.example/in"}),
    );
    s.store
        .db
        .exec(&format!(
            "INSERT INTO webhook_deliveries (id, app_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ('whd_1', '{id}', 'app.deleted', 'https://hooks.example/in', '{{}}', 'pending', 1, 0, 0, 0)"
        ))
        .unwrap();
    // A first run claims it and is still waiting on the receiver.
    let mut first = Box::pin(tasks::retry_due(&s.store, &Stuck, NOW, 50));
    let waker = std::task::Waker::noop();
    assert!(first.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
    // A second run meanwhile finds nothing due.
    let out = Gauge::default();
    assert_eq!(
        pollster::block_on(tasks::retry_due(&s.store, &out, NOW + 1, 50)).unwrap(),
        0
    );
    assert!(out.urls.borrow().is_empty());
}
