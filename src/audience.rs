//! What a token may be used for (RFC 8707 resource indicators): the `resource`
//! parameter, the audience that codes, grants and tokens carry, and the check
//! a resource makes before it honours a token.
//!
//! An audience is a set of resource identifiers from `RESOURCES` (RFC 9728).
//! At authorize, `resource` names the resources the user approves the client
//! for; at the token endpoint it may narrow that set for one access token
//! (RFC 8707 §2.2), and a refresh may narrow it again but never widen it past
//! what the grant holds, since the refresh token keeps the grant's whole set.
//! No `resource` anywhere: the default audience, the first listed resource.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Config, MAX_RESOURCES};
use crate::context::Ctx;
use crate::http::{Params, Request};
use crate::store::Driver;

/// Longest `resource` value looked at (as `RESOURCES` entries).
pub const MAX_LEN: usize = 512;

/// The canonical form of a resource identifier, the form `RESOURCES` lists:
/// scheme and host lowercased, default port dropped, no trailing slash (MCP
/// clients send `https://host/` for a server at the root). RFC 8707 §2: an
/// absolute URI without a fragment; a query is kept, so it matches nothing
/// listed (no listed resource has one).
pub fn canonical(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("resource is empty; it must be an absolute URI".into());
    }
    if raw.len() > MAX_LEN {
        return Err(format!("resource is longer than {MAX_LEN} characters"));
    }
    let Ok(u) = url::Url::parse(raw) else {
        return Err("resource must be an absolute URI".into());
    };
    if u.fragment().is_some() {
        return Err("resource must not have a fragment (RFC 8707 §2)".into());
    }
    if !matches!(u.scheme(), "https" | "http") || !u.username().is_empty() || u.password().is_some() {
        return Ok(raw.to_string());
    }
    let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!(
        "{}{}{query}",
        u.origin().ascii_serialization(),
        u.path().trim_end_matches('/')
    ))
}

