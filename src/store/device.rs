//! Device authorization requests (RFC 8628, migration 0025): started by the
//! device, decided once by a signed-in user on /device, redeemed once by
//! the device's poll, each step one conditional statement in one batch.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

/// A device authorization request to store (`POST /oauth/device_authorization`).
pub struct NewDevice<'a> {
    pub hash: &'a str,
    pub user_code_hash: &'a str,
    pub app_id: &'a str,
    /// JSON array of the requested scopes.
    pub scopes: &'a str,
    /// JSON array of the requested resources (RFC 8707); `None`: the default audience.
    pub audience: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
    pub interval: i64,
    /// `(rate_limits.key, limit, window seconds)`: the sender's budget.
    pub budget: (&'a str, i64, i64),
    /// Most unexpired requests one client may hold.
    pub max_live: i64,
}

/// What [`Store::start_device`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStarted {
    Stored,
    /// The sender spent its budget: nothing stored.
    OverBudget,
    /// The client holds `max_live` unexpired requests: nothing stored.
    Full,
    /// The user code is taken by another request (draw again).
    Collision,
}

/// A device authorization request as the verification page and the poll read it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviceRow {
    pub app_id: String,
    pub scopes: String,
    #[serde(default)]
    pub audience: Option<String>,
    pub expires_at: i64,
    pub poll_interval: i64,
    #[serde(default)]
    pub last_poll_at: Option<i64>,
    pub attempts: i64,
    pub status: String,
    #[serde(default)]
    pub used_at: Option<i64>,
}

/// A verification form submission naming a user code.
pub struct Attempt<'a> {
    pub user_code_hash: &'a str,
    pub now: i64,
    /// `(rate_limits.key, limit, window seconds)`: the source's budget.
    pub budget: (&'a str, i64, i64),
    /// Lookups one code accepts (then one decision); the lookup past them denies the code.
    pub max_attempts: i64,
}

/// The user's decision, with who they are and how they signed in.
pub struct Decision<'a> {
    pub approve: bool,
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
    pub sid: Option<&'a str>,
}

/// What a verification form submission found.
#[derive(Debug)]
pub enum Attempted {
    /// The source spent its budget: nothing read or changed.
    OverBudget,
    /// No pending, unexpired request has this user code (or, for a
    /// decision, the user may not approve in that org).
    Unknown,
    /// The code was named once too often and is now denied.
    Exhausted,
    /// The pending request (after a lookup), or the decided one.
    Found(DeviceRow),
}

/// One poll of the token endpoint, as the batch uses it.
pub struct Poll<'a> {
    pub hash: &'a str,
    pub app_id: &'a str,
    pub now: i64,
    pub grant_id: &'a str,
    pub access: &'a NewToken,
    pub refresh: &'a NewToken,
    pub default_audience: &'a str,
    pub max_live_grants: i64,
    pub live_grants_per_org: bool,
    pub dpop: Option<&'a DpopUse>,
}

/// The state after one poll: the client's row, what a won redemption
/// issued into, and the request as it stood before this poll's own mark.
pub struct Polled {
    pub app: Option<AppRow>,
    pub redeemed: Option<Redeemed>,
    pub row: Option<DeviceRow>,
}

/// The INSERT of one token of a won redemption (`kind` access or refresh).
macro_rules! issue_sql {
    ($kind:literal) => {
        concat!(
            "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, audience, jkt) SELECT ?3, '",
            $kind,
            "', grant_id, scopes, used_at, ?4, COALESCE(audience, ?5), ?6 FROM device_codes \
             WHERE hash = ?1 AND grant_id = ?2"
        )
    };
}

/// Columns [`DeviceRow`] reads.
macro_rules! device_row {
    () => {
        "app_id, scopes, audience, expires_at, poll_interval, last_poll_at, attempts, status, used_at"
    };
}

