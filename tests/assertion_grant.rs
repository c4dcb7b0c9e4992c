//! The storage contract of Azure DevOps's assertion form (`store::assertion`)
//! against SQLite with the real migrations: the client is the code's (or
//! refresh token's) own, checked in the redeeming statement itself.

use crate::common;

use std::sync::Arc;

use edge_oauth::crypto::sha256_hex;
use edge_oauth::store::{owner_guard, ClientGuard, CodeRow, NewToken, Redemption, Rotation, Store};

const NOW: i64 = common::NOW;
const SOURCE: &str = "203.0.113.7";

type S = Store<edge_oauth::store::native::NativeDriver>;

fn store() -> S {
    let d = common::driver();
    for (id, secret) in [("app_x", "s3cret"), ("app_y", "other")] {
        d.exec(&format!(
            "INSERT INTO apps (id, owner_org_id, name, redirect_uris, scopes, client_type, actor_modes, secret_hash, created_at, updated_at)
             VALUES ('{id}','org_acme','X','[\"https://a.example/cb\"]','[\"profile:read\"]','confidential','[\"self\"]','{}',0,0)",
            sha256_hex(secret)
        ))
        .unwrap();
    }
    Store::new(d)
}

const AUD: &str = r#"["https://api.example/api/v1"]"#;

fn code(hash: &str) -> CodeRow {
    CodeRow {
        hash: hash.into(),
        app_id: "app_x".into(),
        org_id: "org_acme".into(),
        user_id: Some("usr_alice".into()),
        actor: "self".into(),
        scopes: r#"["profile:read"]"#.into(),
        redirect_uri: "https://a.example/cb".into(),
        challenge: None,
        created_at: NOW,
        expires_at: NOW + 900,
        used_at: None,
        grant_id: None,
        audience: None,
        ..CodeRow::default()
    }
}

fn guard(secret: &str) -> ClientGuard {
    owner_guard(sha256_hex(secret), NOW + 1, NOW - 900, 3, SOURCE)
}

fn tok(h: &str) -> NewToken {
    NewToken {
        jkt: None,
        hash: h.into(),
        expires_at: Some(NOW + 3600),
    }
}

fn redemption<'a>(hash: &'a str, grant: &'a str, at: &'a NewToken, rt: &'a NewToken) -> Redemption<'a> {
    Redemption {
        dpop: None,
        code_hash: hash,
        app_id: "",
        redirect_uri: "https://a.example/cb",
        challenge: None,
        now: NOW + 1,
        grant_id: grant,
        access: at,
        refresh: Some(rt),
        max_live_grants: 10,
        live_grants_per_org: false,
        verifier_required: false,
        audience: None,
        default_audience: AUD,
    }
}

#[test]
fn only_the_codes_own_client_with_its_secret_redeems() {
    let s = store();
    pollster::block_on(async {
        s.insert_code(&code("c1"), false).await.unwrap();
        let (at, rt) = (tok("a1"), tok("r1"));
        let attempt = |secret: &'static str| {
            let (at, rt) = (at.clone(), rt.clone());
            let s = &s;
            async move {
                s.redeem_code_by_assertion(&redemption("c1", "g1", &at, &rt), &guard(secret))
                    .await
                    .unwrap()
            }
        };
        let (app, done) = attempt("other").await;
        assert_eq!(app.map(|a| a.id).as_deref(), Some("app_x"), "the client is the code's");
        assert!(done.is_none(), "another client's secret redeems nothing");
        assert!(attempt("guess").await.1.is_none());
        let (none, _) = s
            .redeem_code_by_assertion(&redemption("nope", "g1", &at, &rt), &guard("s3cret"))
            .await
            .unwrap();
        assert!(none.is_none(), "no code, no client");
        // Failures of this client from this source, keyed as client_auth keys them.
        s.db.exec(&format!(
            "INSERT INTO rate_limits VALUES ('{}', {}, 3)",
            edge_oauth::client_auth::rate_key("app_x", SOURCE),
            NOW - 10
        ))
        .unwrap();
        let (app, done) = attempt("s3cret").await;
        assert_eq!(app.unwrap().auth_failures, 3, "the lookup counts them");
        assert!(done.is_none(), "over the limit, even the right secret redeems nothing");
        s.db.exec("UPDATE rate_limits SET key = 'client:app_x:198.51.100.1'")
            .unwrap();
        s.db.exec("UPDATE apps SET secret_expires_at = 1 WHERE id = 'app_x'")
            .unwrap();
        assert!(attempt("s3cret").await.1.is_none(), "an expired secret");
        s.db.exec("UPDATE apps SET secret_expires_at = NULL").unwrap();
        assert!(
            attempt("s3cret").await.1.is_some(),
            "untouched by the failures, and another source's failures do not count"
        );
    });
}

#[test]
fn parallel_assertion_redemptions_of_one_code_yield_exactly_one_winner() {
    let s = Arc::new(store());
    pollster::block_on(s.insert_code(&code("c1"), false)).unwrap();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let (at, rt, g) = (tok(&format!("a{i}")), tok(&format!("r{i}")), format!("g{i}"));
                pollster::block_on(s.redeem_code_by_assertion(&redemption("c1", &g, &at, &rt), &guard("s3cret")))
                    .unwrap()
                    .1
                    .is_some()
            })
        })
        .collect();
    let wins = handles.into_iter().map(|h| h.join().unwrap()).filter(|w| *w).count();
    assert_eq!(wins, 1);
}

#[test]
fn only_the_refresh_tokens_own_client_rotates_it_once() {
    let s = store();
    pollster::block_on(async {
        s.insert_code(&code("c1"), false).await.unwrap();
        let (at, rt) = (tok("a1"), tok("r1"));
        s.redeem_code_by_assertion(&redemption("c1", "g1", &at, &rt), &guard("s3cret"))
            .await
            .unwrap()
            .1
            .unwrap();
        let (at2, rt2) = (tok("a2"), tok("r2"));
        let rotation = Rotation {
            dpop: None,
            old_hash: "r1",
            app_id: "",
            scopes: None,
            now: NOW + 5,
            access: &at2,
            refresh: &rt2,
            grace: 0,
            audience: None,
            default_audience: AUD,
        };
        let (app, done) = s.rotate_refresh_by_assertion(&rotation, &guard("other")).await.unwrap();
        assert_eq!(app.map(|a| a.id).as_deref(), Some("app_x"));
        assert!(done.is_none(), "another client's secret rotates nothing");
        let (app, _) = s
            .rotate_refresh_by_assertion(
                &Rotation {
                    old_hash: "a1",
                    ..rotation
                },
                &guard("s3cret"),
            )
            .await
            .unwrap();
        assert!(app.is_none(), "an access token names no refresh token's client");
        let rotated = s
            .rotate_refresh_by_assertion(&rotation, &guard("s3cret"))
            .await
            .unwrap()
            .1;
        assert_eq!(rotated.unwrap().grant_id, "g1");
        let (at3, rt3) = (tok("a3"), tok("r3"));
        let again = Rotation {
            access: &at3,
            refresh: &rt3,
            ..rotation
        };
        assert!(
            s.rotate_refresh_by_assertion(&again, &guard("s3cret"))
                .await
                .unwrap()
                .1
                .is_none(),
            "once"
        );
    });
}
