//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! what a client identified by an https URL is, how its document is fetched
//! (the [`Fetcher`] seam), judged, cached and materialised as an apps row.
//!
//! The row (id = the URL, no owner, `registration = 'metadata_document'`,
//! public, actor `self` only) makes codes, grants, tokens, refresh and
//! revocation work unchanged. Authorize refetches the document once the
//! cached copy has expired; a failed refetch refuses (nothing stale is
//! served: the document is the client's only registration, and its owner
//! may have removed a redirect URI on purpose). The token endpoint never
//! fetches: the row exists since authorize, and a code issued under an older
//! document was issued under rules that held then.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod sector;

use crate::client_metadata::openid::Policy;
use crate::client_metadata::sender::PRIVATE_KEY_JWT;
use crate::client_metadata::{self, ClientMetadata};
use crate::context::Ctx;
pub use crate::http::{Fetched, Fetcher, NoFetcher};
use crate::registration;
use crate::store::{AppRow, Driver, Slot};

/// Longest client_id URL accepted (the token endpoint's client_id limit too).
pub const MAX_URL_LEN: usize = 255;
/// Upper bound on how long a document is trusted without refetching.
pub const MAX_CACHE_SECONDS: i64 = 24 * 3600;
/// A document that says nothing about caching is kept this long.
pub const DEFAULT_CACHE_SECONDS: i64 = 300;
/// A failed fetch of a URL never stored is remembered this long: authorize
/// answers from the memory, fetching nothing and charging no budget, so a
/// third party's failures cost the document host's budget once a minute per URL.
pub const FAILURE_CACHE_SECONDS: i64 = 60;
/// What the page says of any fetch that brought back no document: the
/// upstream status or error would make the server an oracle on other hosts;
/// the detail goes to the request's log line.
pub const NOT_FETCHED: &str = "the client's metadata document could not be fetched";

/// Does this client_id claim to be a URL (and so a metadata document client)?
pub fn is_url_client_id(client_id: &str) -> bool {
    let lower = client_id.get(..8).unwrap_or("").to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// May this client act now? A URL client only while CIMD is on and its host
/// is allowed (`CIMD_ALLOWED_HOSTS` may have changed since its authorize);
/// any other client, yes. A check of the configuration alone, so the token
/// endpoint, revocation, introspection and every bearer mode apply it with
/// no storage read, as they apply a suspension.
pub fn admitted(config: &crate::config::Config, client_id: &str) -> bool {
    if !is_url_client_id(client_id) {
        return true;
    }
    config.cimd
        && url::Url::parse(client_id)
            .ok()
            .and_then(|u| u.host_str().map(|h| host_allowed(&config.cimd_allowed_hosts, h)))
            .unwrap_or(false)
}

/// A host name that is this computer: the loopback addresses, `localhost`
/// and every `*.localhost` name (RFC 6761 §6.3 reserves them for loopback).
fn names_loopback(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    crate::redirect_uri::is_loopback_host(&h) || h == "localhost" || h.ends_with(".localhost")
}

/// The draft's rules for a client identifier URL (§3): https, a path, no
/// dot segments, no fragment, no user info. Stricter here: no query string
/// (the draft says a client SHOULD NOT use one; each variant would be
/// another client and another stored row), no IP-literal or loopback host
/// (SSRF), no host with a trailing dot, at most [`MAX_URL_LEN`] characters.
/// A loopback host (`localhost`, `*.localhost`, 127.0.0.1, ::1) is admitted
/// only with `allow_http_loopback` (development), over `http://` or https.
/// The trust policy (`CIMD_ALLOWED_HOSTS`): a listed host or a subdomain of
/// one; an empty list trusts any host.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| host == *a || host.strip_suffix(a.as_str()).is_some_and(|p| p.ends_with('.')))
}

