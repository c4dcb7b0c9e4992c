//! Storage of the provisioning API (`crate::admin::provisioning`): the
//! platform's orgs, users, memberships, roles, scope catalogue and org API
//! keys, addressed by the platform's `external_id`.
//!
//! Every write is one D1 batch: a guard row (migration 0009, `batch_guards`)
//! is inserted only if the act's preconditions hold, every later statement runs
//! only if the guard row exists, the audit record is one of them, and the last
//! statement deletes the guard row and says whether it was there. A concurrent
//! change that breaks a precondition (the email was taken, the other owner was
//! demoted) turns the whole act into a no-op: `Ok(None)` / `Ok(false)`.
//!
//! An org's "owner" is a member whose role carries `org.admin`: an org that
//! has one keeps one (removal, demotion, user deletion and a role losing
//! `org.admin` are refused when they would leave it without).

use serde::Deserialize;

use super::{Driver, Row, Stmt, Store};
use crate::error::StoreError;
use crate::params;

/// Permissions that are not scopes: what the management API checks.
pub const PLATFORM_PERMISSIONS: &[&str] = &["oauth_app.manage", "org.admin"];

/// Who provisioning actions are recorded as.
pub const PLATFORM_ACTOR: &str = "platform_admin";

/// `audit_events.org_id` of actions that belong to no org (users, roles,
/// scopes). Our org ids are `org_…`, so it cannot name a real org.
pub const PLATFORM_AUDIT_ORG: &str = "_platform";

/// SQL: does a guard row of this batch (`?1`) exist?
macro_rules! guarded {
    () => {
        "EXISTS (SELECT 1 FROM batch_guards WHERE id = ?1)"
    };
}

/// SQL: `org` has an owner other than `user` (both SQL expressions).
macro_rules! owner_elsewhere {
    ($org:literal, $user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM memberships oe JOIN role_permissions oerp ON oerp.role = oe.role \
             AND oerp.permission = 'org.admin' WHERE oe.org_id = ",
            $org,
            " AND oe.user_id != ",
            $user,
            ")"
        )
    };
}

