//! The storage contract, run against the native SQLite driver with the same
//! migrations and statements D1 runs. (The same behaviour is exercised in
//! workerd with a real local D1 by tests/http/.)

use crate::common;

use std::sync::Arc;

use edge_oauth::crypto::sha256_hex;
use edge_oauth::store::{ClientGuard, CodeRow, NewToken, Redemption, Rotation, Store};

const NOW: i64 = common::NOW;
/// The default audience the tests' codes and tokens carry (RFC 8707).
const API_AUD: &str = r#"["https://as.test/api/v1"]"#;

fn code(hash: &str, challenge: Option<&str>) -> CodeRow {
    CodeRow {
        dpop_jkt: None,
        hash: hash.into(),
        app_id: "app_x".into(),
        org_id: "org_acme".into(),
        user_id: Some("usr_alice".into()),
        actor: "self".into(),
        scopes: r#"["posts:read","profile:read"]"#.into(),
        redirect_uri: "https://a.example/cb".into(),
        challenge: challenge.map(str::to_string),
        created_at: NOW,
        expires_at: NOW + 300,
        used_at: None,
        grant_id: None,
        audience: Some(API_AUD.into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: Some(NOW - 60),
        acr: None,
        amr: Some(r#"["pwd"]"#.into()),
        sid: Some("sid_1".into()),
    }
}

fn store_with_app() -> Store<edge_oauth::store::native::NativeDriver> {
    let d = common::driver();
    d.exec(&format!(
        "INSERT INTO apps (id, owner_org_id, name, redirect_uris, scopes, client_type, actor_modes, secret_hash, created_at, updated_at)
         VALUES ('app_x','org_acme','X','[\"https://a.example/cb\"]','[\"posts:read\",\"profile:read\"]','confidential','[\"self\"]','{}',0,0)",
        sha256_hex("s3cret")
    ))
    .unwrap();
    Store::new(d)
}

/// The client's credentials as the token endpoint would present them.
fn guard() -> ClientGuard {
    ClientGuard {
        key_proven: false,
        app_id: "app_x".into(),
        secret_hash: Some(sha256_hex("s3cret")),
        now: NOW,
        since: NOW - 900,
        max_failures: 20,
        rate_key: "client:app_x:".into(),
    }
}

fn tok(h: &str, exp: Option<i64>) -> NewToken {
    NewToken {
        jkt: None,
        hash: h.into(),
        expires_at: exp,
    }
}

fn redeem<'a>(
    hash: &'a str,
    challenge: Option<&'a str>,
    grant: &'a str,
    at: &'a NewToken,
    rt: &'a NewToken,
) -> Redemption<'a> {
    Redemption {
        dpop: None,
        code_hash: hash,
        app_id: "app_x",
        redirect_uri: "https://a.example/cb",
        challenge,
        now: NOW + 1,
        grant_id: grant,
        access: at,
        refresh: Some(rt),
        max_live_grants: 10,
        live_grants_per_org: false,
        verifier_required: false,
        audience: None,
        default_audience: API_AUD,
    }
}

#[test]
fn code_redeems_once_and_issues_a_live_bearer() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", Some("ch")), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let first = s
            .redeem_code(&redeem("c1", Some("ch"), "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1;
        assert_eq!(first.unwrap().actor, "self");
        assert!(s.bearer("a1", NOW + 2).await.unwrap().is_some());
        let (at2, rt2) = (tok("a2", Some(NOW + 3600)), tok("r2", None));
        assert!(s
            .redeem_code(&redeem("c1", Some("ch"), "g2", &at2, &rt2), &guard())
            .await
            .unwrap()
            .1
            .is_none());
        assert!(
            s.bearer("a2", NOW + 2).await.unwrap().is_none(),
            "the loser issued nothing"
        );
    });
}

