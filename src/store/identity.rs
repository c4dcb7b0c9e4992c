//! Users, sessions, memberships, roles, the scope catalogue, orgs and org API keys: who is acting.

use serde::Deserialize;

use super::*;
use crate::error::StoreError;
use crate::params;

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionUser {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// The session's id for OpenID Connect (`sid`): random, not the cookie.
    #[serde(default)]
    pub sid: Option<String>,
    /// When the user authenticated (OIDC `auth_time`).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// How (OIDC `acr`, and `amr` as a JSON array), when the sign-in said.
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Option<String>,
}

/// The columns of a [`SessionUser`], for `s` (sessions) joined with `u` (users).
macro_rules! session_user {
    () => {
        "u.id AS user_id, u.email, u.name, s.sid, COALESCE(s.auth_time, s.created_at) AS auth_time, s.acr, s.amr"
    };
}
pub(super) use session_user;

#[derive(Debug, Clone, Deserialize)]
pub struct MembershipRow {
    pub org_id: String,
    pub slug: String,
    pub org_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyRow {
    pub org_id: String,
    pub role: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
}

impl<D: Driver> Store<D> {
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        self.one(Stmt::new(
            "SELECT id, email, name, password_hash FROM users WHERE email = ?1",
            params![email],
        ))
        .await
    }

    pub async fn create_session(&self, hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<(), StoreError> {
        self.exec(Stmt::new(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at, sid, auth_time) \
             VALUES (?1, ?2, ?3, ?4, lower(hex(randomblob(16))), ?3)",
            params![hash, user_id, now, expires_at],
        ))
        .await
    }

    pub async fn session_user(&self, hash: &str, now: i64) -> Result<Option<SessionUser>, StoreError> {
        self.one(Stmt::new(
            concat!(
                "SELECT ",
                session_user!(),
                " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?1 AND s.expires_at > ?2"
            ),
            params![hash, now],
        ))
        .await
    }

    pub async fn memberships(&self, user_id: &str) -> Result<Vec<MembershipRow>, StoreError> {
        self.all(Stmt::new(
            "SELECT m.org_id, o.slug, o.name AS org_name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = ?1 ORDER BY o.name",
            params![user_id],
        ))
        .await
    }

    pub async fn api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.one(Stmt::new(
            "SELECT org_id, role, name FROM api_keys WHERE hash = ?1",
            params![hash],
        ))
        .await
    }

    pub async fn role_permissions(&self, role: &str) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct P {
            permission: String,
        }
        let rows: Vec<P> = self
            .all(Stmt::new(
                "SELECT permission FROM role_permissions WHERE role = ?1 ORDER BY permission",
                params![role],
            ))
            .await?;
        Ok(rows.into_iter().map(|p| p.permission).collect())
    }

    /// What a consent screen shows: the user's orgs, the app's owner org
    /// (`None` for a self-registered app) and the scope catalogue.
    pub async fn consent_facts(
        &self,
        user_id: &str,
        owner_org_id: Option<&str>,
    ) -> Result<(Vec<MembershipRow>, Option<OrgRow>, Vec<ScopeRow>), StoreError> {
        let orgs = self.memberships(user_id).await?;
        let owner = match owner_org_id {
            Some(id) => self.org(id).await?,
            None => None,
        };
        Ok((orgs, owner, self.scope_catalogue().await?))
    }

    pub async fn scope_catalogue(&self) -> Result<Vec<ScopeRow>, StoreError> {
        self.all(Stmt::new("SELECT name, description FROM scopes ORDER BY name", vec![]))
            .await
    }

    pub async fn org(&self, id: &str) -> Result<Option<OrgRow>, StoreError> {
        self.one(Stmt::new("SELECT id, slug, name FROM orgs WHERE id = ?1", params![id]))
            .await
    }
}