/// SQL: `user` is an owner of `org` and the only one.
macro_rules! last_owner {
    ($org:literal, $user:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM memberships lo JOIN role_permissions lorp ON lorp.role = lo.role \
             AND lorp.permission = 'org.admin' WHERE lo.org_id = ",
            $org,
            " AND lo.user_id = ",
            $user,
            ") AND NOT ",
            owner_elsewhere!($org, $user),
            ")"
        )
    };
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvOrg {
    pub id: String,
    pub external_id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvUser {
    pub id: String,
    pub external_id: Option<String>,
    pub email: String,
    pub name: String,
    /// `''`: no password; the built-in password sign-in refuses the user.
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvMembership {
    pub org_id: String,
    pub org: String,
    pub user_id: String,
    pub user: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvRole {
    pub name: String,
    pub description: String,
    /// Space-separated, sorted.
    pub permissions: Option<String>,
}

impl ProvRole {
    pub fn permission_list(&self) -> Vec<String> {
        self.permissions
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvScope {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvApiKey {
    pub org_id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvAudit {
    pub id: i64,
    pub org_id: String,
    pub at: i64,
    pub action: String,
    pub detail: String,
}

/// What a provisioning act records in the audit log (actor: the platform).
#[derive(Debug, Clone)]
pub struct AuditNote {
    /// `None`: a platform-wide act ([`PLATFORM_AUDIT_ORG`]).
    pub org_id: Option<String>,
    pub action: &'static str,
    pub detail: serde_json::Value,
}

/// An org to create or update, by the platform's id. `id` is used only when
/// the org is new.
#[derive(Debug, Clone)]
pub struct OrgUpsert {
    pub id: String,
    pub external_id: String,
    pub slug: String,
    pub name: String,
}

/// A user to create or update, by the platform's id. `id` is used only when
/// the user is new. `password_hash`: `None` keeps the current one (none for a
/// new user), `Some(None)` removes it, `Some(Some(h))` sets it
/// (`crypto::hash_password` format).
#[derive(Debug, Clone)]
pub struct UserUpsert {
    pub id: String,
    pub external_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<Option<String>>,
}

/// A membership to create or change (our ids).
#[derive(Debug, Clone)]
pub struct MembershipUpsert {
    pub org_id: String,
    pub user_id: String,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct RoleUpsert {
    pub name: String,
    pub description: String,
    /// Every permission of the role (replaces the current set).
    pub permissions: Vec<String>,
}

/// An org API key by (org, name). `hash`: SHA-256 of a new secret (required
/// to create one; replaces the secret of an existing key), or `None` to keep it.
#[derive(Debug, Clone)]
pub struct ApiKeyUpsert {
    pub org_id: String,
    pub name: String,
    pub role: String,
    pub hash: Option<String>,
    /// Create only: fail if a key of that name appeared meanwhile (a new
    /// secret shown to the caller must not silently replace another's).
    pub create: bool,
}

/// What deleting an org took with it.
#[derive(Debug, Clone, Default)]
pub struct OrgDeletion {
    /// Apps of other orgs whose install in the org was revoked.
    pub uninstalled_apps: Vec<String>,
    pub grants_revoked: usize,
    pub apps_deleted: usize,
}

fn audit_stmt(g: &str, note: &AuditNote, now: i64) -> Stmt {
    Stmt::new(
        concat!(
            "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) \
             SELECT ?2, ?3, 'platform', ?4, NULL, ?5, ?6 WHERE ",
            guarded!()
        ),
        params![
            g,
            note.org_id.clone().unwrap_or_else(|| PLATFORM_AUDIT_ORG.to_string()),
            now,
            PLATFORM_ACTOR,
            note.action,
            note.detail.to_string()
        ],
    )
}

fn guard_id() -> String {
    crate::crypto::new_id("bg_")
}

fn texts(rows: Vec<Row>, col: &str) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.get(col).and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

impl<D: Driver> Store<D> {
    /// Run `guard` (an `INSERT INTO batch_guards … WHERE <preconditions>`
    /// with the guard id at ?1), then `body` (each statement conditioned on
    /// [`guarded!`]), then drop the guard. `None`: a precondition failed and
    /// nothing changed.
    async fn guarded_batch(&self, g: &str, guard: Stmt, body: Vec<Stmt>) -> Result<Option<Vec<Vec<Row>>>, StoreError> {
        let mut stmts = Vec::with_capacity(body.len() + 2);
        stmts.push(guard);
        stmts.extend(body);
        stmts.push(Stmt::new(
            "DELETE FROM batch_guards WHERE id = ?1 RETURNING id",
            params![g],
        ));
        let mut out = self.db.batch(stmts).await?;
        let held = out.pop().is_some_and(|rows| !rows.is_empty());
        if !held {
            return Ok(None);
        }
        out.remove(0);
        Ok(Some(out))
    }

    // ---- orgs -------------------------------------------------------------

    pub async fn org_by_external_id(&self, external_id: &str) -> Result<Option<ProvOrg>, StoreError> {
        self.one(Stmt::new(
            "SELECT id, external_id, slug, name, created_at FROM orgs WHERE external_id = ?1",
            params![external_id],
        ))
        .await
    }

    /// The platform id of the org holding `slug` (`Some(None)`: an org made
    /// outside provisioning).
    pub async fn slug_holder(&self, slug: &str) -> Result<Option<Option<String>>, StoreError> {
        #[derive(Deserialize)]
        struct H {
            external_id: Option<String>,
        }
        let h: Option<H> = self
            .one(Stmt::new("SELECT external_id FROM orgs WHERE slug = ?1", params![slug]))
            .await?;
        Ok(h.map(|h| h.external_id))
    }

    pub async fn orgs_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvOrg>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, external_id, slug, name, created_at FROM orgs WHERE external_id IS NOT NULL \
             AND (?1 IS NULL OR external_id > ?1) ORDER BY external_id LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// Create or update an org. `None`: the slug belongs to another org.
    pub async fn upsert_org(&self, o: &OrgUpsert, now: i64, note: &AuditNote) -> Result<Option<String>, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE NOT EXISTS \
                     (SELECT 1 FROM orgs WHERE slug = ?2 AND external_id IS NOT ?3)",
                    params![&g, &o.slug, &o.external_id],
                ),
                vec![
                    Stmt::new(
                        concat!(
                            "INSERT INTO orgs (id, external_id, slug, name, created_at) SELECT ?2, ?3, ?4, ?5, ?6 WHERE ",
                            guarded!(),
                            " ON CONFLICT (external_id) WHERE external_id IS NOT NULL \
                             DO UPDATE SET slug = excluded.slug, name = excluded.name RETURNING id"
                        ),
                        params![&g, &o.id, &o.external_id, &o.slug, &o.name, now],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.and_then(|mut r| texts(r.remove(0), "id").into_iter().next()))
    }

    /// Delete an org and everything that hangs on it, in one batch: every
    /// grant in it (so every token), installs of other apps in it (they are
    /// told, see `uninstalled_apps`), consents, unused codes, memberships, API
    /// keys; and the apps it owns, everywhere (nobody is left to manage,
    /// rotate or answer for them): their grants and installs in every org are
    /// revoked and their rows deleted. Audit rows stay (the history).
    pub async fn delete_org(
        &self,
        org_id: &str,
        now: i64,
        note: &AuditNote,
    ) -> Result<Option<OrgDeletion>, StoreError> {
        let g = guard_id();
        let p = || params![&g, org_id, now];
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?2)",
                    params![&g, org_id],
                ),
                vec![
                    audit_stmt(&g, note, now),
                    Stmt::new(
                        concat!(
                            "UPDATE grants SET revoked_at = ?3 WHERE revoked_at IS NULL AND (org_id = ?2 OR app_id IN \
                             (SELECT id FROM apps WHERE owner_org_id = ?2)) AND ",
                            guarded!(),
                            " RETURNING id"
                        ),
                        p(),
                    ),
                    Stmt::new(
                        concat!(
                            "UPDATE installs SET revoked_at = ?3 WHERE revoked_at IS NULL AND org_id = ?2 \
                             AND app_id NOT IN (SELECT id FROM apps WHERE owner_org_id = ?2) AND ",
                            guarded!(),
                            " RETURNING app_id"
                        ),
                        p(),
                    ),
                    Stmt::new(
                        concat!(
                            "UPDATE installs SET revoked_at = ?3 WHERE revoked_at IS NULL \
                             AND app_id IN (SELECT id FROM apps WHERE owner_org_id = ?2) AND ",
                            guarded!()
                        ),
                        p(),
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM consents WHERE (org_id = ?2 OR app_id IN (SELECT id FROM apps WHERE owner_org_id = ?2)) AND ",
                            guarded!()
                        ),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM codes WHERE used_at IS NULL AND (org_id = ?2 OR app_id IN \
                             (SELECT id FROM apps WHERE owner_org_id = ?2)) AND ",
                            guarded!()
                        ),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM webhook_subscriptions WHERE app_id IN (SELECT id FROM apps WHERE owner_org_id = ?2) AND ",
                            guarded!()
                        ),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM api_keys WHERE org_id = ?2 AND ", guarded!()),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM memberships WHERE org_id = ?2 AND ", guarded!()),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM apps WHERE owner_org_id = ?2 AND ", guarded!(), " RETURNING id"),
                        params![&g, org_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM orgs WHERE id = ?2 AND ", guarded!()),
                        params![&g, org_id],
                    ),
                ],
            )
            .await?;
        Ok(out.map(|mut r| {
            let mut uninstalled = texts(std::mem::take(&mut r[2]), "app_id");
            uninstalled.sort();
            uninstalled.dedup();
            OrgDeletion {
                grants_revoked: r[1].len(),
                uninstalled_apps: uninstalled,
                apps_deleted: r[9].len(),
            }
        }))
    }

    // ---- users ------------------------------------------------------------

    pub async fn user_by_external_id(&self, external_id: &str) -> Result<Option<ProvUser>, StoreError> {
        self.one(Stmt::new(
            "SELECT id, external_id, email, name, password_hash, created_at FROM users WHERE external_id = ?1",
            params![external_id],
        ))
        .await
    }

    /// The user holding `email` (case-insensitive), if any.
    pub async fn email_holder(&self, email: &str) -> Result<Option<ProvUser>, StoreError> {
        self.one(Stmt::new(
            "SELECT id, external_id, email, name, password_hash, created_at FROM users WHERE email = ?1",
            params![email],
        ))
        .await
    }

    pub async fn users_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvUser>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, external_id, email, name, password_hash, created_at FROM users WHERE external_id IS NOT NULL \
             AND (?1 IS NULL OR external_id > ?1) ORDER BY external_id LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// Create or update a user by the platform's id. `None`: the email
    /// belongs to another user (nothing changed). `Some(id)`: our user id.
    pub async fn upsert_user(&self, u: &UserUpsert, now: i64, note: &AuditNote) -> Result<Option<String>, StoreError> {
        let g = guard_id();
        let (set_pw, pw) = match &u.password_hash {
            None => (0, None),
            Some(h) => (1, h.clone()),
        };
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE NOT EXISTS \
                     (SELECT 1 FROM users WHERE email = ?2 AND external_id IS NOT ?3)",
                    params![&g, &u.email, &u.external_id],
                ),
                vec![
                    Stmt::new(
                        concat!(
                            "INSERT INTO users (id, external_id, email, name, password_hash, created_at) \
                             SELECT ?2, ?3, ?4, ?5, COALESCE(?7, ''), ?8 WHERE ",
                            guarded!(),
                            " ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO UPDATE SET \
                             email = excluded.email, name = excluded.name, \
                             password_hash = CASE WHEN ?6 THEN excluded.password_hash ELSE users.password_hash END \
                             RETURNING id"
                        ),
                        params![&g, &u.id, &u.external_id, &u.email, &u.name, set_pw, pw, now],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.and_then(|mut r| texts(r.remove(0), "id").into_iter().next()))
    }

    /// Orgs (slugs) where the user is the last owner.
    pub async fn orgs_only_owned_by(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                concat!(
                    "SELECT o.slug FROM memberships um JOIN orgs o ON o.id = um.org_id WHERE um.user_id = ?1 AND ",
                    last_owner!("um.org_id", "?1"),
                    " ORDER BY o.slug"
                ),
                params![user_id],
            ))
            .await?;
        Ok(texts(rows, "slug"))
    }

    /// Delete a user and everything that hangs on them, in one batch: their
    /// sessions, every grant they authorized (so every token), consents,
    /// unused codes and memberships (each org's audit log records the
    /// removal). `false`: the user is gone, or is an org's last owner.
    pub async fn delete_user(&self, user_id: &str, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    concat!(
                        "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2) \
                         AND NOT EXISTS (SELECT 1 FROM memberships um WHERE um.user_id = ?2 AND ",
                        last_owner!("um.org_id", "?2"),
                        ")"
                    ),
                    params![&g, user_id],
                ),
                vec![
                    audit_stmt(&g, note, now),
                    Stmt::new(
                        concat!(
                            "INSERT INTO audit_events (org_id, at, actor_type, actor_id, app_id, action, detail) \
                             SELECT m.org_id, ?3, 'platform', ?4, NULL, 'membership.deleted', \
                             json_object('user_id', m.user_id, 'role', m.role, 'reason', 'user deleted') \
                             FROM memberships m WHERE m.user_id = ?2 AND ",
                            guarded!()
                        ),
                        params![&g, user_id, now, PLATFORM_ACTOR],
                    ),
                    Stmt::new(
                        concat!(
                            "UPDATE grants SET revoked_at = ?3 WHERE user_id = ?2 AND revoked_at IS NULL AND ",
                            guarded!()
                        ),
                        params![&g, user_id, now],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM consents WHERE user_id = ?2 AND ", guarded!()),
                        params![&g, user_id],
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM codes WHERE user_id = ?2 AND used_at IS NULL AND ",
                            guarded!()
                        ),
                        params![&g, user_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM sessions WHERE user_id = ?2 AND ", guarded!()),
                        params![&g, user_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM signin_devices WHERE user_id = ?2 AND ", guarded!()),
                        params![&g, user_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM memberships WHERE user_id = ?2 AND ", guarded!()),
                        params![&g, user_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM users WHERE id = ?2 AND ", guarded!()),
                        params![&g, user_id],
                    ),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    // ---- memberships --------------------------------------------------------

    pub async fn membership_of(&self, org_id: &str, user_id: &str) -> Result<Option<ProvMembership>, StoreError> {
        self.one(Stmt::new(
            "SELECT m.org_id, o.external_id AS org, m.user_id, u.external_id AS user, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 AND m.user_id = ?2",
            params![org_id, user_id],
        ))
        .await
    }

    /// Members of an org that the platform knows (by user `external_id`).
    pub async fn members_page(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProvMembership>, StoreError> {
        self.all(Stmt::new(
            "SELECT m.org_id, o.external_id AS org, m.user_id, u.external_id AS user, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = ?1 AND u.external_id IS NOT NULL AND (?2 IS NULL OR u.external_id > ?2) \
             ORDER BY u.external_id LIMIT ?3",
            params![org_id, after, limit],
        ))
        .await
    }

    /// A user's memberships in orgs the platform knows (by org `external_id`).
    pub async fn user_memberships_page(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProvMembership>, StoreError> {
        self.all(Stmt::new(
            "SELECT m.org_id, o.external_id AS org, m.user_id, u.external_id AS user, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id \
             WHERE m.user_id = ?1 AND o.external_id IS NOT NULL AND (?2 IS NULL OR o.external_id > ?2) \
             ORDER BY o.external_id LIMIT ?3",
            params![user_id, after, limit],
        ))
        .await
    }

    /// Is the user the org's last owner?
    pub async fn is_last_owner(&self, org_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                concat!("SELECT 1 AS y WHERE ", last_owner!("?1", "?2")),
                params![org_id, user_id],
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    /// Create a membership or change its role. The live-role rule needs
    /// nothing more: the bearer check joins the current role. `false`: the
    /// org, user or role is gone, or this would demote the org's last owner.
    pub async fn upsert_membership(
        &self,
        m: &MembershipUpsert,
        now: i64,
        note: &AuditNote,
    ) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    concat!(
                        "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?2) \
                         AND EXISTS (SELECT 1 FROM users WHERE id = ?3) AND EXISTS (SELECT 1 FROM roles WHERE name = ?4) \
                         AND NOT (EXISTS (SELECT 1 FROM role_permissions WHERE role = (SELECT role FROM memberships WHERE org_id = ?2 AND user_id = ?3) \
                         AND permission = 'org.admin') \
                         AND NOT EXISTS (SELECT 1 FROM role_permissions WHERE role = ?4 AND permission = 'org.admin') AND NOT ",
                        owner_elsewhere!("?2", "?3"),
                        ")"
                    ),
                    params![&g, &m.org_id, &m.user_id, &m.role],
                ),
                vec![
                    Stmt::new(
                        concat!(
                            "INSERT INTO memberships (org_id, user_id, role) SELECT ?2, ?3, ?4 WHERE ",
                            guarded!(),
                            " ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role"
                        ),
                        params![&g, &m.org_id, &m.user_id, &m.role],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    /// Remove a user from an org: their grants in the org are revoked (a
    /// later re-invite must not revive old tokens), their consents and unused
    /// codes there deleted. `false`: no such membership, or the last owner.
    pub async fn delete_membership(
        &self,
        org_id: &str,
        user_id: &str,
        now: i64,
        note: &AuditNote,
    ) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    concat!(
                        "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM memberships WHERE org_id = ?2 AND user_id = ?3) \
                         AND NOT ",
                        last_owner!("?2", "?3")
                    ),
                    params![&g, org_id, user_id],
                ),
                vec![
                    audit_stmt(&g, note, now),
                    Stmt::new(
                        concat!(
                            "UPDATE grants SET revoked_at = ?4 WHERE org_id = ?2 AND user_id = ?3 AND revoked_at IS NULL AND ",
                            guarded!()
                        ),
                        params![&g, org_id, user_id, now],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM consents WHERE org_id = ?2 AND user_id = ?3 AND ", guarded!()),
                        params![&g, org_id, user_id],
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM codes WHERE org_id = ?2 AND user_id = ?3 AND used_at IS NULL AND ",
                            guarded!()
                        ),
                        params![&g, org_id, user_id],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM memberships WHERE org_id = ?2 AND user_id = ?3 AND ", guarded!()),
                        params![&g, org_id, user_id],
                    ),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    // ---- roles --------------------------------------------------------------

    pub async fn role(&self, name: &str) -> Result<Option<ProvRole>, StoreError> {
        self.one(Stmt::new(
            "SELECT r.name, r.description, (SELECT group_concat(permission, ' ') FROM \
             (SELECT permission FROM role_permissions WHERE role = r.name ORDER BY permission)) AS permissions \
             FROM roles r WHERE r.name = ?1",
            params![name],
        ))
        .await
    }

    pub async fn roles_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvRole>, StoreError> {
        self.all(Stmt::new(
            "SELECT r.name, r.description, (SELECT group_concat(permission, ' ') FROM \
             (SELECT permission FROM role_permissions WHERE role = r.name ORDER BY permission)) AS permissions \
             FROM roles r WHERE (?1 IS NULL OR r.name > ?1) ORDER BY r.name LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// How many memberships and API keys use a role.
    pub async fn role_usage(&self, name: &str) -> Result<(i64, i64), StoreError> {
        #[derive(Deserialize)]
        struct U {
            members: i64,
            keys: i64,
        }
        let u: Option<U> = self
            .one(Stmt::new(
                "SELECT (SELECT count(*) FROM memberships WHERE role = ?1) AS members, \
                 (SELECT count(*) FROM api_keys WHERE role = ?1) AS keys",
                params![name],
            ))
            .await?;
        Ok(u.map(|u| (u.members, u.keys)).unwrap_or((0, 0)))
    }

    /// Slugs of the orgs whose only owners hold `role`: taking `org.admin`
    /// from the role would leave them without an owner.
    pub async fn orgs_owned_only_through(&self, role: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT DISTINCT o.slug FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.role = ?1 \
                 AND EXISTS (SELECT 1 FROM role_permissions WHERE role = ?1 AND permission = 'org.admin') \
                 AND NOT EXISTS (SELECT 1 FROM memberships oe JOIN role_permissions oerp ON oerp.role = oe.role \
                 AND oerp.permission = 'org.admin' WHERE oe.org_id = m.org_id AND oe.role != ?1) ORDER BY o.slug",
                params![role],
            ))
            .await?;
        Ok(texts(rows, "slug"))
    }

    /// Names among `names` that are not in the scope catalogue.
    pub async fn unknown_scopes(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let json = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT DISTINCT j.value AS name FROM json_each(?1) j WHERE j.value NOT IN (SELECT name FROM scopes) ORDER BY 1",
                params![json],
            ))
            .await?;
        Ok(texts(rows, "name"))
    }

    /// Create a role or replace its description and permissions. Every
    /// permission must be a catalogue scope or a platform permission when the
    /// batch runs; a role losing `org.admin` must not leave an org without an
    /// owner. `false`: one of these failed, nothing changed.
    pub async fn put_role(&self, r: &RoleUpsert, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let perms = serde_json::to_string(&r.permissions).unwrap_or_else(|_| "[]".into());
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM json_each(?3) j \
                     WHERE j.value NOT IN (SELECT name FROM scopes) AND j.value NOT IN ('oauth_app.manage', 'org.admin')) \
                     AND NOT (EXISTS (SELECT 1 FROM role_permissions WHERE role = ?2 AND permission = 'org.admin') \
                     AND NOT EXISTS (SELECT 1 FROM json_each(?3) WHERE value = 'org.admin') \
                     AND EXISTS (SELECT 1 FROM memberships m WHERE m.role = ?2 AND NOT EXISTS (SELECT 1 FROM memberships oe \
                     JOIN role_permissions oerp ON oerp.role = oe.role AND oerp.permission = 'org.admin' \
                     WHERE oe.org_id = m.org_id AND oe.role != ?2)))",
                    params![&g, &r.name, &perms],
                ),
                vec![
                    Stmt::new(
                        concat!(
                            "INSERT INTO roles (name, description, created_at) SELECT ?2, ?3, ?4 WHERE ",
                            guarded!(),
                            " ON CONFLICT (name) DO UPDATE SET description = excluded.description"
                        ),
                        params![&g, &r.name, &r.description, now],
                    ),
                    Stmt::new(
                        concat!(
                            "DELETE FROM role_permissions WHERE role = ?2 AND permission NOT IN (SELECT value FROM json_each(?3)) AND ",
                            guarded!()
                        ),
                        params![&g, &r.name, &perms],
                    ),
                    Stmt::new(
                        concat!(
                            "INSERT OR IGNORE INTO role_permissions (role, permission) SELECT ?2, value FROM json_each(?3) WHERE ",
                            guarded!()
                        ),
                        params![&g, &r.name, &perms],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    /// Delete a role no membership or API key uses. `false`: in use or gone.
    pub async fn delete_role(&self, name: &str, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM roles WHERE name = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM memberships WHERE role = ?2) AND NOT EXISTS (SELECT 1 FROM api_keys WHERE role = ?2)",
                    params![&g, name],
                ),
                vec![
                    Stmt::new(
                        concat!("DELETE FROM role_permissions WHERE role = ?2 AND ", guarded!()),
                        params![&g, name],
                    ),
                    Stmt::new(
                        concat!("DELETE FROM roles WHERE name = ?2 AND ", guarded!()),
                        params![&g, name],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    // ---- the scope catalogue ------------------------------------------------

    pub async fn scope(&self, name: &str) -> Result<Option<ProvScope>, StoreError> {
        self.one(Stmt::new(
            "SELECT name, description FROM scopes WHERE name = ?1",
            params![name],
        ))
        .await
    }

    pub async fn scopes_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvScope>, StoreError> {
        self.all(Stmt::new(
            "SELECT name, description FROM scopes WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2",
            params![after, limit],
        ))
        .await
    }

    /// Roles that grant the scope and live apps that declare it.
    pub async fn scope_usage(&self, name: &str) -> Result<(Vec<String>, i64), StoreError> {
        let mut out = self
            .db
            .batch(vec![
                Stmt::new(
                    "SELECT role FROM role_permissions WHERE permission = ?1 ORDER BY role",
                    params![name],
                ),
                Stmt::new(
                    "SELECT count(*) AS n FROM apps a WHERE a.status != 'deleted' \
                     AND EXISTS (SELECT 1 FROM json_each(a.scopes) j WHERE j.value = ?1)",
                    params![name],
                ),
            ])
            .await?
            .into_iter();
        let roles = texts(out.next().unwrap_or_default(), "role");
        let apps = out
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(|r| r.get("n").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        Ok((roles, apps))
    }

    pub async fn put_scope(&self, s: &ProvScope, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new("INSERT INTO batch_guards (id) VALUES (?1)", params![&g]),
                vec![
                    Stmt::new(
                        concat!(
                            "INSERT INTO scopes (name, description) SELECT ?2, ?3 WHERE ",
                            guarded!(),
                            " ON CONFLICT (name) DO UPDATE SET description = excluded.description"
                        ),
                        params![&g, &s.name, &s.description],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    /// Delete a scope no role grants and no live app declares.
    pub async fn delete_scope(&self, name: &str, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM scopes WHERE name = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM role_permissions WHERE permission = ?2) \
                     AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.status != 'deleted' \
                     AND EXISTS (SELECT 1 FROM json_each(a.scopes) j WHERE j.value = ?2))",
                    params![&g, name],
                ),
                vec![
                    Stmt::new(
                        concat!("DELETE FROM scopes WHERE name = ?2 AND ", guarded!()),
                        params![&g, name],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    // ---- org API keys -------------------------------------------------------

    pub async fn api_key_named(&self, org_id: &str, name: &str) -> Result<Option<ProvApiKey>, StoreError> {
        self.one(Stmt::new(
            "SELECT org_id, name, role, created_at FROM api_keys WHERE org_id = ?1 AND name = ?2",
            params![org_id, name],
        ))
        .await
    }

    /// Is this key hash held by a key other than (org, name)?
    pub async fn api_key_hash_taken(&self, hash: &str, org_id: &str, name: &str) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT 1 AS y FROM api_keys WHERE hash = ?1 AND NOT (org_id = ?2 AND name = ?3)",
                params![hash, org_id, name],
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    /// Does the key (org, name) currently have this hash?
    pub async fn api_key_has_hash(&self, hash: &str, org_id: &str, name: &str) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(Stmt::new(
                "SELECT 1 AS y FROM api_keys WHERE hash = ?1 AND org_id = ?2 AND name = ?3",
                params![hash, org_id, name],
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn api_keys_page(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProvApiKey>, StoreError> {
        self.all(Stmt::new(
            "SELECT org_id, name, role, created_at FROM api_keys WHERE org_id = ?1 AND (?2 IS NULL OR name > ?2) \
             ORDER BY name LIMIT ?3",
            params![org_id, after, limit],
        ))
        .await
    }

    /// Create the key (org, name) or change its role / replace its secret.
    /// A name is unique in its org, a secret across keys. `false`: the org or
    /// role is gone, the secret is another key's, or a new key has no secret.
    pub async fn put_api_key(&self, k: &ApiKeyUpsert, now: i64, note: &AuditNote) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?2) \
                     AND EXISTS (SELECT 1 FROM roles WHERE name = ?4) \
                     AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM api_keys WHERE hash = ?5 AND NOT (org_id = ?2 AND name = ?3))) \
                     AND (?5 IS NOT NULL OR EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3)) \
                     AND (?6 = 0 OR NOT EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3))",
                    params![&g, &k.org_id, &k.name, &k.role, k.hash.clone(), i64::from(k.create)],
                ),
                vec![
                    Stmt::new(
                        concat!(
                            "UPDATE api_keys SET role = ?4, hash = COALESCE(?5, hash) WHERE org_id = ?2 AND name = ?3 AND ",
                            guarded!()
                        ),
                        params![&g, &k.org_id, &k.name, &k.role, k.hash.clone()],
                    ),
                    Stmt::new(
                        concat!(
                            "INSERT INTO api_keys (hash, org_id, name, role, created_at) SELECT ?5, ?2, ?3, ?4, ?6 \
                             WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3) AND ",
                            guarded!()
                        ),
                        params![&g, &k.org_id, &k.name, &k.role, k.hash.clone(), now],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    /// Revoke (delete) an org API key: the next call with it gets 401.
    pub async fn delete_api_key(
        &self,
        org_id: &str,
        name: &str,
        now: i64,
        note: &AuditNote,
    ) -> Result<bool, StoreError> {
        let g = guard_id();
        let out = self
            .guarded_batch(
                &g,
                Stmt::new(
                    "INSERT INTO batch_guards (id) SELECT ?1 WHERE EXISTS (SELECT 1 FROM api_keys WHERE org_id = ?2 AND name = ?3)",
                    params![&g, org_id, name],
                ),
                vec![
                    Stmt::new(
                        concat!("DELETE FROM api_keys WHERE org_id = ?2 AND name = ?3 AND ", guarded!()),
                        params![&g, org_id, name],
                    ),
                    audit_stmt(&g, note, now),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    // ---- the platform's audit trail -----------------------------------------

    /// Provisioning actions, newest first.
    pub async fn platform_audit_page(&self, before: Option<i64>, limit: i64) -> Result<Vec<ProvAudit>, StoreError> {
        self.all(Stmt::new(
            "SELECT id, org_id, at, action, detail FROM audit_events WHERE actor_type = 'platform' \
             AND (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
            params![before, limit],
        ))
        .await
    }
}
