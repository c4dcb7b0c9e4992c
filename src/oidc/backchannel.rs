//! Back-Channel Logout 1.0: the logout token (§2.4) of a queued delivery
//! (`store::logout`), signed at each attempt and POSTed as a form (§2.5).

use serde_json::{json, Value};

use crate::context::Ctx;
use crate::store::{DeliveryRow, Driver, LogoutPayload};
use crate::tasks::Sealed;

/// A logout token's lifetime: §2.4 asks for a short one, and a retry is
/// signed anew, so a token that leaks is soon worthless.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The claims of the logout token of `d` for `app`, issued at `now`.
pub fn claims<D: Driver>(ctx: &Ctx<'_, D>, app: &crate::store::AppRow, p: &LogoutPayload) -> Value {
    let mut c = json!({
        "iss": p.iss,
        "aud": app.id,
        "iat": ctx.now,
        "exp": ctx.now + LOGOUT_TOKEN_TTL,
        "jti": p.jti,
        "events": {EVENT: {}},
        "sub": super::subject::subject(ctx.config, app, &p.user_id),
    });
    if let Some(sid) = &p.sid {
        c["sid"] = sid.clone().into();
    }
    c
}

/// The request of a logout delivery: `logout_token=…` as a form, signed
/// with the client's ID token algorithm (RS256 unless it registered another).
pub async fn seal<D: Driver>(ctx: &Ctx<'_, D>, d: &DeliveryRow) -> Result<Sealed, String> {
    let p: LogoutPayload = serde_json::from_str(&d.payload).map_err(|e| format!("bad payload: {e}"))?;
    let app = ctx
        .store
        .app(&d.app_id)
        .await
        .map_err(|e| e.0)?
        .filter(|a| a.status != "deleted")
        .ok_or("the app is gone")?;
    let alg = super::id_token::Alg::of(&app)?;
    let token = super::id_token::sign_jws(ctx, alg, "logout+jwt", &claims(ctx, &app, &p)).await?;
    Ok(Sealed {
        headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
        body: crate::http::Params::encode(&[("logout_token", &token)]),
    })
}