/// The `resource` values of a request (the parameter may repeat), canonical,
/// de-duplicated, in the order sent, each one of the `known` resources.
/// Empty when none was sent. The error is the `invalid_target` description.
pub fn requested(p: &Params, known: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (i, (_, raw)) in p.0.iter().filter(|(k, _)| k == "resource").enumerate() {
        if i >= MAX_RESOURCES {
            return Err(format!("at most {MAX_RESOURCES} resource parameters"));
        }
        let c = canonical(raw)?;
        if !known.contains(&c) {
            return Err(format!("{c:?} is not a resource this server issues tokens for"));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Like [`requested`], as the JSON array stored and bound in SQL (`None`:
/// no `resource` sent, so nothing narrows).
pub fn requested_json(p: &Params, config: &Config, issuer: &str) -> Result<Option<String>, String> {
    let r = requested(p, &config.resource_list(issuer))?;
    Ok((!r.is_empty()).then(|| to_json(&r)))
}

/// The audience of a token when no `resource` named one: the first listed
/// resource (`RESOURCES`; by default the platform's API, `<issuer>/api/v1`).
/// The one place that decides it.
pub fn default_audience(config: &Config, issuer: &str) -> String {
    config.resource_list(issuer).swap_remove(0)
}

/// [`default_audience`] as a stored audience.
pub fn default_json(config: &Config, issuer: &str) -> String {
    to_json(&[default_audience(config, issuer)])
}

/// The audience approved at authorize: the resources named, or the default.
pub fn granted(config: &Config, issuer: &str, resources: &[String]) -> String {
    if resources.is_empty() {
        default_json(config, issuer)
    } else {
        to_json(resources)
    }
}

/// A list of resources as stored: a JSON array, as scopes are.
pub fn to_json(resources: &[String]) -> String {
    crate::scope::to_json(resources)
}

/// An audience as issued (a JSON array, never NULL) as a list.
pub fn from_json(raw: &str) -> Vec<String> {
    crate::scope::from_json(raw)
}

/// A stored audience as a list; NULL (rows from before migration 0012) is
/// the default audience, which those tokens were implicitly for.
pub fn stored(raw: Option<&str>, config: &Config, issuer: &str) -> Vec<String> {
    match raw {
        Some(r) => from_json(r),
        None => vec![default_audience(config, issuer)],
    }
}

/// The first of `requested` (a JSON array) outside `allowed`, if any.
pub fn first_outside(requested: &str, allowed: &[String]) -> Option<String> {
    from_json(requested).into_iter().find(|r| !allowed.contains(r))
}

/// The resource identifier of the built-in API (`/api/v1`) for a request:
/// the listed resource covering the request's URL, or else the default
/// audience (a deployment whose `RESOURCES` names the platform's API by its
/// public URL, with this worker's demo API standing in for it).
pub fn of_builtin_api<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> String {
    resource_for_request(ctx, req).unwrap_or_else(|| default_audience(ctx.config, &ctx.issuer))
}

/// The `aud` of a JWT access token or an introspection answer: a string for
/// one resource, an array for several (RFC 7519 §4.1.3 allows both; most
/// libraries compare a single string directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    pub fn contains(&self, resource: &str) -> bool {
        self.0.iter().any(|a| a == resource)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Either::deserialize(d)? {
            Either::One(s) => Audience(vec![s]),
            Either::Many(v) => Audience(v),
        })
    }
}

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The resource identifiers this deployment describes.
pub fn resources<D: Driver>(ctx: &Ctx<'_, D>) -> Vec<String> {
    ctx.config.resource_list(&ctx.issuer)
}

/// `(origin, path)` of a canonical identifier; the path is empty or starts with `/`.
pub(crate) fn split(resource: &str) -> Option<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn canonical_form_matches_the_listed_form() {
        assert_eq!(
            canonical("HTTPS://API.Example.com:443/v1/").unwrap(),
            "https://api.example.com/v1"
        );
        assert_eq!(
            canonical("https://mcp.example.com/").unwrap(),
            "https://mcp.example.com"
        );
        assert_eq!(canonical("https://a.example/x?y=1").unwrap(), "https://a.example/x?y=1");
        assert!(canonical("/api/v1").is_err(), "relative");
        assert!(canonical("api.example.com/v1").is_err(), "no scheme");
        assert!(canonical("https://a.example/v1#frag").is_err());
        assert!(
            canonical("https://a.example/v1#").is_err(),
            "an empty fragment is a fragment"
        );
        assert!(canonical("").is_err());
        assert!(canonical(&format!("https://a.example/{}", "x".repeat(MAX_LEN))).is_err());
        assert_eq!(canonical("urn:example:api").unwrap(), "urn:example:api");
    }

    #[test]
    fn requested_resources_must_be_known_and_may_repeat() {
        let known = vec![
            "https://as.test/api/v1".to_string(),
            "https://other.test/mcp".to_string(),
        ];
        assert_eq!(
            requested(&params(&[("scope", "x")]), &known).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            requested(
                &params(&[
                    ("resource", "https://other.test/mcp/"),
                    ("resource", "https://as.test/api/v1"),
                    ("resource", "https://OTHER.test/mcp")
                ]),
                &known
            )
            .unwrap(),
            vec!["https://other.test/mcp", "https://as.test/api/v1"]
        );
        assert!(requested(&params(&[("resource", "https://evil.test/mcp")]), &known).is_err());
        assert!(requested(&params(&[("resource", "https://as.test/api/v1?x=1")]), &known).is_err());
        assert!(
            requested(&params(&[("resource", "https://as.test/api")]), &known).is_err(),
            "no prefix match"
        );
        assert!(requested(&params(&[("resource", "")]), &known).is_err());
        let many: Vec<(&str, &str)> = (0..=MAX_RESOURCES)
            .map(|_| ("resource", "https://as.test/api/v1"))
            .collect();
        assert!(requested(&params(&many), &known).is_err());
    }

    #[test]
    fn audience_is_a_string_for_one_and_an_array_for_several() {
        let one = Audience(vec!["https://a".into()]);
        assert_eq!(serde_json::to_value(&one).unwrap(), serde_json::json!("https://a"));
        let two = Audience(vec!["https://a".into(), "https://b".into()]);
        assert_eq!(
            serde_json::to_value(&two).unwrap(),
            serde_json::json!(["https://a", "https://b"])
        );
        assert_eq!(
            serde_json::from_value::<Audience>(serde_json::json!("https://a")).unwrap(),
            one
        );
        assert_eq!(
            serde_json::from_value::<Audience>(serde_json::json!(["https://a", "https://b"])).unwrap(),
            two
        );
        assert!(two.contains("https://b") && !one.contains("https://b"));
    }

    #[test]
    fn stored_null_is_the_default_audience() {
        let c = Config::default();
        assert_eq!(stored(None, &c, "https://as.test"), vec!["https://as.test/api/v1"]);
        assert_eq!(
            stored(Some(r#"["https://x"]"#), &c, "https://as.test"),
            vec!["https://x"]
        );
        assert_eq!(granted(&c, "https://as.test", &[]), r#"["https://as.test/api/v1"]"#);
        assert_eq!(
            first_outside(r#"["https://x","https://y"]"#, &["https://x".into()]).as_deref(),
            Some("https://y")
        );
    }

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
    }
}
