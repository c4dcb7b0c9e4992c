//! An authorization request by reference to a pushed one (RFC 9126 §4): the
//! browser brings only `client_id` and `request_uri`, the parameters come
//! from the row the push stored, and the request carried on through sign-in
//! and consent is that same pair, so what was pushed never reaches the
//! browser's URL or the consent form.

use std::borrow::Cow;

use super::request::Failure;
use crate::context::Ctx;
use crate::crypto;
use crate::http::Params;
use crate::oidc::reauth::PROOF_PARAM;
use crate::store::Driver;

/// RFC 9126 §2.2: the `request_uri` is a URN of this prefix.
pub const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a presented request stays usable for the sign-in and consent
/// that follow its first authorize (as long as a delegated sign-in's
/// challenge): `PAR_TTL_SECONDS` bounds only the wait for the browser.
pub const INTERACTION_SECONDS: i64 = 600;

/// The storage key of a `request_uri` of ours; `None` for any other shape,
/// refused before storage is touched.
pub fn key(request_uri: &str) -> Option<String> {
    let token = request_uri.strip_prefix(URN)?;
    (token.len() >= 32
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| crypto::sha256_hex(token))
}

/// A new `request_uri` and its storage key.
pub fn mint() -> (String, String) {
    let token = crypto::new_token("");
    (format!("{URN}{token}"), crypto::sha256_hex(&token))
}

fn refused(message: &str) -> Failure {
    Failure::Page {
        status: 400,
        title: "Request refused",
        message: message.to_string(),
    }
}

/// The parameters an authorization request stands for: the browser's own,
/// or with a `request_uri` the pushed ones (anything else the browser sent
/// beside `client_id` is ignored; our own sign-in proof is kept), and the
/// `request_uri` to carry. `presented`: the pushed parameters when the
/// caller already presented the request in its own batch.
pub async fn resolve<'p, D: Driver>(
    ctx: &Ctx<'_, D>,
    p: &'p Params,
    presented: Option<Option<String>>,
) -> Result<(Cow<'p, Params>, Option<String>), Failure> {
    // Only a URN of ours names a pushed request; any other `request_uri`
    // (a request object by reference, OIDC Core §6.2) or a repeated one is
    // left to the checks of a plain request, which refuse it to the client.
    let Some(uri) = p.get("request_uri").filter(|u| u.starts_with(URN)) else {
        return Ok((Cow::Borrowed(p), None));
    };
    if p.repeated(&["client_id", "request_uri"]).is_some() {
        return Ok((Cow::Borrowed(p), None));
    }
    let Some(client_id) = p.get("client_id") else {
        return Err(refused("The request has a request_uri but no client_id."));
    };
    let Some(key) = key(uri) else {
        return Err(refused(
            "The request_uri was not issued by this server's pushed authorization request endpoint.",
        ));
    };
    let stored = match presented {
        Some(s) => s,
        None => match ctx.store.pushed_request(&key, client_id, ctx.now).await {
            Ok(s) => s,
            Err(_) => {
                return Err(Failure::Page {
                    status: 503,
                    title: "Temporarily unavailable",
                    message: "Something went wrong on our side. Try again in a moment.".into(),
                })
            }
        },
    };
    let Some(stored) = stored else {
        return Err(refused(
            "The request_uri is unknown, has expired, was already used, or was pushed by another app. \
             Start again from the app.",
        ));
    };
    let mut effective = Params::parse(stored.as_bytes());
    effective
        .0
        .extend(p.0.iter().filter(|(k, _)| k == PROOF_PARAM).cloned());
    Ok((Cow::Owned(effective), Some(uri.to_string())))
}
