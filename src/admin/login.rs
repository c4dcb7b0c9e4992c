//! Delegated sign-in, the platform's half: reading, accepting and rejecting login challenges, and ending a user's sessions.
//!
//! After Ory Hydra's admin API (`GET/PUT /admin/oauth2/auth/requests/login[/accept|/reject]?login_challenge=…`):
//! - `GET  /admin/v1/login?login_challenge=…`: what is being asked (app, scopes).
//! - `PUT  /admin/v1/login/accept?login_challenge=…` `{external_id, user?, memberships?, acr?, amr?, auth_time?}`
//! - `PUT  /admin/v1/login/reject?login_challenge=…` `{error?, error_description?}`
//! - `DELETE /admin/v1/users/{external_id}/sessions`: the platform's sign-out.
//!
//! Accept and reject answer `{"redirect_to": …}`, where the platform sends
//! the browser (`crate::endpoints::login_challenge::land`).

use serde::Deserialize;
use serde_json::json;

use crate::admin::provisioning::{memberships, users};
use crate::context::Ctx;
use crate::crypto;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::login_challenge::{self as lc, CHALLENGE_PREFIX, VERIFIER_PREFIX};
use crate::oidc::reauth;
use crate::store::login_challenges::{AuthFacts, LoginChallengeRow};
use crate::store::Driver;

