//! Clients identified by a metadata document URL (`crate::cimd`): storing
//! the client a fetched document describes, within the cap, and the cap's use.

use super::apps::client_metadata_params;
use serde::{Deserialize, Serialize};

use super::*;
use crate::error::StoreError;
use crate::params;

/// The clients `CIMD_MAX_CLIENTS` counts, and those it does not.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct MetadataDocumentUse {
    /// Active or suspended: what the cap counts.
    pub stored: i64,
    /// Of those, never issued a code (the sweep frees them a day after they were stored).
    pub never_used: i64,
    pub suspended: i64,
    /// Deleted by the operator: kept as bans, outside the cap.
    pub banned: i64,
}

impl<D: Driver> Store<D> {
    /// Store (or refresh) the client a fetched document describes, in one
    /// batch: a new URL is admitted only while fewer than `cap` such clients
    /// that are not banned are stored, and then `audit` (its registration) is
    /// written with it; an existing row is always refreshed, without a
    /// record. Its status and `last_used_at` are left alone: an operator's
    /// suspension survives refetches, and a fetch is not a use (a code is).
    /// A row of another registration kind is never overwritten. `None`: the cap.
    pub async fn save_metadata_document_client(
        &self,
        a: &AppRow,
        cap: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let record = audit.stmt_if(
            audit_if!(
                "NOT EXISTS (SELECT 1 FROM apps WHERE id = ?8) AND (SELECT COUNT(*) FROM apps \
                 WHERE registration = 'metadata_document' AND status <> 'deleted') < ?9"
            ),
            params![&a.id, cap],
        );
        let save = Stmt::new(
            "INSERT INTO apps (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon, \
             redirect_uris, scopes, client_type, actor_modes, webhook_events, status, version, created_at, updated_at, \
             bot_public, registration, last_used_at, metadata_expires_at, id_token_signed_response_alg, \
             sector_identifier_uri, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, \
             dpop_bound_access_tokens, require_pushed_authorization_requests, client_auth_method, jwks, jwks_uri, \
             token_endpoint_auth_signing_alg) \
             SELECT ?1, NULL, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?24, ?9, '[]', 'active', 1, ?10, ?10, 0, \
             'metadata_document', NULL, ?11, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23 \
             WHERE (SELECT COUNT(*) FROM apps WHERE registration = 'metadata_document' AND status <> 'deleted') < ?12 \
             OR EXISTS (SELECT 1 FROM apps WHERE id = ?1) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, homepage_url = excluded.homepage_url, \
             terms_url = excluded.terms_url, privacy_url = excluded.privacy_url, icon = excluded.icon, \
             redirect_uris = excluded.redirect_uris, scopes = excluded.scopes, actor_modes = excluded.actor_modes, \
             metadata_expires_at = excluded.metadata_expires_at, \
             updated_at = excluded.updated_at, \
             id_token_signed_response_alg = excluded.id_token_signed_response_alg, \
             sector_identifier_uri = excluded.sector_identifier_uri, \
             post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
             backchannel_logout_uri = excluded.backchannel_logout_uri, \
             backchannel_logout_session_required = excluded.backchannel_logout_session_required, \
             dpop_bound_access_tokens = excluded.dpop_bound_access_tokens, \
             require_pushed_authorization_requests = excluded.require_pushed_authorization_requests, \
             client_auth_method = excluded.client_auth_method, jwks = excluded.jwks, jwks_uri = excluded.jwks_uri, \
             token_endpoint_auth_signing_alg = excluded.token_endpoint_auth_signing_alg, \
             client_type = excluded.client_type, \
             version = CASE WHEN apps.name IS excluded.name AND apps.redirect_uris IS excluded.redirect_uris \
               AND apps.scopes IS excluded.scopes AND apps.homepage_url IS excluded.homepage_url \
               AND apps.icon IS excluded.icon \
               AND apps.id_token_signed_response_alg IS excluded.id_token_signed_response_alg \
               AND apps.sector_identifier_uri IS excluded.sector_identifier_uri \
               AND apps.post_logout_redirect_uris IS excluded.post_logout_redirect_uris \
               AND apps.backchannel_logout_uri IS excluded.backchannel_logout_uri \
               AND apps.backchannel_logout_session_required IS excluded.backchannel_logout_session_required \
               AND apps.dpop_bound_access_tokens IS excluded.dpop_bound_access_tokens \
               AND apps.require_pushed_authorization_requests IS excluded.require_pushed_authorization_requests \
               AND apps.client_auth_method IS excluded.client_auth_method AND apps.jwks IS excluded.jwks \
               AND apps.jwks_uri IS excluded.jwks_uri \
               AND apps.token_endpoint_auth_signing_alg IS excluded.token_endpoint_auth_signing_alg \
               THEN apps.version ELSE apps.version + 1 END \
             WHERE apps.registration = 'metadata_document' AND apps.status <> 'deleted' \
             RETURNING *",
            params![
                &a.id,
                &a.name,
                a.homepage_url.clone(),
                a.terms_url.clone(),
                a.privacy_url.clone(),
                a.icon.clone(),
                &a.redirect_uris,
                &a.scopes,
                &a.actor_modes,
                a.created_at,
                a.metadata_expires_at,
                cap,
            ]
            .into_iter()
            .chain(client_metadata_params(a))
            .chain(params![&a.client_type])
            .collect(),
        );
        let mut res = self.db.batch(vec![record, save]).await?.into_iter();
        Ok(super::decode::<AppRow>(res.nth(1).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// How the metadata document clients stand against the cap (the back office).
    pub async fn metadata_document_use(&self) -> Result<MetadataDocumentUse, StoreError> {
        let row: Option<MetadataDocumentUse> = self
            .one(Stmt::new(
                "SELECT COALESCE(SUM(status <> 'deleted'), 0) AS stored, \
                 COALESCE(SUM(status <> 'deleted' AND last_used_at IS NULL), 0) AS never_used, \
                 COALESCE(SUM(status = 'suspended'), 0) AS suspended, \
                 COALESCE(SUM(status = 'deleted'), 0) AS banned \
                 FROM apps WHERE registration = 'metadata_document'",
                params![],
            ))
            .await?;
        Ok(row.unwrap_or(MetadataDocumentUse {
            stored: 0,
            never_used: 0,
            suspended: 0,
            banned: 0,
        }))
    }
}
