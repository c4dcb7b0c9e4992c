//! Browser sessions: a random cookie whose SHA-256 is the session row's key.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use crate::context::Ctx;
use crate::crypto;
use crate::error::StoreError;
use crate::http::Request;
use crate::store::{Driver, SessionUser};

pub const COOKIE: &str = "eo_session";

pub struct Session {
    pub user: SessionUser,
    /// Bound to this session; required on every state-changing form.
    pub csrf: String,
    pub token_hash: String,
}

/// The session cookie's token and its hash, if one of our shape was sent.
pub fn presented<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Option<(String, String)> {
    let token = req.cookie(COOKIE)?;
    if !token.starts_with(&ctx.config.prefixes.session) || token.len() > 128 {
        return None;
    }
    let hash = crypto::sha256_hex(&token);
    Some((token, hash))
}

impl Session {
    pub fn new(user: SessionUser, token: &str, hash: String) -> Self {
        Session {
            user,
            csrf: crypto::csrf_token(token),
            token_hash: hash,
        }
    }
}

pub async fn current<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Option<Session>, StoreError> {
    let Some((token, hash)) = presented(ctx, req) else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .session_user(&hash, ctx.now)
        .await?
        .map(|user| Session::new(user, &token, hash)))
}

/// The sign-in form's pre-session CSRF cookie (double submit: the form
/// carries a value derived from it). Only `/signin` ever sees it.
pub const SIGNIN_COOKIE: &str = "eo_signin";
/// A browser the account signed in on ("device cookie", OWASP): exempts it
/// from the account-wide failure counter. Only `/signin` ever sees it.
pub const DEVICE_COOKIE: &str = "eo_device";
pub const SIGNIN_PREFIX: &str = "pre_";
pub const DEVICE_PREFIX: &str = "dev_";

/// `HttpOnly; SameSite=Lax`, and `Secure` unless served over plain http on a
/// loopback host during development.
pub fn cookie(req: &Request, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = if req.url.starts_with("http://") && req.is_loopback() {
        ""
    } else {
        "; Secure"
    };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

pub fn set_cookie(req: &Request, value: &str, max_age: i64) -> String {
    cookie(req, COOKIE, value, "/", max_age)
}

/// A cookie of ours by its prefix, bounded in length; anything else is absent.
pub fn own_cookie(req: &Request, name: &str, prefix: &str) -> Option<String> {
    req.cookie(name).filter(|v| v.starts_with(prefix) && v.len() <= 128)
}

pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| crypto::ct_eq(p, &session.csrf))
}
