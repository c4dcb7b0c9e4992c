//! Authorization codes (RFC 6749 §4.1): issued bound to client, redirect URI and PKCE
//! challenge, redeemed once in one batch that issues the tokens.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CodeRow {
    pub hash: String,
    pub app_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    pub scopes: String,
    pub redirect_uri: String,
    pub challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub grant_id: Option<String>,
    /// JSON array of the resources approved (RFC 8707); NULL before 0012.
    #[serde(default)]
    pub audience: Option<String>,
    /// OpenID Connect: the request's `nonce`, and the session's `auth_time`,
    /// `acr`, `amr` (JSON array) and `sid`, for the ID token (NULL before 0016).
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    /// `dpop_jkt` of the authorization request (RFC 9449 §10; NULL before 0020).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

/// What [`Store::insert_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStored {
    Stored,
    /// The user may no longer approve the app in that org (a role changed).
    NotApproved,
    /// The pushed request was spent (or expired) since it was read.
    PushedSpent,
}

pub struct Redemption<'a> {
    pub code_hash: &'a str,
    pub app_id: &'a str,
    pub redirect_uri: &'a str,
    /// S256 of the presented verifier; `None` when none was presented.
    pub challenge: Option<&'a str>,
    pub now: i64,
    pub grant_id: &'a str,
    pub access: &'a NewToken,
    pub refresh: Option<&'a NewToken>,
    /// Live token sets kept per key, the new one included (`MAX_LIVE_GRANTS`).
    pub max_live_grants: i64,
    /// The key is (app, org) whoever authorized (`LIVE_GRANTS_PER=org`),
    /// rather than (app, org, actor, user).
    pub live_grants_per_org: bool,
    /// A confidential client must present a verifier too (`PKCE_REQUIRED=all`):
    /// a code minted without a challenge (under an earlier `public` setting)
    /// is not redeemed without PKCE either.
    pub verifier_required: bool,
    /// `resource` at the token endpoint (JSON array): the access token's
    /// audience, which must be within the code's; `None` keeps the code's.
    pub audience: Option<&'a str>,
    /// The default audience (JSON array), for a code stored before 0012.
    pub default_audience: &'a str,
    /// The DPoP proof of the request, if any (`dpop_ok!`).
    pub dpop: Option<&'a DpopUse>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Redeemed {
    pub org_id: String,
    pub user_id: Option<String>,
    pub actor: String,
    pub scopes: String,
    /// The access token's audience (JSON array).
    pub audience: String,
    /// The app was not installed (live) in the org before this redemption.
    #[serde(default)]
    pub new_install: bool,
    /// OpenID Connect facts the code carried (see [`CodeRow`]).
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
}

/// The redeeming UPDATE of [`Store::redeem_code`], with the client named by
/// `$client` (?4, or the code's own `app_id` for the assertion grant) and
/// guarded by `$guard` (a [`client_ok!`]). Parameters: [`redeem_params`].
macro_rules! redeem_update {
    ($client:literal, $($guard:tt)*) => {
        concat!(
            "UPDATE codes SET used_at = ?1, grant_id = ?2 \
             WHERE hash = ?3 AND app_id = ",
            $client,
            " AND redirect_uri = ?5 AND challenge IS ?6 \
             AND used_at IS NULL AND expires_at > ?1 AND (?6 IS NOT NULL OR (?21 IS NOT NULL AND ?7 = 0)) \
             AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = codes.org_id AND m.user_id = codes.user_id \
               AND (codes.actor <> 'app' OR (m.role IN ('owner', 'admin') AND EXISTS (SELECT 1 FROM apps ba \
                 WHERE ba.id = codes.app_id AND (ba.bot_public = 1 OR ba.owner_org_id = codes.org_id))))) \
             AND (?8 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?8) r \
               WHERE r.value NOT IN (SELECT value FROM json_each(COALESCE(codes.audience, ?9))))) AND ",
            dpop_ok!("codes.dpop_jkt", "codes.app_id"),
            " AND ",
            $($guard)*,
            " RETURNING org_id, user_id, actor, scopes, COALESCE(?8, audience, ?9) AS audience, \
             nonce, auth_time, acr, amr, sid"
        )
    };
}

pub(super) fn redeem_params(r: &Redemption<'_>, guard: &ClientGuard) -> Vec<Value> {
    guard.bind(params![
        r.now,
        r.grant_id,
        r.code_hash,
        r.app_id,
        r.redirect_uri,
        r.challenge,
        i64::from(r.verifier_required),
        r.audience,
        r.default_audience,
        r.dpop.map(|d| d.jkt.clone()),
        r.dpop.map(|d| d.replay_key.clone())
    ])
}

