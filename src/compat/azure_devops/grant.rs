//! Azure DevOps's assertion form of the token endpoint: the JWT-bearer code exchange and its refresh (compat only).
//!
//! The request carries no `client_id`: the client is the one the code (or
//! refresh token) was issued to, and `client_assertion` is its secret. The
//! store reads that client's row and redeems (or rotates) under the same
//! [`client_ok!`](crate::store) condition as the core, naming the client by
//! the row it acts on, so the exchange stays one D1 round trip and a wrong,
//! rotated or expired secret redeems nothing. Replays, reuse, family
//! revocation and the diagnosis of a failure are the core grants' own.

use super::{self as ado, Form, TokenResponse, CLIENT_ASSERTION_TYPE};
use crate::client_auth::{self, Credentials, Method};
use crate::config::{LiveGrantsPer, PkceRequired};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::grants::{
    authorization_code, issue_access, mint_access, mint_refresh, note_redeemed, refresh_token, well_formed,
};
use crate::http::{Params, Request, Response};
use crate::store::{owner_guard, ClientGuard, Driver, Redemption, Rotation};

/// The token endpoint's answer to an assertion-form request; `None` for any
/// other request (the core's grants decide) and always with the profile off.
pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<Response> {
    if !ctx.config.azure_devops_compat {
        return None;
    }
    let form = req.form().ok()?;
    let which = ado::form_of(ctx.config, &form)?;
    ctx.effects.borrow_mut().route = match which {
        Form::Exchange => "token/jwt_bearer",
        Form::Refresh => "token/assertion_refresh",
    };
    let result = match which {
        Form::Exchange => exchange(ctx, req, &form).await,
        Form::Refresh => refresh(ctx, req, &form).await,
    };
    Some(match result {
        Ok(t) => Response::json(200, &t).no_store(),
        Err(e) => ado::error(which, e),
    })
}

/// The client assertion (the secret) and the guard that checks it in SQL;
/// nothing read yet. `assertion` is the code or refresh token.
struct Asserted<'f> {
    assertion: &'f str,
    secret: String,
    source: String,
    guard: ClientGuard,
}

