//! The developer settings page's fields of client authentication and sender
//! constraint (`private_key_jwt` with its keys, DPoP and PAR required): the
//! form's HTML and what a posted form asks for. The rules are
//! `crate::client_metadata::sender`'s, as for the API.

use serde_json::Value;

use crate::client_metadata::sender::{ALGS, PRIVATE_KEY_JWT};
use crate::http::Params;
use crate::registration::{AppUpdate, NewApp};
use crate::store::AppRow;
use crate::templates::esc;

/// The fields, filled from `app` when editing one.
pub fn fields(app: Option<&AppRow>) -> String {
    let pk = app.is_some_and(|a| a.client_auth_method.as_deref() == Some(PRIVATE_KEY_JWT));
    let sel = |on: bool| if on { " selected" } else { "" };
    let chk = |on: bool| if on { " checked" } else { "" };
    let jwks = app
        .and_then(|a| a.jwks.as_deref())
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default();
    let alg = app.and_then(|a| a.token_endpoint_auth_signing_alg.as_deref());
    let algs: String = ALGS
        .iter()
        .map(|a| format!(r#"<option value="{a}"{}>{a}</option>"#, sel(alg == Some(a))))
        .collect();
    format!(
        r#"<label for="token_endpoint_auth_method">Client authentication (confidential apps)</label><select id="token_endpoint_auth_method" name="token_endpoint_auth_method"><option value=""{not_pk}>Client secret (none for public apps)</option><option value="private_key_jwt"{pk}>private_key_jwt (a JWT signed with the app's own key; no secret)</option></select>
<label for="jwks">Public keys for private_key_jwt (a JWK set, JSON)</label><textarea id="jwks" name="jwks" rows="4" style="width:100%">{jwks}</textarea>
<label for="jwks_uri">…or the URL of the app's JWK set</label><input id="jwks_uri" name="jwks_uri" type="url" value="{uri}">
<label for="token_endpoint_auth_signing_alg">Assertion signing algorithm</label><select id="token_endpoint_auth_signing_alg" name="token_endpoint_auth_signing_alg"><option value="">Any of the keys'</option>{algs}</select>
<label style="font-weight:400"><input type="checkbox" name="dpop_bound_access_tokens" value="on" style="width:auto"{dpop}> Require DPoP-bound tokens (RFC 9449)</label>
<label style="font-weight:400"><input type="checkbox" name="require_pushed_authorization_requests" value="on" style="width:auto"{par}> Require pushed authorization requests (RFC 9126)</label>"#,
        not_pk = sel(!pk),
        pk = sel(pk),
        jwks = esc(&jwks),
        uri = esc(app.and_then(|a| a.jwks_uri.as_deref()).unwrap_or("")),
        dpop = chk(app.is_some_and(|a| a.dpop_bound_access_tokens == 1)),
        par = chk(app.is_some_and(|a| a.require_pushed_authorization_requests == 1)),
    )
}

fn text(form: &Params, name: &str) -> Option<String> {
    form.get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A pasted JWK set as JSON; text that is not JSON stays text, which the
/// rules refuse with the field's name.
fn jwks(form: &Params) -> Option<Value> {
    text(form, "jwks").map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A checkbox: absent is unchecked.
fn checked(form: &Params, name: &str) -> Value {
    Value::Bool(form.get(name).is_some())
}

pub fn new_app(form: &Params, mut input: NewApp) -> NewApp {
    input.token_endpoint_auth_method = text(form, "token_endpoint_auth_method");
    input.jwks = jwks(form);
    input.jwks_uri = text(form, "jwks_uri").map(Value::from);
    input.token_endpoint_auth_signing_alg = text(form, "token_endpoint_auth_signing_alg").map(Value::from);
    input.dpop_bound_access_tokens = Some(checked(form, "dpop_bound_access_tokens"));
    input.require_pushed_authorization_requests = Some(checked(form, "require_pushed_authorization_requests"));
    input
}

/// The form holds every field, so an empty one clears it. An empty method
/// is the app type's (a secret; none for a public app).
pub fn update(form: &Params, public: bool, u: &mut AppUpdate) {
    let default = if public { "none" } else { "client_secret_basic" };
    u.token_endpoint_auth_method = Some(text(form, "token_endpoint_auth_method").unwrap_or_else(|| default.into()));
    u.jwks = Some(jwks(form));
    u.jwks_uri = Some(text(form, "jwks_uri").map(Value::from));
    u.token_endpoint_auth_signing_alg = Some(text(form, "token_endpoint_auth_signing_alg").map(Value::from));
    u.dpop_bound_access_tokens = Some(Some(checked(form, "dpop_bound_access_tokens")));
    u.require_pushed_authorization_requests = Some(Some(checked(form, "require_pushed_authorization_requests")));
}