#[test]
fn code_binding_mismatches_change_nothing() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", Some("ch")), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        // wrong challenge, no challenge, wrong redirect, wrong client
        assert!(s
            .redeem_code(&redeem("c1", Some("zz"), "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_none());
        assert!(s
            .redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_none());
        let mut r = redeem("c1", Some("ch"), "g1", &at, &rt);
        r.redirect_uri = "https://a.example/cb/";
        assert!(s.redeem_code(&r, &guard()).await.unwrap().1.is_none());
        let mut r = redeem("c1", Some("ch"), "g1", &at, &rt);
        r.app_id = "app_other";
        assert!(s.redeem_code(&r, &guard()).await.unwrap().1.is_none());
        assert!(
            s.code("c1").await.unwrap().unwrap().used_at.is_none(),
            "failed attempts do not burn the code"
        );
        assert!(s
            .redeem_code(&redeem("c1", Some("ch"), "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_some());
    });
}

#[test]
fn verifier_for_a_code_without_challenge_is_refused() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", None), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        assert!(s
            .redeem_code(&redeem("c1", Some("ch"), "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_none());
        assert!(s
            .redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_some());
    });
}

#[test]
fn expired_code_is_refused_at_its_ttl() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", None), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let mut r = redeem("c1", None, "g1", &at, &rt);
        r.now = NOW + 300;
        assert!(
            s.redeem_code(&r, &guard()).await.unwrap().1.is_none(),
            "expires_at is exclusive"
        );
        r.now = NOW + 299;
        assert!(s.redeem_code(&r, &guard()).await.unwrap().1.is_some());
    });
}

#[test]
fn parallel_redemptions_of_one_code_yield_exactly_one_winner() {
    let s = Arc::new(store_with_app());
    pollster::block_on(s.insert_code(&code("c1", None), false)).unwrap();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let (at, rt) = (tok(&format!("a{i}"), Some(NOW + 3600)), tok(&format!("r{i}"), None));
                let g = format!("g{i}");
                pollster::block_on(s.redeem_code(&redeem("c1", None, &g, &at, &rt), &guard()))
                    .unwrap()
                    .1
                    .is_some()
            })
        })
        .collect();
    let wins = handles.into_iter().map(|h| h.join().unwrap()).filter(|w| *w).count();
    assert_eq!(wins, 1);
}

fn issue(s: &Store<edge_oauth::store::native::NativeDriver>) {
    pollster::block_on(async {
        s.insert_code(&code("c1", None), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", Some(NOW + 1000)));
        s.redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .unwrap();
    });
}

fn rotation<'a>(old: &'a str, scopes: Option<&'a str>, at: &'a NewToken, rt: &'a NewToken, now: i64) -> Rotation<'a> {
    Rotation {
        dpop: None,
        old_hash: old,
        app_id: "app_x",
        scopes,
        now,
        access: at,
        refresh: rt,
        grace: 0,
        audience: None,
        default_audience: API_AUD,
    }
}

#[test]
fn refresh_rotates_once_and_may_only_narrow() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        let (at, rt) = (tok("a2", Some(NOW + 3600)), tok("r2", None));
        let wide = r#"["posts:read","posts:write"]"#;
        assert!(s
            .rotate_refresh(&rotation("r1", Some(wide), &at, &rt, NOW + 5), &guard())
            .await
            .unwrap()
            .1
            .is_none());
        let narrow = r#"["posts:read"]"#;
        let r = s
            .rotate_refresh(&rotation("r1", Some(narrow), &at, &rt, NOW + 5), &guard())
            .await
            .unwrap()
            .1
            .unwrap();
        assert_eq!(r.scopes, narrow);
        assert_eq!(s.bearer("a2", NOW + 6).await.unwrap().unwrap().scopes, narrow);
        let (at3, rt3) = (tok("a3", Some(NOW + 3600)), tok("r3", None));
        assert!(
            s.rotate_refresh(&rotation("r1", None, &at3, &rt3, NOW + 7), &guard())
                .await
                .unwrap()
                .1
                .is_none(),
            "spent"
        );
        assert!(s.token("a3").await.unwrap().is_none(), "the reuse issued nothing");
    });
}

#[test]
fn refresh_idle_expiry_is_enforced() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        let (at, rt) = (tok("a2", Some(NOW + 9999)), tok("r2", None));
        assert!(s
            .rotate_refresh(&rotation("r1", None, &at, &rt, NOW + 1000), &guard())
            .await
            .unwrap()
            .1
            .is_none());
    });
}

#[test]
fn revoking_the_grant_kills_access_and_refresh() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        s.revoke_grant("g1", NOW + 2).await.unwrap();
        assert!(s.bearer("a1", NOW + 3).await.unwrap().is_none());
        let (at, rt) = (tok("a2", Some(NOW + 3600)), tok("r2", None));
        assert!(s
            .rotate_refresh(&rotation("r1", None, &at, &rt, NOW + 3), &guard())
            .await
            .unwrap()
            .1
            .is_none());
    });
}

