//! A client's token exchange policy (`apps.token_exchange`): which subject
//! tokens it may exchange, for which targets and scopes, and whether it must
//! name an actor. `None` (the default) means it may not exchange at all.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::MAX_RESOURCES;

/// Most scopes a policy's cap may list.
pub const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Resources whose tokens this client may exchange: its own resource
    /// (an MCP server's URL). Empty: only ID tokens issued to this client.
    pub subject_audiences: Vec<String>,
    /// Resources it may ask a token for (each also in `RESOURCES`).
    pub audiences: Vec<String>,
    /// A cap on the exchanged token's scopes, besides the subject's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `optional` (default) or `required`.
    #[serde(default = "optional")]
    pub actor_token: String,
}

fn optional() -> String {
    "optional".into()
}

impl Policy {
    pub fn actor_required(&self) -> bool {
        self.actor_token == "required"
    }
}

/// The stored policy; a row that does not parse (never written by
/// [`validate`]) counts as none, so it fails closed.
pub fn parse(stored: Option<&str>) -> Option<Policy> {
    serde_json::from_str(stored?).ok()
}

/// The policy as the apps API shows it (`null` when off).
pub fn to_json(stored: Option<&str>) -> Value {
    parse(stored)
        .and_then(|p| serde_json::to_value(p).ok())
        .unwrap_or(Value::Null)
}

/// [`validate`] against this deployment's `RESOURCES`; absent: off.
pub fn check(
    config: &crate::config::Config,
    issuer: &str,
    sent: Option<&Value>,
    public: bool,
) -> Result<Option<String>, String> {
    validate(sent.unwrap_or(&Value::Null), &config.resource_list(issuer), public)
}

/// A policy as sent (`null`: off), checked, as the JSON to store.
/// `resources`: the deployment's `RESOURCES`; `public`: the client holds no
/// credential, and RFC 8693 §2.1 exchange needs an authenticated client.
pub fn validate(v: &Value, resources: &[String], public: bool) -> Result<Option<String>, String> {
    if v.is_null() {
        return Ok(None);
    }
    if !v.is_object() {
        return Err("token_exchange must be null or an object {\"subject_audiences\": [...], \"audiences\": [...], \"scopes\": [...], \"actor_token\": \"optional\"|\"required\"}".into());
    }
    if public {
        return Err("token_exchange needs a confidential client: a token exchange authenticates the client (client_secret_* or private_key_jwt)".into());
    }
    let mut p: Policy = serde_json::from_value(v.clone()).map_err(|e| format!("token_exchange: {e}"))?;
    p.subject_audiences = listed("subject_audiences", &p.subject_audiences, resources)?;
    p.audiences = listed("audiences", &p.audiences, resources)?;
    if p.audiences.is_empty() {
        return Err("token_exchange.audiences must name at least one resource the exchanged tokens may be for".into());
    }
    if let Some(scopes) = &p.scopes {
        if scopes.len() > MAX_SCOPES {
            return Err(format!("token_exchange.scopes lists more than {MAX_SCOPES} scopes"));
        }
        for s in scopes {
            if crate::scope::parse(s).map_or(true, |v| v.len() != 1) {
                return Err(format!("token_exchange.scopes: {s:?} is not a scope name"));
            }
        }
        let mut sorted = scopes.clone();
        sorted.sort();
        sorted.dedup();
        p.scopes = Some(sorted);
    }
    if !matches!(p.actor_token.as_str(), "optional" | "required") {
        return Err(format!(
            "token_exchange.actor_token must be \"optional\" or \"required\", not {:?}",
            p.actor_token
        ));
    }
    serde_json::to_string(&p).map(Some).map_err(|e| e.to_string())
}

/// Canonical, de-duplicated, each one of `resources`.
fn listed(field: &str, raw: &[String], resources: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_RESOURCES {
        return Err(format!(
            "token_exchange.{field} lists more than {MAX_RESOURCES} resources"
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let c = crate::audience::canonical(r).map_err(|e| format!("token_exchange.{field}: {e}"))?;
        if !resources.contains(&c) {
            return Err(format!(
                "token_exchange.{field}: {c:?} is not a resource this server issues tokens for (RESOURCES)"
            ));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res() -> Vec<String> {
        vec!["https://as.test/api/v1".into(), "https://mcp.test/mcp".into()]
    }

    #[test]
    fn a_policy_is_checked_and_canonical() {
        let v = json!({"subject_audiences": ["https://MCP.test/mcp/"], "audiences": ["https://as.test/api/v1"], "scopes": ["read", "read"]});
        let s = validate(&v, &res(), false).unwrap().unwrap();
        let p = parse(Some(&s)).unwrap();
        assert_eq!(p.subject_audiences, ["https://mcp.test/mcp"]);
        assert_eq!(p.scopes.as_deref(), Some(&["read".to_string()][..]));
        assert!(!p.actor_required());
        assert_eq!(validate(&Value::Null, &res(), true).unwrap(), None);
    }

    #[test]
    fn bad_policies_say_why() {
        let cases = [
            (json!({"audiences": ["https://as.test/api/v1"]}), "subject_audiences"),
            (json!({"subject_audiences": [], "audiences": []}), "at least one"),
            (
                json!({"subject_audiences": [], "audiences": ["https://other.test"]}),
                "RESOURCES",
            ),
            (
                json!({"subject_audiences": [], "audiences": ["https://as.test/api/v1"], "actor_token": "maybe"}),
                "actor_token",
            ),
            (
                json!({"subject_audiences": [], "audiences": ["https://as.test/api/v1"], "extra": 1}),
                "unknown field",
            ),
            (
                json!({"subject_audiences": [], "audiences": ["https://as.test/api/v1"], "scopes": ["a b"]}),
                "scope name",
            ),
            (json!(["x"]), "null or an object"),
        ];
        for (v, why) in cases {
            let e = validate(&v, &res(), false).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
        let ok = json!({"subject_audiences": [], "audiences": ["https://as.test/api/v1"]});
        assert!(validate(&ok, &res(), true).unwrap_err().contains("confidential"));
    }

    #[test]
    fn an_unreadable_row_is_no_policy() {
        assert_eq!(parse(Some("{\"audiences\": 1}")), None);
        assert_eq!(parse(None), None);
        assert_eq!(to_json(None), Value::Null);
    }
}
