//! The OpenID client metadata of platform apps (`/api/v1/apps` and the
//! settings pages): the rules of `crate::client_metadata::openid`, and the
//! sector identifier document fetched when a registration names one.

use crate::cimd::sector;
use crate::client_metadata::openid::{self, OpenIdClient, Policy};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::registration::{AppUpdate, NewApp};
use crate::store::{AppPatch, AppRow, Driver};

/// The fields of a new app, its sector identifier document fetched and
/// checked. Called once the caller may manage apps of the org and the rest
/// of the app is valid, so only such a member can cause a fetch.
pub async fn for_new<D: Driver>(ctx: &Ctx<'_, D>, input: &NewApp) -> Result<OpenIdClient, ApiError> {
    let c = openid::validate(
        &openid::of_new_app(input),
        &input.redirect_uris,
        &Policy::from_config(ctx.config),
    )
    .map_err(ApiError::bad_request)?;
    if let Some(uri) = &c.sector_identifier_uri {
        sector::check_for_registration(ctx, uri, &input.redirect_uris, "invalid_request").await?;
    }
    Ok(c)
}

/// The fields of `app` after `u`, whose redirect URIs will be
/// `redirect_uris`: the whole app must hold after the update (a legacy app
/// spanning hosts under pairwise subjects must name a sector to be edited).
/// The sector document is fetched again only when the sector or the
/// redirect URIs change.
pub async fn for_update<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &AppRow,
    u: &AppUpdate,
    redirect_uris: &[String],
) -> Result<OpenIdClient, ApiError> {
    let c = openid::validate(&openid::merged(app, u), redirect_uris, &Policy::from_config(ctx.config))
        .map_err(ApiError::bad_request)?;
    if let Some(uri) = &c.sector_identifier_uri {
        if c.sector_identifier_uri != app.sector_identifier_uri || redirect_uris != app.redirect_uri_list() {
            sector::check_for_registration(ctx, uri, redirect_uris, "invalid_request").await?;
        }
    }
    Ok(c)
}

/// Every OpenID column of the patch, from the validated fields.
pub fn patch(p: &mut AppPatch, c: &OpenIdClient) {
    p.id_token_signed_response_alg = Some(c.id_token_signed_response_alg.clone());
    p.sector_identifier_uri = Some(c.sector_identifier_uri.clone());
    p.post_logout_redirect_uris = Some(crate::scope::to_json(&c.post_logout_redirect_uris));
    p.backchannel_logout_uri = Some(c.backchannel_logout_uri.clone());
    p.backchannel_logout_session_required = Some(c.backchannel_logout_session_required as i64);
}