#[test]
fn bearer_reflects_current_role_and_membership() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        let b = s.bearer("a1", NOW + 2).await.unwrap().unwrap();
        assert_eq!(b.role.as_deref(), Some("owner"));
        s.db.exec("UPDATE memberships SET role='member' WHERE user_id='usr_alice'")
            .unwrap();
        let b = s.bearer("a1", NOW + 2).await.unwrap().unwrap();
        assert_eq!(b.role.as_deref(), Some("member"));
        assert!(!b.role_permissions.unwrap().contains("posts:write"));
        s.db.exec("DELETE FROM memberships WHERE user_id='usr_alice'").unwrap();
        assert!(
            s.bearer("a1", NOW + 2).await.unwrap().is_none(),
            "a removed user's token dies"
        );
    });
}

#[test]
fn access_token_expiry_is_exclusive() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        assert!(s.bearer("a1", NOW + 3599).await.unwrap().is_some());
        assert!(s.bearer("a1", NOW + 3600).await.unwrap().is_none());
    });
}

#[test]
fn the_client_guard_lets_only_a_verified_client_act() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", Some("ch")), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let attempt = |g: ClientGuard| {
            let (at, rt) = (at.clone(), rt.clone());
            let s = &s;
            async move {
                s.redeem_code(&redeem("c1", Some("ch"), "g1", &at, &rt), &g)
                    .await
                    .unwrap()
            }
        };
        let wrong_secret = ClientGuard {
            secret_hash: Some(sha256_hex("guess")),
            ..guard()
        };
        let (app, done) = attempt(wrong_secret).await;
        assert!(app.is_some(), "the client's row is read in the same batch");
        assert!(done.is_none(), "a wrong secret redeems nothing");
        let as_public = ClientGuard {
            secret_hash: None,
            ..guard()
        };
        assert!(
            attempt(as_public).await.1.is_none(),
            "a confidential client without its secret"
        );
        let expired = ClientGuard {
            now: NOW + 10,
            ..guard()
        };
        s.db.exec(&format!("UPDATE apps SET secret_expires_at = {}", NOW + 10))
            .unwrap();
        assert!(attempt(expired).await.1.is_none(), "an expired secret");
        s.db.exec("UPDATE apps SET secret_expires_at = NULL").unwrap();
        s.db.exec(&format!(
            "INSERT INTO rate_limits VALUES ('client:app_x:', {}, 20)",
            NOW - 10
        ))
        .unwrap();
        assert!(attempt(guard()).await.1.is_none(), "a client over its failure limit");
        s.db.exec("DELETE FROM rate_limits").unwrap();
        // Failures charged to another source never refuse this one (issue 8 §1.2).
        s.db.exec(&format!(
            "INSERT INTO rate_limits VALUES ('client:app_x:203.0.113.7', {}, 500)",
            NOW - 10
        ))
        .unwrap();
        s.db.exec("UPDATE apps SET status = 'suspended'").unwrap();
        assert!(attempt(guard()).await.1.is_none(), "a suspended app");
        s.db.exec("UPDATE apps SET status = 'active'").unwrap();
        assert!(
            attempt(guard()).await.1.is_some(),
            "the code was untouched by the failures"
        );
    });
}

#[test]
fn reuse_grace_lets_only_the_just_rotated_token_rotate_again_within_the_window() {
    let s = store_with_app();
    issue(&s);
    pollster::block_on(async {
        let rot = |old: &'static str, a: &'static str, r: &'static str, now: i64, grace: i64| {
            let s = &s;
            async move {
                let (at, rt) = (tok(a, Some(now + 3600)), tok(r, None));
                let mut rot = rotation(old, None, &at, &rt, now);
                rot.grace = grace;
                s.rotate_refresh(&rot, &guard()).await.unwrap().1
            }
        };
        assert!(rot("r1", "a2", "r2", NOW + 5, 30).await.is_some(), "first rotation");
        assert!(rot("r1", "a3", "r3", NOW + 6, 0).await.is_none(), "no grace: reuse");
        assert!(
            rot("r1", "a3", "r3", NOW + 34, 30).await.is_some(),
            "29 s after: inside"
        );
        assert!(
            rot("r1", "a4", "r4", NOW + 35, 30).await.is_none(),
            "window anchored at the first rotation"
        );
        assert!(
            rot("r3", "a5", "r5", NOW + 36, 30).await.is_some(),
            "a successor rotates"
        );
        s.db.exec(&format!("UPDATE tokens SET used_at = {} WHERE hash = 'r1'", NOW + 30))
            .unwrap();
        assert!(
            rot("r1", "a6", "r6", NOW + 37, 30).await.is_none(),
            "no longer the just-rotated token once a later one was used"
        );
        // r2 and r3 are both successors of r1 (the grace replay minted r3);
        // r3 was used, so r2 may not grow a chain of its own (review of issue 8).
        assert!(
            rot("r2", "a7", "r7", NOW + 37, 30).await.is_none(),
            "r2's sibling r3 was used: r2 is superseded"
        );
        assert!(s.superseded("r2").await.unwrap());
        assert!(!s.superseded("r5").await.unwrap(), "r5 has no used sibling");
    });
}

