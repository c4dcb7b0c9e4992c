//! An org's trusted issuers: `/admin/v1/orgs/{org}/trusted-issuers[/{name}]`,
//! the enterprise identity providers whose ID-JAGs the jwt-bearer grant
//! accepts (`crate::grants::id_jag`). An issuer belongs to one org, so an
//! ID-JAG's `iss` names the org it acts in.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, orgs, page, page_response, raced, Applied};
use crate::client_metadata::openid::check_fetch_uri;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{ProvOrg, ProvTrustedIssuer};
use crate::store::Driver;

/// Most entries of each list (clients, resources, scopes).
pub const MAX_LIST: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerPut {
    pub issuer: String,
    pub jwks_uri: String,
    pub allowed_clients: Vec<String>,
    #[serde(default)]
    pub subject_claim: Option<String>,
    #[serde(default)]
    pub default_role: Option<String>,
    pub resources: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerPatch {
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub allowed_clients: Option<Vec<String>>,
    pub subject_claim: Option<String>,
    #[serde(default, deserialize_with = "super::some")]
    pub default_role: Option<Option<String>>,
    pub resources: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
}

fn list(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| json!([]))
}

pub fn issuer_json(org: &str, t: &ProvTrustedIssuer) -> Value {
    json!({
        "org": org, "org_id": t.org_id, "name": t.name, "issuer": t.issuer, "jwks_uri": t.jwks_uri,
        "allowed_clients": list(&t.allowed_clients), "subject_claim": t.subject_claim,
        "default_role": t.default_role, "resources": list(&t.resources), "scopes": list(&t.scopes),
        "created_at": t.created_at, "updated_at": t.updated_at,
    })
}

fn valid_name(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ApiError::bad_request(
            "a trusted issuer name is 1 to 100 of A-Z, a-z, 0-9, '_', '-', '.'",
        ));
    }
    Ok(())
}

/// A list of 1 to [`MAX_LIST`] distinct entries, each checked by `one`.
fn entries(field: &str, v: &[String], one: impl Fn(&str) -> Result<String, String>) -> Result<Vec<String>, ApiError> {
    if v.is_empty() || v.len() > MAX_LIST {
        return Err(ApiError::bad_request(format!(
            "{field} must list 1 to {MAX_LIST} entries"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for x in v {
        let x = one(x).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))?;
        if !out.contains(&x) {
            out.push(x);
        }
    }
    Ok(out)
}

/// The stored entry `input` describes, checked; `current`'s creation time kept.
fn checked<D: Driver>(
    ctx: &Ctx<'_, D>,
    o: &ProvOrg,
    name: &str,
    input: TrustedIssuerPut,
    current: Option<&ProvTrustedIssuer>,
) -> Result<ProvTrustedIssuer, ApiError> {
    let loopback = ctx.config.cimd_allow_http_loopback;
    check_fetch_uri("issuer", input.issuer.trim(), loopback).map_err(ApiError::bad_request)?;
    // Kept as sent: an ID-JAG's `iss` is compared with it as a string (RFC 7519 §4.1.1).
    let issuer = input.issuer.trim().to_string();
    check_fetch_uri("jwks_uri", input.jwks_uri.trim(), loopback).map_err(ApiError::bad_request)?;
    let clients = entries("allowed_clients", &input.allowed_clients, |c| {
        let c = c.trim();
        if c.is_empty() || c.len() > 512 || c.chars().any(char::is_control) {
            return Err("a client_id is 1 to 512 characters without control characters".into());
        }
        Ok(c.to_string())
    })?;
    let served = ctx.config.resource_list(&ctx.issuer);
    let resources = entries("resources", &input.resources, |r| {
        let r = crate::audience::canonical(r.trim())?;
        if !served.contains(&r) {
            return Err(format!(
                "{r:?} is not a resource this server issues tokens for (RESOURCES: {})",
                served.join(" ")
            ));
        }
        Ok(r)
    })?;
    let scopes = entries("scopes", &input.scopes, |s| {
        crate::scope::parse(s.trim()).and_then(|v| match v.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err("each entry is one scope".into()),
        })
    })?;
    let subject_claim = match input.subject_claim.as_deref().map(str::trim) {
        None | Some("sub") => "sub",
        Some("email") => "email",
        Some(_) => return Err(ApiError::bad_request("subject_claim must be \"sub\" or \"email\"")),
    };
    Ok(ProvTrustedIssuer {
        org_id: o.id.clone(),
        name: name.to_string(),
        issuer,
        jwks_uri: input.jwks_uri.trim().to_string(),
        allowed_clients: crate::scope::to_json(&clients),
        subject_claim: subject_claim.to_string(),
        default_role: input.default_role.map(|r| r.trim().to_string()),
        resources: crate::scope::to_json(&resources),
        scopes: crate::scope::to_json(&scopes),
        created_at: current.map(|c| c.created_at).unwrap_or(ctx.now),
        updated_at: ctx.now,
    })
}

async fn existing<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
) -> Result<(ProvOrg, ProvTrustedIssuer), ApiError> {
    let o = orgs::existing(ctx, org).await?;
    let t = ctx
        .store
        .trusted_issuer_named(&o.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no trusted issuer {name:?} in org {org:?}")))?;
    Ok((o, t))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, org: &str, name: &str) -> Result<Response, ApiError> {
    let (_, t) = existing(ctx, org, name).await?;
    Ok(Response::json(200, &issuer_json(org, &t)))
}

pub async fn list_of_org<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, org: &str) -> Result<Response, ApiError> {
    let p = page(req)?;
    let o = orgs::existing(ctx, org).await?;
    let rows = ctx
        .store
        .trusted_issuers_page(&o.id, p.after.as_deref(), p.limit + 1)
        .await?;
    Ok(page_response(rows, &p, |t| t.name.clone(), |t| issuer_json(org, t)))
}

