//! RFC 9728 protected resource metadata: the configured resources, their documents, and the URL a challenge names.
//!
//! Resources are `RESOURCES` (default: the demo API, `<issuer>/api/v1`). A
//! resource's document lives where RFC 9728 §3.1 puts it: the well-known path
//! inserted between its host and its path, so `https://auth.example/api/v1`
//! is described at `https://auth.example/.well-known/oauth-protected-resource/api/v1`.
//! This worker answers for the resources on the origin a request came to; a
//! resource on another host is described here once that host's
//! `/.well-known/oauth-protected-resource*` is routed to this worker.
//!
//! `GET /.well-known/oauth-protected-resource` (no path) exists only for a
//! resource identified by the bare origin (RFC 9728 §3.1): answering it with
//! another resource's document makes a client that checks §3.3's exact match
//! (the MCP SDK) throw instead of trying the next URL.

use serde_json::json;

use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::Driver;

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Whether a path is the metadata document or one of its path-suffixed forms.
pub fn is_metadata_path(path: &str) -> bool {
    path == WELL_KNOWN || path.strip_prefix(WELL_KNOWN).is_some_and(|rest| rest.starts_with('/'))
}

/// The resource identifiers this deployment describes.
pub fn resources<D: Driver>(ctx: &Ctx<'_, D>) -> Vec<String> {
    ctx.config.resource_list(&ctx.issuer)
}

/// `(origin, path)` of a canonical identifier; the path is empty or starts with `/`.
fn split(resource: &str) -> Option<(String, String)> {
    let u = url::Url::parse(resource).ok()?;
    Some((
        u.origin().ascii_serialization(),
        u.path().trim_end_matches('/').to_string(),
    ))
}

/// RFC 9728 §3.1: the metadata URL of a resource identifier.
pub fn metadata_url(resource: &str) -> Option<String> {
    let (origin, path) = split(resource)?;
    Some(format!("{origin}{WELL_KNOWN}{path}"))
}

/// The listed resource a request is calling: the one on the request's
/// origin whose path is the longest segment-wise prefix of the request path.
/// `None` when no listed resource covers it.
pub fn resource_for_request<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<String> {
    let origin = req.origin();
    resources(ctx)
        .into_iter()
        .filter_map(|r| split(&r).map(|(o, p)| (r, o, p)))
        .filter(|(_, o, p)| {
            *o == origin
                && (p.is_empty()
                    || req.path == *p
                    || req
                        .path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/')))
        })
        .max_by_key(|(_, _, p)| p.len())
        .map(|(r, _, _)| r)
}

/// The document URL for the resource a request is calling; `None` when no
/// listed resource covers it (then a challenge names no document rather
/// than a wrong one).
pub fn url_for_request<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<String> {
    resource_for_request(ctx, req).and_then(|r| metadata_url(&r))
}

/// The listed resource a metadata request is for, by RFC 9728 §3.1.
fn resource_for<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<String> {
    let suffix = req.path.strip_prefix(WELL_KNOWN)?.trim_end_matches('/');
    let origin = req.origin();
    let on_origin: Vec<(String, String)> = resources(ctx)
        .into_iter()
        .filter_map(|r| split(&r).filter(|(o, _)| *o == origin).map(|(_, p)| (r, p)))
        .collect();
    on_origin.into_iter().find(|(_, p)| p == suffix).map(|(r, _)| r)
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    let Some(resource) = resource_for(ctx, req) else {
        return ApiError::not_found(format!(
            "no protected resource is described at {}; see {WELL_KNOWN}",
            req.path
        ))
        .into_response();
    };
    let scopes = match crate::catalogue::scopes(ctx).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    Response::json(
        200,
        &json!({
            "resource": resource,
            "authorization_servers": [ctx.issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
        }),
    )
    .header("Cache-Control", super::metadata::cache_control(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path_between_host_and_path() {
        assert_eq!(
            metadata_url("https://api.example.com/v1").as_deref(),
            Some("https://api.example.com/.well-known/oauth-protected-resource/v1")
        );
        assert_eq!(
            metadata_url("https://api.example.com").as_deref(),
            Some("https://api.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8787/api/v1").as_deref(),
            Some("http://127.0.0.1:8787/.well-known/oauth-protected-resource/api/v1")
        );
        assert!(is_metadata_path(WELL_KNOWN));
        assert!(is_metadata_path("/.well-known/oauth-protected-resource/api/v1"));
        assert!(!is_metadata_path("/.well-known/oauth-protected-resourcex"));
    }
}