#[test]
fn with_pkce_required_for_all_a_confidential_client_needs_a_verifier_too() {
    let s = store_with_app();
    pollster::block_on(async {
        s.insert_code(&code("c1", None), false).await.unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let mut r = redeem("c1", None, "g1", &at, &rt);
        r.verifier_required = true;
        assert!(
            s.redeem_code(&r, &guard()).await.unwrap().1.is_none(),
            "a code minted without a challenge is not redeemed without PKCE"
        );
        r.verifier_required = false;
        assert!(
            s.redeem_code(&r, &guard()).await.unwrap().1.is_some(),
            "and it was left unused"
        );
    });
}

#[test]
fn redemption_needs_the_approving_user_to_still_hold_the_role() {
    let s = store_with_app();
    pollster::block_on(async {
        s.db.exec("UPDATE apps SET actor_modes = '[\"app\",\"self\"]'").unwrap();
        let bot = |h: &str| CodeRow {
            actor: "app".into(),
            ..code(h, None)
        };
        // usr_carol is a member of org_acme: no code for the bot at all.
        let carol = CodeRow {
            user_id: Some("usr_carol".into()),
            ..bot("c0")
        };
        assert!(
            !s.insert_code(&carol, false).await.unwrap(),
            "a member cannot be issued a bot code"
        );
        assert!(s.insert_code(&bot("c1"), false).await.unwrap(), "the owner can");
        s.db.exec("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice'")
            .unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        assert!(
            s.redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
                .await
                .unwrap()
                .1
                .is_none(),
            "demoted between consent and exchange"
        );
        s.db.exec("UPDATE memberships SET role = 'owner' WHERE user_id = 'usr_alice'")
            .unwrap();
        assert!(s
            .redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .is_some());
    });
}

#[test]
fn client_credentials_issue_needs_the_install_still_live_in_its_own_batch() {
    // The grant reads the install in one round trip and issues in the next:
    // an install revoked in between must not yield a token.
    use edge_oauth::store::AppToken;
    let s = store_with_app();
    s.db.exec(
        "INSERT INTO installs (app_id, org_id, app_actor, scopes, installed_by, created_at, updated_at, revoked_at)
         VALUES ('app_x','org_acme',1,'[\"posts:read\"]','usr_alice',0,0,5)",
    )
    .unwrap();
    let at = tok("h_cc", Some(NOW + 3600));
    let t = AppToken {
        dpop: None,
        grant_id: "grt_cc",
        app_id: "app_x",
        org_id: "org_acme",
        scopes: r#"["posts:read"]"#,
        access: &at,
        now: NOW,
        max_live: 5,
        org_cap: None,
        via_install: true,
        audience: API_AUD,
    };
    let issued = pollster::block_on(s.issue_app_token(&t)).unwrap();
    assert!(!issued, "a revoked install issues nothing");
    assert_eq!(s.db.query_one_text("SELECT CAST(count(*) AS TEXT) FROM tokens"), "0");
    assert_eq!(s.db.query_one_text("SELECT CAST(count(*) AS TEXT) FROM grants"), "0");
    s.db.exec("UPDATE installs SET revoked_at = NULL").unwrap();
    assert!(pollster::block_on(s.issue_app_token(&t)).unwrap());
    assert!(pollster::block_on(s.bearer("h_cc", NOW)).unwrap().is_some());
}

