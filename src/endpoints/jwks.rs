//! The JWK set of JWT access tokens (RFC 7517 §5, RFC 8414 `jwks_uri`): public keys only.

use crate::context::Ctx;
use crate::http::Response;
use crate::store::Driver;

/// Served only while access tokens are JWTs (`ACCESS_TOKEN_FORMAT=jwt`):
/// keys configured but signing nothing would send a resource server that
/// follows `jwks_uri` to verify opaque tokens locally.
/// Cached a few minutes: a rotated-in key is listed (as a verify-only key)
/// before it signs, so a resource server's copy is never missing a signer
/// for longer than this.
pub fn handle<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    if !ctx.config.publishes_jwks() {
        return crate::error::ApiError::new(404, "not_found", "this server issues no JWT access tokens")
            .into_response();
    }
    Response::json(200, &crate::jwt::jwks(&ctx.config.jwt_keys))
        .header("Cache-Control", "public, max-age=300")
        .cors()
}
