//! Server-rendered pages from inline templates. Every interpolated string goes
//! through [`esc`]; nothing user-supplied reaches the page unescaped.
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

pub mod device;

use crate::error::{retry_after, StoreError};
use crate::http::Response;
use crate::store::{AppRow, MembershipRow, ScopeRow};

pub fn esc(s: &str) -> String {
    html_escape::encode_safe(s).into_owned()
}

pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1d2330}}
h1{{font-size:1.4rem}} .card{{border:1px solid #d6dae3;border-radius:10px;padding:1.25rem 1.5rem;margin:1rem 0}}
label{{display:block;margin:.6rem 0 .2rem;font-weight:600}} input,select{{font:inherit;padding:.45rem;width:100%;box-sizing:border-box}}
button{{font:inherit;padding:.5rem 1.1rem;border-radius:6px;border:1px solid #36c;background:#36c;color:#fff;cursor:pointer;margin-right:.5rem}}
button.secondary{{background:#fff;color:#36c}} .muted{{color:#5b6475;font-size:.9rem}} .error{{color:#a11}}
ul.scopes li{{margin:.3rem 0}} code{{background:#f2f4f8;padding:0 .25rem;border-radius:4px}}
</style></head><body>
{body}
</body></html>"#,
        title = esc(title),
    )
}

pub fn error_page(title: &str, message: &str) -> String {
    layout(
        title,
        &format!(
            r#"<h1>{}</h1><div class="card"><p class="error">{}</p><p class="muted">You can close this page. If an app sent you here, tell its developer.</p></div>"#,
            esc(title),
            esc(message)
        ),
    )
}

/// `csrf` is the pre-session token that a sign-in POST must carry (login CSRF).
pub fn signin(return_to: &str, error: Option<&str>, email: &str, csrf: &str) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    layout(
        "Sign in",
        &format!(
            r#"<h1>Sign in</h1><div class="card">{err}
<form method="post" action="/signin">
<input type="hidden" name="return_to" value="{rt}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="{email}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Sign in</button></p>
</form></div>"#,
            rt = esc(return_to),
            email = esc(email),
            csrf = esc(csrf),
        ),
    )
}

pub fn home(user: Option<(&str, &str)>) -> String {
    let body = match user {
        Some((email, csrf)) => format!(
            r#"<h1>Edge OAuth</h1><div class="card"><p>Signed in as <strong>{}</strong>.</p>
<p><a href="/settings/apps">Connected apps</a> · <a href="/settings/developer">Developer → OAuth apps</a></p>
<form method="post" action="/signout"><input type="hidden" name="csrf" value="{}"><button class="secondary" type="submit">Sign out</button></form></div>
<p class="muted">Discovery: <a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a></p>"#,
            esc(email),
            esc(csrf)
        ),
        None => r#"<h1>Edge OAuth</h1><div class="card"><p><a href="/signin">Sign in</a></p></div>
<p class="muted">Discovery: <a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a></p>"#
            .to_string(),
    };
    layout("Edge OAuth", &body)
}

pub struct ConsentView<'a> {
    pub app: &'a AppRow,
    pub owner_name: &'a str,
    pub user_email: &'a str,
    pub orgs: &'a [MembershipRow],
    /// Actor modes the app allows, in display order.
    pub actor_modes: &'a [String],
    pub scopes: &'a [ScopeRow],
    /// The authorize parameters, carried through the form unchanged.
    pub hidden: &'a [(&'static str, String)],
    pub csrf: &'a str,
    /// Where the browser goes with the decision (the request's redirect URI).
    pub redirect_to: &'a str,
    /// What the OpenID scopes (`openid`, `profile`, `email`) tell the app
    /// about the user, one plain sentence each; empty when none is asked.
    pub identity: &'a [String],
}

fn actor_label(mode: &str) -> &'static str {
    match mode {
        "app" => "As the app itself (a bot identity in the organization; needs an admin)",
        _ => "As you, limited by your role in the organization",
    }
}

/// The consent screens' organization choice (`<option>`s).
fn org_options(orgs: &[MembershipRow]) -> String {
    orgs.iter()
        .map(|o| {
            format!(
                r#"<option value="{}">{} ({})</option>"#,
                esc(&o.org_id),
                esc(&o.org_name),
                esc(&o.role)
            )
        })
        .collect()
}

/// The consent screens' list of requested scopes (`<li>`s).
fn scope_items(scopes: &[ScopeRow]) -> String {
    scopes
        .iter()
        .map(|s| format!("<li><code>{}</code> — {}</li>", esc(&s.name), esc(&s.description)))
        .collect()
}

pub fn consent(v: &ConsentView<'_>) -> String {
    let hidden: String = v
        .hidden
        .iter()
        .map(|(k, val)| format!(r#"<input type="hidden" name="{}" value="{}">"#, k, esc(val)))
        .collect();
    let orgs = org_options(v.orgs);
    let actors: String = v
        .actor_modes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                r#"<label style="font-weight:400"><input type="radio" name="actor" value="{}" style="width:auto"{}> {}</label>"#,
                esc(m),
                if i == 0 { " checked" } else { "" },
                actor_label(m)
            )
        })
        .collect();
    let scopes = scope_items(v.scopes);
    let homepage = v
        .app
        .homepage_url
        .as_deref()
        .map(|h| {
            format!(
                r#"<p class="muted">Homepage: <a href="{0}" rel="noopener noreferrer">{0}</a></p>"#,
                esc(h)
            )
        })
        .unwrap_or_default();
    let description = if v.app.description.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", esc(&v.app.description))
    };
    let unverified = unverified_notice(v.app);
    // A client identified by URL (`crate::cimd`): its web address is all
    // that vouches for it, so its host comes first.
    let url_note = crate::cimd::host_of(v.app)
        .map(|h| {
            format!(
                r#"<p id="client-url-note"><strong>{}</strong> — this app identified itself by its web address; it is not registered with this service.</p>"#,
                esc(&h)
            )
        })
        .unwrap_or_default();
    let destination = destination(v);
    let identity = if v.identity.is_empty() {
        String::new()
    } else {
        let items: String = v.identity.iter().map(|l| format!("<li>{}</li>", esc(l))).collect();
        format!(r#"<label>It will learn</label><ul class="scopes" id="identity-claims">{items}</ul>"#)
    };
    let scopes = if scopes.is_empty() && !v.identity.is_empty() {
        String::new()
    } else {
        format!(r#"<label>It will be able to</label><ul class="scopes">{scopes}</ul>"#)
    };
    layout(
        &format!("Authorize {}", v.app.name),
        &format!(
            r#"<h1>Authorize <span id="app-name">{name}</span></h1>
<div class="card">
{url_note}<p><strong>{name}</strong> by <strong>{owner}</strong> wants access to an organization you belong to.</p>
{unverified}{description}{homepage}
<form method="post" action="/oauth/authorize">
{hidden}<input type="hidden" name="csrf" value="{csrf}">
<label for="org">Organization</label><select id="org" name="org">{orgs}</select>
<label>Act</label>{actors}
{identity}{scopes}
{destination}<p class="muted">Signed in as {email}. You can revoke this access at any time.</p>
<p><button type="submit" name="decision" value="approve">Approve</button><button class="secondary" type="submit" name="decision" value="deny">Deny</button></p>
</form></div>"#,
            name = esc(&v.app.name),
            owner = esc(v.owner_name),
            csrf = esc(v.csrf),
            email = esc(v.user_email),
        ),
    )
}

/// Where the decision is sent (MCP 2025-11-25: the redirect URI's host shown
/// during authorization), and, for a client nobody registered whose every
/// redirect URI is on this computer, a warning: a metadata document cannot
/// stop a local program from naming a real client's document and listening
/// on a local port.
fn destination(v: &ConsentView<'_>) -> String {
    let host = url::Url::parse(v.redirect_to)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let line = format!(
        r#"<p class="muted" id="redirect-host">Your decision is sent to <strong>{}</strong>.</p>"#,
        esc(&host)
    );
    let uris = v.app.redirect_uri_list();
    let local_only = !uris.is_empty()
        && uris.iter().all(|u| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(crate::redirect_uri::is_loopback_host))
                .unwrap_or(false)
        });
    if v.app.registration != "platform" && local_only {
        return line
            + r#"<p class="error" id="localhost-warning" role="note"><strong>This app receives your approval on this computer</strong> (localhost). Any program running here could claim to be it: approve only if you started it yourself just now.</p>"#;
    }
    line
}

