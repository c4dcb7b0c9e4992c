//! Registered apps (clients) and their lifecycle: create, update with a version,
//! rotate the secret, suspend, delete.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AppRow {
    pub id: String,
    /// `None` for a self-registered client (DCR, CIMD): no org owns it.
    pub owner_org_id: Option<String>,
    pub name: String,
    pub description: String,
    pub homepage_url: Option<String>,
    pub terms_url: Option<String>,
    pub privacy_url: Option<String>,
    pub icon: Option<String>,
    pub redirect_uris: String,
    pub scopes: String,
    pub client_type: String,
    pub actor_modes: String,
    pub secret_hash: Option<String>,
    pub secret_expires_at: Option<i64>,
    pub webhook_url: Option<String>,
    pub webhook_events: String,
    pub status: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default = "yes")]
    pub bot_public: i64,
    #[serde(default)]
    pub bot_require_code_grant: i64,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// `platform`, `dynamic` (RFC 7591) or `metadata_document` (CIMD).
    #[serde(default = "platform")]
    pub registration: String,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// A metadata document client (`crate::cimd`): when its cached document
    /// goes stale and authorize must fetch it again.
    #[serde(default)]
    pub metadata_expires_at: Option<i64>,
    /// Recent failed authentications of this client from the requesting
    /// source (rate limiting); only filled by [`Store::app_for_auth`].
    #[serde(default)]
    pub auth_failures: i64,
    /// OpenID client metadata (migration 0016): the ID token's algorithm
    /// (`None`: RS256), the pairwise sector, logout URIs (JSON array) and
    /// back-channel logout (OIDC Registration §2; RP-Initiated Logout §3.1;
    /// Back-Channel Logout §2.2).
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub sector_identifier_uri: Option<String>,
    #[serde(default = "empty_list")]
    pub post_logout_redirect_uris: String,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: i64,
    /// Sender constraint and client authentication (migration 0019):
    /// DPoP required for this client's tokens (RFC 9449 §5.2), PAR required
    /// at authorize (RFC 9126 §6), and `private_key_jwt` (RFC 7523 §2.2)
    /// with the client's JWK set inline (`jwks`, JSON) or by URL.
    /// `client_auth_method` `None`: a secret when confidential, none when public.
    #[serde(default)]
    pub dpop_bound_access_tokens: i64,
    #[serde(default)]
    pub require_pushed_authorization_requests: i64,
    #[serde(default)]
    pub client_auth_method: Option<String>,
    #[serde(default)]
    pub jwks: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// May start the device authorization grant (RFC 8628; migration 0025).
    #[serde(default)]
    pub device_authorization: i64,
    /// The token exchange policy (RFC 8693, migration 0023; JSON, the
    /// shape of `grants::token_exchange::policy`); `None`: may not exchange.
    #[serde(default)]
    pub token_exchange: Option<String>,
}

/// `apps.client_auth_method` of a client that authenticates with a JWT
/// signed by its own key (RFC 7523 §2.2).
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

fn empty_list() -> String {
    "[]".into()
}

pub(super) fn yes() -> i64 {
    1
}

fn platform() -> String {
    "platform".into()
}

