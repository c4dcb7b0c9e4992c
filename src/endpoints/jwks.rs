//! The JWK set (RFC 7517 §5, RFC 8414 and OIDC Discovery `jwks_uri`): public keys only.

use crate::context::Ctx;
use crate::http::Response;
use crate::store::Driver;

/// Served only while something it verifies is issued: JWT access tokens
/// (`ACCESS_TOKEN_FORMAT=jwt`) or ID tokens (`OPENID=on`). Keys configured
/// but signing nothing would send a resource server that follows `jwks_uri`
/// to verify opaque tokens locally. Every key is listed with `kid`, `use`
/// and `alg` (EC: ES256, RSA: RS256), the verify-only ones of a rotation too.
/// Cached a few minutes: a rotated-in key is listed (as a verify-only key)
/// before it signs, so a resource server's copy is never missing a signer
/// for longer than this.
pub fn handle<D: Driver>(ctx: &Ctx<'_, D>) -> Response {
    if !ctx.config.publishes_jwks() {
        return crate::error::ApiError::new(404, "not_found", "this server issues no JWT access tokens")
            .into_response();
    }
    let c = ctx.config;
    let mut keys: Vec<serde_json::Value> = c.jwt_keys.iter().map(crate::crypto::Jwk::public).collect();
    if c.openid {
        keys.extend(c.rsa_keys.iter().map(crate::crypto::RsaJwk::public));
    }
    Response::json(200, &serde_json::json!({ "keys": keys }))
        .header("Cache-Control", "public, max-age=300")
        .cors()
}
