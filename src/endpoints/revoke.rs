//! Token revocation (RFC 7009). Revoking a refresh token ends its whole grant
//! (§2.1: the server SHOULD also invalidate access tokens of the same grant).
//! Unknown tokens, and tokens of other clients, get the same 200 (§2.2).

use crate::client_auth;
use crate::context::Ctx;
use crate::crypto::{self, well_formed};
use crate::error::OAuthError;
use crate::http::{Request, Response};
use crate::store::{Driver, TokenKind};

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    // Azure DevOps's helper: a bearer revoking itself, under its profile only.
    if let Some(resp) = ctx.profile.self_revocation(ctx, req).await {
        return resp;
    }
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
    let creds = client_auth::from_request(ctx, req, &form).await?;
    let Some(token) = form.get("token") else {
        let e = OAuthError::InvalidRequest("token is required".into());
        return Err(client_auth::after_auth(ctx, creds, e).await);
    };
    let token = &*ctx.profile.unwrapped(ctx.config, token);
    // A JWT access token is revoked through its `jti` (its storage handle),
    // once its signature checks; expired ones too (RFC 7009 §2.2).
    let jwt = crate::jwt::looks_like_jwt(token) && !ctx.config.jwt_keys.is_empty();
    let handle = match jwt {
        true => crate::bearer::storage_handle(ctx, token, true).await,
        false => None,
    };
    if token.len() > if jwt { 4096 } else { 256 } {
        client_auth::resolve(ctx, creds).await?;
        return Ok(());
    }
    // One round trip: the client's row, and both revocations guarded by the
    // client's credentials and ownership of the token.
    let guard = client_auth::guard(ctx, &creds);
    let p = &ctx.config.prefixes;
    // Prefixes are settings; if one extends the other, the longer one decides.
    let kind = match (well_formed(token, &p.access), well_formed(token, &p.refresh)) {
        _ if jwt => handle.as_ref().map(|_| TokenKind::Access),
        (true, true) if p.refresh.len() > p.access.len() => Some(TokenKind::Refresh),
        (true, _) => Some(TokenKind::Access),
        (false, true) => Some(TokenKind::Refresh),
        (false, false) => None,
    };
    let app = ctx
        .store
        .revoke_for_client(&crypto::sha256_hex(handle.as_deref().unwrap_or(token)), kind, &guard)
        .await?;
    client_auth::verify(ctx, creds, app).await?;
    Ok(())
}
