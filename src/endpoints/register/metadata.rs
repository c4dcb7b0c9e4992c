//! The wire side of RFC 7591 client metadata: the request body, and the
//! client information response (the rules are `crate::client_metadata`).

use serde_json::{json, Value};

pub use crate::client_metadata::{invalid, ClientMetadata, Registration};
use crate::error::ApiError;
use crate::store::AppRow;

/// Largest registration or update body: bounds what one client may store
/// (`DCR_MAX_CLIENTS` of them at most).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A JSON object, within [`MAX_METADATA_BYTES`].
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ClientMetadata, ApiError> {
    if body.len() > MAX_METADATA_BYTES {
        return Err(ApiError::new(
            413,
            "invalid_client_metadata",
            format!("client metadata is larger than {MAX_METADATA_BYTES} bytes"),
        ));
    }
    let json_type = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(invalid(
            "send the client metadata as a JSON object with Content-Type: application/json",
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(invalid("the client metadata must be a JSON object"));
    }
    // A self-registered client cannot grant itself the right to exchange
    // other clients' tokens: the platform sets it (/admin/v1/clients).
    if v.get("token_exchange").is_some() {
        return Err(invalid(
            "token_exchange is not registrable (RFC 7591): the platform sets a client's token exchange policy",
        ));
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("client metadata: {e}")))
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3). Absent
/// values are left out, not `null` (client libraries validate the types).
pub fn client_info(
    app: &AppRow,
    auth_method: &str,
    issuer: &str,
    registration_token: &str,
    secret: Option<&str>,
) -> Value {
    let mut v = json!({
        "client_id": app.id,
        "client_id_issued_at": app.created_at,
        "registration_access_token": registration_token,
        "registration_client_uri": format!("{issuer}/oauth/register/{}", app.id),
        "client_name": app.name,
        "redirect_uris": app.redirect_uri_list(),
        "token_endpoint_auth_method": auth_method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": app.scope_list().join(" "),
    });
    if app.device_authorization == 1 {
        v["grant_types"] = json!([
            "authorization_code",
            "refresh_token",
            crate::client_metadata::DEVICE_CODE_GRANT
        ]);
    }
    if app.secret_hash.is_some() {
        // RFC 7591: required with a secret; 0 means it never expires.
        v["client_secret_expires_at"] = app.secret_expires_at.unwrap_or(0).into();
    }
    if let Some(s) = secret {
        v["client_secret"] = s.into();
    }
    for (key, val) in [
        ("client_uri", &app.homepage_url),
        ("logo_uri", &app.icon),
        ("tos_uri", &app.terms_url),
        ("policy_uri", &app.privacy_url),
    ] {
        if let Some(val) = val {
            v[key] = val.clone().into();
        }
    }
    for (key, val) in crate::client_metadata::openid::to_json(app, true) {
        v[key] = val;
    }
    for (key, val) in crate::client_metadata::sender::to_json(app, true) {
        v[key] = val;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_must_be_json_objects_within_the_limit() {
        let ct = Some("application/json; charset=utf-8");
        assert!(parse(ct, br#"{"redirect_uris": []}"#).is_ok());
        assert_eq!(parse(Some("text/plain"), b"{}").unwrap_err().status, 400);
        assert_eq!(parse(ct, b"not json").unwrap_err().code, "invalid_client_metadata");
        assert_eq!(parse(ct, b"[1]").unwrap_err().code, "invalid_client_metadata");
        assert_eq!(parse(ct, br#"{"redirect_uris": "https://a"}"#).unwrap_err().status, 400);
        assert_eq!(parse(ct, &vec![b' '; MAX_METADATA_BYTES + 1]).unwrap_err().status, 413);
    }
}
