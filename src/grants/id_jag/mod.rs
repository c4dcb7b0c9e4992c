//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an ID-JAG
//! (draft-ietf-oauth-identity-assertion-authz-grant; MCP enterprise-managed
//! authorization): an org's trusted enterprise IdP vouches for one of its
//! users to one client and resource; we issue an access token for that
//! resource, with no consent screen and no refresh token.
//!
//! Told apart from Azure DevOps's jwt-bearer code exchange by the
//! assertion's JWS header alone ([`is_id_jag`]): `typ: oauth-id-jag+jwt`.

pub mod claims;

use serde_json::json;

use super::{access_token, Subject, TokenResponse};
use crate::client_auth::{self, keys, Credentials, Method};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::jose::{Compact, Reject};
use crate::scope;
use crate::store::{Audit, Driver, IdJagIssuer, IdJagToken, Store};

/// RFC 7523 §2.1's grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The ID-JAG's JWS `typ` (the draft, after RFC 8725 §3.11).
pub const TYP: &str = "oauth-id-jag+jwt";
/// The grant profile a server that accepts ID-JAGs advertises
/// (`authorization_grant_profiles_supported`).
pub const PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// Longest ID-JAG read.
pub const MAX_BYTES: usize = 16 * 1024;

/// Is this assertion an ID-JAG? Its header's `typ`, as a media type
/// (RFC 7515 §4.1.9: case-insensitive, `application/` optional); nothing else is read.
pub fn is_id_jag(assertion: &str) -> bool {
    crate::jose::header_typ(assertion).is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == TYP || t.strip_prefix("application/") == Some(TYP)
    })
}

fn bad(why: impl Into<String>) -> OAuthError {
    OAuthError::InvalidGrant(why.into())
}

fn unusable_keys() -> OAuthError {
    bad("the ID-JAG issuer's JWK set could not be obtained")
}

/// The request's ID-JAG, parsed: header checked (`typ`, `alg` from the
/// allow-list), claims read but not yet trusted.
fn parse(form: &Params) -> Result<(Compact<'_>, claims::Claims), OAuthError> {
    let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
        return Err(OAuthError::InvalidRequest("assertion is required".into()));
    };
    let jws = Compact::parse(assertion, MAX_BYTES).map_err(|e| match e {
        Reject::Algorithm => bad(format!(
            "the ID-JAG's alg is not accepted (only {}; never none or HMAC)",
            crate::jose::Alg::names()
        )),
        Reject::Critical => bad("the ID-JAG has a crit header this server does not understand"),
        Reject::Malformed => bad("the assertion is not a compact JWS"),
    })?;
    if !is_id_jag(assertion) {
        return Err(bad(format!("the assertion is not an ID-JAG (its typ must be {TYP})")));
    }
    let c: claims::Claims = jws
        .claims()
        .map_err(|_| bad("the ID-JAG's claims are not a JSON object of the expected types"))?;
    Ok((jws, c))
}

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&crate::store::DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let (jws, c) = match parse(form) {
        Ok(p) => p,
        Err(e) => return Err(client_auth::after_auth(ctx, creds, e).await),
    };
    let Some(iss) = c.iss.clone().filter(|i| !i.is_empty() && i.len() <= 512) else {
        return Err(client_auth::after_auth(ctx, creds, bad("the ID-JAG needs an iss")).await);
    };
    // One round trip: the client, the issuer with its cached keys, and the
    // user the (not yet verified) subject names.
    let guard = client_auth::guard(ctx, &creds);
    let stmt = Store::<D>::id_jag_issuer_stmt(
        &iss,
        c.sub.as_deref().unwrap_or_default(),
        c.email.as_deref().unwrap_or_default(),
    );
    let (app, rows) = ctx.store.read_all_for_client::<IdJagIssuer>(&guard, stmt).await?;
    let client = client_auth::verify(ctx, creds, app).await?;
    if client.method == Method::None {
        return Err(OAuthError::client(
            "the jwt-bearer grant needs client authentication; a public client cannot use it",
            false,
        ));
    }
    let app = &client.app;
    ctx.note(&app.id, None);
    let Some(ti) = rows.into_iter().next() else {
        return Err(bad(format!(
            "the ID-JAG's issuer {iss:?} is not trusted by any organization here"
        )));
    };
    ctx.note(&app.id, Some(&ti.org_id));
    authentic(ctx, app, &jws, &c, &ti).await?;
    match judge(ctx, app, &c, &ti, form, dpop).await {
        Ok(t) => Ok(t),
        // A storage or signing failure is no refusal: nothing to record.
        Err(e @ (OAuthError::ServerError(_) | OAuthError::RateLimited { .. })) => Err(e),
        Err(e) => {
            // Refusals of a genuine ID-JAG are the org's to see. Bound: only
            // the client it was issued to can present it, until its `exp`
            // (at most ID_JAG_MAX_AGE_SECONDS after the IdP signed it).
            let record = Audit {
                org_id: ti.org_id.clone(),
                at: ctx.now,
                actor_type: "app".into(),
                actor_id: app.id.clone(),
                app_id: Some(app.id.clone()),
                action: "id_jag.refused".into(),
                detail: json!({"issuer": ti.issuer, "trusted_issuer": ti.name, "error": e.code(),
                    "reason": e.description()}),
            };
            ctx.store.record_audit(&record).await?;
            Err(e)
        }
    }
}

