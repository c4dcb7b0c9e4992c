//! Public JWKs (RFC 7517) of the three kinds we verify with, and their
//! RFC 7638 thumbprints. A key carrying any private member is refused: a
//! client that sends its private key has leaked it, and we must not hold it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Alg;

/// Smallest RSA modulus accepted (RFC 7518 §3.3, §3.5: 2048 bits or larger).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted: bounds the CPU one verification may cost.
pub const MAX_RSA_BITS: usize = 8192;

/// Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public key, its members base64url as received (checked to decode to
/// the sizes their kind needs, canonical: the thumbprint hashes them as sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicJwk {
    /// `kty: EC`, `crv: P-256`.
    Ec { x: String, y: String },
    /// `kty: RSA`, modulus 2048..=8192 bits.
    Rsa { n: String, e: String },
    /// `kty: OKP`, `crv: Ed25519`.
    Okp { x: String },
}

/// A base64url member that decodes (strictly: no padding, no stray bits) to bytes `ok` accepts.
fn member(v: &Value, name: &str, ok: impl Fn(&[u8]) -> bool, what: &str) -> Result<String, String> {
    let s = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("needs {name}"))?;
    match URL_SAFE_NO_PAD.decode(s) {
        Ok(b) if ok(&b) => Ok(s.to_string()),
        _ => Err(format!("{name} must be {what}, base64url")),
    }
}

impl PublicJwk {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("a JWK must be a JSON object")?;
        if let Some(m) = PRIVATE.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!("holds the private member {m}: send the public key only"));
        }
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        match (s("kty"), s("crv")) {
            (Some("EC"), Some("P-256")) => Ok(PublicJwk::Ec {
                x: member(v, "x", |b| b.len() == 32, "32 bytes")?,
                y: member(v, "y", |b| b.len() == 32, "32 bytes")?,
            }),
            (Some("OKP"), Some("Ed25519")) => Ok(PublicJwk::Okp {
                x: member(v, "x", |b| b.len() == 32, "32 bytes")?,
            }),
            (Some("RSA"), _) => Ok(PublicJwk::Rsa {
                // No leading zero byte (RFC 7518 §6.3.1.1): one key, one thumbprint.
                n: member(
                    v,
                    "n",
                    |b| b.first().is_some_and(|f| *f != 0) && (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&(b.len() * 8)),
                    "a modulus of 2048 to 8192 bits",
                )?,
                e: member(v, "e", |b| (1..=8).contains(&b.len()) && b[0] != 0, "an exponent")?,
            }),
            _ => Err("must be kty EC with crv P-256, kty RSA, or kty OKP with crv Ed25519".into()),
        }
    }

    /// RFC 7638 SHA-256 thumbprint, base64url (DPoP's `jkt`): the required
    /// members only, in lexicographic order, no whitespace.
    pub fn thumbprint(&self) -> String {
        // The members are base64url (checked at parse), so none needs JSON escaping.
        let canonical = match self {
            PublicJwk::Ec { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            PublicJwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            PublicJwk::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Can this key verify `alg`?
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (PublicJwk::Ec { .. }, Alg::Es256)
                | (PublicJwk::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
                | (PublicJwk::Okp { .. }, Alg::EdDsa)
        )
    }

    /// The public JWK as JSON (WebCrypto's `importKey("jwk", …)`).
    pub fn to_json(&self) -> Value {
        match self {
            PublicJwk::Ec { x, y } => json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            PublicJwk::Rsa { n, e } => json!({"kty": "RSA", "n": n, "e": e}),
            PublicJwk::Okp { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        }
    }
}

/// One key of a client's JWK set, with what the set says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetKey {
    pub kid: Option<String>,
    /// The declared `alg`, when the key names one.
    pub alg: Option<Alg>,
    /// `use`, when given (`sig` or `enc`).
    pub use_: Option<String>,
    pub key: PublicJwk,
}

/// A JWK set (`{"keys": […]}`) of public keys, strictly: a key we cannot
/// use, a private member or an `alg` we refuse fails the set, naming the key.
pub fn parse_set(text: &str) -> Result<Vec<SetKey>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWK set is an object with a keys array")?;
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let bad = |why: String| format!("key {i}: {why}");
            let key = PublicJwk::from_value(k).map_err(bad)?;
            let s = |m: &str| k.get(m).and_then(Value::as_str).map(str::to_string);
            let alg = match s("alg") {
                None => None,
                Some(a) => match Alg::parse(&a) {
                    Some(a) if key.fits(a) => Some(a),
                    Some(_) => return Err(bad(format!("alg {a} does not fit its kty"))),
                    None => return Err(bad(format!("alg {a} is not accepted (only {})", Alg::names()))),
                },
            };
            Ok(SetKey {
                kid: s("kid"),
                alg,
                use_: s("use"),
                key,
            })
        })
        .collect()
}
