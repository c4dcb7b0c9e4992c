//! Grant handlers, one module per `grant_type` (RFC 6749 §4–6).
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod id_jag;
pub mod refresh_token;
pub mod token_exchange;

use serde::Serialize;

use crate::client_auth::{Credentials, Method};
use crate::config::DpopRequired;
use crate::config::{AccessTokenFormat, Config};
use crate::context::Ctx;
use crate::crypto;
/// The token shape check, kept here for the grants that name it as `super::well_formed`.
pub use crate::crypto::well_formed;
use crate::error::OAuthError;
use crate::http::Request;
use crate::store::NewToken;
use crate::store::{AppRow, DpopUse, Driver, Redeemed, Rotated};

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// OIDC Core §3.1.3.3: with `openid` granted ([`id_token`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TokenResponse {
    pub fn bearer(access: String, refresh: Option<String>, expires_in: i64, scopes: &[String]) -> Self {
        TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in,
            refresh_token: refresh,
            scope: crate::scope::join(scopes),
            id_token: None,
            issued_token_type: None,
        }
    }
}

/// A freshly minted token: plaintext for the response, hash for the store.
pub struct Minted {
    pub plain: String,
    pub row: NewToken,
}

pub fn mint(prefix: &str, expires_at: Option<i64>) -> Minted {
    let plain = crypto::new_token(prefix);
    let row = NewToken {
        hash: crypto::sha256_hex(&plain),
        expires_at,
        jkt: None,
    };
    Minted { plain, row }
}

/// The access token's storage handle, minted before the issuing batch (whose
/// rows the token's claims come from). Opaque format: the token itself. JWT
/// format: the `jti`, 256 random bits without the access prefix (so it is
/// never accepted as an opaque token); D1 keeps its SHA-256 either way.
pub fn mint_access(config: &Config, now: i64) -> Minted {
    match config.access_token_format {
        AccessTokenFormat::Opaque => mint(&config.prefixes.access, Some(now + config.access_ttl)),
        AccessTokenFormat::Jwt => mint("", Some(now + config.access_ttl)),
    }
}

/// Who an issued access token speaks for: the claims a JWT carries.
pub struct Subject<'a> {
    /// The client: its id, and its sector for a pairwise `sub`.
    pub app: &'a AppRow,
    pub org_id: &'a str,
    pub actor: &'a str,
    pub user_id: Option<&'a str>,
    pub scopes: &'a [String],
    /// The resources the token is for (RFC 8707), as stored with it.
    pub audience: &'a [String],
    /// RFC 8693 §4.1: the acting party of an exchanged token.
    pub act: Option<serde_json::Value>,
}

/// The grant a won redemption or rotation issued into, as its batch
/// returned it (scopes and audience as JSON arrays).
pub struct Issued<'a> {
    pub org_id: &'a str,
    pub actor: &'a str,
    pub user_id: Option<&'a str>,
    pub scopes: &'a str,
    pub audience: &'a str,
    /// The sign-in the grant came from, for its ID tokens (OIDC Core §2, §12.2).
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
    pub sid: Option<&'a str>,
}

impl<'a> From<&'a Redeemed> for Issued<'a> {
    fn from(r: &'a Redeemed) -> Self {
        Issued {
            org_id: &r.org_id,
            actor: &r.actor,
            user_id: r.user_id.as_deref(),
            scopes: &r.scopes,
            audience: &r.audience,
            auth_time: r.auth_time,
            acr: r.acr.as_deref(),
            amr: r.amr.as_deref(),
            sid: r.sid.as_deref(),
        }
    }
}

impl<'a> From<&'a Rotated> for Issued<'a> {
    fn from(r: &'a Rotated) -> Self {
        Issued {
            org_id: &r.org_id,
            actor: &r.actor,
            user_id: r.user_id.as_deref(),
            scopes: &r.scopes,
            audience: &r.audience,
            auth_time: r.auth_time,
            acr: r.acr.as_deref(),
            amr: r.amr.as_deref(),
            sid: r.sid.as_deref(),
        }
    }
}

