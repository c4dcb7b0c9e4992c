//! The `sub` an app sees for a user (OIDC Core §8): stable, opaque, never the email.
//!
//! `SUBJECT_TYPE=public`: the user id, the same for every app.
//! `SUBJECT_TYPE=pairwise` (§8.1): base64url(HMAC-SHA256(SUBJECT_SALT,
//! sector identifier ‖ 0x00 ‖ user id)): stable for one sector, unrelated
//! across sectors, and not reversible without the salt.
//!
//! The sector identifier of a client ([`sector`]), first that applies:
//! 1. the host of its `sector_identifier_uri`;
//! 2. the one host all its redirect URIs share, if none is a loopback host
//!    (`localhost`, 127.0.0.0/8, `[::1]`: every native app on the machine
//!    shares those, so they name no sector) and none lacks a host (custom
//!    schemes);
//! 3. for a client identified by URL (CIMD), the host of its client id;
//! 4. otherwise the client itself (`client:<client_id>`): a client whose
//!    redirect URIs span hosts without a `sector_identifier_uri` (refused at
//!    registration under pairwise, but older clients may have them) gets a
//!    sector of its own, so it can never share subjects by accident.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::config::{Config, SubjectType};
use crate::store::{AppRow, BearerRow};

/// The subject identifier of `user_id` for `app`. Every place that names a
/// user to a client (ID token, UserInfo, introspection, JWT access tokens)
/// goes through here, so they agree.
pub fn subject(config: &Config, app: &AppRow, user_id: &str) -> String {
    of_client(
        config,
        &app.id,
        &app.redirect_uris,
        app.sector_identifier_uri.as_deref(),
        user_id,
    )
}

/// [`subject`] for the client a bearer row names (its app's columns came
/// with the row), when a user is involved: the `self` actor.
pub fn of_bearer(config: &Config, row: &BearerRow) -> Option<String> {
    let user = row.user_id.as_deref().filter(|_| row.actor == "self")?;
    Some(of_client(
        config,
        &row.app_id,
        row.app_redirect_uris.as_deref().unwrap_or("[]"),
        row.app_sector_identifier_uri.as_deref(),
        user,
    ))
}

/// [`subject`] from the client's columns (`redirect_uris`: its JSON array).
pub fn of_client(
    config: &Config,
    client_id: &str,
    redirect_uris: &str,
    sector_identifier_uri: Option<&str>,
    user_id: &str,
) -> String {
    match (config.subject_type, config.subject_salt.as_deref()) {
        (SubjectType::Pairwise, Some(salt)) => {
            let uris: Vec<String> = serde_json::from_str(redirect_uris).unwrap_or_default();
            pairwise(salt, &sector(client_id, &uris, sector_identifier_uri), user_id)
        }
        // Pairwise without a salt never starts (`config::subject`).
        _ => user_id.to_string(),
    }
}

