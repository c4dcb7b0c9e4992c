//! Bearer token validation (RFC 6750) and effective permissions: the granted
//! scopes, intersected with the app's currently declared scopes and, for the
//! `self` actor, with the user's current role (Fiskl: an admin who narrows a
//! user's role narrows the app at once).
//!
//! Where the token's record comes from is `BEARER_MODE` (strict: D1 on every
//! call; edge: KV first, see [`edge`]) plus the optional per-isolate
//! [`cache`]. Each documents its staleness bound. `BEARER_MODE=jwt` reads
//! nothing: a JWT access token is verified offline and its claims are the
//! principal (revocation and role changes apply at its expiry).
//!
//! Whatever the mode, [`require`] honours a token only if its audience
//! (RFC 8707, `crate::audience`) names the resource being called.
//!
//! Layer: protocol (decides; imports the store and the foundation, never a surface); see docs/architecture.md.

pub mod cache;

use crate::config::BearerMode;
use crate::context::Ctx;
use crate::crypto::{self, well_formed};
use crate::error::StoreError;
use crate::http::{Request, Response};
use crate::jwt;
use crate::scope;
use crate::store::{BearerRow, Driver};

pub struct Principal {
    pub row: BearerRow,
    pub scopes: Vec<String>,
    pub permissions: Vec<String>,
}

impl Principal {
    pub fn from_row(row: BearerRow) -> Self {
        let scopes = scope::from_json(&row.scopes);
        let mut permissions = scope::intersect(&scopes, &scope::from_json(&row.app_scopes));
        if row.actor != "app" {
            let role: Vec<String> = row
                .role_permissions
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            permissions = scope::intersect(&permissions, &role);
        }
        Principal {
            row,
            scopes,
            permissions,
        }
    }

    /// Audit identity: the authorizing user, or the app's bot identity.
    pub fn actor_type(&self) -> &'static str {
        if self.row.actor == "app" {
            "app"
        } else {
            "user"
        }
    }

    pub fn actor_id(&self) -> String {
        match (&self.row.user_id, self.row.actor.as_str()) {
            (Some(u), "self") => u.clone(),
            _ => self.row.app_id.clone(),
        }
    }

    /// The resources the token may be used at (RFC 8707).
    pub fn audience<D: Driver>(&self, ctx: &Ctx<'_, D>) -> Vec<String> {
        crate::audience::stored(self.row.audience.as_deref(), ctx.config, &ctx.issuer)
    }

    /// The `sub` the token's client knows its user by (`oidc::subject`);
    /// `None` for the app actor. Never the user id itself under pairwise.
    /// A `BEARER_MODE=jwt` principal's user id is already its token's `sub`
    /// (that mode runs with public subjects only, `config::subject`).
    pub fn subject(&self, config: &crate::config::Config) -> Option<String> {
        crate::oidc::subject::of_bearer(config, &self.row)
    }

    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1).