/// Is this a genuine, current ID-JAG of the issuer, for this server and
/// this client, and may the client present it? (Unaudited: until the IdP's
/// signature and the claims hold, anyone could have made it.)
async fn authentic<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &crate::store::AppRow,
    jws: &Compact<'_>,
    c: &claims::Claims,
    ti: &IdJagIssuer,
) -> Result<(), OAuthError> {
    if !scope::from_json(&ti.allowed_clients).contains(&app.id) {
        return Err(OAuthError::UnauthorizedClient(
            "this client is not among the trusted issuer's allowed_clients".into(),
        ));
    }
    let kid = jws.header_str("kid");
    let set = keys::from_uri(ctx, &ti.jwks_uri, ti.cached_jwks(), kid, unusable_keys).await?;
    let mut good = false;
    for k in set.iter().filter(|k| keys::usable(k, jws.alg, kid)) {
        if ctx.jws.verify(jws.alg, &k.key, jws.input, &jws.signature).await {
            good = true;
            break;
        }
    }
    if !good {
        return Err(bad(
            "the ID-JAG's signature does not verify with any of its issuer's keys",
        ));
    }
    claims::check(c, &ctx.issuer, &app.id, ctx.now, ctx.config.id_jag.max_age).map_err(bad)?;
    Ok(())
}

/// Everything after the ID-JAG proved genuine: subject, resource, scope,
/// then the issuing batch.
async fn judge<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &crate::store::AppRow,
    c: &claims::Claims,
    ti: &IdJagIssuer,
    form: &Params,
    dpop: Option<&crate::store::DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let (Some(user_id), Some(_)) = (ti.user_id.as_deref(), ti.role.as_deref()) else {
        let by = if ti.subject_claim == "email" {
            "email"
        } else {
            "sub (a user's external_id)"
        };
        return Err(bad(format!(
            "the ID-JAG's subject (by {by}) is not a member of the organization that trusts its issuer"
        )));
    };
    let resources = target(ctx, c, ti, form)?;
    let scopes = granted_scopes(app, c, ti, form)?;
    let access = super::mint_bound_access(ctx.config, ctx.now, app, dpop)?;
    let grant_id = crypto::new_id("grt_");
    let scopes_json = scope::to_json(&scopes);
    let audience_json = crate::audience::to_json(&resources);
    let jti_hash = crypto::sha256_hex(c.jti.as_deref().unwrap_or_default());
    let audit = Audit {
        org_id: ti.org_id.clone(),
        at: ctx.now,
        actor_type: "app".into(),
        actor_id: app.id.clone(),
        app_id: Some(app.id.clone()),
        action: "id_jag.token_issued".into(),
        detail: json!({"issuer": ti.issuer, "trusted_issuer": ti.name, "user_id": user_id,
            "scopes": scopes, "resources": resources, "grant_id": grant_id}),
    };
    let issued = ctx
        .store
        .issue_id_jag_token(&IdJagToken {
            grant_id: &grant_id,
            app_id: &app.id,
            org_id: &ti.org_id,
            user_id,
            issuer: &ti.issuer,
            jti_hash: &jti_hash,
            jti_until: c.exp.unwrap_or(ctx.now) + claims::SKEW,
            scopes: &scopes_json,
            audience: &audience_json,
            access: &access.row,
            now: ctx.now,
            max_live: ctx.config.max_live_grants,
            dpop,
            audit: &audit,
        })
        .await?;
    if !issued {
        if let Some(e) = super::dpop_refusal(ctx, app, dpop).await {
            return Err(e);
        }
        return Err(bad(
            "the ID-JAG was already used (its jti is spent), or its subject, issuer or client changed meanwhile",
        ));
    }
    ctx.mirror(&access.row.hash);
    let who = Subject {
        app,
        org_id: &ti.org_id,
        actor: "self",
        user_id: Some(user_id),
        scopes: &scopes,
        audience: &resources,
        act: None,
    };
    Ok(TokenResponse::bearer(
        access_token(ctx, access, &who).await?,
        None,
        ctx.config.access_ttl,
        &scopes,
    ))
}

