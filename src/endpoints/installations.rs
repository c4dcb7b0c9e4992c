//! Where an app is installed, as its developers and the orgs' admins see it
//! (`GET /api/v1/apps/{id}/installations`, and the rows of
//! `GET /api/v1/orgs/{org}/installations`).

use serde_json::json;

use crate::api_auth::{self, Caller};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::Response;
use crate::store::{Driver, InstallationRow};

/// `installed_by`: the user as the viewer may see them (the org's own
/// admins: the user id; the app's developers: the app's `sub`).
pub fn installation_json(i: &InstallationRow, installed_by: Option<String>) -> serde_json::Value {
    json!({
        "app_id": i.app_id, "app_name": i.app_name, "org_id": i.org_id, "org_slug": i.org_slug, "org_name": i.org_name,
        "app_actor": i.app_actor == 1, "installed_by": installed_by, "installed_at": i.created_at,
        "live_authorizations": i.live_grants,
    })
}

/// Workspaces (orgs) where the app is authorized now: a live grant there, or
/// a live install of its bot (actor `app`). An install whose every user has
/// revoked does not count (fsckmsft "authorized workspaces").
fn authorized_workspaces(rows: &[InstallationRow]) -> usize {
    rows.iter().filter(|i| i.live_grants > 0 || i.app_actor == 1).count()
}

/// The orgs an app is installed in. The rows name other tenants and who
/// installed the app there (as the app sees them: pairwise subjects stay
/// pairwise), so only an owner or admin of the app's owner org sees them.
pub async fn of_app<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<Response, ApiError> {
    let app = super::apps::visible_app(ctx, caller).await?;
    let rows = ctx.store.installations_of_app(&app.id).await?;
    let role = caller
        .role_in(app.owner_org_id.as_deref().unwrap_or_default())
        .unwrap_or_default();
    let mut body = json!({
        "app_id": app.id,
        "count": authorized_workspaces(&rows),
        "installed_count": rows.len(),
        "live_authorizations": rows.iter().map(|i| i.live_grants).sum::<i64>(),
    });
    if api_auth::role_has(ctx, role, "org.admin").await? {
        let by = |i: &InstallationRow| {
            (i.installed_by.as_deref()).map(|u| crate::oidc::subject::subject(ctx.config, &app, u))
        };
        body["installations"] = rows
            .iter()
            .map(|i| installation_json(i, by(i)))
            .collect::<Vec<_>>()
            .into();
    }
    Ok(Response::json(200, &body))
}
