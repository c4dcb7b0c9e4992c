//! The provisioning API: the platform pushes its orgs, users, memberships,
//! roles, scope catalogue, org API keys and trusted issuers here, addressed by its own ids.
//! `PUT` upserts (201 created / 200 with `changed`), `PATCH` updates part,
//! `DELETE` removes, `GET` reads one or a page (`?limit=&cursor=`); every
//! write takes `?dry_run=true` (validate and report, change nothing). Each
//! change and its audit record are one D1 batch (`store::provisioning`).
//!
//! Layer: surfaces (parse and render; call the protocol); see docs/architecture.md.

pub mod api_keys;
pub mod memberships;
pub mod orgs;
pub mod roles;
pub mod scopes;
pub mod trusted_issuers;
pub mod users;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::store::provisioning::AuditNote;
use crate::store::Driver;

/// Most items a list page returns (`?limit=`), and the default.
pub const MAX_PAGE: i64 = 200;
pub const DEFAULT_PAGE: i64 = 50;

type Fut<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, ApiError>> + 'a>>;

/// Serve a back-office route whose name starts with `prov_`.
pub async fn handle<D: Driver>(ctx: &Ctx<'_, D>, req: &Request, name: &str, params: &[String]) -> Response {
    let result = match act(ctx, req, name, params) {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response).no_store()
}

/// The act a route names, boxed: one small state machine per act instead of
/// all of them inlined into the server's dispatch (wasm size).
fn act<'a, 'b: 'a, D: Driver + 'a>(
    ctx: &'a Ctx<'b, D>,
    req: &'a Request,
    name: &str,
    params: &[String],
) -> Result<Fut<'a>, ApiError> {
    let p = |i: usize| segment(params.get(i).map(String::as_str).unwrap_or(""));
    let dry = dry_run(req)?;
    // `read!`: the path's ids, then the act; `write!`: the ids and the JSON
    // body, then the act, answered with what changed.
    macro_rules! read {
        ($($id:ident),* => $act:expr) => {{
            let mut _i = 0;
            $(let $id = p(_i)?; _i += 1;)*
            Box::pin(async move { $act.await }) as Fut<'a>
        }};
    }
    macro_rules! write {
        ($($id:ident),* ; $input:ident => $act:expr) => {{
            let mut _i = 0;
            $(let $id = p(_i)?; _i += 1;)*
            let $input = body(req)?;
            Box::pin(async move { Ok($act.await?.response()) }) as Fut<'a>
        }};
    }
    Ok(match name {
        "prov_orgs_list" => read!(=> orgs::list(ctx, req)),
        "prov_org_get" => read!(a => orgs::get(ctx, &a)),
        "prov_org_put" => write!(a; input => orgs::put(ctx, &a, input, dry)),
        "prov_org_patch" => write!(a; input => orgs::patch(ctx, &a, input, dry)),
        "prov_org_delete" => read!(a => orgs::delete(ctx, &a, dry)),
        "prov_users_list" => read!(=> users::list(ctx, req)),
        "prov_user_get" => read!(a => users::get(ctx, &a)),
        "prov_user_put" => write!(a; input => users::put(ctx, &a, input, dry)),
        "prov_user_patch" => write!(a; input => users::patch(ctx, &a, input, dry)),
        "prov_user_delete" => read!(a => users::delete(ctx, &a, dry)),
        "prov_user_memberships" => read!(a => memberships::list_of_user(ctx, req, &a)),
        "prov_memberships_list" => read!(a => memberships::list_of_org(ctx, req, &a)),
        "prov_membership_get" => read!(a, b => memberships::get(ctx, &a, &b)),
        "prov_membership_put" => write!(a, b; input => memberships::put(ctx, &a, &b, input, dry)),
        "prov_membership_patch" => write!(a, b; input => memberships::patch(ctx, &a, &b, input, dry)),
        "prov_membership_delete" => read!(a, b => memberships::delete(ctx, &a, &b, dry)),
        "prov_roles_list" => read!(=> roles::list(ctx, req)),
        "prov_role_get" => read!(a => roles::get(ctx, &a)),
        "prov_role_put" => write!(a; input => roles::put(ctx, &a, input, dry)),
        "prov_role_patch" => write!(a; input => roles::patch(ctx, &a, input, dry)),
        "prov_role_delete" => read!(a => roles::delete(ctx, &a, dry)),
        "prov_scopes_list" => read!(=> scopes::list(ctx, req)),
        "prov_scope_get" => read!(a => scopes::get(ctx, &a)),
        "prov_scope_put" => write!(a; input => scopes::put(ctx, &a, input, dry)),
        "prov_scope_patch" => write!(a; input => scopes::patch(ctx, &a, input, dry)),
        "prov_scope_delete" => read!(a => scopes::delete(ctx, &a, dry)),
        "prov_api_keys_list" => read!(a => api_keys::list(ctx, req, &a)),
        "prov_api_key_get" => read!(a, b => api_keys::get(ctx, &a, &b)),
        "prov_api_key_put" => write!(a, b; input => api_keys::put(ctx, &a, &b, input, dry)),
        "prov_api_key_patch" => write!(a, b; input => api_keys::patch(ctx, &a, &b, input, dry)),
        "prov_api_key_delete" => read!(a, b => api_keys::delete(ctx, &a, &b, dry)),
        "prov_trusted_issuers_list" => read!(a => trusted_issuers::list_of_org(ctx, req, &a)),
        "prov_trusted_issuer_get" => read!(a, b => trusted_issuers::get(ctx, &a, &b)),
        "prov_trusted_issuer_put" => write!(a, b; input => trusted_issuers::put(ctx, &a, &b, input, dry)),
        "prov_trusted_issuer_patch" => write!(a, b; input => trusted_issuers::patch(ctx, &a, &b, input, dry)),
        "prov_trusted_issuer_delete" => read!(a, b => trusted_issuers::delete(ctx, &a, &b, dry)),
        "prov_audit" => read!(=> audit(ctx, req)),
        _ => return Err(ApiError::not_found("no such route")),
    })
}

