//! Edge OAuth 2.1 authorization server.
//!
//! Layers: the protocol core (every module here except `worker`) is plain Rust
//! that turns a [`http::Request`] into a [`http::Response`] through a
//! [`store::Store`]; the `worker` module adapts it to Cloudflare Workers and D1.

pub mod admin;
pub mod api_auth;
pub mod audience;
pub mod bearer;
pub mod catalogue;
pub mod cimd;
pub mod client_auth;
pub mod client_metadata;
pub mod compat;
pub mod config;
pub mod context;
pub mod crypto;
pub mod endpoints;
pub mod error;
pub mod external_id;
pub mod grants;
pub mod http;
pub mod jwt;
pub mod login_challenge;
pub mod pkce;
pub mod redirect_uri;
pub mod registration;
pub mod scope;
pub mod server;
pub mod session;
pub mod store;
pub mod tasks;
pub mod templates;

#[cfg(target_arch = "wasm32")]
mod worker;
