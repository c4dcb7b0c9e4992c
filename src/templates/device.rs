//! The device flow's pages (RFC 8628 §3.3): the code entry form, the
//! consent screen for the device's request, and the done page.

use super::{esc, layout, org_options, scope_items, unverified_notice};
use crate::store::{AppRow, MembershipRow, ScopeRow};

/// The entry form; `user_code` prefills it (from `verification_uri_complete`).
pub fn entry(user_code: &str, csrf: &str, email: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert" id="device-error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    layout(
        "Connect a device",
        &format!(
            r#"<h1>Connect a device</h1><div class="card">{err}
<p>Enter the code shown on your device.</p>
<form method="post" action="/device">
<input type="hidden" name="csrf" value="{csrf}">
<label for="user_code">Code</label><input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" required value="{code}">
<p><button type="submit">Continue</button></p>
</form><p class="muted">Signed in as {email}.</p></div>"#,
            csrf = esc(csrf),
            code = esc(user_code),
            email = esc(email),
        ),
    )
}

pub struct DeviceConsentView<'a> {
    pub app: &'a AppRow,
    pub owner_name: &'a str,
    pub user_email: &'a str,
    pub orgs: &'a [MembershipRow],
    pub scopes: &'a [ScopeRow],
    /// The user code as shown on the device (`XXXX-XXXX`).
    pub user_code: &'a str,
    pub csrf: &'a str,
}

pub fn consent(v: &DeviceConsentView<'_>) -> String {
    let orgs = org_options(v.orgs);
    let scopes = scope_items(v.scopes);
    layout(
        &format!("Authorize {} on your device", v.app.name),
        &format!(
            r#"<h1>Authorize <span id="app-name">{name}</span> on a device</h1>
<div class="card">
<p><strong>{name}</strong> by <strong>{owner}</strong> wants access to an organization you belong to, from a device.</p>
{unverified}<p id="device-code-check">Check that this code matches the one shown on your device: <strong id="device-user-code">{code}</strong>. If it does not, or you did not start this yourself, deny.</p>
<form method="post" action="/device">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="user_code" value="{code}">
<label for="org">Organization</label><select id="org" name="org">{orgs}</select>
<label>It will be able to</label><ul class="scopes">{scopes}</ul>
<p class="muted">Signed in as {email}. You can revoke this access at any time.</p>
<p><button type="submit" name="decision" value="approve">Approve</button><button class="secondary" type="submit" name="decision" value="deny">Deny</button></p>
</form></div>"#,
            name = esc(&v.app.name),
            owner = esc(v.owner_name),
            unverified = unverified_notice(v.app),
            code = esc(v.user_code),
            csrf = esc(v.csrf),
            email = esc(v.user_email),
        ),
    )
}

/// After the decision: nothing more happens in the browser.
pub fn done(approved: bool) -> String {
    let (title, text) = if approved {
        (
            "Device connected",
            "You approved the request. Return to your device; it will continue by itself.",
        )
    } else {
        (
            "Request denied",
            "You denied the request. The device will be told; nothing was shared with it.",
        )
    };
    layout(
        title,
        &format!(
            r#"<h1 id="device-done">{}</h1><div class="card"><p>{}</p><p class="muted">You can close this page.</p></div>"#,
            esc(title),
            esc(text)
        ),
    )
}
