//! Initial access tokens for `DCR=initial_access_token` (RFC 7591 §3), minted
//! by the platform in the back office: `POST /admin/v1/initial-access-tokens`
//! (the token is shown once), `GET` lists them, `DELETE …/{id}` revokes one.

use serde::Deserialize;
use serde_json::json;

use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::registration::INITIAL_TOKEN_PREFIX;
use crate::store::provisioning::{PLATFORM_ACTOR, PLATFORM_AUDIT_ORG};
use crate::store::{Audit, Driver, InitialAccessTokenRow};

/// Default and longest lifetime of an initial access token.
pub const DEFAULT_EXPIRES_IN: i64 = 7 * 24 * 3600;
pub const MAX_EXPIRES_IN: i64 = 365 * 24 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    expires_in: Option<i64>,
    max_uses: Option<i64>,
}

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, name: &str, params: &[String]) -> Response {
    let result = match name {
        "iat_create" => create(ctx, req).await,
        "iat_list" => list(ctx).await,
        _ => revoke(ctx, params.first().map(String::as_str).unwrap_or("")).await,
    };
    result.unwrap_or_else(ApiError::into_response).no_store()
}

fn json_of(t: &InitialAccessTokenRow) -> serde_json::Value {
    json!({"id": t.id, "label": t.label, "created_at": t.created_at, "expires_at": t.expires_at,
           "max_uses": t.max_uses, "uses": t.uses, "revoked": t.revoked_at.is_some()})
}

fn audit<D: Driver>(ctx: &Ctx<'_, D>, action: &str, detail: serde_json::Value) -> Audit {
    ctx.audit_entry(PLATFORM_AUDIT_ORG, "platform", PLATFORM_ACTOR, None, action, detail)
}

async fn create<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let input: NewToken = if req.body.is_empty() {
        NewToken::default()
    } else {
        crate::error::parse_json(req)?
    };
    let expires_in = input.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    if !(60..=MAX_EXPIRES_IN).contains(&expires_in) {
        return Err(ApiError::bad_request(format!(
            "expires_in must be 60 to {MAX_EXPIRES_IN} seconds"
        )));
    }
    if input.max_uses.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
        return Err(ApiError::bad_request(
            "max_uses must be 1 to 1000000 (or absent: no limit)",
        ));
    }
    if input.label.chars().count() > 100 {
        return Err(ApiError::bad_request("label must be at most 100 characters"));
    }
    let token = crypto::new_token(INITIAL_TOKEN_PREFIX);
    let row = InitialAccessTokenRow {
        id: format!("iatid_{}", crypto::random_b64(12)),
        label: input.label,
        created_at: ctx.now,
        expires_at: ctx.now + expires_in,
        max_uses: input.max_uses,
        uses: 0,
        revoked_at: None,
    };
    let a = audit(
        ctx,
        "initial_access_token.created",
        json!({"id": row.id, "label": row.label, "expires_at": row.expires_at, "max_uses": row.max_uses}),
    );
    ctx.store
        .insert_initial_access_token(&row, &crypto::sha256_hex(&token), &a)
        .await?;
    let mut body = json_of(&row);
    // Shown once; only its SHA-256 is kept.
    body["token"] = token.into();
    Ok(Response::json(201, &body))
}

async fn list<D: Driver>(ctx: &Ctx<'_, D>) -> Result<Response, ApiError> {
    let rows = ctx.store.initial_access_tokens(ctx.now).await?;
    let items: Vec<_> = rows.iter().map(json_of).collect();
    Ok(Response::json(200, &json!({"items": items})))
}

async fn revoke<D: Driver>(ctx: &Ctx<'_, D>, id: &str) -> Result<Response, ApiError> {
    let a = audit(ctx, "initial_access_token.revoked", json!({"id": id}));
    if ctx.store.revoke_initial_access_token(id, ctx.now, &a).await? {
        Ok(Response::new(204))
    } else {
        Err(ApiError::not_found("no such live initial access token"))
    }
}