pub fn check_url(raw: &str, allow_http_loopback: bool) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("the client_id URL is longer than {MAX_URL_LEN} characters"));
    }
    let u = url::Url::parse(raw).map_err(|_| "the client_id is not a valid URL".to_string())?;
    let host = u.host_str().unwrap_or("");
    let loopback = names_loopback(host);
    match u.scheme() {
        "https" => {}
        "http" if loopback && allow_http_loopback => {}
        _ => return Err("the client_id URL must use https".into()),
    }
    // `localhost.` is loopback too, and `example.com.` another spelling of
    // `example.com`: one document, one spelling.
    if host.ends_with('.') {
        return Err("the client_id URL's host must not end with a dot (a trailing dot)".into());
    }
    if loopback && !allow_http_loopback {
        return Err("the client_id URL names a loopback host (this computer), accepted only in development".into());
    }
    if !loopback && matches!(u.host(), Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))) {
        return Err("the client_id URL must name a host, not an IP address".into());
    }
    if raw.contains('#') {
        return Err("the client_id URL must not contain a fragment".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the client_id URL must not contain a user name or password".into());
    }
    if raw.contains('?') {
        return Err("the client_id URL must not contain a query string".into());
    }
    // The parser resolves dot segments, so they are looked for in the raw text.
    let after_scheme = raw.split_once("://").map(|(_, r)| r).unwrap_or("");
    let raw_path = after_scheme.find('/').map(|i| &after_scheme[i..]).unwrap_or("");
    if raw_path.is_empty() || raw_path == "/" {
        return Err("the client_id URL must have a path".into());
    }
    if raw_path.split('/').any(|s| {
        let s = s.to_ascii_lowercase();
        matches!(s.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    }) {
        return Err("the client_id URL must not contain . or .. path segments".into());
    }
    // A parser also turns `\` into `/` and drops tabs and newlines, so
    // `x\..\c.json` or `.<TAB>.` hide a dot segment from the check above:
    // the id must be the URL exactly as fetched (the draft compares ids as
    // plain strings, so one document must have one spelling).
    if u.as_str() != raw {
        return Err(format!(
            "the client_id URL must be in normalized form (it reads as {}), without . or .. path segments",
            u.as_str()
        ));
    }
    Ok(u)
}

/// Seconds the document may be used without refetching: `no-store` and
/// `no-cache` mean every authorize fetches it again; otherwise `max-age`,
/// else `Expires`, else [`DEFAULT_CACHE_SECONDS`]; never more than a day.
pub fn cache_lifetime(cache_control: Option<&str>, expires_at: Option<i64>, now: i64) -> i64 {
    let mut max_age = None;
    for d in cache_control.unwrap_or("").split(',') {
        let d = d.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return 0;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            // An unparsable max-age is treated as stale (RFC 9111 §4.2.1).
            max_age = Some(v.trim_matches('"').parse::<i64>().unwrap_or(0));
        }
    }
    let secs = max_age
        .or_else(|| expires_at.map(|t| t - now))
        .unwrap_or(DEFAULT_CACHE_SECONDS);
    secs.clamp(0, MAX_CACHE_SECONDS)
}

