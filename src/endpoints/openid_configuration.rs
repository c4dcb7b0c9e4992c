//! OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`): the
//! RFC 8414 document plus what an OpenID relying party looks for.

use serde_json::json;

use crate::context::Ctx;
use crate::http::Response;
use crate::store::Driver;

/// 404 with `OPENID=off`: then this is no OpenID Provider.
pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    if !ctx.config.openid {
        return crate::error::ApiError::new(404, "not_found", "this server is not an OpenID Provider (OPENID=off)")
            .into_response();
    }
    let mut doc = match super::metadata::document(ctx).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let i = &ctx.issuer;
    let subject = match ctx.config.subject_type {
        crate::config::SubjectType::Public => "public",
        crate::config::SubjectType::Pairwise => "pairwise",
    };
    let extra = json!({
        "userinfo_endpoint": format!("{i}/oauth/userinfo"),
        "end_session_endpoint": format!("{i}/oauth/logout"),
        "jwks_uri": format!("{i}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": crate::oidc::id_token::algorithms(ctx.config),
        "subject_types_supported": [subject],
        "claims_supported": crate::oidc::claims::supported(),
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        // Logout (RP-Initiated and Back-Channel 1.0); no front-channel iframes.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "frontchannel_logout_session_supported": false,
        // Request objects, `request_uri` and the `claims` parameter are not
        // supported (refused with `request_not_supported`).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "claims_parameter_supported": false,
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Response::json(200, &doc).header("Cache-Control", super::metadata::cache_control(ctx))
}