impl<D: Driver> Store<D> {
    /// Store a request within its sender's budget and its client's cap, in
    /// one batch; a self-registered client's `last_used_at` is set with it.
    pub async fn start_device(&self, d: &NewDevice<'_>) -> Result<DeviceStarted, StoreError> {
        let (key, limit, window) = d.budget;
        let out = self
            .db
            .batch(vec![
                super::ratelimit::count_stmt(key, d.now, window),
                Stmt::new(
                    "SELECT COUNT(*) AS live FROM device_codes WHERE app_id = ?1 AND expires_at > ?2",
                    params![d.app_id, d.now],
                ),
                Stmt::new(
                    "INSERT INTO device_codes (hash, user_code_hash, app_id, scopes, audience, created_at, expires_at, poll_interval) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE (SELECT count FROM rate_limits WHERE key = ?9) <= ?10 \
                     AND (SELECT COUNT(*) FROM device_codes WHERE app_id = ?3 AND expires_at > ?6) < ?11 \
                     ON CONFLICT DO NOTHING RETURNING 1 AS ok",
                    params![
                        d.hash,
                        d.user_code_hash,
                        d.app_id,
                        d.scopes,
                        d.audience,
                        d.now,
                        d.expires_at,
                        d.interval,
                        key,
                        limit,
                        d.max_live
                    ],
                ),
                Stmt::new(
                    "UPDATE apps SET last_used_at = ?2 WHERE id = ?1 AND registration <> 'platform' \
                     AND EXISTS (SELECT 1 FROM device_codes WHERE hash = ?3)",
                    params![d.app_id, d.now, d.hash],
                ),
            ])
            .await?;
        let count = |i: usize, col: &str| {
            out.get(i)
                .and_then(|rows| rows.first())
                .and_then(|r| r.get(col))
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
        };
        if out.get(2).is_some_and(|rows| !rows.is_empty()) {
            return Ok(DeviceStarted::Stored);
        }
        Ok(if count(0, "count") > limit {
            DeviceStarted::OverBudget
        } else if count(1, "live") >= d.max_live {
            DeviceStarted::Full
        } else {
            DeviceStarted::Collision
        })
    }

    /// The verification form names a user code: counted against the
    /// source's budget and the code's attempts, and, within both, the
    /// pending request read (`decision: None`) or decided (`Some`).
    pub async fn attempt_device(
        &self,
        a: &Attempt<'_>,
        decision: Option<&Decision<'_>>,
    ) -> Result<Attempted, StoreError> {
        let (key, limit, window) = a.budget;
        let act = match decision {
            None => Stmt::new(
                concat!(
                    "UPDATE device_codes SET attempts = attempts + 1, \
                       status = CASE WHEN attempts + 1 > ?5 THEN 'denied' ELSE status END, \
                       decided_at = CASE WHEN attempts + 1 > ?5 THEN ?2 ELSE decided_at END \
                     WHERE user_code_hash = ?1 AND status = 'pending' AND expires_at > ?2 \
                     AND (SELECT count FROM rate_limits WHERE key = ?3) <= ?4 RETURNING ",
                    device_row!()
                ),
                params![a.user_code_hash, a.now, key, limit, a.max_attempts],
            ),
            // A decision is one more submission, after at most `max_attempts`
            // lookups (a lookup past them denied the code). Approval needs the user
            // to be a member of the org it names, at this moment.
            Some(d) => Stmt::new(
                concat!(
                    "UPDATE device_codes SET attempts = attempts + 1, status = ?6, decided_at = ?2, \
                       org_id = ?7, user_id = ?8, actor = 'self', auth_time = ?9, acr = ?10, amr = ?11, sid = ?12 \
                     WHERE user_code_hash = ?1 AND status = 'pending' AND expires_at > ?2 AND attempts <= ?5 \
                     AND (SELECT count FROM rate_limits WHERE key = ?3) <= ?4 \
                     AND (?6 = 'denied' OR EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = ?7 AND m.user_id = ?8)) \
                     RETURNING ",
                    device_row!()
                ),
                params![
                    a.user_code_hash,
                    a.now,
                    key,
                    limit,
                    a.max_attempts,
                    if d.approve { "approved" } else { "denied" },
                    d.org_id,
                    d.user_id,
                    d.auth_time,
                    d.acr,
                    d.amr,
                    d.sid
                ],
            ),
        };
        let mut stmts = vec![super::ratelimit::count_stmt(key, a.now, window), act];
        if let Some(d) = decision.filter(|d| d.approve) {
            // The org's audit record of the approval, written exactly when
            // this decision was (as the consent form's `authorization.granted`).
            stmts.push(Stmt::new(
                "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) \
                 SELECT org_id, decided_at, 'user', user_id, app_id, 'authorization.granted', \
                   json_object('actor', 'self', 'scopes', json(scopes), 'flow', 'device_code') \
                 FROM device_codes WHERE user_code_hash = ?1 AND decided_at = ?2 AND user_id = ?3 AND status = 'approved'",
                params![a.user_code_hash, a.now, d.user_id],
            ));
        }
        let out = self.db.batch(stmts).await?;
        let over = out
            .first()
            .and_then(|rows| rows.first())
            .and_then(|r| r.get("count"))
            .and_then(|v| v.as_i64())
            .is_some_and(|c| c > limit);
        if over {
            return Ok(Attempted::OverBudget);
        }
        let row = decode::<DeviceRow>(out.into_iter().nth(1).unwrap_or_default())?
            .into_iter()
            .next();
        Ok(match row {
            None => Attempted::Unknown,
            Some(r) if decision.is_none() && r.status == "denied" => Attempted::Exhausted,
            Some(r) => Attempted::Found(r),
        })
    }

