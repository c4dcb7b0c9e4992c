//! Token revocation (RFC 7009). Revoking a refresh token ends its whole grant
//! (§2.1: the server SHOULD also invalidate access tokens of the same grant).
//! Unknown tokens, and tokens of other clients, get the same 200 (§2.2).

use crate::client_auth;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::{Request, Response};
use crate::server::Ctx;
use crate::store::Driver;

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    match run(ctx, req).await {
        Ok(()) => Response::new(200).no_store(),
        Err(e) => e.into_response(),
    }
}

async fn run<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<(), OAuthError> {
    let form = req.form().map_err(OAuthError::InvalidRequest)?;
    if let Some(name) = form.repeated(&["token", "token_type_hint"]) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    let client = client_auth::authenticate(ctx, req, &form).await?;
    let Some(token) = form.get("token") else {
        return Err(OAuthError::InvalidRequest("token is required".into()));
    };
    if token.len() > 256 {
        return Ok(());
    }
    let hash = crypto::sha256_hex(token);
    let Some(row) = ctx.store.token(&hash).await? else {
        return Ok(());
    };
    if row.app_id != client.app.id {
        return Ok(());
    }
    if row.kind == "refresh" {
        ctx.store.revoke_grant(&row.grant_id, ctx.now).await?;
    } else {
        ctx.store.revoke_token(&hash, ctx.now).await?;
    }
    Ok(())
}
