//! Provisioned orgs: upsert by the platform's id, and deletion with everything
//! that hangs on the org, in one guarded batch.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProvOrg {
    pub id: String,
    pub external_id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
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

/// What deleting an org took with it.
#[derive(Debug, Clone, Default)]
pub struct OrgDeletion {
    /// Apps of other orgs whose install in the org was revoked.
    pub uninstalled_apps: Vec<String>,
    pub grants_revoked: usize,
    pub apps_deleted: usize,
}

impl<D: Driver> Store<D> {
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
                    // Its enterprise identity providers go with it (migration 0024).
                    Stmt::new(
                        concat!("DELETE FROM trusted_issuers WHERE org_id = ?2 AND ", guarded!()),
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
}