    /// One poll, in one round trip: the client's row; the redemption
    /// (approved, unused, unexpired, not sooner than the interval, the user
    /// still a member, DPoP and the client's credentials as for a code) and
    /// the tokens it issues; the request's state; and the poll's own mark
    /// (`last_poll_at`, and 5 s more interval for a poll that came too soon,
    /// RFC 8628 §3.5), made only by the authenticated client it belongs to.
    pub async fn poll_device(&self, p: &Poll<'_>, guard: &ClientGuard) -> Result<Polled, StoreError> {
        let bound = guard.bind(params![
            p.now,
            p.grant_id,
            p.hash,
            p.app_id,
            p.default_audience,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            p.dpop.map(|d| d.jkt.clone()),
            p.dpop.map(|d| d.replay_key.clone())
        ]);
        let won = params![p.hash, p.grant_id];
        let stmts = vec![
            guard.lookup(),
            Stmt::new(
                concat!(
                    "UPDATE device_codes SET used_at = ?1, grant_id = ?2 \
                     WHERE hash = ?3 AND app_id = ?4 AND status = 'approved' AND used_at IS NULL AND expires_at > ?1 \
                     AND (last_poll_at IS NULL OR last_poll_at + poll_interval <= ?1) \
                     AND EXISTS (SELECT 1 FROM apps dv WHERE dv.id = device_codes.app_id AND dv.device_authorization = 1) \
                     AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = device_codes.org_id AND m.user_id = device_codes.user_id) \
                     AND ",
                    dpop_ok!("NULL", "device_codes.app_id"),
                    " AND ",
                    client_ok!(),
                    " RETURNING org_id, user_id, actor, scopes, COALESCE(audience, ?5) AS audience, auth_time, acr, amr, sid"
                ),
                bound.clone(),
            ),
            Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM installs i JOIN device_codes c ON c.app_id = i.app_id AND c.org_id = i.org_id \
                 WHERE c.hash = ?1 AND c.grant_id = ?2 AND i.revoked_at IS NULL) AS existed",
                won.clone(),
            ),
            // `MAX_LIVE_GRANTS` per (app, org, user) among device grants, or
            // per (app, org) for any grant under `LIVE_GRANTS_PER=org`.
            Stmt::new(
                "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT g.id FROM grants g \
                   JOIN device_codes c ON c.app_id = g.app_id AND c.org_id = g.org_id \
                   WHERE c.hash = ?1 AND c.grant_id = ?2 AND g.revoked_at IS NULL \
                   AND (?5 = 1 OR (g.source = 'device_code' AND c.user_id IS g.user_id)) \
                   ORDER BY g.created_at DESC, g.rowid DESC LIMIT -1 OFFSET ?4 - 1)",
                params![
                    p.hash,
                    p.grant_id,
                    p.now,
                    p.max_live_grants.max(1),
                    i64::from(p.live_grants_per_org)
                ],
            ),
            Stmt::new(
                "INSERT INTO installs (app_id, org_id, app_actor, scopes, installed_by, created_at, updated_at) \
                 SELECT app_id, org_id, 0, '[]', user_id, used_at, used_at FROM device_codes WHERE hash = ?1 AND grant_id = ?2 \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET \
                   app_actor = CASE WHEN installs.revoked_at IS NULL THEN installs.app_actor ELSE 0 END, \
                   scopes = CASE WHEN installs.revoked_at IS NULL THEN installs.scopes ELSE '[]' END, \
                   created_at = CASE WHEN installs.revoked_at IS NULL THEN installs.created_at ELSE excluded.created_at END, \
                   installed_by = CASE WHEN installs.revoked_at IS NULL THEN installs.installed_by ELSE excluded.installed_by END, \
                   updated_at = excluded.updated_at, revoked_at = NULL",
                won.clone(),
            ),
            Stmt::new(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, audience, auth_time, acr, amr, sid, source) \
                 SELECT grant_id, app_id, org_id, user_id, actor, scopes, used_at, COALESCE(audience, ?3), auth_time, acr, amr, sid, 'device_code' \
                 FROM device_codes WHERE hash = ?1 AND grant_id = ?2",
                params![p.hash, p.grant_id, p.default_audience],
            ),
            issue_stmt(issue_sql!("access"), p, p.access),
            issue_stmt(issue_sql!("refresh"), p, p.refresh),
            used_proof!("device_codes", "hash = ?1 AND grant_id = ?2", p.hash, p.grant_id, p.dpop),
            Stmt::new(
                concat!("SELECT ", device_row!(), " FROM device_codes WHERE hash = ?1"),
                params![p.hash],
            ),
            Stmt::new(
                concat!(
                    "UPDATE device_codes SET poll_interval = poll_interval + CASE WHEN used_at IS NULL AND expires_at > ?1 \
                       AND status <> 'denied' AND last_poll_at IS NOT NULL AND last_poll_at + poll_interval > ?1 THEN 5 ELSE 0 END, \
                       last_poll_at = ?1 \
                     WHERE hash = ?3 AND app_id = ?4 AND ",
                    client_ok!()
                ),
                bound,
            ),
        ];
        let mut results = self.db.batch(stmts).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let won = results.next().unwrap_or_default();
        let existed = results
            .next()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.get("existed").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        let redeemed = decode::<Redeemed>(won)?.into_iter().next().map(|mut r| {
            r.new_install = existed == 0;
            r
        });
        let row = decode::<DeviceRow>(results.nth(6).unwrap_or_default())?
            .into_iter()
            .next();
        Ok(Polled { app, redeemed, row })
    }
}

/// A token of a won redemption: the access token narrows nothing (the
/// request's resources are its audience), the refresh token the same.
fn issue_stmt(sql: &'static str, p: &Poll<'_>, t: &NewToken) -> Stmt {
    Stmt::new(
        sql,
        params![
            p.hash,
            p.grant_id,
            &t.hash,
            t.expires_at,
            p.default_audience,
            t.jkt.clone()
        ],
    )
}

impl<D: Driver> Store<D> {
    /// Turn a client's `device_authorization` switch on or off, with its
    /// audit record, in one batch (the back office's `/admin/v1/clients`).
    pub async fn set_device_authorization(
        &self,
        id: &str,
        on: bool,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<AppRow>, StoreError> {
        self.act_on_app(
            audit.stmt_if(
                audit_if!("EXISTS (SELECT 1 FROM apps WHERE id = ?8 AND status != 'deleted')"),
                params![id],
            ),
            Stmt::new(
                "UPDATE apps SET device_authorization = ?2, version = version + 1, updated_at = ?3 \
                 WHERE id = ?1 AND status != 'deleted' RETURNING *",
                params![id, i64::from(on), now],
            ),
        )
        .await
    }
}
