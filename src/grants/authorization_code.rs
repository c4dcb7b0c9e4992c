//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6).

use super::TokenResponse;
use super::{issue_access, note_redeemed, well_formed};
use crate::client_auth::{self, Client, Credentials};
use crate::config::{LiveGrantsPer, PkceRequired};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::pkce;
use crate::store::{DpopUse, Driver, Redemption};

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let (code, audience) = match checked(ctx, form) {
        Ok(c) => c,
        Err(e) => return Err(client_auth::after_auth(ctx, creds, e).await),
    };
    let verifier = form.get("code_verifier");
    let code_hash = crypto::sha256_hex(code);
    let redirect = form.get("redirect_uri").unwrap_or("");
    let challenge = verifier.map(pkce::s256);
    let grant_id = crypto::new_id("grt_");
    let (access, refresh) = super::mint_pair(ctx.config, ctx.now, &creds, dpop);
    let default_audience = crate::audience::default_json(ctx.config, &ctx.issuer);
    // One round trip: the client's row, and the redemption guarded by the
    // client's credentials (nothing happens for a client that fails below).
    let guard = client_auth::guard(ctx, &creds);
    let (app, redeemed) = ctx
        .store
        .redeem_code(
            &Redemption {
                code_hash: &code_hash,
                app_id: &creds.client_id,
                redirect_uri: redirect,
                challenge: challenge.as_deref(),
                now: ctx.now,
                grant_id: &grant_id,
                access: &access.row,
                refresh: Some(&refresh.row),
                max_live_grants: ctx.config.max_live_grants,
                live_grants_per_org: ctx.config.live_grants_per == LiveGrantsPer::Org,
                verifier_required: ctx.config.pkce_required == PkceRequired::All,
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
            // Unreachable while the SQL guard and `verify` agree; if they
            // ever did not, nothing issued here may survive.
            if redeemed.is_some() {
                ctx.store.revoke_grant(&grant_id, ctx.now).await?;
            }
            return Err(e);
        }
    };
    if client.app.is_public() && verifier.is_none() {
        return Err(OAuthError::InvalidRequest(
            "public clients must send code_verifier".into(),
        ));
    }
    let client = &client;
    match redeemed {
        Some(r) => {
            note_redeemed(ctx, &client.app, &r);
            let (at, scopes) = issue_access(ctx, &client.app, access, (&r).into()).await?;
            let id_token = super::id_token(ctx, &client.app, (&r).into(), &scopes, &at, r.nonce.as_deref()).await?;
            Ok(TokenResponse {
                id_token,
                ..TokenResponse::bearer(at, Some(refresh.plain), ctx.config.access_ttl, &scopes)
            })
        }
        None => {
            // The diagnosis runs whatever DPoP says: a used code revokes
            // what it issued even when the request is a replay of the proof too.
            let refusal = super::dpop_refusal(ctx, &client.app, dpop).await;
            let diagnosis = diagnose(
                ctx,
                client,
                &code_hash,
                redirect,
                challenge.as_deref(),
                audience.as_deref(),
                dpop,
            )
            .await;
            Err(refusal.unwrap_or(diagnosis))
        }
    }
}

/// What can be checked before any storage access: the code's presence and
/// shape, the verifier's syntax, and that each `resource` is one of ours
/// (whether the code covers it is checked as it is redeemed).
fn checked<'f, D: Driver>(ctx: &Ctx<'_, D>, form: &'f Params) -> Result<(&'f str, Option<String>), OAuthError> {
    let Some(code) = form.get("code") else {
        return Err(OAuthError::InvalidRequest("code is required".into()));
    };
    if form.get("code_verifier").is_some_and(|v| !pkce::valid_verifier(v)) {
        return Err(OAuthError::InvalidRequest(
            "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~".into(),
        ));
    }
    let audience = crate::audience::requested_json(form, ctx.config, &ctx.issuer).map_err(OAuthError::InvalidTarget)?;
    if !well_formed(code, &ctx.config.prefixes.code) {
        return Err(OAuthError::InvalidGrant("the code is not valid".into()));
    }
    Ok((code, audience))
}

/// Nothing was redeemed: find out why, for a useful error, and revoke what a
/// first redemption issued if this is a replay (RFC 6749 §4.1.2, RFC 9700 §4.5).
pub(crate) async fn diagnose<D: Driver>(
    ctx: &Ctx<'_, D>,
    client: &Client,
    code_hash: &str,
    redirect: &str,
    challenge: Option<&str>,
    audience: Option<&str>,
    dpop: Option<&DpopUse>,
) -> OAuthError {
    let row = match ctx.store.code(code_hash).await {
        Ok(Some(r)) => r,
        Ok(None) => return OAuthError::InvalidGrant("the code is not valid".into()),
        Err(e) => return e.into(),
    };
    if row.app_id != client.app.id {
        return OAuthError::InvalidGrant("the code was issued to another client".into());
    }
    if row.used_at.is_some() {
        if let Some(g) = &row.grant_id {
            if let Err(e) = ctx.store.revoke_grant(g, ctx.now).await {
                return e.into();
            }
        }
        return OAuthError::InvalidGrant("the code was already used; tokens issued from it are revoked".into());
    }
    if row.expires_at <= ctx.now {
        return OAuthError::InvalidGrant("the code has expired".into());
    }
    if let Some(e) = super::dpop_mismatch(row.dpop_jkt.as_deref(), dpop, "the code (dpop_jkt)") {
        return e;
    }
    if row.redirect_uri != redirect {
        return OAuthError::InvalidGrant("redirect_uri does not match the authorization request".into());
    }
    match (row.challenge.as_deref(), challenge) {
        (None, Some(_)) => {
            return OAuthError::InvalidGrant(
                "code_verifier sent but the authorization request had no code_challenge".into(),
            )
        }
        (Some(_), None) => return OAuthError::InvalidGrant("code_verifier is required for this code".into()),
        (Some(stored), Some(sent)) if stored != sent => {
            return OAuthError::InvalidGrant("code_verifier does not match the code_challenge".into())
        }
        // A code minted without a challenge (under PKCE_REQUIRED=public) is
        // not redeemed without PKCE once every client must use it.
        (None, None) if ctx.config.pkce_required == PkceRequired::All => {
            return OAuthError::InvalidRequest("every client must send code_verifier".into())
        }
        _ => {}
    }
    // RFC 8707 §2.2: the token endpoint narrows what authorize approved,
    // never adds to it. The code stays redeemable (nothing was changed).
    let granted = crate::audience::stored(row.audience.as_deref(), ctx.config, &ctx.issuer);
    if let Some(outside) = audience.and_then(|a| crate::audience::first_outside(a, &granted)) {
        return OAuthError::InvalidTarget(format!("the resource {outside:?} was not approved for this code"));
    }
    // Everything the client sent matches: what failed is the user's
    // standing (left the org, or no longer owner/admin for the app actor).
    OAuthError::InvalidGrant("the user who approved this code may no longer authorize it in that organization".into())
}
