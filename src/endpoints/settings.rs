//! Server-rendered settings pages (no JavaScript): the user's "Connected
//! apps", and the org's "Developer → OAuth apps" (register, edit, rotate the
//! secret, delete) with the apps installed in the org. Every form carries
//! the session's CSRF token; every interpolated string is escaped.

use crate::api_auth::{self, Caller};
use crate::context::Ctx;
use crate::endpoints::apps;
use crate::endpoints::authorizations;
use crate::endpoints::settings_client_auth as client_auth_form;
use crate::error::ApiError;
use crate::http::{Params, Request, Response};
use crate::registration::{AppUpdate, NewApp};
use crate::scope;
use crate::session::{self, Session};
use crate::store::{AppRow, Driver, MembershipRow};
use crate::templates::{esc, layout};

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, route: &str) -> Response {
    let s = match session::current(ctx, req).await {
        Ok(Some(s)) => s,
        Ok(None) if req.method == "GET" => {
            let back = if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            return Response::found(&format!("/signin?{}", Params::encode(&[("return_to", &back)])));
        }
        Ok(None) => {
            return page(
                401,
                "Signed out",
                "<p>Your session has ended. <a href=\"/signin\">Sign in</a> again.</p>",
            )
        }
        Err(e) => return crate::templates::unavailable_page(e),
    };
    let form = if req.method == "POST" {
        let f = match req.form() {
            Ok(f) => f,
            Err(e) => return page(400, "Bad request", &format!("<p>{}</p>", esc(&e))),
        };
        if !session::csrf_ok(&s, f.get("csrf")) {
            return page(
                403,
                "Request refused",
                "<p>This form was not issued to your session. Reload the page and try again.</p>",
            );
        }
        f
    } else {
        Params::default()
    };
    let memberships = match ctx.store.memberships(&s.user.user_id).await {
        Ok(m) => m,
        Err(e) => return crate::templates::unavailable_page(e),
    };
    let caller = Caller::User {
        user_id: s.user.user_id.clone(),
        email: s.user.email.clone(),
        memberships,
    };
    let result = match route {
        "page_connected" => connected(ctx, &s).await,
        "page_connected_revoke" => {
            let app = form.get("app_id").unwrap_or("");
            authorizations::disconnect(ctx, &s.user.user_id, app, form.get("org_id"))
                .await
                .map(|_| Response::see_other("/settings/apps"))
        }
        "page_developer" => developer(ctx, req, &s, &caller, None).await,
        "page_app_create" => create(ctx, req, &s, &caller, &form).await,
        "page_app_edit" => edit(ctx, &s, &caller, None).await,
        "page_app_update" => update(ctx, &caller, &form).await,
        "page_app_rotate" => rotate(ctx, &s, &caller).await,
        "page_app_delete" => delete(ctx, &caller, &form).await,
        _ => revoke_install(ctx, &caller, &form).await,
    };
    result.unwrap_or_else(|e| {
        page(
            e.status,
            "Could not do that",
            &format!(
                "<p class=\"error\">{}</p><p><a href=\"/settings/developer\">Back</a></p>",
                esc(&e.description)
            ),
        )
    })
}

fn page(status: u16, title: &str, body: &str) -> Response {
    Response::html(status, layout(title, &format!("{}{}", nav(), body)))
}

fn nav() -> String {
    r#"<p class="muted"><a href="/settings/apps">Connected apps</a> · <a href="/settings/developer">Developer → OAuth apps</a> · <a href="/">Home</a></p>"#.to_string()
}

fn csrf_field(s: &Session) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(&s.csrf))
}

fn date(ts: i64) -> String {
    // Civil date from unix seconds (Howard Hinnant's days-from-civil inverse).
    let z = ts.div_euclid(86400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn connected<D: Driver>(ctx: &Ctx<'_, D>, s: &Session) -> Result<Response, ApiError> {
    let rows = ctx.store.authorizations_of_user(&s.user.user_id).await?;
    let mut body = String::from("<h1>Connected apps</h1>");
    if rows.is_empty() {
        body.push_str("<div class=\"card\"><p>No app is connected to your account.</p></div>");
    }
    for a in &rows {
        body.push_str(&format!(
            r#"<div class="card app-row"><p><strong class="app-name">{name}</strong> in <strong>{org}</strong> — acting {actor}</p>
<p class="muted">Scopes: {scopes} · connected {when}</p>
<form method="post" action="/settings/apps/revoke">{csrf}<input type="hidden" name="app_id" value="{app}"><input type="hidden" name="org_id" value="{org_id}">
<button type="submit" class="secondary">Revoke access</button></form></div>"#,
            name = esc(&a.app_name),
            org = esc(&a.org_name),
            actor = if a.actor == "app" { "as the app" } else { "as you" },
            scopes = esc(&scope::join(&scope::from_json(&a.scopes))),
            when = date(a.created_at),
            csrf = csrf_field(s),
            app = esc(&a.app_id),
            org_id = esc(&a.org_id),
        ));
    }
    Ok(page(200, "Connected apps", &body))
}

/// The org the developer page is about: `?org=`, else the first org where the
/// user can manage apps.
fn pick_org<'a>(req: &Request, memberships: &'a [MembershipRow], form_org: Option<&str>) -> Option<&'a MembershipRow> {
    let q = req.query_params();
    let wanted = form_org.or(q.get("org"));
    match wanted {
        Some(w) => memberships.iter().find(|m| m.org_id == w),
        None => memberships.iter().find(|m| m.role != "member").or(memberships.first()),
    }
}

