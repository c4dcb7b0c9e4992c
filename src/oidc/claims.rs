//! Which claims about a user an app may read (OIDC Core §5.4): by the scopes
//! the grant holds, for a user who still holds a role in the grant's org.
//!
//! `sub` and `org_id` (the org the grant is for) always; `profile`: `name`,
//! `preferred_username` (only when the user has one), `updated_at`,
//! `org_name`, `org_slug`; `email`: `email`, `email_verified`.
//! `openid`, `profile` and `email` are built-in scopes, not platform
//! permissions: the role's `role_permissions` do not withhold them (a role
//! would otherwise have to list them to let its members sign in anywhere);
//! what withholds everything is the user leaving the org, or the grant,
//! token or app ending.

use serde_json::{json, Map, Value};

use crate::store::UserinfoRow;

pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";

/// Every claim this server releases about a user (discovery's `claims_supported`
/// lists these with the ID token's own).
pub const USER_CLAIMS: &[&str] = &[
    "sub",
    "org_id",
    "name",
    "preferred_username",
    "updated_at",
    "org_name",
    "org_slug",
    "email",
    "email_verified",
];

/// Discovery's `claims_supported` (OIDC Discovery §3): the ID token's
/// claims, then the ones only UserInfo releases.
pub fn supported() -> Vec<&'static str> {
    let id_token = crate::oidc::id_token::CLAIMS;
    let only_userinfo = USER_CLAIMS.iter().filter(|c| !id_token.contains(c));
    id_token.iter().chain(only_userinfo).copied().collect()
}

/// The UserInfo response for `row`'s user, known to its app as `sub`.
pub fn userinfo(sub: &str, scopes: &[String], row: &UserinfoRow) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let mut out = Map::new();
    out.insert("sub".into(), sub.into());
    out.insert("org_id".into(), row.org_id.clone().into());
    if has(PROFILE) {
        out.insert("name".into(), json!(row.name));
        if let Some(u) = row.preferred_username.as_deref().filter(|u| !u.is_empty()) {
            out.insert("preferred_username".into(), u.into());
        }
        out.insert("updated_at".into(), json!(row.updated_at));
        out.insert("org_name".into(), row.org_name.clone().into());
        out.insert("org_slug".into(), row.org_slug.clone().into());
    }
    if has(EMAIL) {
        out.insert("email".into(), json!(row.email));
        out.insert("email_verified".into(), (row.email_verified.unwrap_or(0) != 0).into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> UserinfoRow {
        UserinfoRow {
            scopes: "[]".into(),
            app_id: "app_1".into(),
            actor: "self".into(),
            org_id: "org_acme".into(),
            org_slug: "acme".into(),
            org_name: "Acme".into(),
            user_id: Some("usr_alice".into()),
            email: Some("alice@acme.test".into()),
            name: Some("Alice".into()),
            preferred_username: None,
            email_verified: Some(1),
            updated_at: Some(1_700_000_000),
            app_redirect_uris: None,
            app_sector_identifier_uri: None,
            jkt: None,
        }
    }

    fn scopes(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn openid_alone_releases_the_subject_and_the_org() {
        let v = Value::Object(userinfo("sub_1", &scopes("openid"), &row()));
        assert_eq!(v, json!({"sub": "sub_1", "org_id": "org_acme"}));
    }

    #[test]
    fn profile_and_email_release_their_claims_only() {
        let v = Value::Object(userinfo("sub_1", &scopes("openid profile"), &row()));
        assert_eq!(
            v,
            json!({"sub": "sub_1", "org_id": "org_acme", "name": "Alice", "updated_at": 1_700_000_000,
                   "org_name": "Acme", "org_slug": "acme"})
        );
        let v = Value::Object(userinfo("sub_1", &scopes("openid email"), &row()));
        assert_eq!(
            v,
            json!({"sub": "sub_1", "org_id": "org_acme", "email": "alice@acme.test", "email_verified": true})
        );
    }

    #[test]
    fn preferred_username_only_when_the_user_has_one_and_unverified_is_false() {
        let r = UserinfoRow {
            preferred_username: Some("al".into()),
            email_verified: Some(0),
            ..row()
        };
        let v = userinfo("s", &scopes("openid profile email"), &r);
        assert_eq!(v["preferred_username"], "al");
        assert_eq!(v["email_verified"], false);
        let r = UserinfoRow {
            preferred_username: Some(String::new()),
            ..row()
        };
        assert!(!userinfo("s", &scopes("openid profile"), &r).contains_key("preferred_username"));
    }
}
