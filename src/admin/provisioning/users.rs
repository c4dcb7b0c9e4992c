//! Users by the platform's id: `/admin/v1/users[/{external_id}]` (email,
//! name, optional password for the built-in sign-in).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{conflict, deleted, diff, note, page, page_response, raced, some, text, Applied};
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::{ProvUser, UserUpsert};
use crate::store::Driver;

/// `password`: absent keeps the current one (passwords are write-only, so a
/// read-modify-write cannot carry them); `null` removes it (the user can then
/// sign in only through the platform); a string sets it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPut {
    pub email: String,
    pub name: String,
    #[serde(default, deserialize_with = "some")]
    pub password: Option<Option<String>>,
    /// Has the platform verified `email`? Absent: unchanged while the
    /// address stays the same, `false` for a new user or a new address (a
    /// verification never carries over to another address).
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// The OpenID `preferred_username`: absent keeps it, `null` removes it.
    #[serde(default, deserialize_with = "some")]
    pub preferred_username: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub password: Option<Option<String>>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    pub preferred_username: Option<Option<String>>,
}

pub fn user_json(u: &ProvUser) -> Value {
    json!({
        "external_id": u.external_id, "id": u.id, "email": u.email, "name": u.name,
        "has_password": !u.password_hash.is_empty(), "created_at": u.created_at,
        "preferred_username": u.preferred_username, "email_verified": u.email_verified != 0,
        "updated_at": u.updated_at,
    })
}

fn email(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    let ok = v.len() >= 3
        && v.len() <= 320
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && v.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if !ok {
        return Err(ApiError::bad_request(
            "email must be an address such as name@example.com (at most 320 characters)",
        ));
    }
    Ok(v.to_string())
}

pub async fn existing<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str) -> Result<ProvUser, ApiError> {
    ctx.store
        .user_by_external_id(external_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user with external_id {external_id:?}")))
}

pub async fn get<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str) -> Result<Response, ApiError> {
    Ok(Response::json(200, &user_json(&existing(ctx, external_id).await?)))
}

pub async fn list<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let p = page(req)?;
    let rows = ctx.store.users_page(p.after.as_deref(), p.limit + 1).await?;
    Ok(page_response(
        rows,
        &p,
        |u| u.external_id.clone().unwrap_or_default(),
        user_json,
    ))
}

/// Create or replace a user (see [`UserPut`] for the password). Reusable by
/// other back-office acts (an accepted login challenge upserts its user).
pub async fn put<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    input: UserPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = ctx.store.user_by_external_id(external_id).await?;
    apply(ctx, external_id, current, input, dry_run).await
}

pub async fn patch<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    input: UserPatch,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = existing(ctx, external_id).await?;
    let full = UserPut {
        email: input.email.unwrap_or_else(|| current.email.clone()),
        name: input.name.unwrap_or_else(|| current.name.clone()),
        password: input.password,
        email_verified: input.email_verified,
        preferred_username: input.preferred_username,
    };
    apply(ctx, external_id, Some(current), full, dry_run).await
}

/// A new hash in `crypto::hash_password`'s format, derived by `ctx.kdf`
/// (WebCrypto in the worker).
async fn hash_password<D: Driver>(ctx: &Ctx<'_, D>, password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the platform CSPRNG is available");
    let n = crypto::DEFAULT_PASSWORD_ITERATIONS;
    let derived = ctx.kdf.pbkdf2_sha256(password.as_bytes(), &salt, n).await;
    format!(
        "pbkdf2-sha256${n}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(derived)
    )
}

/// Does `stored` already hash `password`? (The same body twice is no change.)
async fn same_password<D: Driver>(ctx: &Ctx<'_, D>, stored: &str, password: &str) -> bool {
    match crypto::parse_password_hash(stored) {
        Some(h) => crypto::password_matches(
            &ctx.kdf.pbkdf2_sha256(password.as_bytes(), &h.salt, h.iterations).await,
            &h,
        ),
        None => false,
    }
}