pub fn presented(req: &Request) -> Option<&str> {
    let h = req.header("authorization")?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A presented JWT access token, verified against our keys and issuer, for
/// one of our resources (which one the caller needs is [`require`]'s check).
/// `allow_expired` for revocation and introspection, which answer from storage.
pub async fn verify_jwt<D: Driver>(
    ctx: &Ctx<'_, D>,
    token: &str,
    allow_expired: bool,
) -> Result<jwt::Claims, jwt::Reject> {
    let audience = ctx.config.resource_list(&ctx.issuer);
    let expect = jwt::Expect {
        issuer: &ctx.issuer,
        audience: &audience,
        now: ctx.now,
        allow_expired,
    };
    jwt::verify(ctx.es256, &ctx.config.jwt_keys, token, &expect).await
}

/// The storage handle of a presented access token, whose SHA-256 D1 keeps:
/// an opaque token is its own handle, a JWT's is its `jti` once its
/// signature checks (the `jti` alone is visible to every resource server, so
/// it is never trusted from an unverified token). `None`: not ours.
pub async fn storage_handle<D: Driver>(ctx: &Ctx<'_, D>, token: &str, allow_expired: bool) -> Option<String> {
    if jwt::looks_like_jwt(token) && !ctx.config.jwt_keys.is_empty() {
        return verify_jwt(ctx, token, allow_expired).await.ok().map(|c| c.jti);
    }
    well_formed(token, &ctx.config.prefixes.access).then(|| token.to_string())
}

impl Principal {
    /// `BEARER_MODE=jwt`: everything from the verified token, nothing live.
    /// Permissions are the `scope` claim as issued (the app's declared scopes
    /// and the user's role were applied at issuance, not re-read here).
    fn from_claims(c: jwt::Claims) -> Self {
        let scopes: Vec<String> = c
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Self::from_token_row(BearerRow {
            scopes: scope::to_json(&scopes),
            expires_at: c.exp,
            created_at: c.iat,
            grant_id: String::new(),
            app_id: c.client_id,
            app_name: String::new(),
            app_scopes: scope::to_json(&scopes),
            org_id: c.org_id,
            org_slug: String::new(),
            user_id: (c.actor == "self").then_some(c.sub),
            user_email: None,
            actor: c.actor,
            role: None,
            role_permissions: None,
            audience: Some(crate::audience::to_json(&c.aud.0)),
            app_redirect_uris: None,
            app_sector_identifier_uri: None,
            jkt: c.cnf.map(|c| c.jkt),
            act: c.act.map(|a| a.to_string()),
        })
    }

    /// A principal whose row came from a verified token, not from storage
    /// (so there is no live role to apply).
    fn from_token_row(row: BearerRow) -> Self {
        let scopes = scope::from_json(&row.scopes);
        Principal {
            row,
            permissions: scopes.clone(),
            scopes,
        }
    }
}

/// The principal of a token, whichever mode produced it (D1, KV copy,
/// per-isolate cache, JWT claims), if its client may still act: a URL
/// client whose host left `CIMD_ALLOWED_HOSTS` is refused as a suspended
/// one is, by configuration alone (no read).
pub async fn validate<D: Driver>(ctx: &Ctx<'_, D>, token: &str) -> Result<Option<Principal>, StoreError> {
    Ok(lookup(ctx, token)
        .await?
        .filter(|p| crate::cimd::admitted(ctx.config, &p.row.app_id)))
}

async fn lookup<D: Driver>(ctx: &Ctx<'_, D>, token: &str) -> Result<Option<Principal>, StoreError> {
    let ttl = ctx.config.bearer_cache_ttl;
    if ctx.config.bearer_mode == BearerMode::Jwt && jwt::looks_like_jwt(token) {
        // With the per-isolate cache, a token seen before skips the signature
        // check (the entry never outlives the token's `exp`). Keyed by the
        // whole token's hash: a different signature is a different entry.
        let key = (ttl > 0).then(|| crypto::sha256_hex(token));
        if let Some(row) = key.as_deref().and_then(|k| cache::get(k, ctx.now)) {
            return Ok(Some(Principal::from_token_row(row)));
        }
        let Ok(claims) = verify_jwt(ctx, token, false).await else {
            return Ok(None);
        };
        // An exchanged token (RFC 8693 `act`) is honoured only while its
        // chain is live: it reads storage like a strict-mode token, so
        // revoking the grant it came from ends it here too.
        if claims.act.is_some() {
            return stored(ctx, claims.jti, ttl).await;
        }
        let principal = Principal::from_claims(claims);
        if let Some(k) = key {
            cache::put(k, principal.row.clone(), ctx.now, ttl);
        }
        return Ok(Some(principal));
    }
    let Some(handle) = storage_handle(ctx, token, false).await else {
        return Ok(None);
    };
    stored(ctx, handle, ttl).await
}

/// The principal of a token's storage handle: the per-isolate cache, the
/// edge mode's KV copy, then D1.
async fn stored<D: Driver>(ctx: &Ctx<'_, D>, handle: String, ttl: i64) -> Result<Option<Principal>, StoreError> {
    let hash = crypto::sha256_hex(&handle);
    if ttl > 0 {
        if let Some(row) = cache::get(&hash, ctx.now) {
            return Ok(Some(Principal::from_row(row)));
        }
    }
    let kv_row = match (ctx.config.bearer_mode, ctx.edge) {
        (BearerMode::Edge, Some(kv)) => crate::store::kv::lookup(kv, &hash, ctx.now).await,
        _ => None,
    };
    let row = match kv_row {
        Some(row) => Some(row),
        None => ctx.store.bearer(&hash, ctx.now).await?,
    };
    if let (true, Some(row)) = (ttl > 0, &row) {
        cache::put(hash, row.clone(), ctx.now, ttl);
    }
    Ok(row.map(Principal::from_row))
}

/// The token of an `Authorization: DPoP` header (RFC 9449 §7.1).
pub fn presented_dpop(req: &Request) -> Option<&str> {
    let h = req.header("authorization")?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("dpop")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The principal of a request's bearer or DPoP-bound token, or the RFC 6750
/// (RFC 9449 §7.1) answer to send.
pub async fn require<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Principal, Response> {
    let (token, dpop) = match (presented(req), presented_dpop(req)) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => {
            return Err(unauthorized(
                ctx,
                req,
                false,
                "send an access token as Authorization: Bearer <token>",
            ))
        }
    };
    match validate(ctx, token).await {
        // RFC 9449 §7: a bound token only with a proof by its key, and
        // never as a bearer token; an unbound one only as a bearer token.
        Ok(Some(p)) => {
            check_binding(ctx, req, token, p.row.jkt.as_deref(), dpop).await?;
            audience_checked(ctx, req, p)
        }
        Ok(None) if dpop => Err(dpop_unauthorized(
            ctx,
            "invalid_token",
            "the access token is invalid, expired or revoked",
        )),
        Ok(None) => Err(unauthorized(
            ctx,
            req,
            true,
            "the access token is invalid, expired or revoked",
        )),
        Err(e) => Err(crate::error::ApiError::from(e).into_response()),
    }
}

/// A token's binding honoured as RFC 9449 §7 says: a bound token (`jkt`)
/// only as `Authorization: DPoP` (`dpop`) with a proof by its key for it;
/// an unbound one only as a bearer token.
pub async fn check_binding<D: Driver>(
    ctx: &Ctx<'_, D>,
    req: &Request,
    token: &str,
    jkt: Option<&str>,
    dpop: bool,
) -> Result<(), Response> {
    match (jkt, dpop) {
        (None, false) => Ok(()),
        (None, true) => Err(dpop_unauthorized(
            ctx,
            "invalid_token",
            "this access token is not DPoP-bound: send it as Authorization: Bearer",
        )),
        (Some(_), false) => Err(dpop_unauthorized(
            ctx,
            "invalid_token",
            "this access token is DPoP-bound: send it as Authorization: DPoP with a proof",
        )),
        (Some(jkt), true) => check_proof(ctx, req, token, jkt).await,
    }
}

/// The request's DPoP proof for `token`, by the key `jkt` (§7.1, §4.3 with `ath`).
async fn check_proof<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, token: &str, jkt: &str) -> Result<(), Response> {
    use crate::dpop::Refusal;
    let refused = |r: Refusal| match r {
        Refusal::Invalid(why) => dpop_unauthorized(ctx, "invalid_dpop_proof", &why),
        Refusal::UseNonce => dpop_unauthorized(
            ctx,
            "use_dpop_nonce",
            "send the DPoP-Nonce this response carries in the proof",
        ),
    };
    let Some(proof) = crate::dpop::header(req).map_err(refused)? else {
        return Err(dpop_unauthorized(
            ctx,
            "invalid_dpop_proof",
            "a DPoP-bound token needs a DPoP proof header",
        ));
    };
    let p = crate::dpop::verify(ctx, req, proof, Some(token))
        .await
        .map_err(refused)?;
    if !crypto::ct_eq(&p.jkt, jkt) {
        return Err(dpop_unauthorized(
            ctx,
            "invalid_dpop_proof",
            "the proof is not signed by the key the token is bound to",
        ));
    }
    Ok(())
}