/// Memberships one accept may upsert.
const MAX_MEMBERSHIPS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    /// The platform's id of the user it signed in (`users.external_id`).
    external_id: String,
    /// Create or update the user in the same call.
    user: Option<UserBody>,
    /// Add or change the user's memberships in the same call (never removes).
    memberships: Option<Vec<MembershipBody>>,
    /// How and when the platform signed the user in (OIDC Core §2), for
    /// the session and the ID tokens of its authorizations; bounds in
    /// `crate::oidc::reauth`. `auth_time` defaults to the accept's time.
    acr: Option<String>,
    amr: Option<Vec<String>>,
    auth_time: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    email: String,
    name: Option<String>,
    /// As `PUT /admin/v1/users/…` takes them (OpenID claims).
    email_verified: Option<bool>,
    preferred_username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipBody {
    /// The org's `external_id`.
    org: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Errors a platform may end a rejected sign-in with (RFC 6749 §4.1.2.1,
/// OpenID Connect Core §3.1.2.6); `access_denied` when it names none.
const REJECT_ERRORS: &[&str] = &["access_denied", "login_required", "temporarily_unavailable"];

pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, name: &str, params: &[String]) -> Response {
    let result = match name {
        "login_get" => get(ctx, req).await,
        "login_accept" => accept(ctx, req).await,
        "login_reject" => reject(ctx, req).await,
        "login_end_sessions" => end_sessions(ctx, params.first().map(String::as_str).unwrap_or("")).await,
        _ => Err(ApiError::not_found("no such route")),
    };
    match result {
        Ok(r) => r.no_store(),
        Err(e) => e.into_response(),
    }
}

fn body<T: serde::de::DeserializeOwned + Default>(req: &Request, optional: bool) -> Result<T, ApiError> {
    if optional && req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// The challenge named in the query, and its hash.
fn challenge_of(req: &Request) -> Result<String, ApiError> {
    let q = req.query_params();
    if q.repeated(&["login_challenge"]).is_some() {
        return Err(ApiError::bad_request("login_challenge appears more than once"));
    }
    match q.get("login_challenge") {
        None => Err(ApiError::bad_request("login_challenge is required (in the query)")),
        Some(c) => match lc::shaped(Some(c), CHALLENGE_PREFIX) {
            Some(c) => Ok(crypto::sha256_hex(c)),
            None => Err(ApiError::not_found("no such login challenge")),
        },
    }
}

/// Why a challenge cannot be decided (any more).
fn not_open(row: Option<&LoginChallengeRow>, now: i64) -> Option<ApiError> {
    match row {
        None => Some(ApiError::not_found("no such login challenge")),
        Some(r) if r.decided_at.is_some() => Some(ApiError::new(
            409,
            "conflict",
            "this login challenge was already accepted or rejected",
        )),
        Some(r) if r.expires_at <= now => Some(ApiError::new(
            410,
            "gone",
            "this login challenge has expired; the user must start again from the app",
        )),
        Some(_) => None,
    }
}

async fn open_challenge<D: Driver>(ctx: &Ctx<'_, D>, hash: &str) -> Result<LoginChallengeRow, ApiError> {
    let row = ctx.store.login_challenge(hash).await?;
    match not_open(row.as_ref(), ctx.now) {
        Some(e) => Err(e),
        None => Ok(row.expect("an open challenge exists")),
    }
}

/// After a conditional update matched nothing: say why (a concurrent
/// decision or the clock passed the expiry in between).
async fn explain<D: Driver>(ctx: &Ctx<'_, D>, hash: &str) -> ApiError {
    match ctx.store.login_challenge(hash).await {
        Ok(row) => not_open(row.as_ref(), ctx.now).unwrap_or_else(|| ApiError::not_found("no such user")),
        Err(e) => e.into(),
    }
}

async fn get<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let hash = challenge_of(req)?;
    let row = ctx.store.login_challenge(&hash).await?;
    let Some(row) = row else {
        return Err(ApiError::not_found("no such login challenge"));
    };
    let status = match (&row.decided_at, &row.used_at, &row.error) {
        (_, Some(_), _) => "used",
        (None, None, _) if row.expires_at <= ctx.now => "expired",
        (None, None, _) => "pending",
        (Some(_), None, None) => "accepted",
        (Some(_), None, Some(_)) => "rejected",
    };
    let app = ctx.store.app(&row.client_id).await?;
    let request = crate::http::Params::parse(row.request.as_bytes());
    let scopes: Vec<String> = request
        .get("scope")
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    // What the sign-in must be (OIDC `prompt`, `max_age`): the oldest
    // `auth_time` the accept may report.
    let floor = reauth::auth_time_floor(&row.request, row.created_at, ctx.now);
    Ok(Response::json(
        200,
        &json!({
            "status": status,
            "client": {"client_id": row.client_id, "name": app.map(|a| a.name)},
            "requested_scope": scopes,
            "requested_at": row.created_at,
            "expires_at": row.expires_at,
            "prompt": request.get("prompt"),
            "max_age": request.get("max_age").and_then(|m| m.parse::<i64>().ok()),
            "auth_time_min": floor,
        }),
    ))
}

async fn accept<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let hash = challenge_of(req)?;
    let b: AcceptBody =
        serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // The rule of the provisioning API's paths: a user created here must be
    // one the platform can address there (delete, sign out).
    if let Some(why) = crate::external_id::invalid(&b.external_id) {
        return Err(ApiError::bad_request(format!("external_id: {why}")));
    }
    let row = open_challenge(ctx, &hash).await?;
    // Checked before anything is written, like the memberships below.
    let facts = auth_facts(&b, &row, ctx.now)?;
    let list = b.memberships.unwrap_or_default();
    if list.len() > MAX_MEMBERSHIPS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_MEMBERSHIPS} memberships per call"
        )));
    }
    // The optional upserts are the provisioning API's own acts (validated,
    // guarded and audited like `PUT /admin/v1/users/…` and `…/memberships/…`).
    // Everything is checked before anything is written, so a bad membership
    // changes nothing; the writes then precede the accept, and stay if the
    // accept loses a race (they are the platform's data, applied idempotently).
    let existing = ctx.store.user_by_external_id(&b.external_id).await?;
    let user = match &b.user {
        None if existing.is_none() => {
            return Err(ApiError::not_found(
                "no user has this external_id; provision the user first, or send `user` to create them",
            ))
        }
        None => None,
        Some(u) => {
            let name = u
                .name
                .clone()
                .or_else(|| existing.as_ref().map(|e| e.name.clone()))
                .unwrap_or_else(|| u.email.trim().to_string());
            let input = users::UserPut {
                email: u.email.trim().to_string(),
                name,
                password: None,
                email_verified: u.email_verified,
                preferred_username: u.preferred_username.clone().map(Some),
            };
            users::put(ctx, &b.external_id, input.clone(), true).await?;
            Some(input)
        }
    };
    let mut seen = Vec::new();
    for m in &list {
        if !text_ok(&m.role, 64) {
            return Err(ApiError::bad_request("each membership needs org and role"));
        }
        if let Some(why) = crate::external_id::invalid(&m.org) {
            return Err(ApiError::bad_request(format!("membership org: {why}")));
        }
        if seen.contains(&m.org.as_str()) {
            return Err(ApiError::bad_request(format!("org {:?} is listed twice", m.org)));
        }
        seen.push(m.org.as_str());
        if ctx.store.org_by_external_id(&m.org).await?.is_none() {
            return Err(ApiError::bad_request(format!("no org has the external_id {:?}", m.org)));
        }
        if ctx.store.role(&m.role).await?.is_none() {
            return Err(ApiError::bad_request(format!("unknown role {:?}", m.role)));
        }
        // The owner rule and the rest, as the provisioning API checks them
        // (a user created by this call owns nothing yet).
        if existing.is_some() {
            let input = memberships::MembershipPut { role: m.role.clone() };
            memberships::put(ctx, &m.org, &b.external_id, input, true).await?;
        }
    }
    if let Some(input) = user {
        users::put(ctx, &b.external_id, input, false).await?;
    }
    for m in &list {
        let input = memberships::MembershipPut { role: m.role.clone() };
        memberships::put(ctx, &m.org, &b.external_id, input, false).await?;
    }
    let verifier = crypto::new_token(VERIFIER_PREFIX);
    let decided = ctx
        .store
        .accept_login_challenge(
            &hash,
            &crypto::sha256_hex(&verifier),
            &b.external_id,
            &row.client_id,
            &facts,
            ctx.now,
        )
        .await?;
    redirect_back(ctx, &hash, &row, &verifier, decided).await
}

