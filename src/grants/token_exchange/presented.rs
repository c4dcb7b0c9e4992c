//! The tokens an exchange reads (RFC 8693 §2.1 `subject_token`, `actor_token`):
//! only our own access tokens (opaque or JWT) and ID tokens, each checked
//! offline first (shape, signature) and then found live in storage.

use crate::context::Ctx;
use crate::crypto::{self, well_formed};
use crate::error::OAuthError;
use crate::jwt::Reject;
use crate::store::{Driver, ExchangeSource, Stmt, Store};

use super::{ACCESS_TOKEN, ID_TOKEN, JWT, REFRESH_TOKEN};

/// Longest token read: our ID tokens are under 2 KB, JWT access tokens
/// with a nested `act` under 4 KB.
const MAX_TOKEN: usize = 8192;

/// What a presented token turned out to be, before storage.
pub enum Kind {
    /// An access token: its storage handle's hash was looked up.
    Access,
    /// An ID token issued to the exchanging client: its `sub` (as that
    /// client knows the user) and `exp`; its grant is looked up by `sid`.
    IdToken { sub: String, exp: i64 },
}

pub struct Presented {
    /// `subject_token` or `actor_token`, for the error texts.
    pub role: &'static str,
    pub kind: Kind,
    /// The read that finds its live grant (`store::exchange`).
    pub stmt: Stmt,
}

fn bad(role: &str, why: impl std::fmt::Display) -> OAuthError {
    OAuthError::InvalidRequest(format!("{role}: {why}"))
}

/// Read `token` of `token_type` as `role`, for the client `client_id`.
pub async fn read<D: Driver>(
    ctx: &Ctx<'_, D>,
    role: &'static str,
    token: &str,
    token_type: &str,
    client_id: &str,
) -> Result<Presented, OAuthError> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(bad(role, "missing, or longer than 8192 characters"));
    }
    let jwt = crate::jwt::looks_like_jwt(token);
    match token_type {
        REFRESH_TOKEN => Err(refresh(role)),
        ACCESS_TOKEN if jwt => access_jwt(ctx, role, token).await,
        ACCESS_TOKEN => opaque(ctx, role, token),
        ID_TOKEN => id_token(ctx, role, token, client_id).await,
        JWT if jwt => match access_jwt(ctx, role, token).await {
            Err(OAuthError::InvalidRequest(e)) if e.ends_with(NOT_AN_ACCESS_TOKEN) => {
                id_token(ctx, role, token, client_id).await
            }
            other => other,
        },
        JWT => Err(bad(role, "a token of type jwt must be a JWT")),
        other => Err(OAuthError::InvalidRequest(format!(
            "{role}_type {other:?} is not supported: use {ACCESS_TOKEN}, {ID_TOKEN} or {JWT}"
        ))),
    }
}

fn refresh(role: &str) -> OAuthError {
    bad(
        role,
        "a refresh token cannot be exchanged (it is the client's own long-lived credential); exchange an access token or an ID token",
    )
}

fn opaque<D: Driver>(ctx: &Ctx<'_, D>, role: &'static str, token: &str) -> Result<Presented, OAuthError> {
    if well_formed(token, &ctx.config.prefixes.refresh) {
        return Err(refresh(role));
    }
    if !well_formed(token, &ctx.config.prefixes.access) {
        return Err(bad(role, "not an access token this server issued"));
    }
    Ok(Presented {
        role,
        kind: Kind::Access,
        stmt: Store::<D>::exchange_access_stmt(&crypto::sha256_hex(token), ctx.now),
    })
}

const NOT_AN_ACCESS_TOKEN: &str = "not a JWT access token (typ at+jwt)";

async fn access_jwt<D: Driver>(ctx: &Ctx<'_, D>, role: &'static str, token: &str) -> Result<Presented, OAuthError> {
    let audience = ctx.config.resource_list(&ctx.issuer);
    let expect = crate::jwt::Expect {
        issuer: &ctx.issuer,
        audience: &audience,
        now: ctx.now,
        allow_expired: false,
    };
    match crate::jwt::verify(ctx.es256, &ctx.config.jwt_keys, token, &expect).await {
        Ok(c) => Ok(Presented {
            role,
            kind: Kind::Access,
            stmt: Store::<D>::exchange_access_stmt(&crypto::sha256_hex(&c.jti), ctx.now),
        }),
        Err(Reject::Expired) => Err(bad(role, "the token has expired")),
        Err(Reject::Type) => Err(bad(role, NOT_AN_ACCESS_TOKEN)),
        Err(r) => Err(bad(role, format!("not a valid access token of this server ({r:?})"))),
    }
}

async fn id_token<D: Driver>(
    ctx: &Ctx<'_, D>,
    role: &'static str,
    token: &str,
    client_id: &str,
) -> Result<Presented, OAuthError> {
    let hint = crate::oidc::id_token::verify_hint(ctx, token)
        .await
        .map_err(|r| bad(role, format!("not a valid ID token of this server ({r:?})")))?;
    if !hint.aud.iter().any(|a| a == client_id) {
        return Err(bad(role, "the ID token was issued to another client (aud)"));
    }
    let exp = hint.exp.unwrap_or(0);
    if exp <= ctx.now {
        return Err(bad(role, "the ID token has expired"));
    }
    // An ID token names its grant by the session (`sid`) and org it came
    // from; without them it stands for no grant whose revocation we could follow.
    let (Some(sid), Some(org)) = (hint.sid.as_deref(), hint.org_id.as_deref()) else {
        return Err(bad(role, "the ID token carries no sid or org_id, so it names no grant"));
    };
    Ok(Presented {
        role,
        kind: Kind::IdToken { sub: hint.sub, exp },
        stmt: Store::<D>::exchange_id_token_stmt(client_id, org, sid),
    })
}

impl Presented {
    /// The live grant the token stands for, among the rows its read found,
    /// and the token's expiry.
    pub fn pick<D: Driver>(
        &self,
        ctx: &Ctx<'_, D>,
        rows: Vec<ExchangeSource>,
    ) -> Result<(ExchangeSource, i64), OAuthError> {
        let found = match &self.kind {
            Kind::Access => rows.into_iter().next().and_then(|r| r.expires_at.map(|e| (r, e))),
            Kind::IdToken { sub, exp } => rows
                .into_iter()
                .find(|r| r.user_id.as_deref().is_some_and(|u| subject_of(ctx, r, u) == *sub))
                .map(|r| (r, *exp)),
        };
        found.ok_or_else(|| {
            bad(
                self.role,
                "the token is not active (expired, revoked, its grant ended, or its user left the organization)",
            )
        })
    }

    /// The `sub` of the party the token speaks for, as an `act` claim names
    /// it: the user as the token's client knows them, or the client itself.
    pub fn sub<D: Driver>(&self, ctx: &Ctx<'_, D>, row: &ExchangeSource) -> String {
        match (&self.kind, row.actor.as_str(), row.user_id.as_deref()) {
            (Kind::IdToken { sub, .. }, _, _) => sub.clone(),
            (Kind::Access, "self", Some(u)) => subject_of(ctx, row, u),
            _ => row.app_id.clone(),
        }
    }
}

fn subject_of<D: Driver>(ctx: &Ctx<'_, D>, r: &ExchangeSource, user_id: &str) -> String {
    crate::oidc::subject::of_client(
        ctx.config,
        &r.app_id,
        r.app_redirect_uris.as_deref().unwrap_or("[]"),
        r.app_sector_identifier_uri.as_deref(),
        user_id,
    )
}
