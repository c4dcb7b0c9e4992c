//! Provisioned roles: a name and its permissions (catalogue scopes or platform
//! permissions).

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvRole {
    pub name: String,
    pub description: String,
    /// Space-separated, sorted.
    pub permissions: Option<String>,
}

impl ProvRole {
    pub fn permission_list(&self) -> Vec<String> {
        self.permissions
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct RoleUpsert {
    pub name: String,
    pub description: String,
    /// Every permission of the role (replaces the current set).
    pub permissions: Vec<String>,
}

impl<D: Driver> Store<D> {
    pub async fn role(&self, name: &str) -> Result<Option<ProvRole>, StoreError> {
        self.one(Stmt::new(
            "SELECT r.name, r.description, (SELECT group_concat(permission, ' ') FROM \
             (SELECT permission FROM role_permissions WHERE role = r.name ORDER BY permission)) AS permissions \
             FROM roles r WHERE r.name = ?1",
            params![name],
        ))
        .await
    }

    pub async fn roles_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvRole>, StoreError> {
        self.all(Stmt::new(
            "SELECT r.name, r.description, (SELECT group_concat(permission, ' ') FROM \
             (SELECT permission FROM role_permissions WHERE role = r.name ORDER BY permission)) AS permissions \
             FROM roles r WHERE (?1 IS NULL OR r.name > ?1) ORDER BY r.name LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// How many memberships and API keys use a role.
    pub async fn role_usage(&self, name: &str) -> Result<(i64, i64), StoreError> {
        #[derive(Deserialize)]
        struct U {
            members: i64,
            keys: i64,
        }
        let u: Option<U> = self
            .one(Stmt::new(
                "SELECT (SELECT count(*) FROM memberships WHERE role = ?1) AS members, \
                 (SELECT count(*) FROM api_keys WHERE role = ?1) AS keys",
                params![name],
            ))
            .await?;
        Ok(u.map(|u| (u.members, u.keys)).unwrap_or((0, 0)))
    }

    /// Slugs of the orgs whose only owners hold `role`: taking `org.admin`
    /// from the role would leave them without an owner.
    pub async fn orgs_owned_only_through(&self, role: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT DISTINCT o.slug FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.role = ?1 \
                 AND EXISTS (SELECT 1 FROM role_permissions WHERE role = ?1 AND permission = 'org.admin') \
                 AND NOT EXISTS (SELECT 1 FROM memberships oe JOIN role_permissions oerp ON oerp.role = oe.role \
                 AND oerp.permission = 'org.admin' WHERE oe.org_id = m.org_id AND oe.role != ?1) ORDER BY o.slug",
                params![role],
            ))
            .await?;
        Ok(texts(rows, "slug"))
    }

    /// Names among `names` that are not in the scope catalogue.
    pub async fn unknown_scopes(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let json = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT DISTINCT j.value AS name FROM json_each(?1) j WHERE j.value NOT IN (SELECT name FROM scopes) ORDER BY 1",
                params![json],
            ))
            .await?;
        Ok(texts(rows, "name"))
    }

    /// Create a role or replace its description and permissions. Every
    /// permission must be a catalogue scope or a platform permission when the
    /// batch runs; a role losing `org.admin` must not leave an org without an
    /// owner. `false`: one of these failed, nothing changed.
    pub async fn put_role(&self, r: &RoleUpsert, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let perms = serde_json::to_string(&r.permissions).unwrap_or_else(|_| "[]".into());
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM json_each(?3) j \
                 WHERE j.value NOT IN (SELECT name FROM scopes) AND j.value NOT IN ('oauth_app.manage', 'org.admin')) \
                 AND NOT (EXISTS (SELECT 1 FROM role_permissions WHERE role = ?2 AND permission = 'org.admin') \
                 AND NOT EXISTS (SELECT 1 FROM json_each(?3) WHERE value = 'org.admin') \
                 AND EXISTS (SELECT 1 FROM memberships m WHERE m.role = ?2 AND NOT EXISTS (SELECT 1 FROM memberships oe \
                 JOIN role_permissions oerp ON oerp.role = oe.role AND oerp.permission = 'org.admin' \
                 WHERE oe.org_id = m.org_id AND oe.role != ?2)))",
                params![&g, &r.name, &perms],
            ),
            vec![
                Stmt::new(
                    concat!(
                        "INSERT INTO roles (name, description, created_at) SELECT ?2, ?3, ?4 WHERE ",
                        guarded!(),
                        " ON CONFLICT (name) DO UPDATE SET description = excluded.description"
                    ),
                    params![&g, &r.name, &r.description, now],
                ),
                Stmt::new(
                    concat!(
                        "DELETE FROM role_permissions WHERE role = ?2 AND permission NOT IN (SELECT value FROM json_each(?3)) AND ",
                        guarded!()
                    ),
                    params![&g, &r.name, &perms],
                ),
                Stmt::new(
                    concat!(
                        "INSERT OR IGNORE INTO role_permissions (role, permission) SELECT ?2, value FROM json_each(?3) WHERE ",
                        guarded!()
                    ),
                    params![&g, &r.name, &perms],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }

    /// Delete a role no membership or API key uses. `false`: in use or gone.
    pub async fn delete_role(&self, name: &str, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM roles WHERE name = ?2) \
                 AND NOT EXISTS (SELECT 1 FROM memberships WHERE role = ?2) AND NOT EXISTS (SELECT 1 FROM api_keys WHERE role = ?2)",
                params![&g, name],
            ),
            vec![
                Stmt::new(
                    concat!("DELETE FROM role_permissions WHERE role = ?2 AND ", guarded!()),
                    params![&g, name],
                ),
                Stmt::new(
                    concat!("DELETE FROM roles WHERE name = ?2 AND ", guarded!()),
                    params![&g, name],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }
}
