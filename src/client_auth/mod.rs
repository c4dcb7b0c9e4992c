//! Client authentication at the token, revocation, introspection and PAR
//! endpoints (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (RFC 7523 §2.2: `assertion`, keys from `keys`), or
//! `none` for public clients, which prove possession through PKCE instead.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::Config;
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::{Params, Request};
use crate::store::{AppRow, ClientGuard, Driver};

pub mod assertion;
pub mod keys;

use crate::store::PRIVATE_KEY_JWT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Basic,
    Post,
    None,
    /// A client assertion signed with the client's own key.
    PrivateKeyJwt,
}

pub struct Client {
    pub app: AppRow,
    pub method: Method,
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| -> Option<String> {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

/// Who a request says it is; nothing is checked against storage yet.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: Method,
    /// Where the request came from, as failure counting keys it ([`source`]).
    pub source: String,
    /// `private_key_jwt`: the assertion as sent, and whether [`prove`]
    /// accepted it (signature, claims, `jti` spent).
    pub assertion: Option<String>,
    pub proven: bool,
}

/// The sender a failure is charged to: the client address (CF-Connecting-IP),
/// an IPv6 sender as its /64, since one host is handed a whole /64 and could
/// otherwise take a fresh address, and a fresh failure budget, per guess.
pub fn source(ip: &str) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        // No address (native tests, a direct call): one shared bucket.
        Err(_) => String::new(),
    }
}

/// Failures are counted per (client, source): a third party's bad secrets
/// fill their own bucket and never refuse the rightful client calling from
/// elsewhere (issue 8 §1.2), while one sender still cannot guess at line speed.
pub fn rate_key(client_id: &str, source: &str) -> String {
    format!("client:{client_id}:{source}")
}

/// Parse the client's credentials (no storage access). A URL client whose
/// host `CIMD_ALLOWED_HOSTS` no longer allows (or with CIMD off) is refused
/// here, before any statement that would act for it.
pub fn credentials(config: &Config, req: &Request, form: &Params) -> Result<Credentials, OAuthError> {
    if let Some(name) = form.repeated(&[
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    ]) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    let header = req.header("authorization");
    let basic = header.is_some_and(|h| h.trim_start().to_ascii_lowercase().starts_with("basic "));
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        if basic || form.get("client_secret").is_some() {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not two".into(),
            ));
        }
        return assertion_credentials(config, req, form);
    }
    let (client_id, secret, method) = match (basic, form.get("client_secret")) {
        (true, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not two".into(),
            ));
        }
        (true, None) => {
            let Some((id, secret)) = header.and_then(parse_basic) else {
                return Err(OAuthError::client("malformed Basic credentials", true));
            };
            if form.get("client_id").is_some_and(|f| f != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id does not match the Basic credentials".into(),
                ));
            }
            (id, Some(secret), Method::Basic)
        }
        (false, Some(secret)) => {
            let Some(id) = form.get("client_id") else {
                return Err(OAuthError::InvalidRequest("client_secret without client_id".into()));
            };
            (id.to_string(), Some(secret.to_string()), Method::Post)
        }
        (false, None) => {
            let Some(id) = form.get("client_id") else {
                return Err(OAuthError::client("client authentication is required", false));
            };
            (id.to_string(), None, Method::None)
        }
    };
    // Platform ids are short; a metadata document client's id is its URL.
    if client_id.len() > crate::cimd::MAX_URL_LEN
        || secret.as_ref().is_some_and(|s| s.len() > 256)
        || !crate::cimd::admitted(config, &client_id)
    {
        return Err(OAuthError::client(
            "unknown client or bad credentials",
            method == Method::Basic,
        ));
    }
    // FAPI 2.0 §5.3.2.1 (`FAPI2=on`): confidential clients authenticating
    // with private_key_jwt only (mTLS is not offered); a secret or none is
    // refused before anything is read.
    if config.fapi2 && matches!(method, Method::Basic | Method::Post | Method::None) {
        return Err(OAuthError::client(
            "this server follows the FAPI 2.0 profile: authenticate with private_key_jwt (RFC 7523); \
             client secrets and public clients are not accepted",
            method == Method::Basic,
        ));
    }
    Ok(Credentials {
        client_id,
        secret,
        method,
        source: source(&req.ip),
        assertion: None,
        proven: false,
    })
}

