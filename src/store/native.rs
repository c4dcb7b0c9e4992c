//! SQLite driver for native tests: the same migrations and statements as D1.

use std::sync::Mutex;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::driver::{note_failure, Driver, Row, Stmt, Value};
use crate::error::StoreError;

pub struct NativeDriver {
    conn: Mutex<Connection>,
    failure: Mutex<Option<StoreError>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl NativeDriver {
    /// An in-memory database with every file of `migrations/` applied in order.
    pub fn migrated() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(err)?;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        for f in files {
            conn.execute_batch(&std::fs::read_to_string(f).map_err(err)?)
                .map_err(err)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            failure: Mutex::new(None),
        })
    }

    /// Run raw SQL (fixtures in tests).
    pub fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.lock().map_err(err)?.execute_batch(sql).map_err(err)
    }

    /// First column of the first row as text (test assertions).
    pub fn query_one_text(&self, sql: &str) -> String {
        let conn = self.conn.lock().expect("lock");
        conn.query_row(sql, [], |r| r.get::<_, String>(0))
            .expect("one text row")
    }

    fn run(conn: &Connection, stmt: &Stmt) -> Result<Vec<Row>, StoreError> {
        // Cached like a long-lived server would: SQL compilation is most of a
        // request's SQLite time here (see `make bench`, native part).
        let mut prepared = conn.prepare_cached(stmt.sql).map_err(err)?;
        let names: Vec<String> = prepared.column_names().iter().map(|s| s.to_string()).collect();
        let params: Vec<rusqlite::types::Value> = stmt
            .params
            .iter()
            .map(|v| match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Int(n) => rusqlite::types::Value::Integer(*n),
                Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            })
            .collect();
        let mut rows = prepared.query(rusqlite::params_from_iter(params)).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut map = Row::new();
            for (i, name) in names.iter().enumerate() {
                let v = match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(n) => n.into(),
                    ValueRef::Real(f) => f.into(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(_) => serde_json::Value::Null,
                };
                map.insert(name.clone(), v);
            }
            out.push(map);
        }
        Ok(out)
    }
}

impl NativeDriver {
    fn batch_now(&self, stmts: &[Stmt]) -> Result<Vec<Vec<Row>>, StoreError> {
        let mut conn = self.conn.lock().map_err(err)?;
        let tx = conn.transaction().map_err(err)?;
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            out.push(Self::run(&tx, s)?);
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }
}

impl Driver for NativeDriver {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        let r = match self.conn.lock() {
            Ok(conn) => Self::run(&conn, &stmt),
            Err(e) => Err(err(e)),
        };
        note_failure(&self.failure, r)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, StoreError> {
        note_failure(&self.failure, self.batch_now(&stmts))
    }

    fn take_failure(&self) -> Option<StoreError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}
