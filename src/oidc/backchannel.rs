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
    let alg = app.id_token_signed_response_alg.as_deref().unwrap_or("RS256");
    let token = sign(ctx, alg, &claims(ctx, &app, &p)).await?;
    Ok(Sealed {
        headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
        body: crate::http::Params::encode(&[("logout_token", &token)]),
    })
}

// INTERIM until `oidc::id_token` lands (oidc-tokens): ES256 with the first
// EC key whatever the client's algorithm, and an ES256-only hint check.
async fn sign<D: Driver>(ctx: &Ctx<'_, D>, _alg: &str, claims: &Value) -> Result<String, String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let key = ctx.config.jwt_keys.first().ok_or("no signing key")?;
    let header = json!({"alg": "ES256", "typ": "logout+jwt", "kid": key.kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = ctx.es256.sign(key, input.as_bytes()).await?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

pub(super) async fn interim_verify_hint<D: Driver>(
    ctx: &Ctx<'_, D>,
    token: &str,
) -> Result<super::logout::Hint, String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("not a JWS".into());
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err("alg".into());
    }
    let key = ctx
        .config
        .jwt_keys
        .iter()
        .find(|k| header["kid"] == k.kid.as_str())
        .ok_or("kid")?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    if !ctx.es256.verify(key, format!("{h}.{c}").as_bytes(), &sig).await {
        return Err("signature".into());
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if claims["iss"] != ctx.issuer.as_str() {
        return Err("iss".into());
    }
    let aud = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => return Err("aud".into()),
    };
    Ok(super::logout::Hint {
        sub: claims["sub"].as_str().ok_or("sub")?.to_string(),
        aud,
        sid: claims["sid"].as_str().map(str::to_string),
    })
}