/// What a won code redemption records besides its tokens: the log line's
/// client and org, and `app.installed` when the app was new to the org.
/// The app reads `installed_by` as its own `sub` for that user (never the
/// internal id under pairwise subjects).
pub fn note_redeemed<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, r: &Redeemed) {
    ctx.note(&app.id, Some(&r.org_id));
    if r.new_install {
        let by = r
            .user_id
            .as_deref()
            .map(|u| crate::oidc::subject::subject(ctx.config, app, u));
        let data = serde_json::json!({"org_id": r.org_id, "actor": r.actor, "installed_by": by});
        ctx.event(&app.id, Some(&r.org_id), "app.installed", data);
    }
}

/// The access token of a won redemption or rotation (copied to the edge
/// mirror, then in the configured format), and its scopes.
pub async fn issue_access<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &AppRow,
    access: Minted,
    g: Issued<'_>,
) -> Result<(String, Vec<String>), OAuthError> {
    ctx.mirror(&access.row.hash);
    let scopes = crate::scope::from_json(g.scopes);
    let audience = crate::audience::from_json(g.audience);
    let who = Subject {
        app,
        org_id: g.org_id,
        actor: g.actor,
        user_id: g.user_id,
        scopes: &scopes,
        audience: &audience,
        act: None,
    };
    let token = access_token(ctx, access, &who).await?;
    Ok((token, scopes))
}

/// The token format seam (fosite's `AccessTokenStrategy`): what the client
/// receives for a minted handle, once the batch has issued it.
pub async fn access_token<D: Driver>(
    ctx: &Ctx<'_, D>,
    minted: Minted,
    who: &Subject<'_>,
) -> Result<String, OAuthError> {
    match ctx.config.access_token_format {
        AccessTokenFormat::Opaque => Ok(minted.plain),
        AccessTokenFormat::Jwt => {
            // RFC 9068 §2.2: `sub` is the resource owner, as this client
            // knows them (the same `sub` as its ID token and UserInfo), or
            // the client itself when no user is involved (the app actor).
            let sub = match (who.actor, who.user_id) {
                ("self", Some(u)) => crate::oidc::subject::subject(ctx.config, who.app, u),
                _ => who.app.id.clone(),
            };
            let claims = crate::jwt::Claims {
                iss: ctx.issuer.clone(),
                sub,
                aud: crate::audience::Audience(who.audience.to_vec()),
                exp: minted.row.expires_at.unwrap_or(ctx.now + ctx.config.access_ttl),
                iat: ctx.now,
                jti: minted.plain,
                client_id: who.app.id.clone(),
                scope: crate::scope::join(who.scopes),
                org_id: who.org_id.to_string(),
                actor: who.actor.to_string(),
                // RFC 9449 §6.1: the key the token is bound to.
                cnf: minted.row.jkt.clone().map(|jkt| crate::jwt::Cnf { jkt }),
                act: who.act.clone(),
            };
            crate::jwt::sign(ctx.es256, &ctx.config.jwt_keys, &claims)
                .await
                .map_err(|e| {
                    ctx.effects.borrow_mut().error = Some(format!("signing the access token: {e}"));
                    OAuthError::ServerError("the access token could not be signed".into())
                })
        }
    }
}

/// The request's DPoP proof, verified (RFC 9449 §4.3), before any storage
/// access; none where `DPOP_REQUIRED` asks for one is refused here too.
/// `public`: the client authenticates with `none`.
pub async fn dpop_proof<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    public: bool,
) -> Result<Option<DpopUse>, OAuthError> {
    let Some(proof) = crate::dpop::header(req)? else {
        let required = match ctx.config.dpop.required {
            DpopRequired::Off => false,
            DpopRequired::Public => public,
            DpopRequired::All => true,
        };
        if required {
            return Err(OAuthError::InvalidDpopProof(
                "this server requires a DPoP proof of this client (DPOP_REQUIRED)".into(),
            ));
        }
        return Ok(None);
    };
    let p = crate::dpop::verify(ctx, req, proof, None).await?;
    Ok(Some(DpopUse {
        replay_key: p.replay_key(),
        replay_until: p.replay_until(ctx.config.dpop.max_age),
        jkt: p.jkt,
    }))
}

