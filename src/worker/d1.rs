//! The D1 implementation of the storage driver.
//!
//! It speaks to the binding through `worker_sys` directly: rows cross from JS
//! as one `JSON.stringify` string parsed by serde_json, instead of one
//! wasm-bindgen call per field (`worker`'s `D1Result::results` path), and JS
//! numbers come back as integers where they are integral.

use js_sys::{Array, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::{D1Database, D1PreparedStatement, D1Result};

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

    fn bind(&self, stmt: &Stmt) -> Result<D1PreparedStatement, StoreError> {
        let params: Array = stmt
            .params
            .iter()
            .map(|v| match v {
                Value::Null => JsValue::NULL,
                // Unix seconds and counters stay far below 2^53.
                Value::Int(n) => JsValue::from_f64(*n as f64),
                Value::Text(s) => JsValue::from_str(s),
            })
            .collect();
        self.db()?.prepare(stmt.sql).and_then(|p| p.bind(params)).map_err(err)
    }
}

fn rows(result: &JsValue) -> Result<Vec<Row>, StoreError> {
    let Some(results) = result.unchecked_ref::<D1Result>().results().map_err(err)? else {
        return Ok(Vec::new());
    };
    let text: String = JSON::stringify(&results).map_err(err)?.into();
    serde_json::from_str(&text).map_err(|e| StoreError(format!("decode D1 rows: {e}")))
}

impl D1Driver {
    async fn query_now(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        let promise = self.bind(&stmt)?.all().map_err(err)?;
        rows(&JsFuture::from(promise).await.map_err(err)?)
    }

    async fn batch_now(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError> {
        let prepared: Array = stmts
            .iter()
            .map(|s| self.bind(s).map(JsValue::from))
            .collect::<Result<_, _>>()?;
        let promise = self.db()?.batch(prepared).map_err(err)?;
        let results: Array = JsFuture::from(promise).await.map_err(err)?.unchecked_into();
        results.iter().map(|r| rows(&r)).collect()
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