/// RFC 7523 §2.2: the client is the assertion's `sub` (read unverified here,
/// only to find its keys; [`prove`] checks it); a `client_id` beside it must
/// name the same client.
fn assertion_credentials(config: &Config, req: &Request, form: &Params) -> Result<Credentials, OAuthError> {
    if form.get("client_assertion_type") != Some(assertion::JWT_BEARER) {
        return Err(OAuthError::InvalidRequest(format!(
            "client_assertion_type must be {}",
            assertion::JWT_BEARER
        )));
    }
    let bad = || OAuthError::client("the client assertion is malformed", false);
    let jwt = form.get("client_assertion").ok_or_else(bad)?;
    let jws = crate::jose::Compact::parse(jwt, assertion::MAX_ASSERTION_BYTES).map_err(|_| {
        OAuthError::client(
            "the client assertion must be a JWS signed with ES256, RS256, PS256 or EdDSA",
            false,
        )
    })?;
    let client_id = assertion::subject(&jws.payload).ok_or_else(bad)?;
    if form.get("client_id").is_some_and(|f| f != client_id) {
        return Err(OAuthError::client(
            "client_id does not match the client assertion's sub",
            false,
        ));
    }
    if client_id.len() > crate::cimd::MAX_URL_LEN || !crate::cimd::admitted(config, &client_id) {
        return Err(OAuthError::client("unknown client or bad credentials", false));
    }
    Ok(Credentials {
        client_id,
        secret: None,
        method: Method::PrivateKeyJwt,
        source: source(&req.ip),
        assertion: Some(jwt.to_string()),
        proven: false,
    })
}

/// The audiences an assertion may name (RFC 7523 §3, RFC 9126 §2): the
/// issuer, the token endpoint, the PAR endpoint, and the endpoint called.
fn audiences<D: Driver>(ctx: &Ctx<'_, D>, path: &str) -> Vec<String> {
    let i = &ctx.issuer;
    let mut v = vec![i.clone(), format!("{i}/oauth/token"), format!("{i}/oauth/par")];
    let here = format!("{i}{path}");
    if !v.contains(&here) {
        v.push(here);
    }
    v
}

/// `private_key_jwt`: check the assertion against the client's keys (its
/// `jwks`, or the set at its `jwks_uri`, fetched and cached by [`keys`]),
/// then its claims, then spend its `jti`. Other credentials pass unchanged.
/// Costs a read (the client and its cached set) and the `jti` write, before
/// the endpoint's own round trip.
pub async fn prove<D: Driver>(ctx: &Ctx<'_, D>, path: &str, creds: Credentials) -> Result<Credentials, OAuthError> {
    if creds.method != Method::PrivateKeyJwt || creds.proven {
        return Ok(creds);
    }
    let refused = |why: &str| OAuthError::client(why, false);
    let jwt = creds.assertion.as_deref().unwrap_or_default();
    let jws = crate::jose::Compact::parse(jwt, assertion::MAX_ASSERTION_BYTES)
        .map_err(|_| refused("the client assertion is malformed"))?;
    let key = rate_key(&creds.client_id, &creds.source);
    let (app, cached) = ctx
        .store
        .app_with_jwks(&creds.client_id, ctx.now - ctx.config.rate_window, &key)
        .await?;
    let Some(app) = app.filter(|a| {
        a.status == "active"
            && (ctx.config.cimd || a.registration != "metadata_document")
            && crate::cimd::admitted(ctx.config, &a.id)
    }) else {
        return Err(refused("unknown client or bad credentials"));
    };
    if app.client_auth_method.as_deref() != Some(PRIVATE_KEY_JWT) {
        return Err(refused("this client does not authenticate with private_key_jwt"));
    }
    if app
        .token_endpoint_auth_signing_alg
        .as_deref()
        .is_some_and(|a| a != jws.alg.name())
    {
        return Err(refused(
            "the client assertion is not signed with the client's token_endpoint_auth_signing_alg",
        ));
    }
    let kid = jws.header_str("kid");
    let set = keys::for_client(ctx, &app, cached, kid).await?;
    let mut good = false;
    for k in set.iter().filter(|k| keys::usable(k, jws.alg, kid)) {
        if ctx.jws.verify(jws.alg, &k.key, jws.input, &jws.signature).await {
            good = true;
            break;
        }
    }
    if !good {
        return Err(refused(
            "the client assertion's signature does not verify with any of the client's keys",
        ));
    }
    let claims: assertion::Claims = jws
        .claims()
        .map_err(|_| refused("the client assertion's claims are not a JSON object"))?;
    assertion::check(&claims, &app.id, &audiences(ctx, path), ctx.now).map_err(|e| refused(&e))?;
    let jti = crypto::sha256_hex(claims.jti.as_deref().unwrap_or_default());
    let exp = claims.exp.unwrap_or(ctx.now) + assertion::SKEW;
    if !ctx.store.spend_assertion_jti(&app.id, &jti, exp, ctx.now).await? {
        return Err(refused("the client assertion was already used (its jti is spent)"));
    }
    Ok(Credentials { proven: true, ..creds })
}

/// Parse the client's credentials and, for `private_key_jwt`, check the
/// assertion ([`prove`]): what every client-authenticating endpoint calls.
pub async fn from_request<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    form: &Params,
) -> Result<Credentials, OAuthError> {
    let creds = credentials(ctx.config, req, form)?;
    prove(ctx, &req.path, creds).await
}