/// The access token and refresh token a grant mints, bound to the proof's
/// key: the access token always (§5), the refresh token of a public client
/// only (§5: a confidential client authenticates each refresh anyway).
pub fn mint_pair(config: &Config, now: i64, creds: &Credentials, dpop: Option<&DpopUse>) -> (Minted, Minted) {
    let mut access = mint_access(config, now);
    let mut refresh = mint_refresh(config, now);
    access.row.jkt = dpop.map(|d| d.jkt.clone());
    if creds.method == Method::None {
        refresh.row.jkt = access.row.jkt.clone();
    }
    (access, refresh)
}

/// The access token of a grant that issues no refresh token, bound to the
/// proof's key (RFC 9449 §5); a client that requires DPoP
/// (`dpop_bound_access_tokens`) without a proof is refused first.
pub fn mint_bound_access(
    config: &Config,
    now: i64,
    app: &AppRow,
    dpop: Option<&DpopUse>,
) -> Result<Minted, OAuthError> {
    if app.dpop_bound_access_tokens != 0 && dpop.is_none() {
        return Err(OAuthError::InvalidDpopProof(
            "this client must send a DPoP proof (dpop_bound_access_tokens)".into(),
        ));
    }
    let mut access = mint_access(config, now);
    access.row.jkt = dpop.map(|d| d.jkt.clone());
    Ok(access)
}

/// When a guarded issuing statement did nothing: is DPoP the reason? The
/// client's own requirement (`dpop_bound_access_tokens`), or a proof used
/// before (one read, on this failure path only).
pub async fn dpop_refusal<D: Driver>(ctx: &Ctx<'_, D>, app: &AppRow, dpop: Option<&DpopUse>) -> Option<OAuthError> {
    match dpop {
        None if app.dpop_bound_access_tokens != 0 => Some(OAuthError::InvalidDpopProof(
            "this client must send a DPoP proof (dpop_bound_access_tokens)".into(),
        )),
        None => None,
        Some(d) => match ctx.store.dpop_proof_used(&d.replay_key).await {
            Ok(true) => Some(OAuthError::InvalidDpopProof("this DPoP proof was already used".into())),
            Ok(false) => None,
            Err(e) => Some(e.into()),
        },
    }
}

/// A code or refresh token bound to a key (`bound`) presented without a proof by it.
pub fn dpop_mismatch(bound: Option<&str>, dpop: Option<&DpopUse>, what: &str) -> Option<OAuthError> {
    match bound {
        Some(b) if dpop.map(|d| d.jkt.as_str()) != Some(b) => Some(OAuthError::InvalidDpopProof(format!(
            "{what} is bound to another DPoP key; send a proof signed by it"
        ))),
        _ => None,
    }
}

pub fn mint_refresh(config: &Config, now: i64) -> Minted {
    mint(&config.prefixes.refresh, config.refresh_idle_ttl.map(|t| now + t))
}

/// The ID token of a won code redemption or refresh (OIDC Core §3.1.3.3,
/// §12.2): only with `OPENID=on`, `openid` among the granted scopes, and a
/// user the tokens speak for (the `self` actor). The `app` actor's tokens
/// speak for the app's own identity in the org, not for the admin who
/// installed it: they come without an ID token (the app would otherwise
/// take that admin as signed in to it).
pub async fn id_token<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &crate::store::AppRow,
    g: Issued<'_>,
    scopes: &[String],
    access_token: &str,
    nonce: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let Some(user_id) = g.user_id else { return Ok(None) };
    if !ctx.config.openid || g.actor != "self" || !scopes.iter().any(|s| s == crate::scope::OPENID) {
        return Ok(None);
    }
    let facts = crate::oidc::id_token::Facts {
        user_id,
        org_id: g.org_id,
        access_token: Some(access_token),
        nonce,
        auth_time: g.auth_time,
        acr: g.acr,
        amr: g.amr,
        sid: g.sid,
    };
    crate::oidc::id_token::sign(ctx, app, &facts)
        .await
        .map(Some)
        .map_err(|e| {
            ctx.effects.borrow_mut().error = Some(format!("signing the ID token: {e}"));
            OAuthError::ServerError("the ID token could not be signed".into())
        })
}
