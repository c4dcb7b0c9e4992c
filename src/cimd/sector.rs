//! Sector identifier documents (OIDC Core §8.1, Registration §5): fetched
//! through the metadata document seam ([`Fetcher`](crate::http::Fetcher))
//! with its bounds (`CIMD_FETCH_TIMEOUT_SECONDS`, `CIMD_MAX_DOCUMENT_BYTES`,
//! no redirect followed, a public https host), and checked to list every
//! redirect URI of the client.
//!
//! Who can make this server fetch one: a registration (platform apps: a
//! member with `oauth_app.manage`; RFC 7591/7592: within the DCR policy and
//! its rate) charges the per-minute budget of its source address and of the
//! document's host; a metadata document client's resolution fetches it
//! right after its document, on that document's budget (one sector fetch
//! per document fetch). Authorize of any other client never fetches it.

use super::Refused;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::Fetched;
use crate::store::{Driver, Slot};

/// What a registration is told of any fetch that brought back no document:
/// the upstream status or error would make the server an oracle on other
/// hosts; the detail goes to the request's log line.
pub const NOT_FETCHED: &str = "sector_identifier_uri: the document could not be fetched \
     (it must answer HTTP 200 itself, without a redirect, within the time and size bounds)";

/// Check a fetched document against the client's redirect URIs: a JSON
/// array of URI strings that contains each of them (compared exactly, as
/// redirect URIs are).
pub fn judge(fetched: &Fetched, redirect_uris: &[String]) -> Result<(), String> {
    let not_a_list = || "sector_identifier_uri: the document is not a JSON array of URIs".to_string();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&fetched.body).map_err(|_| not_a_list())?;
    let mut uris = Vec::with_capacity(list.len());
    for v in list {
        uris.push(v.as_str().map(str::to_string).ok_or_else(not_a_list)?);
    }
    if let Some(missing) = redirect_uris.iter().find(|r| !uris.contains(r)) {
        return Err(format!(
            "sector_identifier_uri: the document does not list the redirect URI {missing:?} \
             (it must list every redirect URI of the client)"
        ));
    }
    Ok(())
}

/// Fetch `uri` and judge it for `redirect_uris`. `charge`: spend the fetch
/// budget (a registration); a metadata document's resolution has spent it.
pub async fn check<D: Driver>(
    ctx: &Ctx<'_, D>,
    uri: &str,
    redirect_uris: &[String],
    charge: bool,
) -> Result<(), Refused> {
    let parsed = crate::client_metadata::openid::check_sector_uri(uri, ctx.config.cimd_allow_http_loopback)
        .map_err(Refused::Client)?;
    if charge {
        let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
        let budget = [
            Slot {
                key: format!("sector:source:{}", ctx.source),
                limit: ctx.config.cimd_fetches_per_source,
            },
            Slot {
                key: format!("sector:host:{host}"),
                limit: ctx.config.cimd_fetches_per_host,
            },
        ];
        if !ctx
            .store
            .take_slots(&budget, ctx.now, 60)
            .await
            .map_err(Refused::Storage)?
        {
            return Err(Refused::Busy);
        }
    }
    let cap = ctx.config.cimd_max_document_bytes;
    let fetched = ctx.fetcher.get(uri, ctx.config.cimd_fetch_timeout, cap).await;
    let fetched = match fetched {
        // The fetcher stops reading past the cap; this holds whatever fetcher runs.
        Ok(f) if f.status == 200 && f.body.len() <= cap => f,
        other => {
            let why = match other {
                Err(e) => e,
                Ok(f) if (300..400).contains(&f.status) => format!("HTTP {} (a redirect, not followed)", f.status),
                Ok(f) if f.status != 200 => format!("HTTP {}", f.status),
                Ok(_) => format!("the document is larger than {cap} bytes"),
            };
            ctx.effects.borrow_mut().error = Some(format!("sector_identifier_uri {uri}: {why}"));
            return Err(Refused::Client(NOT_FETCHED.into()));
        }
    };
    judge(&fetched, redirect_uris).map_err(Refused::Client)
}

/// [`check`] for a registration endpoint: a refusal as the API error
/// `code` (400), a spent budget as 429, storage as 503.
pub async fn check_for_registration<D: Driver>(
    ctx: &Ctx<'_, D>,
    uri: &str,
    redirect_uris: &[String],
    code: &'static str,
) -> Result<(), ApiError> {
    check(ctx, uri, redirect_uris, true).await.map_err(|r| match r {
        Refused::Client(why) => ApiError::new(400, code, why),
        Refused::Busy | Refused::Full => ApiError::new(
            429,
            "too_many_requests",
            "too many sector_identifier_uri fetches from this address or to this host; retry in a minute",
        )
        .with_retry_after(60),
        Refused::Storage(e) => ApiError::from(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> Fetched {
        Fetched {
            status: 200,
            body: body.as_bytes().to_vec(),
            ..Fetched::default()
        }
    }

    #[test]
    fn the_document_must_list_every_redirect_uri() {
        let r = vec!["https://a.example/cb".to_string(), "https://b.example/cb".to_string()];
        assert!(judge(
            &doc(r#"["https://a.example/cb","https://b.example/cb","https://c.example/x"]"#),
            &r
        )
        .is_ok());
        let e = judge(&doc(r#"["https://a.example/cb"]"#), &r).unwrap_err();
        assert!(
            e.contains("does not list the redirect URI \"https://b.example/cb\""),
            "{e}"
        );
        // Exact comparison: no normalisation.
        assert!(judge(&doc(r#"["https://a.example/cb/","https://b.example/cb"]"#), &r).is_err());
        for bad in [
            "not json",
            "{}",
            r#"{"redirect_uris": []}"#,
            "[1, 2]",
            r#"["https://a.example/cb", null]"#,
            "",
        ] {
            let e = judge(&doc(bad), &r).unwrap_err();
            assert!(e.contains("not a JSON array"), "{bad}: {e}");
        }
    }
}
