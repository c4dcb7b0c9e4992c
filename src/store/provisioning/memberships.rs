//! Provisioned memberships: a user's role in an org, with the last-owner rule.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvMembership {
    pub org_id: String,
    pub org: String,
    pub user_id: String,
    pub user: String,
    pub role: String,
}

/// A membership to create or change (our ids).
#[derive(Debug, Clone)]
pub struct MembershipUpsert {
    pub org_id: String,
    pub user_id: String,
    pub role: String,
}

/// SQL: a [`ProvMembership`]'s columns (`m`, `o`, `u`: the membership, its
/// org, its user), to be followed by a `WHERE`.
macro_rules! membership_select {
    () => {
        "SELECT m.org_id, o.external_id AS org, m.user_id, u.external_id AS user, m.role FROM memberships m \
         JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id "
    };
}

impl<D: Driver> Store<D> {
    pub async fn membership_of(&self, org_id: &str, user_id: &str) -> Result<Option<ProvMembership>, StoreError> {
        self.one(Stmt::new(
            concat!(membership_select!(), "WHERE m.org_id = ?1 AND m.user_id = ?2"),
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
            concat!(
                membership_select!(),
                "WHERE m.org_id = ?1 AND u.external_id IS NOT NULL AND (?2 IS NULL OR u.external_id > ?2) \
                 ORDER BY u.external_id LIMIT ?3"
            ),
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
            concat!(
                membership_select!(),
                "WHERE m.user_id = ?1 AND o.external_id IS NOT NULL AND (?2 IS NULL OR o.external_id > ?2) \
                 ORDER BY o.external_id LIMIT ?3"
            ),
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
        self.guarded_act(
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
        .await
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
        self.guarded_act(
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
        .await
    }
}