/// The pairwise subject of `user_id` in `sector`.
pub fn pairwise(salt: &str, sector: &str, user_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key length");
    mac.update(sector.as_bytes());
    mac.update(&[0]);
    mac.update(user_id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The sector identifier of a client (see the module's rule).
pub fn sector(client_id: &str, redirect_uris: &[String], sector_identifier_uri: Option<&str>) -> String {
    if let Some(h) = sector_identifier_uri.and_then(host) {
        return h;
    }
    let hosts: Option<Vec<String>> = redirect_uris.iter().map(|u| host(u)).collect();
    if let Some(mut hosts) = hosts.filter(|h| !h.is_empty()) {
        hosts.sort();
        hosts.dedup();
        if let [one] = hosts.as_slice() {
            if !is_loopback(one) {
                return one.clone();
            }
        }
    }
    if client_id.starts_with("https://") {
        if let Some(h) = host(client_id) {
            return h;
        }
    }
    format!("client:{client_id}")
}

fn host(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    u.host_str().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "test-salt-of-at-least-thirty-two-characters";

    fn uris(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn pairwise_config() -> Config {
        Config {
            subject_type: SubjectType::Pairwise,
            subject_salt: Some(SALT.into()),
            ..Config::default()
        }
    }

    #[test]
    fn the_sector_follows_the_documented_order() {
        let one = uris(&["https://app.example/cb", "https://APP.example:8443/other"]);
        assert_eq!(sector("app_1", &one, None), "app.example");
        assert_eq!(
            sector("app_1", &one, Some("https://sectors.example/list.json")),
            "sectors.example"
        );
        let two = uris(&["https://a.example/cb", "https://b.example/cb"]);
        assert_eq!(sector("app_1", &two, None), "client:app_1");
        assert_eq!(sector("app_1", &two, Some("https://a.example/s.json")), "a.example");
        // Loopback and custom-scheme redirect URIs name no sector.
        for native in [
            &["http://localhost:3000/cb"][..],
            &["http://127.0.0.1:8080/cb"][..],
            &["http://[::1]:8080/cb"][..],
            &["com.example.app:/cb"][..],
            &["https://app.example/cb", "com.example.app:/cb"][..],
        ] {
            assert_eq!(sector("app_1", &uris(native), None), "client:app_1", "{native:?}");
        }
        assert_eq!(
            sector(
                "https://tool.example/client.json",
                &uris(&["http://127.0.0.1/cb"]),
                None
            ),
            "tool.example"
        );
        assert_eq!(sector("app_1", &[], None), "client:app_1");
    }

    #[test]
    fn public_subjects_are_the_user_id() {
        let c = Config::default();
        assert_eq!(
            of_client(&c, "app_1", r#"["https://a.example/cb"]"#, None, "usr_1"),
            "usr_1"
        );
    }

    #[test]
    fn pairwise_subjects_are_stable_in_a_sector_and_differ_across_sectors() {
        let c = pairwise_config();
        let a1 = of_client(&c, "app_1", r#"["https://a.example/cb"]"#, None, "usr_1");
        let a2 = of_client(&c, "app_2", r#"["https://a.example/other"]"#, None, "usr_1");
        let b = of_client(&c, "app_3", r#"["https://b.example/cb"]"#, None, "usr_1");
        assert_eq!(a1, a2, "same sector, same sub");
        assert_ne!(a1, b, "another sector, another sub");
        assert_ne!(a1, of_client(&c, "app_1", r#"["https://a.example/cb"]"#, None, "usr_2"));
        assert_eq!(a1.len(), 43, "base64url of 32 bytes: {a1}");
        assert!(!a1.contains("usr_1"));
        // The salt is the key: another salt, unrelated subjects.
        assert_ne!(
            pairwise(SALT, "a.example", "usr_1"),
            pairwise("another-salt", "a.example", "usr_1")
        );
        // The separator keeps (sector, user) pairs apart.
        assert_ne!(
            pairwise(SALT, "a.example", "usr_1"),
            pairwise(SALT, "a.exampleusr", "_1")
        );
    }

    #[test]
    fn a_bearer_row_names_the_same_subject_as_its_app() {
        let c = pairwise_config();
        let row: BearerRow = serde_json::from_value(serde_json::json!({
            "scopes": "[]", "expires_at": 0, "created_at": 0, "grant_id": "g", "app_id": "app_1",
            "app_name": "A", "app_scopes": "[]", "org_id": "o", "org_slug": "o", "user_id": "usr_1",
            "user_email": null, "actor": "self", "role": "member", "role_permissions": null,
            "app_redirect_uris": r#"["https://a.example/cb"]"#, "app_sector_identifier_uri": null
        }))
        .unwrap();
        assert_eq!(
            of_bearer(&c, &row).as_deref(),
            Some(of_client(&c, "app_1", r#"["https://a.example/cb"]"#, None, "usr_1").as_str())
        );
        let app_actor = BearerRow {
            actor: "app".into(),
            ..row
        };
        assert_eq!(of_bearer(&c, &app_actor), None);
    }
}
