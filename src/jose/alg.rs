//! The signature algorithms we accept, and no others: `none` and the HMAC
//! family are refused by construction (RFC 8725 §3.1, §3.2), since a parse of
//! anything else yields no [`Alg`].

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, signature r||s (RFC 7518 §3.4).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, modulus ≥ 2048 bits.
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256, salt 32 bytes (RFC 7518 §3.5).
    Ps256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Alg {
    /// Every accepted algorithm, in the order discovery documents list them.
    pub const ALL: [Alg; 4] = [Alg::Es256, Alg::Rs256, Alg::Ps256, Alg::EdDsa];

    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Exact, case-sensitive (RFC 7515 §4.1.1): `es256` is not `ES256`.
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The names, space-separated (`WWW-Authenticate: DPoP algs="…"`).
    pub fn names() -> String {
        Alg::ALL.map(Alg::name).join(" ")
    }
}
