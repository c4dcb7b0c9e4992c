//! The provisioning store's guards, natively: each write re-checks its
//! preconditions inside its own batch, so a change that raced past the API's
//! read (another request demoted the other owner, took the email) makes the
//! whole act a no-op: nothing written, no audit record, no guard row left.

use crate::common;

use edge_oauth::store::native::NativeDriver;
use edge_oauth::store::provisioning::*;
use edge_oauth::store::Store;
use serde_json::json;

const NOW: i64 = common::NOW;
const ISS: Option<&str> = Some("https://issuer.test");

fn store() -> Store<NativeDriver> {
    let d = common::driver();
    d.exec(
        "UPDATE orgs SET external_id = substr(id, 5); UPDATE users SET external_id = substr(id, 5);
         INSERT OR IGNORE INTO roles (name) VALUES ('owner'), ('admin'), ('member');",
    )
    .unwrap();
    Store::new(d)
}

fn note(action: &'static str) -> AuditNote {
    AuditNote {
        org_id: None,
        action,
        detail: json!({}),
    }
}

/// Rows a refused act must leave as they were.
fn state(s: &Store<NativeDriver>) -> String {
    s.db.query_one_text(
        "SELECT json_array(
           (SELECT json_group_array(json_array(id, external_id, slug, name)) FROM orgs),
           (SELECT json_group_array(json_array(id, email, name, password_hash)) FROM users),
           (SELECT json_group_array(json_array(org_id, user_id, role)) FROM memberships),
           (SELECT json_group_array(json_array(role, permission)) FROM role_permissions),
           (SELECT json_group_array(name) FROM roles),
           (SELECT json_group_array(json_array(hash, org_id, name, role)) FROM api_keys),
           (SELECT json_group_array(hash) FROM sessions),
           (SELECT count(*) FROM audit_events),
           (SELECT count(*) FROM batch_guards))",
    )
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

#[test]
fn a_taken_email_or_slug_refuses_the_upsert_inside_the_batch() {
    let s = store();
    let before = state(&s);
    let dave = UserUpsert {
        id: "usr_dave".into(),
        external_id: "dave".into(),
        email: "ALICE@acme.test".into(),
        name: "Dave".into(),
        password_hash: None,
        ..UserUpsert::default()
    };
    assert_eq!(block(s.upsert_user(&dave, NOW, &note("user.created"))).unwrap(), None);
    let initech = OrgUpsert {
        id: "org_initech".into(),
        external_id: "initech".into(),
        slug: "acme".into(),
        name: "Initech".into(),
    };
    assert_eq!(block(s.upsert_org(&initech, NOW, &note("org.created"))).unwrap(), None);
    assert_eq!(state(&s), before);
    // Free values go in, and the same upsert again returns the same id.
    let dave = UserUpsert {
        email: "dave@acme.test".into(),
        ..dave
    };
    assert_eq!(
        block(s.upsert_user(&dave, NOW, &note("user.created")))
            .unwrap()
            .as_deref(),
        Some("usr_dave")
    );
    let again = UserUpsert {
        id: "usr_other".into(),
        ..dave
    };
    assert_eq!(
        block(s.upsert_user(&again, NOW, &note("user.updated")))
            .unwrap()
            .as_deref(),
        Some("usr_dave")
    );
    assert_eq!(s.db.query_one_text("SELECT count(*) || '' FROM batch_guards"), "0");
}

#[test]
fn the_last_owner_cannot_be_removed_demoted_or_deleted_even_past_the_api_check() {
    let s = store();
    let before = state(&s);
    assert!(!block(s.delete_membership("org_acme", "usr_alice", NOW, &note("membership.deleted"))).unwrap());
    let demote = MembershipUpsert {
        org_id: "org_acme".into(),
        user_id: "usr_alice".into(),
        role: "member".into(),
    };
    assert!(!block(s.upsert_membership(&demote, NOW, &note("membership.updated"))).unwrap());
    assert!(block(s.delete_user("usr_alice", ISS, NOW, &note("user.deleted")))
        .unwrap()
        .is_none());
    let owner = RoleUpsert {
        name: "owner".into(),
        description: String::new(),
        permissions: vec!["profile:read".into()],
    };
    assert!(!block(s.put_role(&owner, NOW, &note("role.updated"))).unwrap());
    assert_eq!(state(&s), before);
    // With a second owner, each is allowed.
    let carol = MembershipUpsert {
        org_id: "org_acme".into(),
        user_id: "usr_carol".into(),
        role: "admin".into(),
    };
    assert!(block(s.upsert_membership(&carol, NOW, &note("membership.updated"))).unwrap());
    assert!(block(s.upsert_membership(&demote, NOW, &note("membership.updated"))).unwrap());
    assert_eq!(
        s.db.query_one_text("SELECT role FROM memberships WHERE user_id = 'usr_alice'"),
        "member"
    );
}

