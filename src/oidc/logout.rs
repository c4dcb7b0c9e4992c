//! RP-Initiated Logout 1.0 (the end_session_endpoint's rules) and what
//! ending a session means: the session row deleted and, in the same batch, a
//! back-channel logout token queued for each client of a grant it consented
//! (`store::logout`, sent by `oidc::backchannel`).

use crate::context::Ctx;
use crate::error::StoreError;
use crate::http::Params;
use crate::redirect_uri;
use crate::store::{AppRow, Driver};
use crate::tasks::Task;

use super::id_token::Hint;

/// Longest parameter values accepted (bytes): an ID token with every claim
/// we issue is well under 4 KiB; state and URIs are short.
const MAX_HINT: usize = 8192;
const MAX_VALUE: usize = 2048;

/// The parameters of a logout request (RP-Initiated Logout §2).
pub const PARAMS: &[&str] = &[
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "logout_hint",
    "ui_locales",
];

/// A logout request that passed the checks.
#[derive(Debug, Default)]
pub struct Checked {
    /// The client the request names (hint's audience or client_id).
    pub client: Option<AppRow>,
    pub hint: Option<Hint>,
    /// Where to send the browser afterwards, `state` included.
    pub redirect: Option<String>,
    /// The parameters a confirmation form carries on (client_id,
    /// post_logout_redirect_uri, state), as checked.
    pub carry: Vec<(&'static str, String)>,
}

/// Why a logout request is refused (an error page, never a redirect).
pub enum Refused {
    Bad(String),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

fn bad(msg: impl Into<String>) -> Refused {
    Refused::Bad(msg.into())
}

/// Check a logout request: the hint is ours (expired ones accepted),
/// `client_id` is among its audiences, and `post_logout_redirect_uri` is
/// registered for the client the request names (so it needs a hint or a
/// client_id).
pub async fn check<D: Driver>(ctx: &Ctx<'_, D>, p: &Params) -> Result<Checked, Refused> {
    check_shape(p)?;
    let hint = match p.get("id_token_hint") {
        None => None,
        Some(t) => Some(
            super::id_token::verify_hint(ctx, t)
                .await
                .map_err(|_| bad("The id_token_hint is not an ID token this server issued."))?,
        ),
    };
    let client_id = match (p.get("client_id"), &hint) {
        (Some(c), Some(h)) if !h.aud.iter().any(|a| a == c) => {
            return Err(bad("The id_token_hint was not issued to this client_id."))
        }
        (Some(c), _) => Some(c.to_string()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        None => None,
        Some(id) => Some(
            ctx.store
                .app(id)
                .await?
                .filter(|a| a.status != "deleted")
                .ok_or_else(|| bad("The app that sent you here is not registered."))?,
        ),
    };
    let state = p.get("state");
    let mut out = Checked {
        hint,
        ..Checked::default()
    };
    if let Some(uri) = p.get("post_logout_redirect_uri") {
        let Some(app) = &client else {
            return Err(bad(
                "post_logout_redirect_uri needs an id_token_hint or a client_id naming the app.",
            ));
        };
        let registered: Vec<String> = serde_json::from_str(&app.post_logout_redirect_uris).unwrap_or_default();
        if !redirect_uri::matches(&registered, uri) {
            return Err(bad("post_logout_redirect_uri is not registered for this app."));
        }
        out.redirect = Some(match state {
            Some(s) => redirect_uri::with_params(uri, &[("state", s)]),
            None => uri.to_string(),
        });
        out.carry.push(("post_logout_redirect_uri", uri.to_string()));
        if let Some(s) = state {
            out.carry.push(("state", s.to_string()));
        }
    }
    if let Some(app) = &client {
        out.carry.push(("client_id", app.id.clone()));
    }
    out.client = client;
    Ok(out)
}

/// The checks that need no lookup: no parameter repeated or too long.
pub fn check_shape(p: &Params) -> Result<(), Refused> {
    if let Some(name) = p.repeated(PARAMS) {
        return Err(bad(format!("{name} is repeated.")));
    }
    for name in PARAMS {
        let max = if *name == "id_token_hint" { MAX_HINT } else { MAX_VALUE };
        if p.get(name).is_some_and(|v| v.len() > max) {
            return Err(bad(format!("{name} is longer than {max} characters.")));
        }
    }
    Ok(())
}

/// Is the hint about `user_id` (as the client it was issued to names them)?
pub fn hint_names<D: Driver>(ctx: &Ctx<'_, D>, checked: &Checked, user_id: &str) -> bool {
    match (&checked.hint, &checked.client) {
        (Some(h), Some(app)) => h.sub == super::subject::subject(ctx.config, app, user_id),
        _ => false,
    }
}

/// The `iss` of the logout tokens a session end queues; `None` (queue
/// none) with `OPENID=off`, where no client holds an ID token to match.
pub fn logout_issuer<'a, D: Driver>(ctx: &'a Ctx<'_, D>) -> Option<&'a str> {
    ctx.config.openid.then_some(ctx.issuer.as_str())
}

/// End the session whose cookie hashes to `hash`: delete it and queue the
/// back-channel logout tokens in one batch, then attempt them after the
/// response (`Task::Deliver`; the cron retries).
pub async fn end_session<D: Driver>(ctx: &Ctx<'_, D>, hash: &str) -> Result<(), StoreError> {
    let ids = ctx.store.end_session(hash, logout_issuer(ctx), ctx.now).await?;
    deliver(ctx, ids);
    Ok(())
}

/// Attempt the logout tokens a session end queued, after the response.
pub fn deliver<D: Driver>(ctx: &Ctx<'_, D>, ids: Vec<String>) {
    if !ids.is_empty() {
        ctx.defer(Task::Deliver(ids));
    }
}