impl<D: Driver> Store<D> {
    /// Store a code, only while its user may still approve it: a member of
    /// the org, and for the app actor an owner or admin, in the app's owner
    /// org unless its bot is public (Fluxer). Every path that issues a code
    /// (the consent POST, a prior consent, `prompt=none`) goes through here,
    /// so a role change between the reads and this write cannot slip a code
    /// through. Returns whether the code was stored. For a self-registered
    /// client (`self_registered`: DCR or CIMD, not a platform app) its
    /// `last_used_at` is set in the same batch (the sweep keeps clients that
    /// were used); a platform app's code is stored alone.
    pub async fn insert_code(&self, c: &CodeRow, self_registered: bool) -> Result<bool, StoreError> {
        Ok(self.insert_code_for(c, self_registered, None).await? == CodeStored::Stored)
    }

    /// [`Store::insert_code`] for the answer to `pushed`, the hash of a
    /// pushed request (RFC 9126) when there is one: the request is spent in
    /// the same batch and the code stored only by the caller that spent it,
    /// so one pushed request yields at most one code.
    pub async fn insert_code_for(
        &self,
        c: &CodeRow,
        self_registered: bool,
        pushed: Option<&str>,
    ) -> Result<CodeStored, StoreError> {
        let insert = Stmt::new(
            "INSERT INTO codes (hash, app_id, org_id, user_id, actor, scopes, redirect_uri, challenge, created_at, expires_at, audience, \
               nonce, auth_time, acr, amr, sid, dpop_jkt) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17 WHERE EXISTS (SELECT 1 FROM memberships m \
               WHERE m.org_id = ?3 AND m.user_id = ?4 AND (?5 <> 'app' OR (m.role IN ('owner', 'admin') \
               AND EXISTS (SELECT 1 FROM apps a WHERE a.id = ?2 AND (a.bot_public = 1 OR a.owner_org_id = ?3))))) \
             AND (?18 IS NULL OR EXISTS (SELECT 1 FROM pushed_requests p WHERE p.hash = ?18 AND p.used_by = ?1)) \
             RETURNING hash",
            params![
                &c.hash,
                &c.app_id,
                &c.org_id,
                c.user_id.clone(),
                &c.actor,
                &c.scopes,
                &c.redirect_uri,
                c.challenge.clone(),
                c.created_at,
                c.expires_at,
                c.audience.clone(),
                c.nonce.clone(),
                c.auth_time,
                c.acr.clone(),
                c.amr.clone(),
                c.sid.clone(),
                c.dpop_jkt.clone(),
                pushed
            ],
        );
        let mut stmts = Vec::new();
        if let Some(h) = pushed {
            stmts.push(super::pushed::spend_stmt(h, &c.hash, c.created_at));
        }
        let at = stmts.len();
        stmts.push(insert);
        if self_registered {
            stmts.push(Stmt::new(
                "UPDATE apps SET last_used_at = ?2 WHERE id = ?1 AND registration <> 'platform' \
                 AND EXISTS (SELECT 1 FROM codes WHERE hash = ?3)",
                params![&c.app_id, c.created_at, &c.hash],
            ));
        }
        let stored = self.db.batch(stmts).await?;
        if pushed.is_some() && stored.first().is_none_or(|rows| rows.is_empty()) {
            return Ok(CodeStored::PushedSpent);
        }
        Ok(match stored.get(at).is_some_and(|rows| !rows.is_empty()) {
            true => CodeStored::Stored,
            false => CodeStored::NotApproved,
        })
    }

    /// Consume a code and issue its tokens in one transaction. The code must
    /// be unused, unexpired and bound to this client, redirect URI and PKCE
    /// challenge (RFC 6749 §4.1.3, RFC 7636 §4.6; `challenge IS ?` also refuses
    /// a verifier for a code that had no challenge, RFC 9700 §2.1.1).
    /// Returns `None` if any condition fails; nothing is changed then.
    ///
    /// One round trip: the client's row comes first in the batch (for
    /// `client_auth::verify`), and the redeeming UPDATE also requires the
    /// client's credentials to hold ([`client_ok!`]) and a verifier (from a
    /// public client always, from a confidential one under `PKCE_REQUIRED=all`).
    /// The user who approved the code must still be a member of the org and,
    /// for the app actor, an owner or admin allowed to add the bot: a demotion
    /// between consent and exchange redeems nothing.
    pub async fn redeem_code(
        &self,
        r: &Redemption<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Redeemed>), StoreError> {
        let update = Stmt::new(redeem_update!("?4", client_ok!()), redeem_params(r, guard));
        self.redeem(r, guard.lookup(), update).await
    }

