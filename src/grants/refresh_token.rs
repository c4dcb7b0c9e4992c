//! `grant_type=refresh_token` (RFC 6749 §6) with rotation (OAuth 2.1 §4.3.1):
//! each refresh token works once; presenting a spent one revokes the family
//! (RFC 9700 §4.14.2), since either the client or an attacker holds a copy.
//! Except, when `REFRESH_REUSE_GRACE_SECONDS` > 0, the same client replaying
//! the just-rotated token within that window (parallel refreshes, a lost
//! response): it gets a fresh pair, as Ory Hydra's and Okta's grace periods do.

use super::TokenResponse;
use super::{issue_access, well_formed};
use crate::client_auth::{self, Client, Credentials};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::scope;
use crate::store::{DpopUse, Driver, Rotation};

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let (token, narrowed, audience) = match checked(ctx, form) {
        Ok(v) => v,
        Err(e) => return Err(client_auth::after_auth(ctx, creds, e).await),
    };
    let old_hash = crypto::sha256_hex(token);
    let (access, refresh) = super::mint_pair(ctx.config, ctx.now, &creds, dpop);
    let default_audience = crate::audience::default_json(ctx.config, &ctx.issuer);
    // One round trip, the rotation guarded by the client's credentials.
    let guard = client_auth::guard(ctx, &creds);
    let (app, rotated) = ctx
        .store
        .rotate_refresh(
            &Rotation {
                old_hash: &old_hash,
                app_id: &creds.client_id,
                scopes: narrowed.as_deref(),
                now: ctx.now,
                access: &access.row,
                refresh: &refresh.row,
                grace: ctx.config.refresh_reuse_grace,
                audience: audience.as_deref(),
                default_audience: &default_audience,
                dpop,
            },
            &guard,
        )
        .await?;
    let client = match client_auth::verify(ctx, creds, app).await {
        Ok(c) => c,
        Err(e) => {
            // Unreachable while the SQL guard and `verify` agree.
            if let Some(r) = &rotated {
                ctx.store.revoke_grant(&r.grant_id, ctx.now).await?;
            }
            return Err(e);
        }
    };
    let client = &client;
    match rotated {
        Some(r) => {
            let (at, scopes) = issue_access(ctx, &client.app, access, (&r).into()).await?;
            // OIDC Core §12.2: the same `sub` and `auth_time` as at sign-in, no nonce.
            let id_token = super::id_token(ctx, &client.app, (&r).into(), &scopes, &at, None).await?;
            Ok(TokenResponse {
                id_token,
                ..TokenResponse::bearer(at, Some(refresh.plain), ctx.config.access_ttl, &scopes)
            })
        }
        None => {
            // The diagnosis runs whatever DPoP says: reuse revokes the family.
            let refusal = super::dpop_refusal(ctx, &client.app, dpop).await;
            let diagnosis = diagnose(ctx, client, &old_hash, narrowed.is_some(), audience.as_deref(), dpop).await;
            Err(refusal.unwrap_or(diagnosis))
        }
    }
}

/// A refresh request's token, narrower scope and narrower audience.
type Checked<'f> = (&'f str, Option<String>, Option<String>);

/// Checks that need no storage: the token's presence and shape, the scope,
/// and that each `resource` is one of ours.
fn checked<'f, D: Driver>(ctx: &Ctx<'_, D>, form: &'f Params) -> Result<Checked<'f>, OAuthError> {
    let Some(token) = form.get("refresh_token") else {
        return Err(OAuthError::InvalidRequest("refresh_token is required".into()));
    };
    let narrowed = narrowed_scope(form)?;
    let audience = crate::audience::requested_json(form, ctx.config, &ctx.issuer).map_err(OAuthError::InvalidTarget)?;
    if !well_formed(token, &ctx.config.prefixes.refresh) {
        return Err(OAuthError::InvalidGrant("the refresh token is not valid".into()));
    }
    Ok((token, narrowed, audience))
}

/// The narrower scope a refresh asks for (RFC 6749 §6), as stored JSON;
/// `None` when absent or empty (the grant's scope is kept).
pub(crate) fn narrowed_scope(form: &Params) -> Result<Option<String>, OAuthError> {
    match form.get("scope").map(scope::parse) {
        None => Ok(None),
        Some(Err(e)) => Err(OAuthError::InvalidScope(e)),
        Some(Ok(s)) if s.is_empty() => Ok(None),
        Some(Ok(s)) => Ok(Some(scope::to_json(&s))),
    }
}

pub(crate) async fn diagnose<D: Driver>(
    ctx: &Ctx<'_, D>,
    client: &Client,
    hash: &str,
    narrowing: bool,
    audience: Option<&str>,
    dpop: Option<&DpopUse>,
) -> OAuthError {
    let row = match ctx.store.token(hash).await {
        Ok(Some(r)) if r.kind == "refresh" => r,
        Ok(_) => return OAuthError::InvalidGrant("the refresh token is not valid".into()),
        Err(e) => return e.into(),
    };
    if row.app_id != client.app.id {
        return OAuthError::InvalidGrant("the refresh token was issued to another client".into());
    }
    // A spent token, or a sibling left behind when another successor of the
    // same token was used (a grace-window replay): either way a copy is in
    // other hands (RFC 9700 §4.14.2).
    let reused = row.used_at.is_some()
        || (row.revoked_at.is_none()
            && row.grant_revoked_at.is_none()
            && match ctx.store.superseded(hash).await {
                Ok(s) => s,
                Err(e) => return e.into(),
            });
    if reused {
        if let Err(e) = ctx.store.revoke_grant(&row.grant_id, ctx.now).await {
            return e.into();
        }
        return OAuthError::InvalidGrant(
            "the refresh token was already used; every token of this authorization is revoked".into(),
        );
    }
    if row.revoked_at.is_some() || row.grant_revoked_at.is_some() {
        return OAuthError::InvalidGrant("the authorization was revoked".into());
    }
    if let Some(e) = super::dpop_mismatch(row.jkt.as_deref(), dpop, "the refresh token") {
        return e;
    }
    if row.expires_at.is_some_and(|t| t <= ctx.now) {
        return OAuthError::InvalidGrant("the refresh token has expired".into());
    }
    // RFC 8707 §2.2: a refresh may ask for part of the grant's audience
    // (which the refresh token keeps whole), never for more.
    let granted = crate::audience::stored(row.audience.as_deref(), ctx.config, &ctx.issuer);
    if let Some(outside) = audience.and_then(|a| crate::audience::first_outside(a, &granted)) {
        return OAuthError::InvalidTarget(format!("the resource {outside:?} is not part of this authorization"));
    }
    if narrowing {
        return OAuthError::InvalidScope("a refresh may only narrow the granted scope".into());
    }
    OAuthError::InvalidGrant("the authorization is no longer valid".into())
}