impl AppRow {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        crate::scope::from_json(&self.redirect_uris)
    }
    pub fn scope_list(&self) -> Vec<String> {
        crate::scope::from_json(&self.scopes)
    }
    /// Allowed actor modes, `self` first: the consent screen's default is
    /// the narrower identity, never the bot.
    pub fn actor_mode_list(&self) -> Vec<String> {
        let mut modes: Vec<String> = crate::scope::from_json(&self.actor_modes);
        modes.sort_by_key(|m| m != "self");
        modes
    }
    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }
    /// Registered by an org of the platform, rather than by itself (RFC 7591)
    /// or by a metadata document anyone can publish: only a vetted client's
    /// redirect URI is trusted before the user has acted (RFC 9700 §4.11.2).
    pub fn is_vetted(&self) -> bool {
        self.registration == "platform"
    }
}

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub homepage_url: Option<Option<String>>,
    pub terms_url: Option<Option<String>>,
    pub privacy_url: Option<Option<String>>,
    pub icon: Option<Option<String>>,
    pub redirect_uris: Option<String>,
    pub scopes: Option<String>,
    pub actor_modes: Option<String>,
    pub webhook_url: Option<Option<String>>,
    pub webhook_events: Option<String>,
    pub bot_public: Option<i64>,
    pub bot_require_code_grant: Option<i64>,
    /// The OpenID client metadata (`AppRow` has their meaning).
    pub id_token_signed_response_alg: Option<Option<String>>,
    pub sector_identifier_uri: Option<Option<String>>,
    pub post_logout_redirect_uris: Option<String>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<i64>,
    /// Sender constraint and client authentication (`AppRow` has their meaning).
    pub dpop_bound_access_tokens: Option<i64>,
    pub require_pushed_authorization_requests: Option<i64>,
    pub client_auth_method: Option<Option<String>>,
    pub jwks: Option<Option<String>>,
    pub jwks_uri: Option<Option<String>>,
    pub token_endpoint_auth_signing_alg: Option<Option<String>>,
    /// Erase the secret (the app now authenticates with its key).
    pub clear_secret: bool,
    pub device_authorization: Option<i64>,
    /// The token exchange policy (JSON; `Some(None)` turns it off).
    pub token_exchange: Option<Option<String>>,
}

/// The OpenID (migration 0016) and sender-constraint (0019) client metadata
/// as the trailing parameters of every statement that writes a whole client,
/// in the order of their columns there.
pub(super) fn client_metadata_params(a: &AppRow) -> Vec<Value> {
    params![
        a.id_token_signed_response_alg.clone(),
        a.sector_identifier_uri.clone(),
        &a.post_logout_redirect_uris,
        a.backchannel_logout_uri.clone(),
        a.backchannel_logout_session_required,
        a.dpop_bound_access_tokens,
        a.require_pushed_authorization_requests,
        a.client_auth_method.clone(),
        a.jwks.clone(),
        a.jwks_uri.clone(),
        a.token_endpoint_auth_signing_alg.clone()
    ]
}

pub(super) fn opt(v: &Option<Option<String>>) -> (i64, Option<String>) {
    match v {
        Some(inner) => (1, inner.clone()),
        None => (0, None),
    }
}

impl<D: Driver> Store<D> {
    /// Register an app and record it in the audit log, in one batch: if the
    /// audit write fails, the app is not created.
    pub async fn insert_app(&self, a: &AppRow, audit: &Audit) -> Result<(), StoreError> {
        let insert = Stmt::new(
            "INSERT INTO apps (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon, \
             redirect_uris, scopes, client_type, actor_modes, secret_hash, secret_expires_at, webhook_url, \
             webhook_events, status, version, created_by, created_at, updated_at, bot_public, bot_require_code_grant, \
             webhook_secret, id_token_signed_response_alg, sector_identifier_uri, post_logout_redirect_uris, \
             backchannel_logout_uri, backchannel_logout_session_required, dpop_bound_access_tokens, \
             require_pushed_authorization_requests, client_auth_method, jwks, jwks_uri, token_endpoint_auth_signing_alg, \
             device_authorization, token_exchange) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, \
             ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37)",
            params![
                &a.id,
                a.owner_org_id.as_deref(),
                &a.name,
                &a.description,
                a.homepage_url.clone(),
                a.terms_url.clone(),
                a.privacy_url.clone(),
                a.icon.clone(),
                &a.redirect_uris,
                &a.scopes,
                &a.client_type,
                &a.actor_modes,
                a.secret_hash.clone(),
                a.secret_expires_at,
                a.webhook_url.clone(),
                &a.webhook_events,
                &a.status,
                a.version,
                a.created_by.clone(),
                a.created_at,
                a.updated_at,
                a.bot_public,
                a.bot_require_code_grant,
                a.webhook_secret.clone(),
            ]
            .into_iter()
            .chain(client_metadata_params(a))
            .chain(params![a.device_authorization])
            .chain(params![a.token_exchange.clone()])
            .collect(),
        );
        self.db.batch(vec![insert, audit.stmt()]).await.map(|_| ())
    }

