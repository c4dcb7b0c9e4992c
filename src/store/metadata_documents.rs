//! Clients identified by a metadata document URL (`crate::cimd`): storing
//! the client a fetched document describes, within the cap.

use super::*;
use crate::error::StoreError;
use crate::params;

impl<D: Driver> Store<D> {
    /// Store (or refresh) the client a fetched document describes, in one
    /// statement: a new URL is admitted only while fewer than `cap` such
    /// clients are stored; an existing row is always refreshed. Its status is
    /// left alone, so an operator's suspension survives refetches, and a row
    /// of another registration kind is never overwritten. `None`: the cap.
    pub async fn save_metadata_document_client(&self, a: &AppRow, cap: i64) -> Result<Option<AppRow>, StoreError> {
        self.one(Stmt::new(
            "INSERT INTO apps (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon, \
             redirect_uris, scopes, client_type, actor_modes, webhook_events, status, version, created_at, updated_at, \
             bot_public, registration, last_used_at, metadata_expires_at) \
             SELECT ?1, NULL, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, 'public', ?9, '[]', 'active', 1, ?10, ?10, 0, \
             'metadata_document', ?10, ?11 \
             WHERE (SELECT COUNT(*) FROM apps WHERE registration = 'metadata_document') < ?12 \
             OR EXISTS (SELECT 1 FROM apps WHERE id = ?1) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, homepage_url = excluded.homepage_url, \
             terms_url = excluded.terms_url, privacy_url = excluded.privacy_url, icon = excluded.icon, \
             redirect_uris = excluded.redirect_uris, scopes = excluded.scopes, actor_modes = excluded.actor_modes, \
             last_used_at = excluded.last_used_at, metadata_expires_at = excluded.metadata_expires_at, \
             updated_at = excluded.updated_at, \
             version = CASE WHEN apps.name IS excluded.name AND apps.redirect_uris IS excluded.redirect_uris \
               AND apps.scopes IS excluded.scopes AND apps.homepage_url IS excluded.homepage_url \
               AND apps.icon IS excluded.icon THEN apps.version ELSE apps.version + 1 END \
             WHERE apps.registration = 'metadata_document' \
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
                cap
            ],
        ))
        .await
    }
}