/// RFC 8707 in the storage acts: the redeeming and rotating statements take
/// a narrower audience only from within what was approved; a wider one
/// changes nothing (the code and the refresh token stay usable).
#[test]
fn audience_narrows_within_the_approved_set_and_a_wider_one_changes_nothing() {
    let s = store_with_app();
    let both = r#"["https://as.test/api/v1","https://other.test/mcp"]"#;
    let other = r#"["https://other.test/mcp"]"#;
    let evil = r#"["https://evil.test/x"]"#;
    let api = API_AUD;
    pollster::block_on(async {
        s.insert_code(
            &CodeRow {
                audience: Some(both.into()),
                ..code("c1", None)
            },
            false,
        )
        .await
        .unwrap();
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let wide = Redemption {
            audience: Some(evil),
            ..redeem("c1", None, "g1", &at, &rt)
        };
        assert!(s.redeem_code(&wide, &guard()).await.unwrap().1.is_none());
        assert_eq!(s.code("c1").await.unwrap().unwrap().used_at, None, "not consumed");
        assert_eq!(s.db.query_one_text("SELECT CAST(count(*) AS TEXT) FROM tokens"), "0");
        let narrow = Redemption {
            audience: Some(other),
            ..redeem("c1", None, "g1", &at, &rt)
        };
        let r = s.redeem_code(&narrow, &guard()).await.unwrap().1.unwrap();
        assert_eq!(r.audience, other);
        assert_eq!(
            s.bearer("a1", NOW + 2).await.unwrap().unwrap().audience.as_deref(),
            Some(other)
        );
        assert_eq!(
            s.token("r1").await.unwrap().unwrap().audience.as_deref(),
            Some(both),
            "the refresh token keeps the whole grant"
        );
        assert_eq!(s.db.query_one_text("SELECT audience FROM grants WHERE id = 'g1'"), both);

        let (at2, rt2) = (tok("a2", Some(NOW + 3600)), tok("r2", None));
        let widen = Rotation {
            audience: Some(evil),
            ..rotation("r1", None, &at2, &rt2, NOW + 5)
        };
        assert!(s.rotate_refresh(&widen, &guard()).await.unwrap().1.is_none());
        assert_eq!(s.token("r1").await.unwrap().unwrap().used_at, None, "not rotated");
        let to_api = Rotation {
            audience: Some(api),
            ..rotation("r1", None, &at2, &rt2, NOW + 5)
        };
        let r = s.rotate_refresh(&to_api, &guard()).await.unwrap().1.unwrap();
        assert_eq!(r.audience, api);
        assert_eq!(
            s.bearer("a2", NOW + 6).await.unwrap().unwrap().audience.as_deref(),
            Some(api)
        );
        assert_eq!(s.token("r2").await.unwrap().unwrap().audience.as_deref(), Some(both));

        // A code stored before migration 0012 (NULL): the default audience.
        s.insert_code(
            &CodeRow {
                audience: None,
                ..code("c2", None)
            },
            false,
        )
        .await
        .unwrap();
        let (at3, rt3) = (tok("a3", Some(NOW + 3600)), tok("r3", None));
        let r = s
            .redeem_code(&redeem("c2", None, "g2", &at3, &rt3), &guard())
            .await
            .unwrap()
            .1
            .unwrap();
        assert_eq!(r.audience, API_AUD);
    });
}

#[test]
fn the_openid_facts_of_a_code_reach_its_exchange_and_every_refresh() {
    let s = store_with_app();
    pollster::block_on(async {
        assert!(s.insert_code(&code("c1", None), false).await.unwrap());
        let (at, rt) = (tok("a1", Some(NOW + 3600)), tok("r1", None));
        let r = s
            .redeem_code(&redeem("c1", None, "g1", &at, &rt), &guard())
            .await
            .unwrap()
            .1
            .expect("redeemed");
        assert_eq!(r.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(r.auth_time, Some(NOW - 60));
        assert_eq!((r.acr.as_deref(), r.amr.as_deref()), (None, Some(r#"["pwd"]"#)));
        assert_eq!(r.sid.as_deref(), Some("sid_1"));
        let (at2, rt2) = (tok("a2", Some(NOW + 3600)), tok("r2", None));
        let rotated = s
            .rotate_refresh(&rotation("r1", None, &at2, &rt2, NOW + 5), &guard())
            .await
            .unwrap()
            .1
            .expect("rotated");
        // OIDC Core §12.2: a refresh's ID token keeps the original auth_time.
        assert_eq!(rotated.auth_time, Some(NOW - 60));
        assert_eq!(rotated.amr.as_deref(), Some(r#"["pwd"]"#));
        assert_eq!(rotated.sid.as_deref(), Some("sid_1"));
    });
}