#[test]
fn unknown_permissions_roles_in_use_and_taken_secrets_are_refused_in_the_batch() {
    let s = store();
    let before = state(&s);
    let bad = RoleUpsert {
        name: "editor".into(),
        description: String::new(),
        permissions: vec!["posts:read".into(), "posts:delete".into()],
    };
    assert!(!block(s.put_role(&bad, NOW, &note("role.created"))).unwrap());
    assert!(!block(s.delete_role("member", NOW, &note("role.deleted"))).unwrap());
    assert!(!block(s.delete_scope("posts:read", NOW, &note("scope.deleted"))).unwrap());
    let taken = ApiKeyUpsert {
        org_id: "org_globex".into(),
        name: "copy".into(),
        role: "admin".into(),
        hash: Some(edge_oauth::crypto::sha256_hex(common::API_KEY)),
        create: true,
    };
    assert!(!block(s.put_api_key(&taken, NOW, &note("api_key.created"))).unwrap());
    let unknown_role = MembershipUpsert {
        org_id: "org_acme".into(),
        user_id: "usr_bob".into(),
        role: "emperor".into(),
    };
    assert!(!block(s.upsert_membership(&unknown_role, NOW, &note("membership.created"))).unwrap());
    assert_eq!(state(&s), before);
    // Two creations of one key name racing: the second must not replace the
    // first's secret (its caller already showed it to someone).
    let first = ApiKeyUpsert {
        name: "ci".into(),
        hash: Some("a".repeat(64)),
        ..taken.clone()
    };
    let second = ApiKeyUpsert {
        hash: Some("b".repeat(64)),
        ..first.clone()
    };
    let before_ci = state(&s);
    assert!(block(s.put_api_key(&first, NOW, &note("api_key.created"))).unwrap());
    let with_first = state(&s);
    assert_ne!(with_first, before_ci);
    assert!(!block(s.put_api_key(&second, NOW, &note("api_key.created"))).unwrap());
    assert_eq!(state(&s), with_first);
    assert!(block(s.delete_api_key("org_globex", "ci", NOW, &note("api_key.revoked"))).unwrap());
}

#[test]
fn deleting_a_user_takes_sessions_grants_consents_and_memberships_with_it() {
    let s = store();
    s.db.exec(
        "INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES ('h1', 'usr_carol', 0, 9999999999);
         INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at) VALUES ('g1', 'app_x', 'org_acme', 'usr_carol', 'self', '[]', 0);
         INSERT INTO consents VALUES ('usr_carol', 'app_x', 'org_acme', 'self', '[]', 0);",
    )
    .unwrap();
    assert!(block(s.delete_user("usr_carol", ISS, NOW, &note("user.deleted")))
        .unwrap()
        .is_some());
    let left = s.db.query_one_text(
        "SELECT (SELECT count(*) FROM sessions WHERE user_id = 'usr_carol') || ',' ||
                (SELECT count(*) FROM grants WHERE user_id = 'usr_carol' AND revoked_at IS NULL) || ',' ||
                (SELECT count(*) FROM consents WHERE user_id = 'usr_carol') || ',' ||
                (SELECT count(*) FROM memberships WHERE user_id = 'usr_carol') || ',' ||
                (SELECT count(*) FROM users WHERE id = 'usr_carol') || ',' ||
                (SELECT count(*) FROM audit_events WHERE action = 'membership.deleted' AND org_id = 'org_acme') || ',' ||
                (SELECT count(*) FROM batch_guards)",
    );
    assert_eq!(left, "0,0,0,0,0,1,0");
    // Gone: a second delete is a no-op.
    assert!(block(s.delete_user("usr_carol", ISS, NOW, &note("user.deleted")))
        .unwrap()
        .is_none());
}

#[test]
fn an_upsert_moves_updated_at_only_when_the_profile_changed() {
    let s = store();
    let dave = UserUpsert {
        id: "usr_dave".into(),
        external_id: "dave".into(),
        email: "dave@acme.test".into(),
        name: "Dave".into(),
        preferred_username: Some("dave".into()),
        email_verified: true,
        profile_changed: true,
        ..UserUpsert::default()
    };
    block(s.upsert_user(&dave, NOW, &note("user.created"))).unwrap();
    let read = || block(s.user_by_external_id("dave")).unwrap().unwrap();
    let u = read();
    assert_eq!(
        (u.preferred_username.as_deref(), u.email_verified, u.updated_at),
        (Some("dave"), 1, NOW)
    );
    let pw_only = UserUpsert {
        password_hash: Some(Some("pbkdf2-sha256$1$AA$AA".into())),
        profile_changed: false,
        ..dave.clone()
    };
    block(s.upsert_user(&pw_only, NOW + 10, &note("user.updated"))).unwrap();
    assert_eq!(read().updated_at, NOW, "a password is no claim");
    let renamed = UserUpsert {
        name: "David".into(),
        preferred_username: None,
        email_verified: false,
        profile_changed: true,
        ..pw_only
    };
    block(s.upsert_user(&renamed, NOW + 20, &note("user.updated"))).unwrap();
    let u = read();
    assert_eq!(
        (u.name.as_str(), u.preferred_username, u.email_verified, u.updated_at),
        ("David", None, 0, NOW + 20)
    );
}