/// Judge a fetched document for `url`; the client's row if it is acceptable
/// (without timestamps), else why not, in words for the error page.
/// `policy`: what the OpenID fields may ask for (the sector identifier
/// document is fetched by [`resolve`], not here).
pub fn judge(
    url: &str,
    host: &str,
    fetched: &Fetched,
    catalogue: &[String],
    policy: &Policy,
) -> Result<AppRow, String> {
    if (300..400).contains(&fetched.status) {
        return Err(format!(
            "the client's metadata document redirects (HTTP {}); redirects are not followed",
            fetched.status
        ));
    }
    if fetched.status != 200 {
        return Err(format!(
            "the client's metadata document answered HTTP {}",
            fetched.status
        ));
    }
    let json_type = fetched.content_type.as_deref().is_some_and(|t| {
        let essence = t.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    if !json_type {
        return Err("the client's metadata document is not served as application/json".into());
    }
    let doc: ClientMetadata = serde_json::from_slice(&fetched.body)
        .map_err(|_| "the client's metadata document is not a JSON object of client metadata".to_string())?;
    // Simple string comparison, no normalisation (draft §4).
    if doc.client_id.as_deref() != Some(url) {
        return Err("the client_id in the metadata document is not the URL it was fetched from".into());
    }
    if doc.client_secret.is_some() || doc.client_secret_expires_at.is_some() {
        return Err("the metadata document carries a client secret; a client identified by URL has none".into());
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") | Some(PRIVATE_KEY_JWT) => {}
        Some(m) => {
            return Err(format!(
                "the metadata document asks for token_endpoint_auth_method {m:?}; only \"none\" (a public client with PKCE) \
                 or \"private_key_jwt\" (the client's own key) is accepted"
            ))
        }
    }
    // The rules of dynamic registration, for a client without a secret.
    let app = client_metadata::validate(&doc, false, true, catalogue, &[], policy)
        .map_err(|e| format!("the client's metadata document is not acceptable: {}", e.description))?;
    // Unnamed, it is known by the host that vouches for it.
    let public = app.is_public();
    let name = match doc.client_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => app.name,
        _ => host.to_string(),
    };
    let mut row = AppRow {
        id: url.to_string(),
        owner_org_id: None,
        name,
        description: String::new(),
        homepage_url: app.homepage_url,
        terms_url: app.terms_url,
        privacy_url: app.privacy_url,
        icon: app.icon,
        redirect_uris: registration::to_json(&app.redirect_uris),
        scopes: registration::to_json(&registration::normalized(&app.scopes)),
        client_type: if public { "public" } else { "confidential" }.into(),
        actor_modes: registration::to_json(&["self".to_string()]),
        secret_hash: None,
        secret_expires_at: None,
        webhook_url: None,
        webhook_events: "[]".into(),
        status: "active".into(),
        version: 1,
        created_by: None,
        created_at: 0,
        updated_at: 0,
        bot_public: 0,
        bot_require_code_grant: 0,
        webhook_secret: None,
        registration: "metadata_document".into(),
        last_used_at: None,
        metadata_expires_at: None,
        auth_failures: 0,
        id_token_signed_response_alg: None,
        sector_identifier_uri: None,
        post_logout_redirect_uris: "[]".into(),
        backchannel_logout_uri: None,
        backchannel_logout_session_required: 0,
        dpop_bound_access_tokens: 0,
        require_pushed_authorization_requests: 0,
        client_auth_method: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        device_authorization: 0,
        token_exchange: None,
    };
    app.openid.apply(&mut row);
    app.sender.apply(&mut row);
    Ok(row)
}

/// Why a metadata document client cannot be used; shown as a page, never
/// redirected (the redirect URIs are not trusted yet).
pub enum Refused {
    /// The URL or its document is not acceptable (400).
    Client(String),
    /// `CIMD_MAX_CLIENTS` are stored: a new URL must wait for the sweep (429).
    Full,
    /// This address, or this document host, has had its fetches for the
    /// minute (429).
    Busy,
    /// Storage failed (503).
    Storage(crate::error::StoreError),
}

/// The client for `url`: `known` (the stored row, as authorize read it) while
/// its document is fresh, else the document fetched, judged and stored again.
/// A banned (`deleted`) or suspended row is returned as it is, unfetched: the
/// caller refuses it, and the operator's decision is never refreshed away.
pub async fn resolve<D: Driver>(ctx: &Ctx<'_, D>, url: &str, known: Option<AppRow>) -> Result<AppRow, Refused> {
    let parsed = check_url(url, ctx.config.cimd_allow_http_loopback).map_err(Refused::Client)?;
    let host = parsed.host_str().unwrap_or("");
    if !host_allowed(&ctx.config.cimd_allowed_hosts, host) {
        return Err(Refused::Client(format!(
            "{host} is not among the hosts this server accepts client metadata documents from"
        )));
    }
    let prior_scopes = known.as_ref().map(|a| a.scopes.clone());
    let stored = known.is_some();
    if let Some(app) = known {
        if app.registration != "metadata_document" {
            return Err(Refused::Client("no application has this client_id".into()));
        }
        if app.status != "active" || app.metadata_expires_at.is_some_and(|t| t > ctx.now) {
            return Ok(app);
        }
    }
    // A URL never stored whose fetch failed moments ago is not fetched again
    // (a stored client's refetch spends only its own budget, and its owner
    // may be fixing the document right now).
    let failed_key = format!("cimd:failed:{url}");
    if !stored
        && ctx
            .store
            .failures(&failed_key, ctx.now - FAILURE_CACHE_SECONDS)
            .await
            .map_err(Refused::Storage)?
            > 0
    {
        return Err(Refused::Client(format!(
            "{NOT_FETCHED} (it failed moments ago; try again in a minute)"
        )));
    }
    // Only URLs never stored compete for the host's budget: a stored
    // client's refetch has a budget of its own, which nobody else's
    // failures (or new URLs) can spend.
    let budget = [
        Slot {
            key: format!("cimd:source:{}", ctx.source),
            limit: ctx.config.cimd_fetches_per_source,
        },
        Slot {
            key: match stored {
                true => format!("cimd:url:{url}"),
                false => format!("cimd:host:{host}"),
            },
            limit: ctx.config.cimd_fetches_per_host,
        },
    ];
    if !ctx
        .store
        .take_slots(&budget, ctx.now, 60)
        .await
        .map_err(Refused::Storage)?
    {
        return Err(Refused::Busy);
    }
    let fetched = ctx
        .fetcher
        .get(url, ctx.config.cimd_fetch_timeout, ctx.config.cimd_max_document_bytes)
        .await;
    let cap = ctx.config.cimd_max_document_bytes;
    let fetched = match fetched {
        // The fetcher stops reading past the cap; this holds whatever fetcher runs.
        Ok(f) if f.status == 200 && f.body.len() <= cap => f,
        other => {
            let why = match other {
                Err(e) => e,
                Ok(f) if f.status != 200 => format!("HTTP {}", f.status),
                Ok(_) => format!("the document is larger than {cap} bytes"),
            };
            ctx.effects.borrow_mut().error = Some(format!("metadata document {url}: {why}"));
            if !stored {
                ctx.store
                    .record_failure(&failed_key, ctx.now, FAILURE_CACHE_SECONDS)
                    .await
                    .map_err(Refused::Storage)?;
            }
            return Err(Refused::Client(NOT_FETCHED.into()));
        }
    };
    let catalogue = crate::catalogue::scopes(ctx).await.map_err(Refused::Storage)?;
    let policy = Policy::from_config(ctx.config);
    let mut row = judge(url, host, &fetched, &catalogue, &policy).map_err(Refused::Client)?;
    // Refreshed with the document, on its budget (see `sector`).
    if let Some(sector_uri) = row.sector_identifier_uri.clone() {
        sector::check(ctx, &sector_uri, &row.redirect_uri_list(), false)
            .await
            .map_err(|r| match r {
                Refused::Client(why) => {
                    Refused::Client(format!("the client's metadata document is not acceptable: {why}"))
                }
                other => other,
            })?;
    }
    let lifetime = cache_lifetime(fetched.cache_control.as_deref(), fetched.expires_at, ctx.now);
    row.created_at = ctx.now;
    row.updated_at = ctx.now;
    row.metadata_expires_at = Some(ctx.now + lifetime);
    let audit = ctx.audit_entry(
        crate::store::provisioning::PLATFORM_AUDIT_ORG,
        "metadata_document_client",
        url,
        Some(url),
        "client.registered",
        serde_json::json!({"client_id": url, "registration": "metadata_document", "host": host,
            "client_name": row.name}),
    );
    match ctx
        .store
        .save_metadata_document_client(&row, ctx.config.cimd_max_clients, &audit)
        .await
    {
        Ok(Some(saved)) => {
            // The declared scopes bound every token of the client: a
            // narrower document counts on this isolate's next bearer check
            // (and, in edge mode, on KV) as an app update does, though
            // authorize is a GET.
            if prior_scopes.is_some_and(|s| s != saved.scopes) {
                ctx.revoked();
            }
            Ok(saved)
        }
        Ok(None) => Err(Refused::Full),
        Err(e) => Err(Refused::Storage(e)),
    }
}

/// The host a metadata document client is known by on consent.
pub fn host_of(app: &AppRow) -> Option<String> {
    if app.registration != "metadata_document" {
        return None;
    }
    url::Url::parse(&app.id).ok()?.host_str().map(str::to_string)
}

#[cfg(test)]
mod tests;
