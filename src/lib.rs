//! Edge OAuth 2.1 authorization server.
//!
//! Five layers, imports only downwards (`tests/architecture.rs` holds it, the
//! table is `docs/layers.txt`): the foundation (`http`, `crypto`, `scope`,
//! `pkce`, `redirect_uri`, `external_id`, `error`, `config`) → `store` (SQL by
//! protocol act) → the protocol (grants, bearer, audience, JWT, CIMD,
//! registration, login challenges, profiles: they decide) → the surfaces
//! (`endpoints`, `admin`, `templates`: they parse and render) → the wiring
//! (`server`, and `worker`, the only workers-rs code). Everything below
//! `worker` is plain Rust that turns an [`http::Request`] into an
//! [`http::Response`] through a [`store::Store`], so it runs natively.

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
pub mod jose;
pub mod jwt;
pub mod login_challenge;
pub mod oidc;
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
