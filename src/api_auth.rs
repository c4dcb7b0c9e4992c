//! Who is calling the management API: an org API key (`Authorization: Bearer
//! <key>`) or a signed-in browser session, which must also send the session's
//! CSRF token in `X-CSRF-Token` on unsafe methods.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::Request;
use crate::session;
use crate::store::{Driver, MembershipRow};

pub enum Caller {
    ApiKey {
        org_id: String,
        role: String,
        name: String,
    },
    User {
        user_id: String,
        email: String,
        memberships: Vec<MembershipRow>,
    },
}

impl Caller {
    /// The caller's role in `org_id`, if any.
    pub fn role_in(&self, org_id: &str) -> Option<&str> {
        match self {
            Caller::ApiKey { org_id: o, role, .. } => (o == org_id).then_some(role.as_str()),
            Caller::User { memberships, .. } => {
                memberships.iter().find(|m| m.org_id == org_id).map(|m| m.role.as_str())
            }
        }
    }

    /// The org the request acts in: the key's org, or the one named by the user.
    pub fn org(&self, named: Option<&str>) -> Result<String, ApiError> {
        match (self, named) {
            (Caller::ApiKey { org_id, .. }, None) => Ok(org_id.clone()),
            (Caller::ApiKey { org_id, .. }, Some(n)) if n == org_id => Ok(org_id.clone()),
            (Caller::ApiKey { .. }, Some(_)) => {
                Err(ApiError::forbidden("this API key belongs to another organization"))
            }
            (Caller::User { .. }, None) => Err(ApiError::bad_request("name the organization with org_id")),
            (Caller::User { memberships, .. }, Some(n)) => memberships
                .iter()
                .find(|m| m.org_id == n)
                .map(|m| m.org_id.clone())
                .ok_or_else(|| ApiError::forbidden("you are not a member of that organization")),
        }
    }

    /// (actor type, actor id) for the audit log.
    pub fn audit_actor(&self) -> (&'static str, String) {
        match self {
            Caller::ApiKey { name, .. } => ("api_key", name.clone()),
            Caller::User { user_id, .. } => ("user", user_id.clone()),
        }
    }

    pub fn actor_label(&self) -> String {
        match self {
            Caller::ApiKey { name, .. } => format!("api_key:{name}"),
            Caller::User { user_id, .. } => user_id.clone(),
        }
    }
}

pub async fn caller<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Caller, ApiError> {
    if let Some(key) = crate::bearer::presented(req) {
        if !key.starts_with(&ctx.config.prefixes.api_key) || key.len() > 256 {
            return Err(ApiError::unauthorized("the API key is not valid"));
        }
        return match ctx.store.api_key(&crypto::sha256_hex(key)).await? {
            Some(k) => Ok(Caller::ApiKey {
                org_id: k.org_id,
                role: k.role,
                name: k.name,
            }),
            None => Err(ApiError::unauthorized("the API key is not valid")),
        };
    }
    let Some(s) = session::current(ctx, req).await? else {
        return Err(ApiError::unauthorized(
            "send an org API key as Authorization: Bearer <key>, or sign in",
        ));
    };
    if !matches!(req.method.as_str(), "GET" | "HEAD") && !session::csrf_ok(&s, req.header("x-csrf-token")) {
        return Err(ApiError::forbidden(
            "a signed-in request must carry the session's X-CSRF-Token",
        ));
    }
    let memberships = ctx.store.memberships(&s.user.user_id).await?;
    Ok(Caller::User {
        user_id: s.user.user_id,
        email: s.user.email,
        memberships,
    })
}

/// Does `role` carry `permission`? (Looked up, so operators can edit roles.)
pub async fn role_has<D: Driver>(ctx: &Ctx<'_, D>, role: &str, permission: &str) -> Result<bool, ApiError> {
    Ok(ctx.store.role_permissions(role).await?.iter().any(|p| p == permission))
}