/// The accept's `acr`, `amr` and `auth_time`, validated: `auth_time` not in
/// the future (beyond a minute of clock skew, then recorded as now) and
/// not before the challenge allows (`reauth::auth_time_floor`: its opening
/// when the authorization asked for a fresh sign-in, `max_age` before it).
fn auth_facts(b: &AcceptBody, row: &LoginChallengeRow, now: i64) -> Result<AuthFacts, ApiError> {
    if let Some(acr) = &b.acr {
        reauth::check_acr(acr).map_err(ApiError::bad_request)?;
    }
    let amr = match &b.amr {
        Some(list) => Some(reauth::amr_json(list).map_err(ApiError::bad_request)?),
        None => None,
    };
    let auth_time = match b.auth_time {
        Some(t) => reauth::check_auth_time(t, reauth::auth_time_floor(&row.request, row.created_at, now), now)
            .map_err(ApiError::bad_request)?,
        None => now,
    };
    Ok(AuthFacts {
        acr: b.acr.clone(),
        amr,
        auth_time,
    })
}

async fn reject<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let hash = challenge_of(req)?;
    let b: RejectBody = body(req, true)?;
    let error = b.error.as_deref().unwrap_or("access_denied");
    if !REJECT_ERRORS.contains(&error) {
        return Err(ApiError::bad_request(format!(
            "error must be one of {}",
            REJECT_ERRORS.join(", ")
        )));
    }
    let description = b
        .error_description
        .as_deref()
        .unwrap_or("the platform did not sign the user in");
    if !text_ok(description, 500) {
        return Err(ApiError::bad_request(
            "error_description must be 1 to 500 printable characters",
        ));
    }
    let row = open_challenge(ctx, &hash).await?;
    let verifier = crypto::new_token(VERIFIER_PREFIX);
    let decided = ctx
        .store
        .reject_login_challenge(
            &hash,
            &crypto::sha256_hex(&verifier),
            error,
            description,
            &row.client_id,
            ctx.now,
        )
        .await?;
    redirect_back(ctx, &hash, &row, &verifier, decided).await
}

/// After accepting or rejecting: where the platform sends the browser back
/// (with `verifier`), or why the challenge could not be decided.
async fn redirect_back<D: Driver>(
    ctx: &Ctx<'_, D>,
    hash: &str,
    row: &LoginChallengeRow,
    verifier: &str,
    decided: bool,
) -> Result<Response, ApiError> {
    if !decided {
        return Err(explain(ctx, hash).await);
    }
    ctx.note(&row.client_id, None);
    Ok(Response::json(
        200,
        &json!({"redirect_to": lc::landing_url(&ctx.issuer, &row.request, verifier)}),
    ))
}

async fn end_sessions<D: Driver>(ctx: &Ctx<'_, D>, external_id: &str) -> Result<Response, ApiError> {
    let external_id = crate::admin::provisioning::segment(external_id)?;
    match ctx
        .store
        .end_user_sessions(&external_id, crate::oidc::logout::logout_issuer(ctx), ctx.now)
        .await?
    {
        None => Err(ApiError::not_found("no user has this external_id")),
        Some((ended, pending, queued)) => {
            crate::oidc::logout::deliver(ctx, queued);
            Ok(Response::json(
                200,
                &json!({"ended": ended, "pending_sign_ins_ended": pending}),
            ))
        }
    }
}
