//! Provisioned org API keys: created (secret shown once) or imported, listed,
//! revoked.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvApiKey {
    pub org_id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

/// An org API key by (org, name). `hash`: SHA-256 of a new secret (required
/// to create one; replaces the secret of an existing key), or `None` to keep it.
#[derive(Debug, Clone)]
pub struct ApiKeyUpsert {
    pub org_id: String,
    pub name: String,
    pub role: String,
    pub hash: Option<String>,
    /// Create only: fail if a key of that name appeared meanwhile (a new
    /// secret shown to the caller must not silently replace another's).
    pub create: bool,
}

impl<D: Driver> Store<D> {
    pub async fn api_key_named(&self, org_id: &str, name: &str) -> Result<Option<ProvApiKey>, StoreError> {
        self.one(Stmt::new(
            "SELECT org_id, name, role, created_at FROM api_keys WHERE org_id = ?1 AND name = ?2",
            params![org_id, name],
        ))
        .await
    }

    /// The key holding this hash (a secret belongs to one key at most).
    pub async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ProvApiKey>, StoreError> {
        self.one(Stmt::new(
            "SELECT org_id, name, role, created_at FROM api_keys WHERE hash = ?1",
            params![hash],
        ))
        .await
    }

    pub async fn api_keys_page(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProvApiKey>, StoreError> {
        self.all(Stmt::new(
            "SELECT org_id, name, role, created_at FROM api_keys WHERE org_id = ?1 AND (?2 IS NULL OR name > ?2) \
             ORDER BY name LIMIT ?3",
            params![org_id, after, limit],
        ))
        .await
    }

    /// Create the key (org, name) or change its role / replace its secret.
    /// A name is unique in its org, a secret across keys. `false`: the org or
    /// role is gone, the secret is another key's, or a new key has no secret.
    pub async fn put_api_key(&self, k: &ApiKeyUpsert, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?2) \
                 AND EXISTS (SELECT 1 FROM roles WHERE name = ?4) \
                 AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM api_keys WHERE hash = ?5 AND NOT (org_id = ?2 AND name = ?3))) \
                 AND (?5 IS NOT NULL OR EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3)) \
                 AND (?6 = 0 OR NOT EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3))",
                params![&g, &k.org_id, &k.name, &k.role, k.hash.clone(), i64::from(k.create)],
            ),
            vec![
                Stmt::new(
                    concat!(
                        "UPDATE api_keys SET role = ?4, hash = COALESCE(?5, hash) WHERE org_id = ?2 AND name = ?3 AND ",
                        guarded!()
                    ),
                    params![&g, &k.org_id, &k.name, &k.role, k.hash.clone()],
                ),
                Stmt::new(
                    concat!(
                        "INSERT INTO api_keys (hash, org_id, name, role, created_at) SELECT ?5, ?2, ?3, ?4, ?6 \
                         WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3) AND ",
                        guarded!()
                    ),
                    params![&g, &k.org_id, &k.name, &k.role, k.hash.clone(), now],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }

    /// Revoke (delete) an org API key: the next call with it gets 401.
    pub async fn delete_api_key(
        &self,
        org_id: &str,
        name: &str,
        now: i64,
        note: &AuditNote,
    ) -> Result<bool, StoreError> {
        let g = guard_id();
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3)",
                params![&g, org_id, name],
            ),
            vec![
                Stmt::new(
                    concat!("DELETE FROM api_keys WHERE org_id = ?2 AND name = ?3 AND ", guarded!()),
                    params![&g, org_id, name],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }
}
