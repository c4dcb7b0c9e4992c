//! A JWS compact serialization taken apart (RFC 7515 §7.1): shape, header
//! and algorithm checked, the signature not yet (that is `crypto::JwsVerify`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::Alg;

/// Why a JWS was refused before its signature was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not three base64url parts, too long, or a header that is not a JSON object.
    Malformed,
    /// `alg` missing or not one of [`Alg::ALL`] (`none` and `HS*` included).
    Algorithm,
    /// A `crit` header: we implement no extension, so none is understood (RFC 7515 §4.1.11).
    Critical,
}

/// The `typ` of a compact JWS's header, read without checking anything
/// else (`alg` included): how a caller tells token kinds apart before
/// choosing who verifies them. `None`: no readable header or no `typ`.
pub fn header_typ(token: &str) -> Option<String> {
    let h = token.split('.').next()?;
    if h.len() > 4096 {
        return None;
    }
    let header: Map<String, Value> = serde_json::from_slice(&decode(h).ok()?).ok()?;
    header.get("typ").and_then(Value::as_str).map(str::to_string)
}

pub struct Compact<'t> {
    pub header: Map<String, Value>,
    pub alg: Alg,
    /// The signing input, `header.payload` as sent.
    pub input: &'t [u8],
    /// The payload, decoded (JSON is the owner's to parse).
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

fn decode(part: &str) -> Result<Vec<u8>, Reject> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Reject::Malformed)
}

impl<'t> Compact<'t> {
    /// At most `max` bytes in all.
    pub fn parse(token: &'t str, max: usize) -> Result<Self, Reject> {
        if token.len() > max {
            return Err(Reject::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Reject::Malformed);
        };
        let header: Map<String, Value> = serde_json::from_slice(&decode(h)?).map_err(|_| Reject::Malformed)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::parse)
            .ok_or(Reject::Algorithm)?;
        if header.contains_key("crit") {
            return Err(Reject::Critical);
        }
        Ok(Compact {
            alg,
            input: &token.as_bytes()[..h.len() + 1 + p.len()],
            payload: decode(p)?,
            signature: decode(s)?,
            header,
        })
    }

    /// A header member that is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// The payload as `T` (read it only once the signature verified).
    pub fn claims<T: serde::de::DeserializeOwned>(&self) -> Result<T, Reject> {
        serde_json::from_slice(&self.payload).map_err(|_| Reject::Malformed)
    }
}
