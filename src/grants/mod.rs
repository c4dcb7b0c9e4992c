//! Grant handlers, one module per `grant_type` (RFC 6749 §4–6).

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::Serialize;

use crate::config::Config;
use crate::crypto;
use crate::store::NewToken;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl TokenResponse {
    pub fn bearer(access: String, refresh: Option<String>, expires_in: i64, scopes: &[String]) -> Self {
        TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in,
            refresh_token: refresh,
            scope: crate::scope::join(scopes),
        }
    }
}

/// A freshly minted token: plaintext for the response, hash for the store.
pub struct Minted {
    pub plain: String,
    pub row: NewToken,
}

pub fn mint(prefix: &str, expires_at: Option<i64>) -> Minted {
    let plain = crypto::new_token(prefix);
    let row = NewToken {
        hash: crypto::sha256_hex(&plain),
        expires_at,
    };
    Minted { plain, row }
}

pub fn mint_access(config: &Config, now: i64) -> Minted {
    mint(&config.prefixes.access, Some(now + config.access_ttl))
}

pub fn mint_refresh(config: &Config, now: i64) -> Minted {
    mint(&config.prefixes.refresh, config.refresh_idle_ttl.map(|t| now + t))
}

/// A presented code or token is looked up only if it has our shape; anything
/// else is refused before touching storage.
pub fn well_formed(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix) && value.len() <= prefix.len() + 64
}
