//! Issuing the authorization code: who may approve what (the bot install needs
//! an admin on every path), and the code bound to client, redirect URI and PKCE.

use super::{redirect, AuthzRequest};
use crate::context::Ctx;
use crate::crypto;
use crate::http::Response;
use crate::scope;
use crate::session::Session;
use crate::store::{AppRow, CodeRow, CodeStored, Driver};
use crate::templates::unavailable_page;

/// Whether a member with `role` may approve `actor` for `app` in `org_id`:
/// installing the bot identity is an org-level decision (FeatureOS), and a
/// bot that is not public can only be added by its owner org (Fluxer).
pub(super) fn may_approve(app: &AppRow, org_id: &str, actor: &str, role: Option<&str>) -> bool {
    actor != "app"
        || (matches!(role, Some("owner" | "admin"))
            && (app.bot_public != 0 || app.owner_org_id.as_deref() == Some(org_id)))
}

/// Mint a code bound to client, redirect URI and PKCE challenge, and send the
/// browser back with it (303 after the consent POST, 302 from a GET). The
/// store re-checks the user's standing in the same write (a role changed
/// since the reads): then no code, and the client is told as `prompt=none`
/// would be (GET) or as a denial (POST).
pub(super) async fn issue_code<D: Driver>(
    ctx: &Ctx<'_, D>,
    r: &AuthzRequest,
    session: &Session,
    org_id: &str,
    actor: &str,
    post: bool,
) -> Response {
    let code = crypto::new_token(&ctx.config.prefixes.code);
    let row = CodeRow {
        hash: crypto::sha256_hex(&code),
        app_id: r.app.id.clone(),
        org_id: org_id.to_string(),
        user_id: Some(session.user.user_id.clone()),
        actor: actor.to_string(),
        scopes: scope::to_json(&r.scopes),
        redirect_uri: r.redirect_param.clone(),
        challenge: r.challenge.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + ctx.config.code_ttl,
        used_at: None,
        grant_id: None,
        audience: Some(crate::audience::granted(ctx.config, &ctx.issuer, &r.resources)),
        // What the ID token of this code's exchange will say (OIDC Core §2).
        nonce: r.nonce.clone(),
        auth_time: session.user.auth_time,
        acr: session.user.acr.clone(),
        amr: session.user.amr.clone(),
        sid: session.user.sid.clone(),
        dpop_jkt: r.dpop_jkt.clone(),
    };
    let pushed = r.pushed.as_deref().and_then(super::pushed::key);
    match ctx
        .store
        .insert_code_for(&row, r.app.registration != "platform", pushed.as_deref())
        .await
    {
        Ok(CodeStored::Stored) => {}
        // Another tab or a replayed form issued this pushed request's code.
        Ok(CodeStored::PushedSpent) => {
            return Response::html(
                400,
                crate::templates::error_page(
                    "Request refused",
                    "The request_uri has expired or was already used. Start again from the app.",
                ),
            )
        }
        Ok(CodeStored::NotApproved) => {
            let error = if post { "access_denied" } else { "consent_required" };
            return r.refuse(
                &ctx.issuer,
                error,
                "the user may no longer approve this app in that organization",
                post,
            );
        }
        Err(e) => return unavailable_page(e),
    }
    ctx.note(&r.app.id, Some(org_id));
    redirect(
        &r.redirect_to,
        &[("code", &code)],
        r.state.as_deref(),
        &ctx.issuer,
        post,
    )
}