fn asserted<'f, D: Driver>(ctx: &Ctx<'_, D>, req: &Request, form: &'f Params) -> Result<Asserted<'f>, OAuthError> {
    if let Some(name) = form.repeated(&[
        "grant_type",
        "assertion",
        "client_assertion",
        "client_assertion_type",
        "redirect_uri",
        "scope",
    ]) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    // One way to name and authenticate the client: the assertion's.
    if form.get("client_id").is_some() || form.get("client_secret").is_some() || req.header("authorization").is_some() {
        return Err(OAuthError::InvalidRequest(
            "the assertion form authenticates the client by client_assertion alone; send no client_id, \
             client_secret or Authorization header"
                .into(),
        ));
    }
    if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
        return Err(OAuthError::InvalidRequest(format!(
            "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        )));
    }
    let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
        return Err(OAuthError::InvalidRequest("assertion is required".into()));
    };
    let secret = match form.get("client_assertion") {
        Some(s) if !s.is_empty() && s.len() <= 256 => s.to_string(),
        _ => return Err(OAuthError::client("no usable client_assertion", false)),
    };
    let source = client_auth::source(&req.ip);
    let limit = ctx.config.client_auth_max_failures;
    let guard = owner_guard(
        crypto::sha256_hex(&secret),
        ctx.now,
        ctx.now - ctx.config.rate_window,
        if limit > 0 { limit } else { i64::MAX },
        &source,
    );
    Ok(Asserted {
        assertion,
        secret,
        source,
        guard,
    })
}

/// `client_auth::verify` for the client the store found behind the code or
/// token; `None` (nothing has that hash) is a bad grant, not a bad client.
async fn verify<D: Driver>(
    ctx: &Ctx<'_, D>,
    a: Asserted<'_>,
    app: Option<crate::store::AppRow>,
) -> Result<client_auth::Client, OAuthError> {
    let Some(app) = app else {
        return Err(OAuthError::InvalidGrant("unknown".into()));
    };
    let creds = Credentials {
        client_id: app.id.clone(),
        secret: Some(a.secret),
        method: Method::Post,
        source: a.source,
        assertion: None,
        proven: false,
    };
    client_auth::verify(ctx, creds, Some(app)).await
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=<code>`.
async fn exchange<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, form: &Params) -> Result<TokenResponse, OAuthError> {
    let a = asserted(ctx, req, form)?;
    let code = a.assertion;
    if !well_formed(code, &ctx.config.prefixes.code) {
        return Err(OAuthError::InvalidGrant("not a code".into()));
    }
    let code_hash = crypto::sha256_hex(code);
    let redirect = form.get("redirect_uri").unwrap_or("");
    let grant_id = crypto::new_id("grt_");
    // The document's apps name no resource: the default audience.
    let default_audience = crate::audience::default_json(ctx.config, &ctx.issuer);
    // RFC 9449 where the client sends a proof: the access token is bound (a
    // confidential client's refresh token is not, as in the core).
    let dpop = crate::grants::dpop_proof(ctx, req, false).await?;
    let dpop = dpop.as_ref();
    let mut access = mint_access(ctx.config, ctx.now);
    access.row.jkt = dpop.map(|d| d.jkt.clone());
    let refresh = mint_refresh(ctx.config, ctx.now);
    let (app, redeemed) = ctx
        .store
        .redeem_code_by_assertion(
            &Redemption {
                code_hash: &code_hash,
                app_id: "",
                redirect_uri: redirect,
                challenge: None,
                now: ctx.now,
                grant_id: &grant_id,
                access: &access.row,
                refresh: Some(&refresh.row),
                max_live_grants: ctx.config.max_live_grants,
                live_grants_per_org: ctx.config.live_grants_per == LiveGrantsPer::Org,
                verifier_required: ctx.config.pkce_required == PkceRequired::All,
                audience: None,
                default_audience: &default_audience,
                dpop,
            },
            &a.guard,
        )
        .await?;
    let client = match verify(ctx, a, app).await {
        Ok(c) => c,
        Err(e) => {
            // Unreachable while the SQL guard and `verify` agree.
            if redeemed.is_some() {
                ctx.store.revoke_grant(&grant_id, ctx.now).await?;
            }
            return Err(e);
        }
    };
    let Some(r) = redeemed else {
        // A replay revokes what the first redemption issued, as in the core.
        let refusal = crate::grants::dpop_refusal(ctx, &client.app, dpop).await;
        let diagnosis = authorization_code::diagnose(ctx, &client, &code_hash, redirect, None, None, dpop).await;
        return Err(refusal.unwrap_or(diagnosis));
    };
    note_redeemed(ctx, &client.app, &r);
    let (at, _) = issue_access(ctx, &client.app, access, (&r).into()).await?;
    Ok(TokenResponse::new(at, &refresh.plain, ctx.config.access_ttl).bound(dpop.is_some()))
}

/// `grant_type=refresh_token`, `assertion=<refresh token>` (its
/// `redirect_uri` is accepted and not checked: the refresh token is bound to
/// its client, which the assertion authenticates).
async fn refresh<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, form: &Params) -> Result<TokenResponse, OAuthError> {
    let a = asserted(ctx, req, form)?;
    let narrowed = refresh_token::narrowed_scope(form)?;
    let Some(inner) = ado::unwrap_refresh(ctx.config, a.assertion) else {
        return Err(OAuthError::InvalidGrant("not a refresh token".into()));
    };
    let old_hash = crypto::sha256_hex(&inner);
    let default_audience = crate::audience::default_json(ctx.config, &ctx.issuer);
    let dpop = crate::grants::dpop_proof(ctx, req, false).await?;
    let dpop = dpop.as_ref();
    let mut access = mint_access(ctx.config, ctx.now);
    access.row.jkt = dpop.map(|d| d.jkt.clone());
    let refresh = mint_refresh(ctx.config, ctx.now);
    let (app, rotated) = ctx
        .store
        .rotate_refresh_by_assertion(
            &Rotation {
                old_hash: &old_hash,
                app_id: "",
                scopes: narrowed.as_deref(),
                now: ctx.now,
                access: &access.row,
                refresh: &refresh.row,
                grace: ctx.config.refresh_reuse_grace,
                audience: None,
                default_audience: &default_audience,
                dpop,
            },
            &a.guard,
        )
        .await?;
    let client = match verify(ctx, a, app).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(r) = &rotated {
                ctx.store.revoke_grant(&r.grant_id, ctx.now).await?;
            }
            return Err(e);
        }
    };
    let Some(r) = rotated else {
        // A reused refresh token revokes its family, as in the core.
        let refusal = crate::grants::dpop_refusal(ctx, &client.app, dpop).await;
        let diagnosis = refresh_token::diagnose(ctx, &client, &old_hash, narrowed.is_some(), None, dpop).await;
        return Err(refusal.unwrap_or(diagnosis));
    };
    let (at, _) = issue_access(ctx, &client.app, access, (&r).into()).await?;
    Ok(TokenResponse::new(at, &refresh.plain, ctx.config.access_ttl).bound(dpop.is_some()))
}
