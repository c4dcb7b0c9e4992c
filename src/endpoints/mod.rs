//! One module per endpoint. Each takes the request context and a plain
//! request, and returns a plain response.
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

pub mod apps;
pub mod apps_openid;
pub mod apps_sender;
pub mod apps_webhooks;
pub mod authorizations;
pub mod authorize;
pub mod device;
pub mod device_page;
pub mod installations;
pub mod introspect;
pub mod jwks;
pub mod login_challenge;
pub mod logout;
pub mod metadata;
pub mod openid_configuration;
pub mod pages;
pub mod par;
pub mod register;
pub mod resource;
pub mod resource_metadata;
pub mod revoke;
pub mod settings;
pub mod settings_client_auth;
pub mod signin;
pub mod token;
pub mod userinfo;
pub mod webhooks;