/// A client that registered itself (RFC 7591) says whatever it likes about
/// its name and homepage: the consent screen says nobody checked.
pub(crate) fn unverified_notice(app: &AppRow) -> &'static str {
    match app.registration.as_str() {
        "dynamic" => {
            r#"<p class="error" id="unverified" role="note"><strong>Unverified app</strong> — it registered itself and was not reviewed by the platform. Its name and homepage are its own claims: approve only if you started this from an app you trust.</p>"#
        }
        _ => "",
    }
}

/// The HTML answer of a browser page to a storage outage (or any other 5xx):
/// 503 (500 when storage did not fail), `Retry-After`; never the internal text.
pub fn unavailable(storage: bool) -> Response {
    let status = if storage { 503 } else { 500 };
    retry_after(
        storage,
        Response::html(
            status,
            error_page(
                "Temporarily unavailable",
                "Something went wrong on our side. Try again in a moment.",
            ),
        ),
    )
}

/// The page a browser route answers when storage fails (the text stays in
/// the log line; `Server::handle` would also rewrite any 5xx to this).
pub fn unavailable_page(_e: StoreError) -> Response {
    unavailable(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc(r#"<script>"'&"#), "&lt;script&gt;&quot;&#x27;&amp;");
        let page = error_page("<b>", "<img src=x onerror=alert(1)>");
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;img"));
    }
}