    /// The redemption batch after its first two statements: the client's row
    /// and the redeeming UPDATE (`redeem_update!`), which differ only in how
    /// the client is named (`store::assertion`).
    pub(super) async fn redeem(
        &self,
        r: &Redemption<'_>,
        lookup: Stmt,
        update: Stmt,
    ) -> Result<(Option<AppRow>, Option<Redeemed>), StoreError> {
        // Statements after the UPDATE select from the code row *this* call
        // marked (grant_id = ours), so they do nothing unless it won.
        let mut stmts = vec![
            lookup,
            update,
            // Was the app already installed in this org? (For the installed event.)
            Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM installs i JOIN codes c ON c.app_id = i.app_id AND c.org_id = i.org_id \
                 WHERE c.hash = ?1 AND c.grant_id = ?2 AND i.revoked_at IS NULL) AS existed",
                params![r.code_hash, r.grant_id],
            ),
            // At most `max_live_grants` live token sets per key, this one
            // included: the oldest beyond it are revoked (a user's devices
            // each keep theirs; FeatureOS's cap of 1 per org replaces). The key
            // is (app, org, actor, user), the app actor counting once per org,
            // or (app, org) for any grant when `live_grants_per_org`.
            Stmt::new(
                "UPDATE grants SET revoked_at = ?3 WHERE id IN (SELECT g.id FROM grants g \
                   JOIN codes c ON c.app_id = g.app_id AND c.org_id = g.org_id \
                   WHERE c.hash = ?1 AND c.grant_id = ?2 AND g.revoked_at IS NULL \
                   AND (?5 = 1 OR (g.source = 'authorization_code' AND c.actor = g.actor \
                     AND (c.actor = 'app' OR c.user_id IS g.user_id))) \
                   ORDER BY g.created_at DESC, g.rowid DESC LIMIT -1 OFFSET ?4 - 1)",
                params![
                    r.code_hash,
                    r.grant_id,
                    r.now,
                    r.max_live_grants.max(1),
                    i64::from(r.live_grants_per_org)
                ],
            ),
            Stmt::new(
                "INSERT INTO installs (app_id, org_id, app_actor, scopes, installed_by, created_at, updated_at) \
                 SELECT app_id, org_id, actor = 'app', CASE WHEN actor = 'app' THEN scopes ELSE '[]' END, user_id, used_at, used_at \
                 FROM codes WHERE hash = ?1 AND grant_id = ?2 \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET \
                   app_actor = CASE WHEN installs.revoked_at IS NULL THEN MAX(installs.app_actor, excluded.app_actor) ELSE excluded.app_actor END, \
                   scopes = CASE WHEN excluded.app_actor = 1 THEN excluded.scopes WHEN installs.revoked_at IS NULL THEN installs.scopes ELSE '[]' END, \
                   created_at = CASE WHEN installs.revoked_at IS NULL THEN installs.created_at ELSE excluded.created_at END, \
                   installed_by = CASE WHEN installs.revoked_at IS NULL THEN installs.installed_by ELSE excluded.installed_by END, \
                   updated_at = excluded.updated_at, revoked_at = NULL",
                params![r.code_hash, r.grant_id],
            ),
            Stmt::new(
                "INSERT INTO grants (id, app_id, org_id, user_id, actor, scopes, created_at, audience, auth_time, acr, amr, sid) \
                 SELECT grant_id, app_id, org_id, user_id, actor, scopes, used_at, COALESCE(audience, ?3), auth_time, acr, amr, sid \
                 FROM codes \
                 WHERE hash = ?1 AND grant_id = ?2",
                params![r.code_hash, r.grant_id, r.default_audience],
            ),
            Stmt::new(
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, audience, jkt) \
                 SELECT ?3, 'access', grant_id, scopes, used_at, ?4, COALESCE(?5, audience, ?6), ?7 FROM codes \
                 WHERE hash = ?1 AND grant_id = ?2",
                params![
                    r.code_hash,
                    r.grant_id,
                    &r.access.hash,
                    r.access.expires_at,
                    r.audience,
                    r.default_audience,
                    r.access.jkt.clone()
                ],
            ),
            used_proof!("codes", "hash = ?1 AND grant_id = ?2", r.code_hash, r.grant_id, r.dpop),
        ];
        if let Some(rt) = r.refresh {
            stmts.push(Stmt::new(
                // The refresh token keeps the code's whole audience: a
                // refresh may ask for any part of it (RFC 8707 §2.2).
                "INSERT INTO tokens (hash, kind, grant_id, scopes, created_at, expires_at, audience, jkt) \
                 SELECT ?3, 'refresh', grant_id, scopes, used_at, ?4, COALESCE(audience, ?5), ?6 FROM codes \
                 WHERE hash = ?1 AND grant_id = ?2",
                params![
                    r.code_hash,
                    r.grant_id,
                    &rt.hash,
                    rt.expires_at,
                    r.default_audience,
                    rt.jkt.clone()
                ],
            ));
        }
        let mut results = self.db.batch(stmts).await?.into_iter();
        let app = first_app(results.next().unwrap_or_default())?;
        let first = results.next().unwrap_or_default();
        let existed = results
            .next()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.get("existed").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        let redeemed = decode::<Redeemed>(first)?.into_iter().next().map(|mut r| {
            r.new_install = existed == 0;
            r
        });
        Ok((app, redeemed))
    }

    pub async fn code(&self, hash: &str) -> Result<Option<CodeRow>, StoreError> {
        self.one(Stmt::new("SELECT * FROM codes WHERE hash = ?1", params![hash]))
            .await
    }
}