/// The resources the token is for: the request's `resource` (narrowing the
/// ID-JAG's), else the ID-JAG's `resource` claim; each one the issuer lists
/// and this server serves (`RESOURCES`).
fn target<D: Driver>(
    ctx: &Ctx<'_, D>,
    c: &claims::Claims,
    ti: &IdJagIssuer,
    form: &Params,
) -> Result<Vec<String>, OAuthError> {
    let served = ctx.config.resource_list(&ctx.issuer);
    let claimed = claims::resources(c).map_err(OAuthError::InvalidTarget)?;
    let asked = crate::audience::requested(form, &served).map_err(OAuthError::InvalidTarget)?;
    let chosen = match (asked.is_empty(), claimed.is_empty()) {
        (false, false) => {
            if let Some(r) = asked.iter().find(|r| !claimed.contains(r)) {
                return Err(OAuthError::InvalidTarget(format!(
                    "resource {r:?} is not one the ID-JAG names"
                )));
            }
            asked
        }
        (false, true) => asked,
        (true, false) => claimed,
        (true, true) => {
            return Err(OAuthError::InvalidTarget(
                "name the resource: the ID-JAG has no resource claim and the request no resource parameter".into(),
            ))
        }
    };
    let listed = scope::from_json(&ti.resources);
    if let Some(r) = chosen.iter().find(|r| !served.contains(r) || !listed.contains(r)) {
        return Err(OAuthError::InvalidTarget(format!(
            "resource {r:?} is not one this server serves (RESOURCES) and the trusted issuer lists"
        )));
    }
    Ok(chosen)
}

/// The scope: the ID-JAG's `scope` (absent: the issuer's scopes) within the
/// issuer's `scopes`, the user's role permissions (and the issuer's
/// `default_role`'s, when set: a ceiling) and the client's declared scopes;
/// a request `scope` may narrow it and never name anything outside it.
fn granted_scopes(
    app: &crate::store::AppRow,
    c: &claims::Claims,
    ti: &IdJagIssuer,
    form: &Params,
) -> Result<Vec<String>, OAuthError> {
    let words = |s: Option<&str>| -> Vec<String> {
        s.unwrap_or("")
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let issuer_scopes = scope::from_json(&ti.scopes);
    let base = match c.scope.as_deref() {
        Some(s) => scope::parse(s).map_err(|e| bad(format!("the ID-JAG's scope: {e}")))?,
        None => issuer_scopes.clone(),
    };
    let mut allowed = scope::intersect(&base, &issuer_scopes);
    allowed = scope::intersect(&allowed, &words(ti.role_permissions.as_deref()));
    if ti.default_role.is_some() {
        allowed = scope::intersect(&allowed, &words(ti.default_permissions.as_deref()));
    }
    allowed = scope::intersect(&allowed, &app.scope_list());
    let scopes = match form.get("scope").map(scope::parse) {
        Some(Err(e)) => return Err(OAuthError::InvalidScope(e)),
        Some(Ok(asked)) => {
            if let Some(s) = scope::first_outside(&asked, &allowed) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {s:?} is outside what this ID-JAG allows (its scope, the issuer's scopes, \
                     the user's role and the client's declared scopes)"
                )));
            }
            asked
        }
        None => allowed,
    };
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope is left in the intersection of the ID-JAG's scope, the issuer's scopes, the user's \
             role and the client's declared scopes"
                .into(),
        ));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn jws(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn only_the_header_typ_makes_an_id_jag() {
        assert!(is_id_jag(&jws(r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#)));
        assert!(is_id_jag(&jws(
            r#"{"alg":"RS256","typ":"application/OAUTH-ID-JAG+JWT"}"#
        )));
        // Whatever the alg: refusing `none` is the grant's job, not the router's.
        assert!(is_id_jag(&jws(r#"{"alg":"none","typ":"oauth-id-jag+jwt"}"#)));
        for not in [
            jws(r#"{"alg":"ES256","typ":"JWT"}"#),
            jws(r#"{"alg":"ES256"}"#),
            jws(r#"{"alg":"ES256","typ":"oauth-id-jag+jwt-x"}"#),
            "an-opaque-authorization-code".to_string(),
            String::new(),
        ] {
            assert!(!is_id_jag(&not), "{not}");
        }
    }
}