/// A JSON body: `application/json`, no unknown fields (each input type
/// denies them), nothing malformed.
fn body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    crate::error::parse_json(req)
}

pub fn conflict(d: impl Into<String>) -> ApiError {
    ApiError::new(409, "conflict", d)
}

/// A concurrent change broke a precondition between our read and our write;
/// the batch changed nothing.
pub fn raced() -> ApiError {
    conflict("the data changed while this request ran; nothing was changed, retry")
}

fn dry_run(req: &Request) -> Result<bool, ApiError> {
    match req.query_params().get("dry_run") {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_request("dry_run must be true or false")),
    }
}

/// A path segment: percent-decoded, then held to the one rule of the
/// platform's ids ([`crate::external_id`]).
pub fn segment(raw: &str) -> Result<String, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("an id in the path is not valid UTF-8"))?;
    if let Some(why) = crate::external_id::invalid(&decoded) {
        return Err(ApiError::bad_request(format!("the id in the path: {why}")));
    }
    Ok(decoded.into_owned())
}

/// A text field: trimmed, `min..=max` characters, no control characters.
pub fn text(field: &str, v: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let v = v.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} must be {min} to {max} characters without control characters"
        )));
    }
    Ok(v.to_string())
}

/// `?limit=&cursor=` of a list.
pub struct Page {
    pub limit: i64,
    pub after: Option<String>,
}

/// `?limit=`: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
fn page_limit(q: &crate::http::Params) -> Result<i64, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))),
    }
}

pub fn page(req: &Request) -> Result<Page, ApiError> {
    let q = req.query_params();
    let limit = page_limit(&q)?;
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .ok_or_else(|| ApiError::bad_request("cursor is not one this API returned"))?,
        ),
    };
    Ok(Page { limit, after })
}

/// A page of items; rows were fetched with `limit + 1` to know if more follow.
pub fn page_response<T>(rows: Vec<T>, p: &Page, key: impl Fn(&T) -> String, item: impl Fn(&T) -> Value) -> Response {
    items_page(rows, p.limit, |r| URL_SAFE_NO_PAD.encode(key(r)), item)
}

/// The first `limit` rows as items, with the last one's cursor when more
/// follow (the rows were fetched with `limit + 1`).
fn items_page<T>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String, item: impl Fn(&T) -> Value) -> Response {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    let items: Vec<Value> = rows.iter().map(item).collect();
    Response::json(200, &json!({"items": items, "next_cursor": next}))
}

/// The outcome of a PUT or PATCH: the resource as it is (or would be), and
/// what changed. The same body twice: the second says `"changed": false`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub resource: Value,
    pub created: bool,
    /// Field → `{"from", "to"}` (secrets only as "set"/"replaced"/...).
    pub changes: Map<String, Value>,
    pub dry_run: bool,
    /// A generated secret, shown this once.
    pub secret: Option<String>,
}

impl Applied {
    pub fn new(resource: Value, created: bool, changes: Map<String, Value>, dry_run: bool) -> Self {
        Self {
            resource,
            created,
            changes,
            dry_run,
            secret: None,
        }
    }

    pub fn changed(&self) -> bool {
        self.created || !self.changes.is_empty()
    }

    pub fn response(self) -> Response {
        let status = if self.created && !self.dry_run { 201 } else { 200 };
        let changed = self.changed();
        let mut body = self.resource;
        body["created"] = self.created.into();
        body["changed"] = changed.into();
        body["changes"] = Value::Object(self.changes);
        if self.dry_run {
            body["dry_run"] = true.into();
        }
        if let Some(s) = self.secret {
            body["secret"] = s.into();
        }
        Response::json(status, &body)
    }
}

/// Record `from → to` under `field` when they differ.
pub fn diff(changes: &mut Map<String, Value>, field: &str, from: Value, to: Value) {
    if from != to {
        changes.insert(field.to_string(), json!({"from": from, "to": to}));
    }
}

pub fn note(org_id: Option<&str>, action: &'static str, detail: Value) -> AuditNote {
    AuditNote {
        org_id: org_id.map(str::to_string),
        action,
        detail,
    }
}

/// The answer to a DELETE.
pub fn deleted(dry_run: bool, mut detail: Value) -> Response {
    detail["deleted"] = (!dry_run).into();
    if dry_run {
        detail["dry_run"] = true.into();
        detail["changed"] = true.into();
    }
    Response::json(200, &detail)
}

/// `GET /admin/v1/audit`: what the platform did here, newest first.
async fn audit<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Result<Response, ApiError> {
    let q = req.query_params();
    let limit = page_limit(&q)?;
    let before = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request("cursor is not one this API returned"))?,
        ),
    };
    let rows = ctx.store.platform_audit_page(before, limit + 1).await?;
    Ok(items_page(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| {
            json!({
                "id": r.id, "org_id": r.org_id, "at": r.at, "action": r.action,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            })
        },
    ))
}

/// For optional fields that distinguish "absent" (keep) from `null` (clear).
pub fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
