//! OpenID Connect (Core 1.0, Discovery 1.0, RP-Initiated and Back-Channel
//! Logout 1.0): who signed in, told to the app. One file per act.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod backchannel;
pub mod claims;
pub mod id_token;
pub mod logout;
pub mod reauth;
pub mod subject;
