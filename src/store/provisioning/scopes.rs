//! The provisioned scope catalogue.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvScope {
    pub name: String,
    pub description: String,
}

impl<D: Driver> Store<D> {
    pub async fn scope(&self, name: &str) -> Result<Option<ProvScope>, StoreError> {
        self.one(Stmt::new(
            "SELECT name, description FROM scopes WHERE name = ?1",
            params![name],
        ))
        .await
    }

    pub async fn scopes_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvScope>, StoreError> {
        self.all(Stmt::new(
            "SELECT name, description FROM scopes WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// Roles that grant the scope and live apps that declare it.
    pub async fn scope_usage(&self, name: &str) -> Result<(Vec<String>, i64), StoreError> {
        let mut out = self
            .db
            .batch(vec![
                Stmt::new(
                    "SELECT role FROM role_permissions WHERE permission = ?1 ORDER BY role",
                    params![name],
                ),
                Stmt::new(
                    "SELECT count(*) AS n FROM apps a WHERE a.status != 'deleted' \
                     AND EXISTS (SELECT 1 FROM json_each(a.scopes) j WHERE j.value = ?1)",
                    params![name],
                ),
            ])
            .await?
            .into_iter();
        let roles = texts(out.next().unwrap_or_default(), "role");
        let apps = out
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(|r| r.get("n").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        Ok((roles, apps))
    }

    pub async fn put_scope(&self, s: &ProvScope, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        self.guarded_act(
            &g,
            Stmt::new("INSERT INTO batch_guards (id) VALUES (?1)", params![&g]),
            vec![
                Stmt::new(
                    concat!(
                        "INSERT INTO scopes (name, description) SELECT ?2, ?3 WHERE ",
                        guarded!(),
                        " ON CONFLICT (name) DO UPDATE SET description = excluded.description"
                    ),
                    params![&g, &s.name, &s.description],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }

    /// Delete a scope no role grants and no live app declares.
    pub async fn delete_scope(&self, name: &str, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM scopes WHERE name = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM role_permissions WHERE permission = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.status != 'deleted' \
                     AND EXISTS (SELECT 1 FROM json_each(a.scopes) j WHERE j.value = ?2))",
                params![&g, name],
            ),
            vec![
                Stmt::new(
                    concat!("DELETE FROM scopes WHERE name = ?2 AND ", guarded!()),
                    params![&g, name],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }
}
