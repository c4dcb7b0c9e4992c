//! Org API keys: `/admin/v1/orgs/{org}/api-keys[/{name}]`. A key is named
//! within its org; its secret is shown once, kept as SHA-256.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, orgs, page, page_response, raced, Applied};
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{ApiKeyUpsert, ProvApiKey, ProvOrg};
use crate::store::Driver;

/// `secret`: import a key the platform already handed out (it must carry
/// `PREFIX_API_KEY` and at least 32 more characters of `[A-Za-z0-9_-]`), so
/// existing integrations keep working; absent, a new key gets a generated
/// secret and an existing key keeps its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyPut {
    pub role: String,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyPatch {
    pub role: Option<String>,
}

pub fn key_json(org: &str, k: &ProvApiKey) -> Value {
    json!({"org": org, "org_id": k.org_id, "name": k.name, "role": k.role, "created_at": k.created_at})
}

fn valid_name(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ApiError::bad_request(
            "an API key name is 1 to 100 of A-Z, a-z, 0-9, '_', '-', '.'",
        ));
    }
    Ok(())
}

fn valid_secret<D: Driver>(ctx: &Ctx<'_, D>, s: &str) -> Result<(), ApiError> {
    let prefix = &ctx.config.prefixes.api_key;
    let ok = s.len() <= 256
        && s.strip_prefix(prefix.as_str()).is_some_and(|rest| {
            rest.len() >= 32
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !ok {
        return Err(ApiError::bad_request(format!(
            "an imported secret starts with {prefix:?} followed by 32 to {} of A-Z, a-z, 0-9, '_', '-'",
            256 - prefix.len()
        )));
    }
    Ok(())
}

/// The org and its key `name`, or 404.
async fn existing<D: Driver>(ctx: &Ctx<'_, D>, org: &str, name: &str) -> Result<(ProvOrg, ProvApiKey), ApiError> {
    let o = orgs::existing(ctx, org).await?;
    let k = ctx
        .store
        .api_key_named(&o.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no API key {name:?} in org {org:?}")))?;
    Ok((o, k))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, org: &str, name: &str) -> Result<Response, ApiError> {
    let (_, k) = existing(ctx, org, name).await?;
    Ok(Response::json(200, &key_json(org, &k)))
}

pub async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, org: &str) -> Result<Response, ApiError> {
    let p = page(req)?;
    let o = orgs::existing(ctx, org).await?;
    let rows = ctx.store.api_keys_page(&o.id, p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(rows, &p, |k| k.name.clone(), |k| key_json(org, k)))
}

/// Create the key (its secret in the answer, once) or change its role.
pub async fn put<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    input: ApiKeyPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    valid_name(name)?;
    let o = orgs::existing(ctx, org).await?;
    let current = ctx.store.api_key_named(&o.id, name).await?;
    apply(ctx, org, name, o, current, input, dry_run).await
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    input: ApiKeyPatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let (o, current) = existing(ctx, org, name).await?;
    valid_name(name)?;
    let role = input.role.unwrap_or_else(|| current.role.clone());
    apply(
        ctx,
        org,
        name,
        o,
        Some(current),
        ApiKeyPut { role, secret: None },
        dry_run,
    )
    .await
}

/// [`put`] once the org and its key (if any) are read.
async fn apply<D: Driver>(
    ctx: &Ctx<'_, D>,
    org: &str,
    name: &str,
    o: ProvOrg,
    current: Option<ProvApiKey>,
    input: ApiKeyPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let role = ctx.store.role(input.role.trim()).await?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown role {:?}; define it first with PUT /admin/v1/roles/{{name}}",
            input.role
        ))
    })?;
    let mut changes = Map::new();
    let mut generated = None;
    let hash = match &input.secret {
        Some(s) => {
            valid_secret(ctx, s)?;
            let h = crypto::sha256_hex(s);
            match ctx.store.api_key_by_hash(&h).await? {
                Some(k) if k.org_id != o.id || k.name != name => {
                    return Err(conflict("that secret belongs to another API key"));
                }
                Some(_) if current.is_some() => None,
                _ => {
                    if current.is_some() {
                        changes.insert("secret".into(), json!({"from": "set", "to": "imported"}));
                    }
                    Some(h)
                }
            }
        }
        None if current.is_none() => {
            let s = crypto::new_token(&ctx.config.prefixes.api_key);
            let h = crypto::sha256_hex(&s);
            generated = Some(s);
            Some(h)
        }
        None => None,
    };
    if let Some(c) = &current {
        diff(&mut changes, "role", json!(c.role), json!(role.name));
    }
    let k = ProvApiKey {
        org_id: o.id.clone(),
        name: name.to_string(),
        role: role.name.clone(),
        created_at: current.as_ref().map(|c| c.created_at).unwrap_or(ctx.now),
    };
    let created = current.is_none();
    let mut applied = Applied::new(key_json(org, &k), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created { "api_key.created" } else { "api_key.updated" };
    let detail =
        json!({"name": name, "role": role.name, "imported": input.secret.is_some(), "changes": applied.changes});
    let up = ApiKeyUpsert {
        org_id: o.id.clone(),
        name: name.to_string(),
        role: role.name,
        hash,
        create: created,
    };
    if !ctx
        .store
        .put_api_key(&up, ctx.now, &note(Some(&o.id), action, detail))
        .await?
    {
        return Err(raced());
    }
    applied.secret = generated;
    Ok(applied)
}

/// Revoke a key: the next management call with it gets 401.
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, org: &str, name: &str, dry_run: bool) -> Result<Response, ApiError> {
    let (o, k) = existing(ctx, org, name).await?;
    if dry_run {
        return Ok(deleted(true, key_json(org, &k)));
    }
    let detail = json!({"name": name, "role": k.role});
    if !ctx
        .store
        .delete_api_key(&o.id, name, ctx.now, &note(Some(&o.id), "api_key.revoked", detail))
        .await?
    {
        return Err(raced());
    }
    Ok(deleted(false, key_json(org, &k)))
}
