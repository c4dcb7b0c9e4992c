//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628
//! §3.4–3.5): the device's poll, one D1 round trip whatever it answers; and
//! the user code's rules (§6.1), shared with the endpoints that issue and
//! read it.

use super::{issue_access, note_redeemed, well_formed, TokenResponse};
use crate::client_auth::{self, Client, Credentials};
use crate::config::LiveGrantsPer;
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::store::{DeviceRow, DpopUse, Driver, Poll};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// §6.1: consonants only (no vowels, so no words; no 0/O, 1/I look-alikes),
/// 8 of them: 20^8 ≈ 2^34.6 codes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Longest verification form input read (dashes and spaces included).
const MAX_INPUT: usize = 32;

/// A new user code, normalised (8 letters, no dash): uniform over the
/// alphabet (bytes of 240 and up are drawn again, 240 = 12 × 20).
pub fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let mut buf = [0u8; 16];
        getrandom::getrandom(&mut buf).expect("the platform CSPRNG is available");
        for b in buf {
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    out
}

/// What a person typed, normalised: case-insensitive, dashes and spaces
/// ignored; `None` unless it is 8 letters of the alphabet.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// How a normalised code is shown: `XXXX-XXXX`.
pub fn display(code: &str) -> String {
    match code.get(..4).zip(code.get(4..)) {
        Some((a, b)) => format!("{a}-{b}"),
        None => code.to_string(),
    }
}

/// The key a normalised code is stored and looked up under.
pub fn user_code_hash(code: &str) -> String {
    crypto::sha256_hex(&format!("user_code:{code}"))
}

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    let code = match form.get("device_code") {
        None => {
            return Err(client_auth::after_auth(
                ctx,
                creds,
                OAuthError::InvalidRequest("device_code is required".into()),
            )
            .await)
        }
        Some(c) if !well_formed(c, &ctx.config.device.prefix) => {
            return Err(client_auth::after_auth(
                ctx,
                creds,
                OAuthError::InvalidGrant("the device code is not valid".into()),
            )
            .await)
        }
        Some(c) => c,
    };
    let hash = crypto::sha256_hex(code);
    let grant_id = crypto::new_id("grt_");
    let (access, refresh) = super::mint_pair(ctx.config, ctx.now, &creds, dpop);
    let default_audience = crate::audience::default_json(ctx.config, &ctx.issuer);
    let guard = client_auth::guard(ctx, &creds);
    let polled = ctx
        .store
        .poll_device(
            &Poll {
                hash: &hash,
                app_id: &creds.client_id,
                now: ctx.now,
                grant_id: &grant_id,
                access: &access.row,
                refresh: &refresh.row,
                default_audience: &default_audience,
                max_live_grants: ctx.config.max_live_grants,
                live_grants_per_org: ctx.config.live_grants_per == LiveGrantsPer::Org,
                dpop,
            },
            &guard,
        )
        .await?;
    let client = match client_auth::verify(ctx, creds, polled.app).await {
        Ok(c) => c,
        Err(e) => {
            // Unreachable while the SQL guard and `verify` agree.
            if polled.redeemed.is_some() {
                ctx.store.revoke_grant(&grant_id, ctx.now).await?;
            }
            return Err(e);
        }
    };
    match polled.redeemed {
        Some(r) => {
            note_redeemed(ctx, &client.app, &r);
            let (at, scopes) = issue_access(ctx, &client.app, access, (&r).into()).await?;
            let id_token = super::id_token(ctx, &client.app, (&r).into(), &scopes, &at, None).await?;
            Ok(TokenResponse {
                id_token,
                ..TokenResponse::bearer(at, Some(refresh.plain), ctx.config.access_ttl, &scopes)
            })
        }
        None => Err(diagnose(ctx, &client, polled.row, dpop).await),
    }
}

/// Nothing was redeemed: the answer §3.5 gives for the request's state, as
/// the batch read it before this poll's own mark.
async fn diagnose<D: Driver>(
    ctx: &Ctx<'_, D>,
    client: &Client,
    row: Option<DeviceRow>,
    dpop: Option<&DpopUse>,
) -> OAuthError {
    if client.app.device_authorization == 0 {
        return OAuthError::UnauthorizedClient(
            "this client may not use the device authorization grant (device_authorization is off)".into(),
        );
    }
    let Some(row) = row else {
        return OAuthError::InvalidGrant("the device code is not valid".into());
    };
    if row.app_id != client.app.id {
        return OAuthError::InvalidGrant("the device code was issued to another client".into());
    }
    if row.used_at.is_some() {
        return OAuthError::InvalidGrant("the device code was already used".into());
    }
    if row.expires_at <= ctx.now {
        return OAuthError::ExpiredToken("the device code has expired; start the sign-in again".into());
    }
    if row.status == "denied" {
        return OAuthError::AccessDenied("the user denied the request".into());
    }
    if row.last_poll_at.is_some_and(|at| at + row.poll_interval > ctx.now) {
        return OAuthError::SlowDown(format!(
            "polled sooner than the interval; poll at most every {} seconds now",
            row.poll_interval + 5
        ));
    }
    if row.status == "pending" {
        return OAuthError::AuthorizationPending("the user has not yet approved the request".into());
    }
    if let Some(e) = super::dpop_refusal(ctx, &client.app, dpop).await {
        return e;
    }
    OAuthError::InvalidGrant(
        "the user who approved this request may no longer authorize it in that organization".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typable_and_normalised() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert_eq!(normalize(&display(&c)).as_deref(), Some(c.as_str()));
            assert_eq!(normalize(&display(&c).to_lowercase()).as_deref(), Some(c.as_str()));
        }
        assert_eq!(normalize(" bcdf ghjk ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalize("BCDF-GHJA"), None, "a vowel is not in the alphabet");
        assert_eq!(normalize("BCDF-GHJ"), None);
        assert_eq!(normalize("BCDF-GHJKL"), None);
        assert_eq!(normalize(&"B".repeat(100)), None);
        assert_eq!(normalize("BCDF\u{0}GHJK"), None);
    }
}
