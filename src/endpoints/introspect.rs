//! Token introspection (RFC 7662) for resource servers. The caller must
//! authenticate as a confidential client; it sees its own tokens, and every
//! token if it is listed in `INTROSPECTION_CLIENTS` (the platform's API).
//! Anything else is `{"active": false}` (§2.2), never an error that leaks.

use serde_json::json;

use crate::bearer::Principal;
use crate::client_auth::{self, Method};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::{Request, Response};
use crate::scope;
use crate::store::{BearerRow, Driver, Store, TokenRow};

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    match run(ctx, req).await {
        Ok(v) => Response::json(200, &v).no_store(),
        Err(e) => e.into_response(),
    }
}

async fn run<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<serde_json::Value, OAuthError> {
    let inactive = json!({"active": false});
    let form = req.form().map_err(OAuthError::InvalidRequest)?;
    let creds = client_auth::from_request(ctx, req, &form).await?;
    let presented = form.get("token").map(|t| ctx.profile.unwrapped(ctx.config, t));
    let presented = presented.as_deref();
    let jwt = presented.is_some_and(|t| crate::jwt::looks_like_jwt(t) && !ctx.config.jwt_keys.is_empty());
    let token = match presented {
        Some(t) if t.len() <= if jwt { 4096 } else { 256 } => t,
        other => {
            let client = client_auth::resolve(ctx, creds).await?;
            confidential(&client)?;
            return match other {
                None => Err(OAuthError::InvalidRequest("token is required".into())),
                Some(_) => Ok(inactive),
            };
        }
    };
    // A JWT is looked up by its `jti` once its signature checks; an expired
    // one is answered from storage (`active: false`) like an opaque one. A
    // forged one matches no row.
    let handle = match jwt {
        true => crate::bearer::storage_handle(ctx, token, true)
            .await
            .unwrap_or_default(),
        false => token.to_string(),
    };
    let hash = crypto::sha256_hex(&handle);
    // One round trip: the client's row and the token's, read together.
    let guard = client_auth::guard(ctx, &creds);
    if jwt || token.starts_with(&ctx.config.prefixes.access) {
        let (app, row) = ctx
            .store
            .read_for_client::<BearerRow>(&guard, Store::<D>::bearer_stmt(&hash, ctx.now))
            .await?;
        let client = client_auth::verify(ctx, creds, app).await?;
        confidential(&client)?;
        let privileged = ctx.config.introspection_clients.iter().any(|c| c == &client.app.id);
        // A URL client whose host is no longer allowed: its tokens are dead.
        let Some(row) = row.filter(|r| crate::cimd::admitted(ctx.config, &r.app_id)) else {
            return Ok(inactive);
        };
        if row.app_id != client.app.id && !privileged {
            return Ok(inactive);
        }
        let p = Principal::from_row(row);
        let aud = crate::audience::Audience(p.audience(ctx));
        let r = &p.row;
        let sub = p.subject(ctx.config).unwrap_or_else(|| format!("app:{}", r.app_id));
        let mut v = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": scope::join(&p.scopes),
            "client_id": r.app_id,
            "sub": sub,
            "exp": r.expires_at,
            "iat": r.created_at,
            "iss": ctx.issuer,
            "aud": aud,
            "org_id": r.org_id,
            "org": r.org_slug,
            "actor": r.actor,
            "permissions": p.permissions,
        });
        // RFC 9449 §6.2: the key a bound token needs a proof by.
        if let Some(jkt) = &r.jkt {
            v["token_type"] = json!("DPoP");
            v["cnf"] = json!({"jkt": jkt});
        }
        // RFC 8693 §4.1: who acts for the subject (nested for a chain).
        if let Some(act) = r
            .act
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        {
            v["act"] = act;
        }
        platform_view(&mut v, privileged, &r.actor, r.user_id.as_deref());
        return Ok(v);
    }
    let (app, row) = ctx
        .store
        .read_for_client::<TokenRow>(&guard, Store::<D>::token_stmt(&hash))
        .await?;
    let client = client_auth::verify(ctx, creds, app).await?;
    confidential(&client)?;
    let privileged = ctx.config.introspection_clients.iter().any(|c| c == &client.app.id);
    let Some(row) = row else {
        return Ok(inactive);
    };
    let live = row.kind == "refresh"
        && row.used_at.is_none()
        && row.revoked_at.is_none()
        && row.grant_revoked_at.is_none()
        && row.expires_at.is_none_or(|t| t > ctx.now);
    if !live || (row.app_id != client.app.id && !privileged) || !crate::cimd::admitted(ctx.config, &row.app_id) {
        return Ok(inactive);
    }
    let mut v = json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": scope::join(&scope::from_json(&row.scopes)),
        "client_id": row.app_id,
        "sub": match (row.actor.as_str(), row.user_id.as_deref()) {
            ("self", Some(u)) => crate::oidc::subject::of_client(
                ctx.config,
                &row.app_id,
                row.app_redirect_uris.as_deref().unwrap_or("[]"),
                row.app_sector_identifier_uri.as_deref(),
                u,
            ),
            _ => format!("app:{}", row.app_id),
        },
        "iat": row.created_at,
        "iss": ctx.issuer,
        "aud": crate::audience::Audience(crate::audience::stored(row.audience.as_deref(), ctx.config, &ctx.issuer)),
        "org_id": row.org_id,
        "actor": row.actor,
    });
    if let Some(exp) = row.expires_at {
        v["exp"] = exp.into();
    }
    platform_view(&mut v, privileged, &row.actor, row.user_id.as_deref());
    Ok(v)
}

fn confidential(client: &client_auth::Client) -> Result<(), OAuthError> {
    if client.method == Method::None {
        return Err(OAuthError::client(
            "introspection requires a confidential client",
            false,
        ));
    }
    Ok(())
}

/// `sub` is the token's client's name for its user (`oidc::subject`), which
/// under pairwise subjects is not the user id. A privileged caller
/// (`INTROSPECTION_CLIENTS`: the platform's own API, never an app) also gets
/// `user_id`, so it can find the user; no app ever reads it here.
fn platform_view(v: &mut serde_json::Value, privileged: bool, actor: &str, user_id: Option<&str>) {
    if let (true, "self", Some(u)) = (privileged, actor, user_id) {
        v["user_id"] = u.into();
    }
}
