//! Errors as types: each knows its RFC 6749 code and HTTP status.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

use serde_json::json;

use crate::http::{Request, Response};

/// RFC 6749 §5.2 token-endpoint errors (also used by revoke and introspect),
/// plus the RFC 6750 bearer errors for resource routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest(String),
    /// RFC 6749 §5.2: 401, with `WWW-Authenticate` when the client used Basic.
    InvalidClient {
        description: String,
        basic: bool,
    },
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    /// RFC 8707 §2: a `resource` that is malformed, unknown or not granted.
    InvalidTarget(String),
    /// RFC 6585 §4: too many failed attempts.
    RateLimited {
        retry_after: i64,
    },
    ServerError(String),
    /// RFC 9449 §5, §7.1: a DPoP proof missing, malformed or not for this request.
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof needs the server's nonce (sent in `DPoP-Nonce`).
    UseDpopNonce(String),
    /// RFC 8628 §3.5: the device's poll, answered before the user decided,
    /// too soon, after a denial, or after the device code expired.
    AuthorizationPending(String),
    SlowDown(String),
    AccessDenied(String),
    ExpiredToken(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::RateLimited { .. } => "too_many_requests",
            Self::ServerError(_) => "server_error",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce(_) => "use_dpop_nonce",
            Self::AuthorizationPending(_) => "authorization_pending",
            Self::SlowDown(_) => "slow_down",
            Self::AccessDenied(_) => "access_denied",
            Self::ExpiredToken(_) => "expired_token",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidClient { .. } => 401,
            Self::RateLimited { .. } => 429,
            Self::ServerError(_) => 500,
            _ => 400,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::ServerError(d)
            | Self::InvalidDpopProof(d)
            | Self::UseDpopNonce(d)
            | Self::AuthorizationPending(d)
            | Self::SlowDown(d)
            | Self::AccessDenied(d)
            | Self::ExpiredToken(d) => d,
            Self::InvalidClient { description, .. } => description,
            Self::RateLimited { .. } => "too many failed attempts; retry later",
        }
    }

    pub fn client(description: impl Into<String>, basic: bool) -> Self {
        Self::InvalidClient {
            description: description.into(),
            basic,
        }
    }

    pub fn into_response(self) -> Response {
        let mut resp = Response::json(
            self.status(),
            &json!({"error": self.code(), "error_description": self.description()}),
        )
        .no_store();
        match &self {
            Self::InvalidClient { basic: true, .. } => {
                resp = resp.header("WWW-Authenticate", "Basic realm=\"oauth\"");
            }
            Self::RateLimited { retry_after } => {
                resp = resp.header("Retry-After", &retry_after.to_string());
            }
            _ => {}
        }
        resp
    }
}

impl From<StoreError> for OAuthError {
    // The storage text is for the log line (`Server::handle` takes it from the
    // driver), never for the client.
    fn from(_: StoreError) -> Self {
        OAuthError::ServerError(UNAVAILABLE.into())
    }
}

/// What a client is told when storage fails: nothing internal.
pub const UNAVAILABLE: &str = "the service is temporarily unavailable; retry shortly";

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECONDS: i64 = 5;

/// The answer to any request during a storage outage (or any other 5xx):
/// 503 (500 when storage did not fail), `Retry-After`, a JSON error (the
/// browser pages' HTML one is `templates::unavailable`); never the internal text.
pub fn unavailable(storage: bool) -> Response {
    let status = if storage { 503 } else { 500 };
    let code = if storage {
        "temporarily_unavailable"
    } else {
        "server_error"
    };
    retry_after(
        storage,
        Response::json(status, &json!({"error": code, "error_description": UNAVAILABLE})).no_store(),
    )
}

/// The `Retry-After` a storage outage's answer carries, JSON or HTML.
pub fn retry_after(storage: bool, resp: Response) -> Response {
    if storage {
        resp.header("Retry-After", &RETRY_AFTER_SECONDS.to_string())
    } else {
        resp
    }
}

/// A failure of the storage layer (D1 or SQLite). Never caused by user input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors of the management API: JSON `{error, error_description}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub extra: Option<serde_json::Value>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            extra: None,
            retry_after: None,
        }
    }
    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub fn bad_request(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", d)
    }
    pub fn unauthorized(d: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", d)
    }
    pub fn forbidden(d: impl Into<String>) -> Self {
        Self::new(403, "forbidden", d)
    }
    pub fn not_found(d: impl Into<String>) -> Self {
        Self::new(404, "not_found", d)
    }
    pub fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "error_description": self.description});
        if let (Some(extra), Some(obj)) = (self.extra, body.as_object_mut()) {
            if let Some(map) = extra.as_object() {
                for (k, v) in map {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        let resp = Response::json(self.status, &body).no_store();
        match self.retry_after {
            Some(s) => resp.header("Retry-After", &s.to_string()),
            None => resp,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(_: StoreError) -> Self {
        ApiError::new(503, "temporarily_unavailable", UNAVAILABLE)
    }
}

pub fn parse_json<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let ct = req.header("content-type").unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(ApiError::new(
            415,
            "invalid_request",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
