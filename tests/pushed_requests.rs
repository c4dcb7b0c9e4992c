//! Issue 19 item 2: the storage of pushed authorization requests (RFC 9126)
//! on the native SQLite driver, with the statements D1 runs: a pushed request
//! is presented only by its own client while live, yields at most one code,
//! and a public client's pushes are bounded per sender.

use crate::common;

use edge_oauth::store::native::NativeDriver;
use edge_oauth::store::pushed::{present_stmt, NewPushed};
use edge_oauth::store::{CodeRow, CodeStored, Store};

const NOW: i64 = common::NOW;

fn store() -> Store<NativeDriver> {
    let d = common::driver();
    d.exec(
        "INSERT INTO apps (id, owner_org_id, name, redirect_uris, scopes, client_type, actor_modes, created_at, updated_at)
         VALUES ('app_x','org_acme','X','[\"https://a.example/cb\"]','[\"posts:read\"]','public','[\"self\"]',0,0)",
    )
    .unwrap();
    Store::new(d)
}

fn push(s: &Store<NativeDriver>, hash: &str, budget: Option<(&str, i64, i64)>) -> bool {
    pollster::block_on(s.push_request(&NewPushed {
        hash,
        app_id: "app_x",
        params: "client_id=app_x&response_type=code",
        now: NOW,
        expires_at: NOW + 60,
        budget,
    }))
    .unwrap()
}

fn present(s: &Store<NativeDriver>, hash: &str, app: &str, now: i64) -> Option<String> {
    let (_, _, _, pushed) =
        pollster::block_on(s.authorize_reads(app, None, now, Some(present_stmt(hash, app, now, now + 600)))).unwrap();
    pushed.expect("presented")
}

fn code(hash: &str) -> CodeRow {
    CodeRow {
        hash: hash.into(),
        app_id: "app_x".into(),
        org_id: "org_acme".into(),
        user_id: Some("usr_alice".into()),
        actor: "self".into(),
        scopes: r#"["posts:read"]"#.into(),
        created_at: NOW + 30,
        expires_at: NOW + 90,
        ..Default::default()
    }
}

#[test]
fn presented_by_its_own_client_while_live_and_then_extended_for_the_interaction() {
    let s = store();
    assert!(push(&s, "h1", None));
    assert_eq!(present(&s, "h1", "app_other", NOW + 1), None, "another client");
    assert_eq!(present(&s, "h1", "app_x", NOW + 61), None, "late");
    assert!(present(&s, "h1", "app_x", NOW + 59).is_some());
    // Presented: it lives on for sign-in and consent, past PAR_TTL.
    assert!(pollster::block_on(s.pushed_request("h1", "app_x", NOW + 300))
        .unwrap()
        .is_some());
    assert!(present(&s, "h1", "app_x", NOW + 300).is_some(), "a reload");
    assert_eq!(
        pollster::block_on(s.pushed_request("h1", "app_x", NOW + 660)).unwrap(),
        None
    );
}

#[test]
fn one_pushed_request_yields_at_most_one_code() {
    let s = store();
    assert!(push(&s, "h2", None));
    assert!(present(&s, "h2", "app_x", NOW + 1).is_some());
    let first = pollster::block_on(s.insert_code_for(&code("c1"), false, Some("h2"))).unwrap();
    assert_eq!(first, CodeStored::Stored);
    let second = pollster::block_on(s.insert_code_for(&code("c2"), false, Some("h2"))).unwrap();
    assert_eq!(second, CodeStored::PushedSpent);
    assert!(pollster::block_on(s.code("c2")).unwrap().is_none(), "no second code");
    assert_eq!(present(&s, "h2", "app_x", NOW + 2), None, "spent");
}

#[test]
fn a_senders_pushes_are_bounded() {
    let s = store();
    let budget = Some(("par:app_x:203.0.113.1", 2, 60));
    assert!(push(&s, "b1", budget));
    assert!(push(&s, "b2", budget));
    assert!(!push(&s, "b3", budget), "over budget: nothing written");
    assert_eq!(pollster::block_on(s.pushed_request("b3", "app_x", NOW)).unwrap(), None);
    assert!(push(&s, "b4", Some(("par:app_x:203.0.113.2", 2, 60))), "another sender");
}
