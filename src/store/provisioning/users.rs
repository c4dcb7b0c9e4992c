//! Provisioned users: upsert by the platform's id, and deletion that ends their
//! sessions and grants in the same guarded batch.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;
use crate::store::{queue_logout_tokens, queued_ids, Ended};

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvUser {
    pub id: String,
    pub external_id: Option<String>,
    pub email: String,
    pub name: String,
    /// `''`: no password; the built-in password sign-in refuses the user.
    pub password_hash: String,
    pub created_at: i64,
    /// OpenID claims (migration 0017): released by `oidc::claims`.
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub email_verified: i64,
    /// When a released claim last changed (`created_at` until then).
    #[serde(default)]
    pub updated_at: i64,
}

/// The columns of a [`ProvUser`].
macro_rules! prov_user {
    () => {
        "SELECT id, external_id, email, name, password_hash, created_at, preferred_username, email_verified, \
         COALESCE(updated_at, created_at) AS updated_at FROM users "
    };
}

/// A user to create or update, by the platform's id. `id` is used only when
/// the user is new. `password_hash`: `None` keeps the current one (none for a
/// new user), `Some(None)` removes it, `Some(Some(h))` sets it
/// (`crypto::hash_password` format).
#[derive(Debug, Clone, Default)]
pub struct UserUpsert {
    pub id: String,
    pub external_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<Option<String>>,
    pub preferred_username: Option<String>,
    pub email_verified: bool,
    /// A released claim changes (or the user is new): `updated_at` moves.
    pub profile_changed: bool,
}

impl<D: Driver> Store<D> {
    pub async fn user_by_external_id(&self, external_id: &str) -> Result<Option<ProvUser>, StoreError> {
        self.one(Stmt::new(
            concat!(prov_user!(), "WHERE external_id = ?1"),
            params![external_id],
        ))
        .await
    }

    /// The user holding `email` (case-insensitive), if any.
    pub async fn email_holder(&self, email: &str) -> Result<Option<ProvUser>, StoreError> {
        self.one(Stmt::new(concat!(prov_user!(), "WHERE email = ?1"), params![email]))
            .await
    }

    pub async fn users_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<ProvUser>, StoreError> {
        self.all(Stmt::new(
            concat!(
                prov_user!(),
                "WHERE external_id IS NOT NULL AND (?1 IS NULL OR external_id > ?1) ORDER BY external_id LIMIT ?2"
            ),
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
                            "INSERT INTO users (id, external_id, email, name, password_hash, created_at, \
                               preferred_username, email_verified, updated_at) \
                             SELECT ?2, ?3, ?4, ?5, COALESCE(?7, ''), ?8, ?9, ?10, ?8 WHERE ",
                            guarded!(),
                            " ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO UPDATE SET \
                             email = excluded.email, name = excluded.name, \
                             password_hash = CASE WHEN ?6 THEN excluded.password_hash ELSE users.password_hash END, \
                             preferred_username = excluded.preferred_username, \
                             email_verified = excluded.email_verified, \
                             updated_at = CASE WHEN ?11 THEN ?8 ELSE users.updated_at END \
                             RETURNING id"
                        ),
                        params![
                            &g,
                            &u.id,
                            &u.external_id,
                            &u.email,
                            &u.name,
                            set_pw,
                            pw,
                            now,
                            u.preferred_username.clone(),
                            u.email_verified as i64,
                            u.profile_changed as i64
                        ],
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
    /// removal), after queueing a back-channel logout token to each client
    /// of a live grant of theirs (`issuer`: their `iss`, `None` for none; `super::logout`).
    /// The queued deliveries' ids; `None`: the user is gone, or is an org's
    /// last owner.
    pub async fn delete_user(
        &self,
        user_id: &str,
        issuer: Option<&str>,
        now: i64,
        note: &AuditNote,
    ) -> Result<Option<Vec<String>>, StoreError> {
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
                    // First: it reads the grants the next statements revoke.
                    queue_logout_tokens(Ended::User(user_id), Some(&g), issuer, now),
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
        Ok(out.map(|rows| rows.first().map(|r| queued_ids(r)).unwrap_or_default()))
    }
}
