//! The D1 implementation of the storage driver.
//!
//! One call crosses the wasm boundary per D1 round trip, each way one
//! string: the statements (SQL and parameters) go as one JSON text, JS
//! prepares, binds and runs them, and the rows come back as one
//! `JSON.stringify` text parsed by serde_json. (Per parameter and per field
//! crossings, as `worker`'s D1 API makes them, were a visible share of a
//! request's CPU in `make profile`.) JS numbers come back as integers where
//! they are integral.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::D1Database;

use crate::error::StoreError;
use crate::store::driver::note_failure;
use crate::store::{Driver, Row, Stmt, Value};

/// Counts its round trips (a query or a batch each) for the log line: the
/// number of D1 calls per request is the server's main cost. Keeps the
/// request's first failure (`Driver::take_failure`).
pub struct D1Driver(
    pub Binding,
    pub std::cell::Cell<u32>,
    pub std::sync::Mutex<Option<StoreError>>,
);

fn err(e: JsValue) -> StoreError {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    StoreError(msg)
}

/// The `DB` binding, looked up when the first statement needs it.
pub struct Binding {
    env: worker::Env,
    db: std::cell::OnceCell<worker::D1Database>,
}

impl Binding {
    pub fn new(env: worker::Env) -> Self {
        Self {
            env,
            db: Default::default(),
        }
    }
}

impl D1Driver {
    fn db(&self) -> Result<&D1Database, StoreError> {
        if self.0.db.get().is_none() {
            let db = self
                .0
                .env
                .d1("DB")
                .map_err(|e| StoreError(format!("D1 binding DB: {e}")))?;
            let _ = self.0.db.set(db);
        }
        Ok(self.0.db.get().expect("set above").as_ref().unchecked_ref())
    }
}

#[wasm_bindgen(inline_js = r#"
export async function d1Run(db, text, batch) {
  const stmts = JSON.parse(text).map(([sql, params]) => db.prepare(sql).bind(...params));
  const results = batch ? await db.batch(stmts) : [await stmts[0].all()];
  return JSON.stringify(results.map((r) => r.results ?? []));
}
"#)]
extern "C" {
    /// `[[sql, [params…]], …]` in, `[[row…], …]` out: one statement alone
    /// (`all`), or a batch (one transaction).
    #[wasm_bindgen(js_name = d1Run)]
    fn d1_run(db: &D1Database, text: &str, batch: bool) -> js_sys::Promise;
}

fn statements(stmts: &[Stmt]) -> String {
    let list: Vec<(&str, Vec<serde_json::Value>)> = stmts
        .iter()
        .map(|s| {
            let params = s
                .params
                .iter()
                .map(|v| match v {
                    Value::Null => serde_json::Value::Null,
                    // Unix seconds and counters stay far below 2^53.
                    Value::Int(n) => serde_json::Value::from(*n),
                    Value::Text(t) => serde_json::Value::from(t.as_str()),
                })
                .collect();
            (s.sql, params)
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_default()
}

impl D1Driver {
    async fn run(&self, stmts: &[Stmt], batch: bool) -> Result<Vec<Vec<Row>>, StoreError> {
        let text = JsFuture::from(d1_run(self.db()?, &statements(stmts), batch))
            .await
            .map_err(err)?;
        let text = text.as_string().unwrap_or_default();
        serde_json::from_str(&text).map_err(|e| StoreError(format!("decode D1 rows: {e}")))
    }

    async fn query_now(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        Ok(self
            .run(std::slice::from_ref(&stmt), false)
            .await?
            .pop()
            .unwrap_or_default())
    }

    async fn batch_now(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.run(&stmts, true).await
    }
}

impl Driver for D1Driver {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        self.1.set(self.1.get() + 1);
        note_failure(&self.2, self.query_now(stmt).await)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError> {
        self.1.set(self.1.get() + 1);
        note_failure(&self.2, self.batch_now(stmts).await)
    }

    fn take_failure(&self) -> Option<StoreError> {
        self.2.lock().ok().and_then(|mut f| f.take())
    }
}