/// 401 with `WWW-Authenticate: DPoP algs="…", error="…"` (RFC 9449 §7.1), and
/// a fresh nonce when nonces are on (§9).
pub fn dpop_unauthorized<D: Driver>(ctx: &Ctx<'_, D>, error: &'static str, description: &str) -> Response {
    let challenge = format!(
        "DPoP algs=\"{}\", error=\"{error}\", error_description=\"{}\"",
        crate::jose::Alg::names(),
        description.replace('"', "'")
    );
    let resp = crate::error::ApiError::new(401, error, description)
        .into_response()
        .header("WWW-Authenticate", &challenge);
    if ctx.config.dpop.nonce {
        resp.header("DPoP-Nonce", &crate::dpop::current_nonce(ctx.config, ctx.now))
    } else {
        resp
    }
}

/// RFC 8707: a token is honoured only by a resource its audience names,
/// whichever mode (D1, KV copy, cache, JWT) produced it.
fn audience_checked<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, p: Principal) -> Result<Principal, Response> {
    let api = crate::audience::of_builtin_api(ctx, req);
    if p.audience(ctx).contains(&api) {
        Ok(p)
    } else {
        Err(unauthorized(
            ctx,
            req,
            true,
            &format!("the access token is not for this resource ({api}); request one with resource={api}"),
        ))
    }
}

/// `, resource_metadata="…"` (RFC 9728 §5.1): where the client finds the
/// metadata of the resource it called; nothing when no listed resource
/// covers the request.
fn resource_metadata<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> String {
    crate::audience::url_for_request(ctx, req)
        .map(|url| format!(", resource_metadata=\"{}\"", url.replace('"', "%22")))
        .unwrap_or_default()
}

/// 401 per RFC 6750 §3: no error code when no token was sent at all.
pub fn unauthorized<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, token_sent: bool, description: &str) -> Response {
    let challenge = if token_sent {
        format!(
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{}\"{}",
            description.replace('"', "'"),
            resource_metadata(ctx, req)
        )
    } else {
        format!("Bearer realm=\"api\"{}", resource_metadata(ctx, req))
    };
    crate::error::ApiError::new(401, "invalid_token", description)
        .into_response()
        .header("WWW-Authenticate", &challenge)
}

/// 403 per RFC 6750 §3.1, naming the scope that would have sufficed.
pub fn insufficient_scope<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, needed: &str) -> Response {
    let resp = crate::error::ApiError::new(
        403,
        "insufficient_scope",
        format!("this request needs {needed:?}, which the token or its user's role does not grant"),
    )
    .into_response()
    .header(
        "WWW-Authenticate",
        &format!(
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{needed}\"{}",
            resource_metadata(ctx, req)
        ),
    );
    // Azure DevOps's apps read its `{"message"}` body (its profile only).
    ctx.profile.forbidden(resp)
}
