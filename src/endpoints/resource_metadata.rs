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

use crate::audience::{resources, split, WELL_KNOWN};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::Driver;

/// Whether a path is the metadata document or one of its path-suffixed forms.
pub fn is_metadata_path(path: &str) -> bool {
    path == WELL_KNOWN || path.strip_prefix(WELL_KNOWN).is_some_and(|rest| rest.starts_with('/'))
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
    fn metadata_paths_are_the_well_known_path_and_its_suffixes() {
        assert!(is_metadata_path(WELL_KNOWN));
        assert!(is_metadata_path("/.well-known/oauth-protected-resource/api/v1"));
        assert!(!is_metadata_path("/.well-known/oauth-protected-resourcex"));
    }
}