pub async fn put<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    input: TrustedIssuerPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    valid_name(name)?;
    let o = orgs::existing(ctx, org).await?;
    let current = ctx.store.trusted_issuer_named(&o.id, name).await?;
    apply(ctx, org, name, &o, current, input, dry_run).await
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    input: TrustedIssuerPatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let (o, c) = existing(ctx, org, name).await?;
    let strings = |raw: &str| crate::scope::from_json(raw);
    let full = TrustedIssuerPut {
        issuer: input.issuer.unwrap_or_else(|| c.issuer.clone()),
        jwks_uri: input.jwks_uri.unwrap_or_else(|| c.jwks_uri.clone()),
        allowed_clients: input.allowed_clients.unwrap_or_else(|| strings(&c.allowed_clients)),
        subject_claim: Some(input.subject_claim.unwrap_or_else(|| c.subject_claim.clone())),
        default_role: input.default_role.unwrap_or_else(|| c.default_role.clone()),
        resources: input.resources.unwrap_or_else(|| strings(&c.resources)),
        scopes: input.scopes.unwrap_or_else(|| strings(&c.scopes)),
    };
    apply(ctx, org, name, &o, Some(c), full, dry_run).await
}

async fn apply<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    o: &ProvOrg,
    current: Option<ProvTrustedIssuer>,
    input: TrustedIssuerPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let mut t = checked(ctx, o, name, input, current.as_ref())?;
    if let Some(role) = &t.default_role {
        if ctx.store.role(role).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "unknown role {role:?}; define it first with PUT /admin/v1/roles/{{name}}"
            )));
        }
    }
    // One org per issuer: its `iss` is what picks the org an ID-JAG acts in.
    if let Some(other) = ctx.store.trusted_issuer_by_issuer(&t.issuer).await? {
        if other.org_id != o.id || other.name != name {
            return Err(conflict(format!(
                "issuer {:?} is already trusted by another {}; an issuer belongs to one org",
                t.issuer,
                if other.org_id == o.id {
                    "entry of this org"
                } else {
                    "org"
                }
            )));
        }
    }
    let mut changes = Map::new();
    if let Some(c) = &current {
        let before = issuer_json(org, c);
        let after = issuer_json(org, &t);
        for f in [
            "issuer",
            "jwks_uri",
            "allowed_clients",
            "subject_claim",
            "default_role",
            "resources",
            "scopes",
        ] {
            diff(&mut changes, f, before[f].clone(), after[f].clone());
        }
        if changes.is_empty() {
            t.updated_at = c.updated_at;
        }
    }
    let created = current.is_none();
    let applied = Applied::new(issuer_json(org, &t), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created {
        "trusted_issuer.created"
    } else {
        "trusted_issuer.updated"
    };
    let mut detail = issuer_json(org, &t);
    detail["changes"] = Value::Object(applied.changes.clone());
    if !ctx
        .store
        .put_trusted_issuer(&t, ctx.now, &note(Some(&o.id), action, detail))
        .await?
    {
        return Err(raced());
    }
    Ok(applied)
}

pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, org: &str, name: &str, dry_run: bool) -> Result<Response, ApiError> {
    let (o, t) = existing(ctx, org, name).await?;
    if dry_run {
        return Ok(deleted(true, issuer_json(org, &t)));
    }
    let detail = json!({"name": name, "issuer": t.issuer});
    if !ctx
        .store
        .delete_trusted_issuer(
            &o.id,
            name,
            ctx.now,
            &note(Some(&o.id), "trusted_issuer.deleted", detail),
        )
        .await?
    {
        return Err(raced());
    }
    Ok(deleted(false, issuer_json(org, &t)))
}
