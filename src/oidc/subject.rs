//! The `sub` an app sees for a user (OIDC Core §8): stable, opaque, never the email.

use crate::config::Config;
use crate::store::AppRow;

/// The subject identifier of `user_id` for `app`. Every place that names a
/// user to a client (ID token, UserInfo, introspection, JWT access tokens)
/// goes through here, so they agree.
pub fn subject(_config: &Config, _app: &AppRow, user_id: &str) -> String {
    user_id.to_string()
}