/// The same check as [`verify`], as a condition the store attaches to the
/// statement that acts, so the read and the act share one D1 round trip
/// (`store::ClientGuard`).
pub fn guard<D: Driver>(ctx: &Ctx<'_, D>, creds: &Credentials) -> ClientGuard {
    let limit = ctx.config.client_auth_max_failures;
    ClientGuard {
        key_proven: creds.method == Method::PrivateKeyJwt && creds.proven,
        app_id: creds.client_id.clone(),
        secret_hash: creds.secret.as_deref().map(crypto::sha256_hex),
        now: ctx.now,
        since: ctx.now - ctx.config.rate_window,
        max_failures: if limit > 0 { limit } else { i64::MAX },
        rate_key: rate_key(&creds.client_id, &creds.source),
    }
}

/// Decide on the credentials given the client's row (as read by
/// `Store::app_for_auth`, alone or at the head of a guarded batch).
pub async fn verify<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    app: Option<AppRow>,
) -> Result<Client, OAuthError> {
    let Credentials {
        secret,
        method,
        source,
        proven,
        ..
    } = creds;
    let is_basic = method == Method::Basic;
    // A client identified by URL exists only while CIMD is on and its host
    // is allowed.
    let Some(app) = app.filter(|a| {
        a.status == "active"
            && (ctx.config.cimd || a.registration != "metadata_document")
            && crate::cimd::admitted(ctx.config, &a.id)
    }) else {
        return Err(OAuthError::client("unknown client or bad credentials", is_basic));
    };
    // A client with its own key authenticates with it alone: its assertion
    // was checked by `prove`, before any statement that acts for it.
    let keyed = app.client_auth_method.as_deref() == Some(PRIVATE_KEY_JWT);
    match (keyed, method == Method::PrivateKeyJwt) {
        (true, true) if proven => return Ok(Client { app, method }),
        (true, _) => {
            return Err(OAuthError::client(
                "this client authenticates with private_key_jwt: send a client_assertion",
                is_basic,
            ))
        }
        (false, true) => {
            return Err(OAuthError::client(
                "this client does not authenticate with private_key_jwt",
                false,
            ))
        }
        (false, false) => {}
    }
    let limit = ctx.config.client_auth_max_failures;
    // `auth_failures` counts this source only. Over the limit, even the right
    // secret is refused *from this source*: were it accepted, 429-vs-200 would
    // tell a guesser which guess was right and the limit would slow nothing.
    if limit > 0 && app.auth_failures >= limit && secret.is_some() {
        return Err(OAuthError::RateLimited {
            retry_after: ctx.config.rate_window,
        });
    }
    match (app.is_public(), secret) {
        (true, None) => Ok(Client { app, method }),
        (true, Some(_)) => Err(OAuthError::client(
            "public clients have no secret; authenticate with none and PKCE",
            is_basic,
        )),
        (false, None) => Err(OAuthError::client(
            "this client must authenticate with its secret",
            false,
        )),
        (false, Some(secret)) => {
            let good = app
                .secret_hash
                .as_deref()
                .is_some_and(|h| crypto::ct_eq(h, &crypto::sha256_hex(&secret)));
            let expired = app.secret_expires_at.is_some_and(|t| t <= ctx.now);
            if !good || expired {
                if !good {
                    let key = rate_key(&app.id, &source);
                    ctx.store.record_failure(&key, ctx.now, ctx.config.rate_window).await?;
                }
                let why = if good {
                    "the client secret has expired"
                } else {
                    "unknown client or bad credentials"
                };
                return Err(OAuthError::client(why, is_basic));
            }
            Ok(Client { app, method })
        }
    }
}

/// Authenticate with a read of its own (paths that do not fold the check
/// into their write).
pub async fn resolve<D: Driver>(ctx: &Ctx<'_, D>, creds: Credentials) -> Result<Client, OAuthError> {
    // One read: the app and its recent failures (rate limit, SPEC.md).
    let key = rate_key(&creds.client_id, &creds.source);
    let app = ctx
        .store
        .app_for_auth(&creds.client_id, ctx.now - ctx.config.rate_window, &key)
        .await?;
    verify(ctx, creds, app).await
}

pub async fn authenticate<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, form: &Params) -> Result<Client, OAuthError> {
    resolve(ctx, from_request(ctx, req, form).await?).await
}

/// A request already known to be bad: a client-authentication failure still
/// takes precedence, as it would have had the client been checked first.
pub async fn after_auth<D: Driver>(ctx: &Ctx<'_, D>, creds: Credentials, err: OAuthError) -> OAuthError {
    match resolve(ctx, creds).await {
        Ok(_) => err,
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::source;

    #[test]
    fn failures_are_charged_to_an_address_or_an_ipv6_64() {
        assert_eq!(source("203.0.113.7"), "203.0.113.7");
        assert_eq!(source(" 203.0.113.7 "), "203.0.113.7");
        assert_eq!(
            source("::ffff:203.0.113.7"),
            "203.0.113.7",
            "v4-mapped is the v4 sender"
        );
        assert_eq!(source("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(source("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(source("2001:db8:1:3::1"), source("2001:db8:1:2::1"));
        assert_eq!(source(""), "");
        assert_eq!(
            source("not an address"),
            "",
            "garbage is not a fresh bucket per spelling"
        );
    }
}
