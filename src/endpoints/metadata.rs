//! RFC 8414 authorization server metadata.

use serde_json::json;

use crate::http::Response;
use crate::server::Ctx;
use crate::store::Driver;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    let scopes: Vec<String> = match ctx.store.scope_catalogue().await {
        Ok(rows) => rows.into_iter().map(|s| s.name).collect(),
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let i = &ctx.issuer;
    Response::json(
        200,
        &json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/oauth/authorize"),
            "token_endpoint": format!("{i}/oauth/token"),
            "revocation_endpoint": format!("{i}/oauth/revoke"),
            "introspection_endpoint": format!("{i}/oauth/introspect"),
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": true,
            "prompt_values_supported": ["none", "consent"],
            "service_documentation": format!("{i}/"),
        }),
    )
    .header("Cache-Control", "public, max-age=300")
}
