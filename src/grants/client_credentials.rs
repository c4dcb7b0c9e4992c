//! `grant_type=client_credentials` (RFC 6749 §4.4): the app acts as itself
//! (actor `app`, a bot identity) inside an org that installed it with that
//! actor, or, for bot-only apps (Fluxer), inside its owner org. No refresh
//! token is issued (§4.4.3). The org is named with the `org_id` parameter
//! when the app could act in more than one.

use super::TokenResponse;
use super::{access_token, Subject};
use crate::client_auth::{self, Credentials, Method};
use crate::config::LiveGrantsPer;
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::scope;
use crate::store::{AppToken, Driver, InstallRow, Store};

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&crate::store::DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let org_param = match form.get("org_id") {
        Some(o) if o.len() > 128 => {
            let e = OAuthError::InvalidRequest("org_id is too long".into());
            return Err(client_auth::after_auth(ctx, creds, e).await);
        }
        other => other,
    };
    // One round trip for the reads: the client, and the install in the named
    // org (or up to two app-actor installs, to find the only one).
    let guard = client_auth::guard(ctx, &creds);
    let stmt = match org_param {
        Some(org) => Store::<D>::install_stmt(&creds.client_id, org),
        None => Store::<D>::app_actor_installs_stmt(&creds.client_id, 2),
    };
    let (app, installs) = ctx.store.read_all_for_client::<InstallRow>(&guard, stmt).await?;
    let client = client_auth::verify(ctx, creds, app).await?;
    let app = &client.app;
    if client.method == Method::None {
        return Err(OAuthError::UnauthorizedClient(
            "client_credentials needs a confidential client".into(),
        ));
    }
    if !app.actor_mode_list().iter().any(|m| m == "app") {
        return Err(OAuthError::UnauthorizedClient(
            "this app does not allow the app actor".into(),
        ));
    }
    let requested = match form.get("scope").map(scope::parse) {
        Some(Err(e)) => return Err(OAuthError::InvalidScope(e)),
        Some(Ok(s)) => s,
        None => Vec::new(),
    };
    // RFC 8707 §2: no user approves a resource here; any listed one may be
    // named, and none means the default audience.
    let resources =
        crate::audience::requested(form, &ctx.config.resource_list(&ctx.issuer)).map_err(OAuthError::InvalidTarget)?;
    let audience_json = crate::audience::granted(ctx.config, &ctx.issuer, &resources);
    let declared = app.scope_list();
    let bot_only = app.actor_mode_list() == ["app"];
    let owner_allowed = bot_only && app.bot_require_code_grant == 0;
    let org_id = match org_param {
        Some(o) => o.to_string(),
        None => match (installs.as_slice(), owner_allowed) {
            ([only], false) => only.org_id.clone(),
            ([], true) if app.owner_org_id.is_some() => app.owner_org_id.clone().unwrap_or_default(),
            _ => return Err(OAuthError::InvalidRequest("name the organization with org_id".into())),
        },
    };
    let install = installs.iter().find(|i| i.org_id == org_id && i.app_actor == 1);
    let allowed = match install {
        Some(i) => scope::intersect(&scope::from_json(&i.scopes), &declared),
        None if app.owner_org_id.as_deref() == Some(org_id.as_str()) && owner_allowed => declared,
        None => {
            return Err(OAuthError::UnauthorizedClient(
                "an admin of that organization has not installed this app with its own actor".into(),
            ))
        }
    };
    let scopes = if requested.is_empty() {
        allowed.clone()
    } else {
        requested
    };
    if let Some(bad) = scope::first_outside(&scopes, &allowed) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad:?} was not granted to the app in that organization"
        )));
    }
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope is granted to the app in that organization".into(),
        ));
    }
    let access = super::mint_bound_access(ctx.config, ctx.now, app, dpop)?;
    let grant_id = crypto::new_id("grt_");
    let scopes_json = scope::to_json(&scopes);
    let issued = ctx
        .store
        .issue_app_token(&AppToken {
            grant_id: &grant_id,
            app_id: &app.id,
            org_id: &org_id,
            scopes: &scopes_json,
            access: &access.row,
            now: ctx.now,
            max_live: ctx.config.max_live_app_tokens,
            org_cap: (ctx.config.live_grants_per == LiveGrantsPer::Org).then_some(ctx.config.max_live_grants),
            via_install: install.is_some(),
            audience: &audience_json,
            dpop,
        })
        .await?;
    if !issued {
        if let Some(e) = super::dpop_refusal(ctx, app, dpop).await {
            return Err(e);
        }
        return Err(OAuthError::UnauthorizedClient(
            "the app's install in that organization was just removed".into(),
        ));
    }
    ctx.note(&app.id, Some(&org_id));
    ctx.mirror(&access.row.hash);
    let who = Subject {
        app,
        org_id: &org_id,
        actor: "app",
        user_id: None,
        scopes: &scopes,
        audience: &crate::audience::from_json(&audience_json),
        act: None,
    };
    Ok(TokenResponse::bearer(
        access_token(ctx, access, &who).await?,
        None,
        ctx.config.access_ttl,
        &scopes,
    ))
}
