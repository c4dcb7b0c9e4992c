//! The D1 implementation of the storage driver.

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::error::StoreError;
use crate::store::{Driver, Row, Stmt, Value};

/// Counts its round trips (a query or a batch each) for the log line: the
/// number of D1 calls per request is the server's main cost.
pub struct D1Driver(pub D1Database, pub std::cell::Cell<u32>);

fn err(e: worker::Error) -> StoreError {
    StoreError(e.to_string())
}

fn bind(db: &D1Database, stmt: &Stmt) -> Result<D1PreparedStatement, StoreError> {
    let params: Vec<JsValue> = stmt
        .params
        .iter()
        .map(|v| match v {
            Value::Null => JsValue::NULL,
            // Unix seconds and counters stay far below 2^53.
            Value::Int(n) => JsValue::from_f64(*n as f64),
            Value::Text(s) => JsValue::from_str(s),
        })
        .collect();
    db.prepare(stmt.sql).bind(&params).map_err(err)
}

/// D1 hands numbers over as JS doubles; integral ones become JSON integers
/// again so rows decode into `i64` fields.
fn normalize(rows: Vec<serde_json::Value>) -> Vec<Row> {
    rows.into_iter()
        .filter_map(|r| match r {
            serde_json::Value::Object(mut m) => {
                for v in m.values_mut() {
                    if let Some(f) = v.as_f64().filter(|_| !v.is_i64() && !v.is_u64()) {
                        if f.fract() == 0.0 && f.abs() < 9.0e15 {
                            *v = serde_json::Value::from(f as i64);
                        }
                    }
                }
                Some(m)
            }
            _ => None,
        })
        .collect()
}

impl Driver for D1Driver {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        self.1.set(self.1.get() + 1);
        let res = bind(&self.0, &stmt)?.all().await.map_err(err)?;
        Ok(normalize(res.results::<serde_json::Value>().map_err(err)?))
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError> {
        self.1.set(self.1.get() + 1);
        let prepared = stmts.iter().map(|s| bind(&self.0, s)).collect::<Result<Vec<_>, _>>()?;
        let results = self.0.batch(prepared).await.map_err(err)?;
        results
            .into_iter()
            .map(|r| Ok(normalize(r.results::<serde_json::Value>().map_err(err)?)))
            .collect()
    }
}
