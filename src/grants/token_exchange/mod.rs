//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693):
//! a confidential client whose `token_exchange` policy allows it trades a
//! token of ours it received (its subject) for a narrower access token for
//! another of our resources, carrying `act` (who acts for whom, nested for
//! chains), expiring no later than the subject, in a grant of its own that
//! dies with the subject's grant (migration 0023's trigger). No refresh token.

pub mod policy;
pub mod presented;

use serde_json::{json, Value};

use super::{access_token, Subject, TokenResponse};
use crate::client_auth::{self, Credentials, Method};
use crate::context::Ctx;
use crate::crypto;
use crate::error::OAuthError;
use crate::http::Params;
use crate::scope;
use crate::store::{DpopUse, Driver, ExchangeSource, Exchanged};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3 token type identifiers.
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// Most exchanges in one chain (a subject that is itself the end of this
/// many is refused): bounds the nested `act` and the lineage kept per grant.
pub const MAX_CHAIN: usize = 4;

const SINGLE: &[&str] = &[
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "scope",
];

pub async fn handle<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: Credentials,
    form: &Params,
    dpop: Option<&DpopUse>,
) -> Result<TokenResponse, OAuthError> {
    // Everything that needs no storage is checked first; a client
    // authentication failure still takes precedence (`after_auth`).
    let (subject, actor) = match offline(ctx, &creds, form).await {
        Ok(p) => p,
        Err(e) => return Err(client_auth::after_auth(ctx, creds, e).await),
    };
    // One round trip for the reads: the client, the subject's and the actor's grants.
    let guard = client_auth::guard(ctx, &creds);
    let (app, subjects, actors) = ctx
        .store
        .exchange_reads(&guard, subject.stmt.clone(), actor.as_ref().map(|a| a.stmt.clone()))
        .await?;
    let client = client_auth::verify(ctx, creds, app).await?;
    let app = &client.app;
    if client.method == Method::None {
        return Err(OAuthError::UnauthorizedClient(
            "token exchange needs a confidential client (client_secret_basic, client_secret_post or private_key_jwt)"
                .into(),
        ));
    }
    let Some(policy) = policy::parse(app.token_exchange.as_deref()) else {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not exchange tokens: its token_exchange policy is not set".into(),
        ));
    };
    if policy.actor_required() && actor.is_none() {
        return Err(OAuthError::InvalidRequest(
            "this client's token_exchange policy requires an actor_token".into(),
        ));
    }
    let (source, subject_exp) = subject.pick(ctx, subjects)?;
    accepted(&subject, &source, &policy)?;
    let act_sub = match &actor {
        None => app.id.clone(),
        Some(a) => {
            let (row, _) = a.pick(ctx, actors)?;
            // A client names only itself as the actor: a token forwarded to
            // it names someone it cannot prove to be.
            if row.app_id != app.id {
                return Err(OAuthError::InvalidRequest(
                    "actor_token: it must be a token issued to this client".into(),
                ));
            }
            a.sub(ctx, &row)
        }
    };
    let act = nested_act(act_sub, source.act.as_deref());
    let audience = targets(ctx, form, &policy.audiences)?;
    let scopes = narrowed(form, &source, policy.scopes.as_deref())?;
    let mut access = super::mint_bound_access(ctx.config, ctx.now, app, dpop)?;
    // Never outlives the subject (RFC 8693 §2.2 leaves it to the server).
    let expires_at = subject_exp.min(ctx.now + ctx.config.access_ttl);
    access.row.expires_at = Some(expires_at);
    let grant_id = crypto::new_id("grt_");
    let (scopes_json, audience_json, act_json) = (
        scope::to_json(&scopes),
        crate::audience::to_json(&audience),
        act.to_string(),
    );
    let audit = ctx.audit_entry(
        &source.org_id,
        "app",
        &app.id,
        Some(&app.id),
        "token.exchanged",
        json!({"grant_id": grant_id, "subject_grant_id": source.grant_id, "subject_client_id": source.app_id,
               "audience": audience, "scope": scope::join(&scopes), "act": act}),
    );
    let issued = ctx
        .store
        .issue_exchanged(&Exchanged {
            grant_id: &grant_id,
            app_id: &app.id,
            parent_grant_id: &source.grant_id,
            scopes: &scopes_json,
            audience: &audience_json,
            act: &act_json,
            access: &access.row,
            now: ctx.now,
            max_live: ctx.config.max_live_grants,
            dpop,
            audit: &audit,
        })
        .await?;
    if !issued {
        if let Some(e) = super::dpop_refusal(ctx, app, dpop).await {
            return Err(e);
        }
        return Err(OAuthError::InvalidRequest(
            "subject_token: its grant was revoked while this exchange ran".into(),
        ));
    }
    ctx.note(&app.id, Some(&source.org_id));
    ctx.mirror(&access.row.hash);
    let who = Subject {
        app,
        org_id: &source.org_id,
        actor: &source.actor,
        user_id: source.user_id.as_deref(),
        scopes: &scopes,
        audience: &audience,
        act: Some(act),
    };
    let token = access_token(ctx, access, &who).await?;
    Ok(TokenResponse {
        issued_token_type: Some(ACCESS_TOKEN),
        ..TokenResponse::bearer(token, None, expires_at - ctx.now, &scopes)
    })
}