async fn apply<D: Driver>(
    ctx: &Ctx<'_, D>,
    external_id: &str,
    current: Option<ProvUser>,
    input: UserPut,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let email = email(&input.email)?;
    let name = text("name", &input.name, 1, 200)?;
    if let Some(Some(p)) = &input.password {
        if p.chars().count() < 8 || p.len() > 1024 {
            return Err(ApiError::bad_request("password must be 8 to 1024 characters"));
        }
    }
    if let Some(holder) = ctx.store.email_holder(&email).await? {
        if holder.external_id.as_deref() != Some(external_id) {
            return Err(conflict(format!("email {email:?} belongs to another user")));
        }
    }
    let preferred_username = match &input.preferred_username {
        None => current.as_ref().and_then(|c| c.preferred_username.clone()),
        Some(None) => None,
        Some(Some(u)) => Some(text("preferred_username", u, 1, 100)?),
    };
    let same_address = current.as_ref().is_some_and(|c| c.email.eq_ignore_ascii_case(&email));
    let email_verified = match input.email_verified {
        Some(v) => v,
        None => same_address && current.as_ref().is_some_and(|c| c.email_verified != 0),
    };
    let had = current.as_ref().is_some_and(|c| !c.password_hash.is_empty());
    let mut changes = Map::new();
    let password_hash: Option<Option<String>> = match &input.password {
        None => None,
        Some(None) if had => {
            changes.insert("password".into(), json!({"from": "set", "to": "none"}));
            Some(None)
        }
        Some(None) => None,
        Some(Some(p)) => {
            let stored = current.as_ref().map(|c| c.password_hash.as_str()).unwrap_or("");
            if had && same_password(ctx, stored, p).await {
                None
            } else {
                if current.is_some() {
                    let from = if had { "set" } else { "none" };
                    changes.insert("password".into(), json!({"from": from, "to": "new"}));
                }
                Some(Some(hash_password(ctx, p).await))
            }
        }
    };
    let mut user = ProvUser {
        id: current
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_else(|| crypto::new_id("usr_")),
        external_id: Some(external_id.to_string()),
        email: email.clone(),
        name: name.clone(),
        password_hash: match &password_hash {
            Some(h) => h.clone().unwrap_or_default(),
            None => current.as_ref().map(|c| c.password_hash.clone()).unwrap_or_default(),
        },
        created_at: current.as_ref().map(|c| c.created_at).unwrap_or(ctx.now),
        preferred_username: preferred_username.clone(),
        email_verified: email_verified as i64,
        updated_at: current.as_ref().map(|c| c.updated_at).unwrap_or(ctx.now),
    };
    let mut profile_changed = current.is_none();
    if let Some(c) = &current {
        diff(&mut changes, "email", json!(c.email), json!(email));
        diff(&mut changes, "name", json!(c.name), json!(name));
        diff(
            &mut changes,
            "preferred_username",
            json!(c.preferred_username),
            json!(preferred_username),
        );
        diff(
            &mut changes,
            "email_verified",
            json!(c.email_verified != 0),
            json!(email_verified),
        );
        // `updated_at` (OIDC Core §5.1) moves with the claims apps read,
        // not with the password.
        profile_changed = ["email", "name", "preferred_username", "email_verified"]
            .iter()
            .any(|k| changes.contains_key(*k));
    }
    if profile_changed {
        user.updated_at = ctx.now;
    }
    let created = current.is_none();
    let applied = Applied::new(user_json(&user), created, changes, dry_run);
    if dry_run || !applied.changed() {
        return Ok(applied);
    }
    let action = if created { "user.created" } else { "user.updated" };
    let detail = json!({"external_id": external_id, "user_id": user.id, "email": email, "changes": applied.changes});
    let up = UserUpsert {
        id: user.id.clone(),
        external_id: external_id.to_string(),
        email,
        name,
        password_hash,
        preferred_username,
        email_verified,
        profile_changed,
    };
    let id = ctx
        .store
        .upsert_user(&up, ctx.now, &note(None, action, detail))
        .await?
        .ok_or_else(raced)?;
    let mut a = applied;
    a.resource["id"] = id.into();
    Ok(a)
}

/// Delete a user: sessions, grants (tokens), consents, memberships, in the
/// same batch (`Store::delete_user`). Refused while they are an org's last
/// owner.
pub async fn delete<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str, dry_run: bool) -> Result<Response, ApiError> {
    let user = existing(ctx, external_id).await?;
    let only = ctx.store.orgs_only_owned_by(&user.id).await?;
    if !only.is_empty() {
        return Err(conflict(format!(
            "the user is the last owner of {}; give the org another owner or delete it first",
            only.join(", ")
        )));
    }
    let body = user_json(&user);
    if dry_run {
        return Ok(deleted(true, body));
    }
    let detail = json!({"external_id": external_id, "user_id": user.id, "email": user.email});
    let queued = ctx
        .store
        .delete_user(
            &user.id,
            crate::oidc::logout::logout_issuer(ctx),
            ctx.now,
            &note(None, "user.deleted", detail),
        )
        .await?
        .ok_or_else(raced)?;
    crate::oidc::logout::deliver(ctx, queued);
    Ok(deleted(false, body))
}
