//! Back-channel logout's queue (issue 17 item 8) against SQLite with the real
//! migrations: a session end queues one logout token per client and session
//! id in its own batch, only for live grants of clients with a
//! `backchannel_logout_uri`, and never more than `MAX_LOGOUT_TOKENS`.

use crate::common;

use edge_oauth::store::native::NativeDriver;
use edge_oauth::store::{LogoutPayload, Store, LOGOUT_EVENT, MAX_LOGOUT_TOKENS};

const ISS: Option<&str> = Some("https://issuer.test");
const NOW: i64 = common::NOW;

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn store() -> Store<NativeDriver> {
    Store::new(common::driver())
}

/// An app (with a back-channel URI unless `uri` is None) and a live grant of carol's tied to `sid`.
fn app_with_grant(s: &Store<NativeDriver>, id: &str, uri: Option<&str>, sid: &str) {
    let uri = uri.map(|u| format!("'{u}'")).unwrap_or("NULL".into());
    s.db.exec(&format!(
        "INSERT INTO apps (id, owner_org_id, name, redirect_uris, scopes, client_type, actor_modes, created_at, updated_at, backchannel_logout_uri) \
         VALUES ('{id}', 'org_acme', '{id}', '[]', '[]', 'public', '[\"self\"]', 0, 0, {uri});
         INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, sid) \
         VALUES ('g_{id}_{sid}', '{id}', 'org_acme', 'usr_carol', 'self', '[]', 0, '{sid}');"
    ))
    .unwrap();
}

fn session(s: &Store<NativeDriver>, hash: &str, sid: &str) {
    s.db.exec(&format!(
        "INSERT INTO sessions (hash, user_id, created_at, expires_at, sid, auth_time) VALUES ('{hash}', 'usr_carol', 0, 9999999999, '{sid}', 0);"
    ))
    .unwrap();
}

fn count(s: &Store<NativeDriver>, sql: &str) -> i64 {
    s.db.query_one_text(&format!("SELECT ({sql}) || ''")).parse().unwrap()
}

#[test]
fn a_session_end_queues_one_token_per_client_of_its_grants_in_the_same_batch() {
    let s = store();
    session(&s, "h1", "sid1");
    session(&s, "h2", "sid2");
    app_with_grant(&s, "app_a", Some("https://a.example/bc"), "sid1");
    // A second grant of the same client and session: still one token.
    s.db.exec("INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, sid) VALUES ('g_a2', 'app_a', 'org_globex', 'usr_carol', 'self', '[]', 0, 'sid1');")
        .unwrap();
    app_with_grant(&s, "app_quiet", None, "sid1");
    app_with_grant(&s, "app_other_session", Some("https://o.example/bc"), "sid2");
    app_with_grant(&s, "app_revoked", Some("https://r.example/bc"), "sid1");
    s.db.exec("UPDATE grants SET revoked_at = 1 WHERE app_id = 'app_revoked';")
        .unwrap();

    let ids = block(s.end_session("h1", ISS, NOW)).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(count(&s, "SELECT count(*) FROM sessions WHERE hash = 'h1'"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM sessions WHERE hash = 'h2'"), 1);
    let rows = block(s.deliveries_of_app("app_a", 10)).unwrap();
    assert_eq!(rows.len(), 1);
    let d = &rows[0];
    assert_eq!(d.id, ids[0]);
    assert_eq!(
        (d.event.as_str(), d.url.as_str(), d.status.as_str(), d.next_attempt_at),
        (LOGOUT_EVENT, "https://a.example/bc", "pending", Some(NOW))
    );
    let p: LogoutPayload = serde_json::from_str(&d.payload).unwrap();
    assert_eq!(
        (Some(p.iss.as_str()), p.user_id.as_str(), p.sid.as_deref()),
        (ISS, "usr_carol", Some("sid1"))
    );
    assert_eq!(p.jti.len(), 32);
    assert_eq!(count(&s, "SELECT count(*) FROM webhook_deliveries"), 1);
    // The grants stay: ending a session is not revoking an app's access.
    assert_eq!(count(&s, "SELECT count(*) FROM grants WHERE revoked_at IS NULL"), 4);

    // Ending it again (a second tab) queues nothing.
    assert!(block(s.end_session("h1", ISS, NOW)).unwrap().is_empty());
    // Claimed once: a second claim (the cron racing the request) gets nothing.
    assert_eq!(block(s.claim_deliveries(&ids, NOW, 60)).unwrap().len(), 1);
    assert!(block(s.claim_deliveries(&ids, NOW, 60)).unwrap().is_empty());
}

#[test]
fn a_user_wide_end_tells_every_client_once_per_session() {
    let s = store();
    s.db.exec("UPDATE users SET external_id = 'carol' WHERE id = 'usr_carol';")
        .unwrap();
    session(&s, "h1", "sid1");
    app_with_grant(&s, "app_a", Some("https://a.example/bc"), "sid1");
    s.db.exec("INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, sid) VALUES ('g_a2', 'app_a', 'org_globex', 'usr_carol', 'self', '[]', 0, 'sid2');")
        .unwrap();
    let (ended, _, ids) = block(s.end_user_sessions("carol", ISS, NOW)).unwrap().unwrap();
    assert_eq!(
        (ended, ids.len()),
        (1, 2),
        "one token per session id the client's grants carry"
    );
}

#[test]
fn the_rows_one_session_end_writes_are_bounded() {
    let s = store();
    session(&s, "h1", "sid1");
    for i in 0..MAX_LOGOUT_TOKENS + 20 {
        app_with_grant(&s, &format!("app_{i:03}"), Some("https://a.example/bc"), "sid1");
    }
    let ids = block(s.end_session("h1", ISS, NOW)).unwrap();
    assert_eq!(ids.len() as i64, MAX_LOGOUT_TOKENS);
    assert_eq!(count(&s, "SELECT count(*) FROM webhook_deliveries"), MAX_LOGOUT_TOKENS);
}

#[test]
fn with_openid_off_a_session_end_queues_nothing() {
    let s = store();
    session(&s, "h1", "sid1");
    app_with_grant(&s, "app_a", Some("https://a.example/bc"), "sid1");
    assert!(block(s.end_session("h1", None, NOW)).unwrap().is_empty());
    assert_eq!(count(&s, "SELECT count(*) FROM sessions"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM webhook_deliveries"), 0);
}
