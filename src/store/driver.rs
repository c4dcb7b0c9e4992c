//! The storage seam: a SQL driver with two implementations, D1 in the worker
//! (`crate::worker::d1`) and SQLite for native tests (`super::native`). Both run
//! the same `migrations/` and the same statements from [`super::Store`], so a
//! test that passes natively exercises the SQL that runs in production.
//!
//! Contract every driver keeps:
//! - `query` runs one statement; `UPDATE … RETURNING` in it is atomic.
//! - `batch` runs its statements in order inside one transaction (D1 batches
//!   are transactions): all of them take effect, or none.
//! - Integers come back as JSON integers, text as JSON strings, NULL as null.

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

/// One SQL statement with positional `?N` parameters.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: &'static str,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: &'static str, params: Vec<Value>) -> Self {
        Self { sql, params }
    }
}

/// `vec![a.into(), b.into()]` for statement parameters.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::Value::from($v)),*] };
}

pub type Row = serde_json::Map<String, serde_json::Value>;

// Workers run one request per isolate thread; D1 futures are not Send, so the
// trait does not promise Send either.
#[allow(async_fn_in_trait)]
pub trait Driver {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError>;
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError>;
    /// The first failure since the last call, then forgotten. The server asks
    /// after each request: whatever an endpoint made of a storage failure, the
    /// client gets a 503 and the text goes to the log only.
    fn take_failure(&self) -> Option<StoreError>;
}

/// Remember the first failure of a request for [`Driver::take_failure`].
pub fn note_failure<T>(slot: &std::sync::Mutex<Option<StoreError>>, r: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(e) = &r {
        if let Ok(mut s) = slot.lock() {
            s.get_or_insert_with(|| e.clone());
        }
    }
    r
}