/// The request's own checks and the presented tokens read offline.
async fn offline<D: Driver>(
    ctx: &Ctx<'_, D>,
    creds: &Credentials,
    form: &Params,
) -> Result<(presented::Presented, Option<presented::Presented>), OAuthError> {
    if let Some(name) = form.repeated(SINGLE) {
        return Err(OAuthError::InvalidRequest(format!(
            "the {name} parameter appears more than once"
        )));
    }
    match form.get("requested_token_type") {
        None | Some(ACCESS_TOKEN) => {}
        Some(other) => {
            return Err(OAuthError::InvalidRequest(format!(
                "requested_token_type {other:?} is not issued here: this server exchanges for access tokens only ({ACCESS_TOKEN})"
            )))
        }
    }
    let (Some(token), Some(kind)) = (form.get("subject_token"), form.get("subject_token_type")) else {
        return Err(OAuthError::InvalidRequest(
            "subject_token and subject_token_type are required (RFC 8693 §2.1)".into(),
        ));
    };
    let subject = presented::read(ctx, "subject_token", token, kind, &creds.client_id).await?;
    let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
        (None, None) => None,
        (Some(t), Some(k)) => Some(presented::read(ctx, "actor_token", t, k, &creds.client_id).await?),
        _ => {
            return Err(OAuthError::InvalidRequest(
                "actor_token and actor_token_type come together (RFC 8693 §2.1)".into(),
            ))
        }
    };
    Ok((subject, actor))
}

/// Whether the policy accepts this subject: a user's token (not the app
/// actor's), for one of `subject_audiences` (an ID token: issued to this
/// client, checked when it was read), not at the end of a full chain.
fn accepted(
    subject: &presented::Presented,
    source: &ExchangeSource,
    policy: &policy::Policy,
) -> Result<(), OAuthError> {
    let refuse = |why: String| Err(OAuthError::InvalidRequest(format!("subject_token: {why}")));
    if source.actor != "self" || source.user_id.is_none() {
        return refuse("it acts for no user (an app's own token): only a user's token may be exchanged".into());
    }
    if matches!(subject.kind, presented::Kind::Access) {
        // A token from before resource indicators names no audience: which
        // resource it was for is unknown, so it is never exchanged.
        let Some(aud) = source.audience.as_deref() else {
            return refuse("it names no audience (issued before resource indicators), so it is not exchanged".into());
        };
        let aud = crate::audience::from_json(aud);
        if !aud.iter().any(|a| policy.subject_audiences.contains(a)) {
            return refuse(format!(
                "it is for {}, which this client's token_exchange policy does not accept (subject_audiences)",
                aud.join(" ")
            ));
        }
    }
    let depth = source
        .lineage
        .as_deref()
        .map_or(0, |l| l.matches('/').count().saturating_sub(1));
    if depth >= MAX_CHAIN {
        return refuse(format!("it already ends a chain of {MAX_CHAIN} exchanges"));
    }
    Ok(())
}

/// `{"sub": …}`, with the subject's own `act` nested inside (§4.1: the
/// outermost is the current actor, each inner one a prior actor).
fn nested_act(sub: String, prior: Option<&str>) -> Value {
    let mut act = json!({"sub": sub});
    if let Some(p) = prior.and_then(|p| serde_json::from_str::<Value>(p).ok()) {
        act["act"] = p;
    }
    act
}

/// The target: `resource` and `audience` (RFC 8693 §2.1; both as resource
/// URLs here), each a listed resource within the policy's `audiences`; none
/// named: the policy's only audience, if it has one.
fn targets<D: Driver>(ctx: &Ctx<'_, D>, form: &Params, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let known = ctx.config.resource_list(&ctx.issuer);
    let mut out = crate::audience::requested(form, &known).map_err(OAuthError::InvalidTarget)?;
    for (_, raw) in form.0.iter().filter(|(k, _)| k == "audience") {
        let c = crate::audience::canonical(raw).map_err(|e| OAuthError::InvalidTarget(format!("audience: {e}")))?;
        if !known.contains(&c) {
            return Err(OAuthError::InvalidTarget(format!(
                "audience {c:?} is not a resource this server issues tokens for"
            )));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.len() > crate::config::MAX_RESOURCES {
        return Err(OAuthError::InvalidTarget("too many targets".into()));
    }
    if let Some(bad) = out.iter().find(|r| !allowed.contains(r)) {
        return Err(OAuthError::InvalidTarget(format!(
            "{bad:?} is not among this client's token_exchange audiences"
        )));
    }
    match (out.is_empty(), allowed) {
        (false, _) => Ok(out),
        (true, [only]) => Ok(vec![only.clone()]),
        (true, _) => Err(OAuthError::InvalidTarget(
            "name the target with resource: this client's token_exchange policy allows several".into(),
        )),
    }
}

/// The scopes: at most the subject token's, within the policy's cap; none
/// asked for: all of those.
fn narrowed(form: &Params, source: &ExchangeSource, cap: Option<&[String]>) -> Result<Vec<String>, OAuthError> {
    let mut allowed = scope::from_json(&source.scopes);
    if let Some(cap) = cap {
        allowed = scope::intersect(&allowed, cap);
    }
    let scopes = match form.get("scope").map(scope::parse) {
        Some(Err(e)) => return Err(OAuthError::InvalidScope(e)),
        Some(Ok(s)) if !s.is_empty() => s,
        _ => allowed.clone(),
    };
    if let Some(bad) = scope::first_outside(&scopes, &allowed) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad:?} is beyond the subject token's scopes (or this client's token_exchange scopes): an exchange only narrows"
        )));
    }
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope is left: the subject token's scopes and this client's token_exchange scopes do not meet".into(),
        ));
    }
    Ok(scopes)
}