    pub async fn app(&self, id: &str) -> Result<Option<AppRow>, StoreError> {
        self.one(Stmt::new("SELECT * FROM apps WHERE id = ?1", params![id]))
            .await
    }

    pub async fn apps_of_org(&self, org_id: &str) -> Result<Vec<AppRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT * FROM apps WHERE owner_org_id = ?1 ORDER BY created_at DESC, id",
            params![org_id],
        ))
        .await
    }

    /// Apply a patch if `version` is current (optimistic concurrency); returns
    /// the updated app, or `None` when the version was stale or the app gone.
    pub async fn update_app(
        &self,
        id: &str,
        version: i64,
        p: &AppPatch,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        let (hs, h) = opt(&p.homepage_url);
        let (ts, t) = opt(&p.terms_url);
        let (ps, pr) = opt(&p.privacy_url);
        let (is, i) = opt(&p.icon);
        let (ws, w) = opt(&p.webhook_url);
        let (algs, alg) = opt(&p.id_token_signed_response_alg);
        let (ss, sector) = opt(&p.sector_identifier_uri);
        let (bs, back) = opt(&p.backchannel_logout_uri);
        let (ms, method) = opt(&p.client_auth_method);
        let (js, jwks) = opt(&p.jwks);
        let (us, jwks_uri) = opt(&p.jwks_uri);
        let (gs, sig_alg) = opt(&p.token_endpoint_auth_signing_alg);
        let (xs, exchange) = opt(&p.token_exchange);
        let record = audit.stmt_if(
            audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND version = ?9 AND status != 'deleted')"),
            params![id, version],
        );
        let update = Stmt::new(
            "UPDATE apps SET name = COALESCE(?3, name), description = COALESCE(?4, description), \
             homepage_url = CASE WHEN ?5 THEN ?6 ELSE homepage_url END, terms_url = CASE WHEN ?7 THEN ?8 ELSE terms_url END, \
             privacy_url = CASE WHEN ?9 THEN ?10 ELSE privacy_url END, icon = CASE WHEN ?11 THEN ?12 ELSE icon END, \
             redirect_uris = COALESCE(?13, redirect_uris), scopes = COALESCE(?14, scopes), actor_modes = COALESCE(?15, actor_modes), \
             webhook_url = CASE WHEN ?16 THEN ?17 ELSE webhook_url END, webhook_events = COALESCE(?18, webhook_events), \
             bot_public = COALESCE(?19, bot_public), bot_require_code_grant = COALESCE(?20, bot_require_code_grant), \
             id_token_signed_response_alg = CASE WHEN ?22 THEN ?23 ELSE id_token_signed_response_alg END, \
             sector_identifier_uri = CASE WHEN ?24 THEN ?25 ELSE sector_identifier_uri END, \
             backchannel_logout_uri = CASE WHEN ?26 THEN ?27 ELSE backchannel_logout_uri END, \
             post_logout_redirect_uris = COALESCE(?28, post_logout_redirect_uris), \
             backchannel_logout_session_required = COALESCE(?29, backchannel_logout_session_required), \
             dpop_bound_access_tokens = COALESCE(?30, dpop_bound_access_tokens), \
             require_pushed_authorization_requests = COALESCE(?31, require_pushed_authorization_requests), \
             client_auth_method = CASE WHEN ?32 THEN ?33 ELSE client_auth_method END, \
             jwks = CASE WHEN ?34 THEN ?35 ELSE jwks END, jwks_uri = CASE WHEN ?36 THEN ?37 ELSE jwks_uri END, \
             token_endpoint_auth_signing_alg = CASE WHEN ?38 THEN ?39 ELSE token_endpoint_auth_signing_alg END, \
             secret_hash = CASE WHEN ?40 THEN NULL ELSE secret_hash END, \
             secret_expires_at = CASE WHEN ?40 THEN NULL ELSE secret_expires_at END, \
             device_authorization = COALESCE(?41, device_authorization), \
             token_exchange = CASE WHEN ?42 THEN ?43 ELSE token_exchange END, \
             version = version + 1, updated_at = ?21 \
             WHERE id = ?1 AND version = ?2 AND status != 'deleted' RETURNING *",
            params![
                id,
                version,
                p.name.clone(),
                p.description.clone(),
                hs,
                h,
                ts,
                t,
                ps,
                pr,
                is,
                i,
                p.redirect_uris.clone(),
                p.scopes.clone(),
                p.actor_modes.clone(),
                ws,
                w,
                p.webhook_events.clone(),
                p.bot_public,
                p.bot_require_code_grant,
                now,
                algs,
                alg,
                ss,
                sector,
                bs,
                back,
                p.post_logout_redirect_uris.clone(),
                p.backchannel_logout_session_required,
                p.dpop_bound_access_tokens,
                p.require_pushed_authorization_requests,
                ms,
                method,
                js,
                jwks,
                us,
                jwks_uri,
                gs,
                sig_alg,
                p.clear_secret as i64,
                p.device_authorization,
                xs,
                exchange
            ],
        );
        let mut res = self.db.batch(vec![record, update]).await?.into_iter();
        Ok(super::decode::<AppRow>(res.nth(1).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Replace the client secret: the old one stops working at once; tokens
    /// already issued live on (fsckmsft).
    pub async fn rotate_secret(
        &self,
        id: &str,
        hash: &str,
        expires_at: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        self.act_on_app(
            audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted' AND client_type = 'confidential' \
                    AND client_auth_method IS NULL)"),
                params![id],
            ),
            Stmt::new(
                "UPDATE apps SET secret_hash = ?2, secret_expires_at = ?3, version = version + 1, updated_at = ?4 \
                 WHERE id = ?1 AND status != 'deleted' AND client_type = 'confidential' AND client_auth_method IS NULL RETURNING *",
                params![id, hash, expires_at, now],
            ),
        )
        .await
    }

    pub async fn set_app_status(
        &self,
        id: &str,
        status: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        self.act_on_app(
            audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted')"),
                params![id],
            ),
            Stmt::new(
                "UPDATE apps SET status = ?2, version = version + 1, updated_at = ?3 WHERE id = ?1 AND status != 'deleted' RETURNING *",
                params![id, status, now],
            ),
        )
        .await
    }

    /// The audit record, then the act (`UPDATE apps … RETURNING *`), in one batch.
    pub(super) async fn act_on_app(&self, record: Stmt, act: Stmt) -> Result<Option<AppRow>, StoreError> {
        let mut res = self.db.batch(vec![record, act]).await?.into_iter();
        Ok(super::decode::<AppRow>(res.nth(1).unwrap_or_default())?
            .into_iter()
            .next())
    }

    /// Delete an app: irreversible. Its secret is erased, every grant and
    /// install revoked, consents forgotten. The row stays (status `deleted`)
    /// so ids are never reused and the `app.deleted` webhook can be signed.
    pub async fn delete_app(&self, id: &str, now: i64, audit: &Audit) -> Result<(), StoreError> {
        self.db
            .batch(vec![
                audit.stmt(),
                Stmt::new(
                    "UPDATE apps SET status = 'deleted', secret_hash = NULL, redirect_uris = '[]', version = version + 1, updated_at = ?2 \
                     WHERE id = ?1",
                    params![id, now],
                ),
                Stmt::new("UPDATE grants SET revoked_at = ?2 WHERE app_id = ?1 AND revoked_at IS NULL", params![id, now]),
                Stmt::new("UPDATE installs SET revoked_at = ?2 WHERE app_id = ?1 AND revoked_at IS NULL", params![id, now]),
                Stmt::new("DELETE FROM consents WHERE app_id = ?1", params![id]),
                Stmt::new("DELETE FROM codes WHERE app_id = ?1 AND used_at IS NULL", params![id]),
                Stmt::new("DELETE FROM webhook_secret_previous WHERE app_id = ?1", params![id]),
            ])
            .await
            .map(|_| ())
    }
}
