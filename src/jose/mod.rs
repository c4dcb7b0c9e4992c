//! JOSE verification foundation (RFC 7515, 7517, 7518, 7638): compact JWS parsing, public JWKs, thumbprints and the algorithm allow-list. Protocol-free: what a DPoP proof or a client assertion must claim is its owner's check.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

mod alg;
mod jwk;
mod jws;

pub use alg::Alg;
pub use jwk::{parse_set, PublicJwk, SetKey, MAX_RSA_BITS, MIN_RSA_BITS};
pub use jws::{header_typ, Compact, Reject};

#[cfg(test)]
mod tests;
