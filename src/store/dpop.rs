//! DPoP's conditions on the acts that issue tokens (`dpop_ok!`) and the
//! record of used proofs (migration 0020): one round trip, as before.

/// The DPoP half of a guarded issuing statement: a key the code or refresh
/// token is bound to (`$bound`, a column) must be the proof's (?10, NULL
/// without a proof); a client whose metadata says `dpop_bound_access_tokens`
/// (`$app`, an SQL expression naming it) must send one; and the proof's
/// replay key (?11) must not be among the used ones.
macro_rules! dpop_ok {
    ($bound:literal, $app:literal) => {
        concat!(
            "(",
            $bound,
            " IS NULL OR ",
            $bound,
            " = ?10) AND (?10 IS NOT NULL OR NOT EXISTS (SELECT 1 FROM apps da WHERE da.id = ",
            $app,
            " AND da.dpop_bound_access_tokens = 1)) \
             AND (?11 IS NULL OR NOT EXISTS (SELECT 1 FROM dpop_jtis WHERE hash = ?11))"
        )
    };
}

/// A proof presented at the token endpoint, as the issuing batch uses it.
#[derive(Debug, Clone, Default)]
pub struct DpopUse {
    /// The key's thumbprint: the access token's `jkt`.
    pub jkt: String,
    /// `dpop::Proof::replay_key` and until when it is kept.
    pub replay_key: String,
    pub replay_until: i64,
}

/// Record a used proof, only if the act won: `$table` and `$won` select
/// the row it marked with ?1, ?2. A refused request leaves nothing.
macro_rules! used_proof {
    ($table:literal, $won:literal, $a:expr, $b:expr, $dpop:expr) => {
        Stmt::new(
            concat!(
                "INSERT INTO dpop_jtis (hash, expires_at) SELECT ?3, ?4 FROM ",
                $table,
                " WHERE ?3 IS NOT NULL AND ",
                $won,
                " ON CONFLICT (hash) DO NOTHING"
            ),
            crate::params![
                $a,
                $b,
                $dpop.map(|d| d.replay_key.clone()),
                $dpop.map(|d| d.replay_until)
            ],
        )
    };
}

impl<D: super::Driver> super::Store<D> {
    /// Was a proof with this replay key used already? (Only to name the
    /// reason of a refusal: the refusal itself is the issuing statement's.)
    pub async fn dpop_proof_used(&self, replay_key: &str) -> Result<bool, crate::error::StoreError> {
        #[derive(serde::Deserialize)]
        struct U {
            used: i64,
        }
        let u: Option<U> = self
            .one(super::Stmt::new(
                "SELECT EXISTS (SELECT 1 FROM dpop_jtis WHERE hash = ?1) AS used",
                crate::params![replay_key],
            ))
            .await?;
        Ok(u.is_some_and(|u| u.used != 0))
    }
}
