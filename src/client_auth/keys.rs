//! A private_key_jwt client's public keys: its registered `jwks`, or the set
//! at its `jwks_uri`, fetched like a metadata document (the `Fetcher` seam:
//! GET, no redirects, bounded in time and size) and cached in D1
//! (`client_jwks`).

use crate::context::Ctx;
use crate::error::OAuthError;
use crate::jose::{parse_set, Alg, SetKey};
use crate::store::{AppRow, CachedJwks, Driver};

/// Largest JWK set document read from a `jwks_uri`.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;
/// A fetched set is used at least this long whatever its headers say, and a
/// failed fetch is not retried sooner: at most one fetch per URL a minute
/// (bar requests racing on the same stale row).
pub const MIN_CACHE_SECONDS: i64 = 60;
/// And at most a day.
pub const MAX_CACHE_SECONDS: i64 = 24 * 3600;

/// Could this key have signed an assertion under `alg` with header `kid`?
pub fn usable(k: &SetKey, alg: Alg, kid: Option<&str>) -> bool {
    k.key.fits(alg)
        && k.alg.is_none_or(|a| a == alg)
        && k.use_.as_deref().is_none_or(|u| u == "sig")
        && kid.is_none_or(|want| k.kid.as_deref() == Some(want))
}

fn unusable() -> OAuthError {
    OAuthError::client("the client's JWK set could not be obtained", false)
}

/// The keys of `app`. A set from `jwks_uri` is the cached one while fresh;
/// it is fetched again when stale, or when `kid` names a key it lacks and it
/// is older than [`MIN_CACHE_SECONDS`] (the client rotated its keys).
pub async fn for_client<D: Driver>(
    ctx: &Ctx<'_, D>,
    app: &AppRow,
    cached: Option<CachedJwks>,
    kid: Option<&str>,
) -> Result<Vec<SetKey>, OAuthError> {
    if let Some(inline) = &app.jwks {
        return parse_set(inline).map_err(|_| unusable());
    }
    let Some(uri) = app.jwks_uri.as_deref() else {
        return Err(unusable());
    };
    from_uri(ctx, uri, cached, kid, unusable).await
}

/// The JWK set at `uri` (a client's `jwks_uri`, a trusted issuer's), given
/// its cached row: the cached set while fresh; fetched again when stale, or
/// when `kid` names a key it lacks and it is older than
/// [`MIN_CACHE_SECONDS`] (the owner rotated its keys). `unusable`: the
/// caller's refusal when no set can be had.
pub async fn from_uri<D: Driver>(
    ctx: &Ctx<'_, D>,
    uri: &str,
    cached: Option<CachedJwks>,
    kid: Option<&str>,
    unusable: fn() -> OAuthError,
) -> Result<Vec<SetKey>, OAuthError> {
    let stored = cached.filter(|c| c.uri == uri);
    if let Some(c) = &stored {
        let set = c.jwks.as_deref().and_then(|j| parse_set(j).ok());
        let lacks_kid = kid.is_some_and(|k| !set.iter().flatten().any(|s| s.kid.as_deref() == Some(k)));
        let fresh = c.expires_at > ctx.now;
        let recent = c.fetched_at > ctx.now - MIN_CACHE_SECONDS;
        if (fresh && !lacks_kid) || recent {
            return set.ok_or_else(unusable);
        }
    }
    fetch(ctx, uri, stored, unusable).await
}

/// Fetch the set at `uri` and remember it. A failed fetch keeps the last
/// good set (used until the next attempt, a minute on) rather than refusing
/// a client whose key host blinked.
async fn fetch<D: Driver>(
    ctx: &Ctx<'_, D>,
    uri: &str,
    stored: Option<CachedJwks>,
    unusable: fn() -> OAuthError,
) -> Result<Vec<SetKey>, OAuthError> {
    // Registration checked the URL (`client_metadata::sender`, the
    // provisioning API for an issuer's); plain http
    // stays refused once development's loopback allowance is off.
    let https = uri.starts_with("https://") || (ctx.config.cimd_allow_http_loopback && uri.starts_with("http://"));
    let got = match https {
        false => Err("not https".to_string()),
        true => match ctx
            .fetcher
            .get(uri, ctx.config.cimd_fetch_timeout, MAX_DOCUMENT_BYTES)
            .await
        {
            Err(e) => Err(e),
            Ok(f) if f.status != 200 => Err(format!("HTTP {}", f.status)),
            Ok(f) if f.body.len() > MAX_DOCUMENT_BYTES => Err("too large".into()),
            Ok(f) => String::from_utf8(f.body.clone())
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|text| parse_set(&text).map(|set| (text, set, f))),
        },
    };
    match got {
        Ok((text, set, f)) => {
            let life = crate::cimd::cache_lifetime(f.cache_control.as_deref(), f.expires_at, ctx.now)
                .clamp(MIN_CACHE_SECONDS, MAX_CACHE_SECONDS);
            ctx.store
                .save_jwks(&CachedJwks {
                    uri: uri.to_string(),
                    jwks: Some(text),
                    fetched_at: ctx.now,
                    expires_at: ctx.now + life,
                })
                .await?;
            Ok(set)
        }
        Err(why) => {
            ctx.effects.borrow_mut().error = Some(format!("jwks_uri {uri}: {why}"));
            let last = stored.and_then(|c| c.jwks);
            ctx.store
                .save_jwks(&CachedJwks {
                    uri: uri.to_string(),
                    jwks: last.clone(),
                    fetched_at: ctx.now,
                    expires_at: ctx.now + MIN_CACHE_SECONDS,
                })
                .await?;
            last.and_then(|j| parse_set(&j).ok()).ok_or_else(unusable)
        }
    }
}
