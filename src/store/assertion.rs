//! Azure DevOps's assertion form: redeem and rotate for the client that owns the code or token; bearer self-revocation.

use super::*;
use crate::error::StoreError;
use crate::params;

/// The client's row for a request that names no client: the owner of the
/// code (or refresh token) whose hash is ?1, with its failures from source ?3
/// since ?2 (the key as `client_auth::rate_key` builds it).
macro_rules! owner_lookup {
    ($owner:literal) => {
        concat!(
            "SELECT a.*, COALESCE((SELECT r.count FROM rate_limits r WHERE r.key = 'client:' || a.id || ':' || ?3 \
             AND r.window_start > ?2), 0) AS auth_failures FROM apps a WHERE a.id = (",
            $owner,
            ")"
        )
    };
}

/// A guard for a request that names no client: `app_id` is left empty (the
/// SQL names the client by the row it acts on) and `rate_key` holds the
/// *source*, from which the SQL builds the client's failure key.
pub fn owner_guard(secret_hash: String, now: i64, since: i64, max_failures: i64, source: &str) -> ClientGuard {
    ClientGuard {
        key_proven: false,
        app_id: String::new(),
        secret_hash: Some(secret_hash),
        now,
        since,
        max_failures,
        rate_key: source.to_string(),
    }
}

impl<D: Driver> Store<D> {
    /// [`Store::redeem_code`] for the client the code was issued to,
    /// authenticated (by the assertion, a secret) in the same batch: one
    /// round trip. `r.app_id` is ignored. The client's row is `None` when no
    /// code has this hash.
    pub async fn redeem_code_by_assertion(
        &self,
        r: &Redemption<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Redeemed>), StoreError> {
        let lookup = Stmt::new(
            owner_lookup!("SELECT app_id FROM codes WHERE hash = ?1"),
            params![r.code_hash, guard.since, &guard.rate_key],
        );
        let update = Stmt::new(
            redeem_update!(
                "codes.app_id",
                client_ok!("codes.app_id", "'client:' || codes.app_id || ':' || ?25")
            ),
            redeem_params(r, guard),
        );
        self.redeem(r, lookup, update).await
    }

    /// [`Store::rotate_refresh`] for the client the refresh token was issued
    /// to, authenticated by the assertion in the same batch. `r.app_id` is
    /// ignored.
    pub async fn rotate_refresh_by_assertion(
        &self,
        r: &Rotation<'_>,
        guard: &ClientGuard,
    ) -> Result<(Option<AppRow>, Option<Rotated>), StoreError> {
        let lookup = Stmt::new(
            owner_lookup!(
                "SELECT g.app_id FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?1 AND t.kind = 'refresh'"
            ),
            params![r.old_hash, guard.since, &guard.rate_key],
        );
        let update = Stmt::new(
            rotate_update!(
                "g.app_id",
                client_ok!(
                    "(SELECT app_id FROM grants WHERE id = tokens.grant_id)",
                    "'client:' || (SELECT app_id FROM grants WHERE id = tokens.grant_id) || ':' || ?25"
                )
            ),
            rotate_params(r, guard),
        );
        self.rotate(r, lookup, update).await
    }

    /// A bearer revoking itself (possession is the proof, no client
    /// credentials): an access token ends only itself, a refresh token its
    /// grant (RFC 7009 §2.1). One statement; an unknown hash touches nothing.
    pub async fn revoke_by_bearer(&self, hash: &str, kind: TokenKind, now: i64) -> Result<(), StoreError> {
        self.exec(match kind {
            TokenKind::Access => Stmt::new(
                "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND kind = 'access' AND revoked_at IS NULL",
                params![hash, now],
            ),
            TokenKind::Refresh => Stmt::new(
                "UPDATE grants SET revoked_at = ?2 WHERE revoked_at IS NULL \
                 AND id = (SELECT grant_id FROM tokens WHERE hash = ?1 AND kind = 'refresh')",
                params![hash, now],
            ),
        })
        .await
    }
}