async fn developer<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    s: &Session,
    caller: &Caller,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let Caller::User { memberships, .. } = caller else {
        return Err(ApiError::forbidden("sign in"));
    };
    let Some(org) = pick_org(req, memberships, None) else {
        return Ok(page(
            200,
            "Developer",
            "<h1>Developer → OAuth apps</h1><p>You belong to no organization.</p>",
        ));
    };
    let can_manage = api_auth::role_has(ctx, &org.role, "oauth_app.manage").await?;
    let is_admin = api_auth::role_has(ctx, &org.role, "org.admin").await?;
    let apps = ctx.store.apps_of_org(&org.org_id).await?;
    let catalogue = ctx.store.scope_catalogue().await?;
    let switch: String = memberships
        .iter()
        .map(|m| {
            format!(
                r#"<a href="/settings/developer?org={}">{}</a>"#,
                esc(&m.org_id),
                esc(&m.org_name)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let mut body = format!(
        "<h1>Developer → OAuth apps</h1><p class=\"muted\">Organization: <strong id=\"org-name\">{}</strong> ({}) · {}</p>{}",
        esc(&org.org_name),
        esc(&org.role),
        switch,
        notice.unwrap_or_default()
    );
    body.push_str("<h2>Apps owned by this organization</h2>");
    let live: Vec<&AppRow> = apps.iter().filter(|a| a.status != "deleted").collect();
    if live.is_empty() {
        body.push_str("<p class=\"muted\">No apps yet.</p>");
    }
    for a in live {
        body.push_str(&format!(
            r#"<div class="card app-row"><p><strong class="app-name">{name}</strong> <span class="muted">({status}, {ctype})</span></p>
<p class="muted">Client ID: <code>{id}</code></p><p class="muted">Scopes: {scopes}</p><p class="muted">Redirect URIs: {uris}</p>
<p class="muted">Created {created}</p>{edit}</div>"#,
            name = esc(&a.name),
            status = esc(&a.status),
            ctype = esc(&a.client_type),
            id = esc(&a.id),
            scopes = esc(&scope::join(&a.scope_list())),
            uris = a.redirect_uri_list().iter().map(|u| format!("<code>{}</code>", esc(u))).collect::<Vec<_>>().join(" "),
            created = date(a.created_at),
            edit = if can_manage { format!(r#"<p><a href="/settings/developer/apps/{}">Edit</a></p>"#, esc(&a.id)) } else { String::new() },
        ));
    }
    if can_manage {
        let scopes: String = catalogue
            .iter()
            .map(|c| {
                format!(
                    r#"<label style="font-weight:400"><input type="checkbox" name="scopes" value="{0}" style="width:auto"> <code>{0}</code> — {1}</label>"#,
                    esc(&c.name),
                    esc(&c.description)
                )
            })
            .collect();
        body.push_str(&format!(
            r#"<h2>Register an app</h2><div class="card"><form method="post" action="/settings/developer/apps">{csrf}
<input type="hidden" name="org_id" value="{org}">
<label for="name">Name</label><input id="name" name="name" maxlength="100" required>
<label for="description">Description</label><input id="description" name="description" maxlength="400">
<label for="homepage_url">Homepage URL</label><input id="homepage_url" name="homepage_url" type="url">
<label for="redirect_uris">Redirect URIs (one per line)</label><textarea id="redirect_uris" name="redirect_uris" rows="3" style="width:100%" required></textarea>
<label>Scopes</label>{scopes}
<label for="client_type">Type</label><select id="client_type" name="client_type"><option value="confidential">Confidential (server-side, gets a secret)</option><option value="public">Public (PKCE, no secret)</option></select>
<label>Actor modes</label><label style="font-weight:400"><input type="checkbox" name="actor_modes" value="self" checked style="width:auto"> self (as the consenting user)</label>
<label style="font-weight:400"><input type="checkbox" name="actor_modes" value="app" style="width:auto"> app (a bot identity)</label>
{client_auth}
<p><button type="submit">Register</button></p></form></div>"#,
            csrf = csrf_field(s),
            org = esc(&org.org_id),
            client_auth = client_auth_form::fields(None),
        ));
    }
    if is_admin {
        let installed = ctx.store.installations_in_org(&org.org_id).await?;
        body.push_str("<h2>Apps installed in this organization</h2>");
        if installed.is_empty() {
            body.push_str("<p class=\"muted\">None.</p>");
        }
        for i in &installed {
            body.push_str(&format!(
                r#"<div class="card install-row"><p><strong>{name}</strong> · installed {when} · {n} live authorization(s)</p>
<form method="post" action="/settings/developer/installations/revoke">{csrf}<input type="hidden" name="org_id" value="{org}"><input type="hidden" name="app_id" value="{app}">
<button type="submit" class="secondary">Remove from organization</button></form></div>"#,
                name = esc(&i.app_name),
                when = date(i.created_at),
                n = i.live_grants,
                csrf = csrf_field(s),
                org = esc(&i.org_id),
                app = esc(&i.app_id),
            ));
        }
    }
    Ok(page(200, "Developer → OAuth apps", &body))
}

fn lines(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn all(form: &Params, name: &str) -> Vec<String> {
    form.0
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

async fn create<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    s: &Session,
    caller: &Caller,
    form: &Params,
) -> Result<Response, ApiError> {
    let input = NewApp {
        name: form.get("name").unwrap_or("").to_string(),
        description: form.get("description").unwrap_or("").to_string(),
        homepage_url: form.get("homepage_url").map(str::to_string),
        terms_url: None,
        privacy_url: None,
        icon: None,
        redirect_uris: lines(form.get("redirect_uris")),
        scopes: all(form, "scopes"),
        client_type: form.get("client_type").unwrap_or("confidential").to_string(),
        actor_modes: all(form, "actor_modes"),
        webhook_url: None,
        webhook_events: Vec::new(),
        secret_expires_in: None,
        org_id: form.get("org_id").map(str::to_string),
        bot_public: true,
        bot_require_code_grant: false,
        ..NewApp::default()
    };
    let input = client_auth_form::new_app(form, input);
    let (app, secret) = apps::register(ctx, caller, input).await?;
    let secret_html = secret
        .map(|sec| {
            format!(
                r#"<p>Client secret (shown once — copy it now): <code id="client-secret">{}</code></p>"#,
                esc(&sec)
            )
        })
        .unwrap_or_default();
    let notice = format!(
        r#"<div class="card" role="status"><p>Registered <strong>{}</strong>. Client ID: <code id="client-id">{}</code></p>{}</div>"#,
        esc(&app.name),
        esc(&app.id),
        secret_html
    );
    let mut q = req.clone();
    q.query = Params::encode(&[("org", app.owner_org_id.as_deref().unwrap_or_default())]);
    developer(ctx, &q, s, caller, Some(notice)).await.map(|r| r.no_store())
}

async fn managed<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller) -> Result<AppRow, ApiError> {
    let app = ctx
        .store
        .app(ctx.param(0))
        .await?
        .filter(|a| a.status != "deleted")
        .filter(|a| a.owner_org_id.as_deref().is_some_and(|o| caller.role_in(o).is_some()))
        .ok_or_else(|| ApiError::not_found("no such app in your organizations"))?;
    apps::require_manage(ctx, caller, app.owner_org_id.as_deref().unwrap_or_default()).await?;
    Ok(app)
}

async fn edit<D: Driver>(
    ctx: &Ctx<'_, D>,
    s: &Session,
    caller: &Caller,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let a = managed(ctx, caller).await?;
    let installs = ctx.store.installations_of_app(&a.id).await?;
    let catalogue = ctx.store.scope_catalogue().await?;
    let declared = a.scope_list();
    let scopes: String = catalogue
        .iter()
        .map(|c| {
            format!(
                r#"<label style="font-weight:400"><input type="checkbox" name="scopes" value="{0}" style="width:auto"{1}> <code>{0}</code></label>"#,
                esc(&c.name),
                if declared.contains(&c.name) { " checked" } else { "" }
            )
        })
        .collect();
    let id = esc(&a.id);
    let rotate = if a.is_public() || a.client_auth_method.is_some() {
        String::new()
    } else {
        format!(
            r#"<form method="post" action="/settings/developer/apps/{id}/secret">{}<button type="submit" class="secondary">Rotate client secret</button></form>"#,
            csrf_field(s)
        )
    };
    let body = format!(
        r#"<h1>Edit <span class="app-name">{name}</span></h1>{notice}<p class="muted">Installed in {n} organization(s).</p>
<div class="card"><form method="post" action="/settings/developer/apps/{id}">{csrf}<input type="hidden" name="version" value="{version}">
<label for="name">Name</label><input id="name" name="name" maxlength="100" value="{name}" required>
<label for="description">Description</label><input id="description" name="description" maxlength="400" value="{desc}">
<label for="homepage_url">Homepage URL</label><input id="homepage_url" name="homepage_url" value="{home}">
<label for="redirect_uris">Redirect URIs (one per line)</label><textarea id="redirect_uris" name="redirect_uris" rows="3" style="width:100%">{uris}</textarea>
<label>Scopes</label>{scopes}
{client_auth}
<p><button type="submit">Save</button></p></form></div>
<div class="card">{rotate}
<form method="post" action="/settings/developer/apps/{id}/delete">{csrf}<label style="font-weight:400"><input type="checkbox" name="confirm" value="yes" style="width:auto" required> I understand every token and install of this app dies, irreversibly.</label>
<button type="submit" class="secondary">Delete app</button></form></div>"#,
        name = esc(&a.name),
        notice = notice.unwrap_or_default(),
        n = installs.len(),
        csrf = csrf_field(s),
        version = a.version,
        desc = esc(&a.description),
        home = esc(a.homepage_url.as_deref().unwrap_or("")),
        uris = esc(&a.redirect_uri_list().join("\n")),
        client_auth = client_auth_form::fields(Some(&a)),
    );
    Ok(page(200, &format!("Edit {}", a.name), &body).no_store())
}

async fn update<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, form: &Params) -> Result<Response, ApiError> {
    let app = managed(ctx, caller).await?;
    let version = form
        .get("version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("version missing"))?;
    let home = form.get("homepage_url").map(str::to_string);
    let mut u = AppUpdate {
        version,
        name: form.get("name").map(str::to_string),
        description: Some(form.get("description").unwrap_or("").to_string()),
        homepage_url: Some(home),
        terms_url: None,
        privacy_url: None,
        icon: None,
        redirect_uris: Some(lines(form.get("redirect_uris"))),
        scopes: Some(all(form, "scopes")),
        actor_modes: None,
        webhook_url: None,
        webhook_events: None,
        bot_public: None,
        bot_require_code_grant: None,
        id_token_signed_response_alg: None,
        post_logout_redirect_uris: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: None,
        sector_identifier_uri: None,
        token_endpoint_auth_method: None,
        dpop_bound_access_tokens: None,
        require_pushed_authorization_requests: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        device_authorization: None,
        token_exchange: None,
    };
    client_auth_form::update(form, app.is_public(), &mut u);
    let updated = apps::apply_update(ctx, caller, &app, u).await?;
    Ok(Response::see_other(&format!("/settings/developer/apps/{}", updated.id)))
}

async fn rotate<D: Driver>(ctx: &Ctx<'_, D>, s: &Session, caller: &Caller) -> Result<Response, ApiError> {
    let app = managed(ctx, caller).await?;
    let (_, secret) = apps::rotate_secret(ctx, caller, &app, None).await?;
    let notice = format!(
        r#"<div class="card" role="status"><p>New client secret (shown once — the old one no longer works): <code id="client-secret">{}</code></p></div>"#,
        esc(&secret)
    );
    edit(ctx, s, caller, Some(notice)).await
}

async fn delete<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, form: &Params) -> Result<Response, ApiError> {
    if form.get("confirm") != Some("yes") {
        return Err(ApiError::bad_request("confirm the deletion"));
    }
    let app = managed(ctx, caller).await?;
    apps::delete_app(ctx, caller, &app).await?;
    Ok(Response::see_other(&format!(
        "/settings/developer?org={}",
        app.owner_org_id.as_deref().unwrap_or_default()
    )))
}

async fn revoke_install<D: Driver>(ctx: &Ctx<'_, D>, caller: &Caller, form: &Params) -> Result<Response, ApiError> {
    let org = form.get("org_id").unwrap_or("");
    let role = caller
        .role_in(org)
        .ok_or_else(|| ApiError::not_found("no such organization"))?;
    if !api_auth::role_has(ctx, role, "org.admin").await? {
        return Err(ApiError::forbidden("this needs an admin of the organization"));
    }
    let (kind, id) = caller.audit_actor();
    authorizations::remove_install(ctx, org, form.get("app_id").unwrap_or(""), kind, &id).await?;
    Ok(Response::see_other(&format!("/settings/developer?org={org}")))
}
