//! RFC 8414 authorization server metadata.

use serde_json::json;

use crate::client_metadata::sender::ALGS;
use crate::context::Ctx;
use crate::http::Response;
use crate::store::Driver;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    match document(ctx).await {
        Ok(doc) => Response::json(200, &doc).header("Cache-Control", cache_control(ctx)),
        Err(resp) => resp,
    }
}

/// The RFC 8414 document, which OpenID Connect Discovery's extends
/// (`super::openid_configuration`): one `issuer`, one list of endpoints.
pub(crate) async fn document<D: Driver>(ctx: &Ctx<'_, D>) -> Result<serde_json::Value, Response> {
    let mut scopes = match crate::catalogue::scopes(ctx).await {
        Ok(s) => s,
        Err(e) => return Err(crate::error::ApiError::from(e).into_response()),
    };
    // Built in, asked for without declaration (`crate::scope::OPENID_SCOPES`).
    if ctx.config.openid {
        for s in crate::scope::OPENID_SCOPES {
            if !scopes.iter().any(|c| c == s) {
                scopes.push(s.to_string());
            }
        }
    }
    let i = &ctx.issuer;
    let mut doc = json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/oauth/authorize"),
            "token_endpoint": format!("{i}/oauth/token"),
            "revocation_endpoint": format!("{i}/oauth/revoke"),
            "introspection_endpoint": format!("{i}/oauth/introspect"),
            // RFC 9126 §5.
            "pushed_authorization_request_endpoint": format!("{i}/oauth/par"),
            "require_pushed_authorization_requests": ctx.config.par_required,
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                crate::grants::device_code::GRANT_TYPE,
                crate::grants::token_exchange::GRANT_TYPE
            ],
            // RFC 8628 §4 (the verification page itself is not listed).
            "device_authorization_endpoint": format!("{i}/oauth/device_authorization"),
            "code_challenge_methods_supported": ["S256"],
            // RFC 9449 §5.1.
            "dpop_signing_alg_values_supported": crate::jose::Alg::ALL.map(crate::jose::Alg::name),
            "token_endpoint_auth_methods_supported": auth_methods(ctx, true),
            "revocation_endpoint_auth_methods_supported": auth_methods(ctx, true),
            "introspection_endpoint_auth_methods_supported": auth_methods(ctx, false),
            // private_key_jwt's assertions (`crate::client_auth::assertion`).
            "token_endpoint_auth_signing_alg_values_supported": ALGS,
            "revocation_endpoint_auth_signing_alg_values_supported": ALGS,
            "introspection_endpoint_auth_signing_alg_values_supported": ALGS,
            "authorization_response_iss_parameter_supported": true,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "service_documentation": format!("{i}/"),
            // RFC 9728 §4: the protected resources this server issues tokens for.
            "protected_resources": crate::audience::resources(ctx),
    });
    // RFC 8414 §2 / RFC 7591: only when registration is on.
    if ctx.config.dcr.policy != crate::config::DcrPolicy::Off {
        doc["registration_endpoint"] = json!(format!("{i}/oauth/register"));
    }
    // RFC 9068 §4: resource servers find the signing keys of JWT access
    // tokens here, relying parties those of ID tokens; only while either is
    // issued (opaque access tokens are introspected).
    if ctx.config.publishes_jwks() {
        doc["jwks_uri"] = json!(format!("{i}/.well-known/jwks.json"));
    }
    // draft-ietf-oauth-identity-assertion-authz-grant §"Resource Authorization
    // Server Metadata": the profile, and the grant it rides on; never which
    // issuers are trusted (that is per org, and not for the public to read).
    if ctx.config.id_jag.on {
        if let Some(g) = doc["grant_types_supported"].as_array_mut() {
            g.push(json!(crate::grants::id_jag::GRANT_TYPE));
        }
        doc["authorization_grant_profiles_supported"] = json!([crate::grants::id_jag::PROFILE]);
    }
    // draft-ietf-oauth-client-id-metadata-document §6: an https URL may be the client_id.
    if ctx.config.cimd {
        doc["client_id_metadata_document_supported"] = json!(true);
    }
    Ok(doc)
}

/// A discovery document (this one, RFC 9728's) is cacheable only when the
/// issuer is configured: one derived from a loopback request must not be
/// kept by a shared cache.
pub(crate) fn cache_control<D: Driver>(ctx: &Ctx<'_, D>) -> &'static str {
    if ctx.config.issuer.is_some() {
        "public, max-age=300"
    } else {
        "no-store"
    }
}

/// Client authentication methods an endpoint accepts: under FAPI 2.0
/// (`FAPI2=on`) only `private_key_jwt`, which is all it lets through.
fn auth_methods<D: Driver>(ctx: &Ctx<'_, D>, public_clients: bool) -> Vec<&'static str> {
    if ctx.config.fapi2 {
        return vec!["private_key_jwt"];
    }
    let mut methods = vec!["client_secret_basic", "client_secret_post"];
    if public_clients {
        methods.push("none");
    }
    methods.push("private_key_jwt");
    methods
}
