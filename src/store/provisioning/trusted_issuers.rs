//! Provisioned trusted issuers: an org's enterprise identity providers whose
//! ID-JAGs the jwt-bearer grant accepts (migration 0024).

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// A trusted issuer as stored (lists as JSON arrays).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvTrustedIssuer {
    pub org_id: String,
    pub name: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub allowed_clients: String,
    pub subject_claim: String,
    pub default_role: Option<String>,
    pub resources: String,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! select_issuers {
    ($rest:literal) => {
        concat!(
            "SELECT org_id, name, issuer, jwks_uri, allowed_clients, subject_claim, default_role, resources, scopes, \
             created_at, updated_at FROM trusted_issuers ",
            $rest
        )
    };
}

impl<D: Driver> Store<D> {
    pub async fn trusted_issuer_named(
        &self,
        org_id: &str,
        name: &str,
    ) -> Result<Option<ProvTrustedIssuer>, StoreError> {
        self.one(Stmt::new(
            select_issuers!("WHERE org_id = ?1 AND name = ?2"),
            params![org_id, name],
        ))
        .await
    }

    /// The entry of `issuer`, in whichever org configured it (one at most).
    pub async fn trusted_issuer_by_issuer(&self, issuer: &str) -> Result<Option<ProvTrustedIssuer>, StoreError> {
        self.one(Stmt::new(select_issuers!("WHERE issuer = ?1"), params![issuer]))
            .await
    }

    pub async fn trusted_issuers_page(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProvTrustedIssuer>, StoreError> {
        self.all(Stmt::new(
            select_issuers!("WHERE org_id = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3"),
            params![org_id, after, limit],
        ))
        .await
    }

    /// Create or replace the entry (org, name). `false`: the org is gone,
    /// the default role is unknown, or another entry took the issuer meanwhile.
    pub async fn put_trusted_issuer(
        &self,
        t: &ProvTrustedIssuer,
        now: i64,
        note: &AuditNote,
    ) -> Result<bool, StoreError> {
        let g = guard_id();
        let p = || {
            params![
                &g,
                &t.org_id,
                &t.name,
                &t.issuer,
                &t.jwks_uri,
                &t.allowed_clients,
                &t.subject_claim,
                t.default_role.clone(),
                &t.resources,
                &t.scopes,
                now
            ]
        };
        self.guarded_act(
            &g,
            Stmt::new(
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?2) \
                 AND (?8 IS NULL OR EXISTS (SELECT 1 FROM roles WHERE name = ?8)) \
                 AND NOT EXISTS (SELECT 1 FROM trusted_issuers WHERE issuer = ?4 AND NOT (org_id = ?2 AND name = ?3))",
                // D1 wants exactly as many bindings as the statement's highest `?N`.
                p().into_iter().take(8).collect(),
            ),
            vec![
                Stmt::new(
                    concat!(
                        "INSERT INTO trusted_issuers (org_id, name, issuer, jwks_uri, allowed_clients, subject_claim, \
                         default_role, resources, scopes, created_at, updated_at) \
                         SELECT ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11 WHERE ",
                        guarded!(),
                        " ON CONFLICT (org_id, name) DO UPDATE SET issuer = excluded.issuer, jwks_uri = excluded.jwks_uri, \
                         allowed_clients = excluded.allowed_clients, subject_claim = excluded.subject_claim, \
                         default_role = excluded.default_role, resources = excluded.resources, scopes = excluded.scopes, \
                         updated_at = excluded.updated_at"
                    ),
                    p(),
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }

    pub async fn delete_trusted_issuer(
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
                "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM trusted_issuers WHERE org_id = ?2 AND name = ?3)",
                params![&g, org_id, name],
            ),
            vec![
                Stmt::new(
                    concat!("DELETE FROM trusted_issuers WHERE org_id = ?2 AND name = ?3 AND ", guarded!()),
                    params![&g, org_id, name],
                ),
                audit_stmt(&g, note, now),
            ],
        )
        .await
    }
}
