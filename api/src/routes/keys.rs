//! `/v1/keys`: admins list, create and revoke API keys; an agency key rotates itself. A key's
//! secret is answered once, when it is created; listings never show it or its hash.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use adapters::store::agencies;
use adapters::store::api_keys::{self, ApiKeyRecord, NewKey, Role};
use chrono::{DateTime, Utc};
use domain::validation::FieldErrors;
use domain::{AgencyId, ApiKeyId, FieldError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::{self, AdminCaller, AgencyCaller};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::pagination;
use crate::routes::{Endpoint, Method, Page, given};

/// The longest a rotated key keeps working beside its successor.
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);
/// The grace when none is asked for.
const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// A key's role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleCode {
    Agency,
    Staff,
    Finance,
    Admin,
}

/// An API key as listed: never its secret nor its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    #[schema(example = "key_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub id: String,
    #[schema(value_type = RoleCode)]
    pub role: String,
    /// The agency, for agency keys.
    pub agency_id: Option<String>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Recorded at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRecord> for KeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        KeyView {
            id: k.id.to_string(),
            role: k.role.to_string(),
            agency_id: k.agency_id.as_ref().map(ToString::to_string),
            label: k.label.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created, with its secret: shown this once. `Debug` hides the secret.
#[derive(Serialize, ToSchema)]
pub struct IssuedKey {
    /// The secret, `bkh_…`: send it as `Authorization: Bearer <api_key>`.
    pub api_key: String,
    pub key: KeyView,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey").field("key", &self.key).finish_non_exhaustive()
    }
}

/// A key to create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRequest {
    #[schema(required = true, value_type = RoleCode)]
    pub role: String,
    /// Required for `agency` keys, refused for the others.
    #[schema(value_type = Option<String>, example = "ag_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub agency_id: Option<String>,
    /// What the key is for: at most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub label: Option<String>,
    /// A lifetime such as `90d` (at most 10 years); not with `expires_at`.
    #[schema(example = "90d")]
    pub expires_in: Option<String>,
    /// A moment in the future; not with `expires_in`.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RotateParams {
    /// How long the old key keeps working: a number and a unit (`s`, `m`, `h`, `d`), such as
    /// `0s`, `1h` or `7d`; default `7d`, at most `30d`.
    #[param(example = "7d", pattern = r"^[0-9]+(s|m|h|d)$")]
    pub grace: Option<String>,
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), code, message: message.into() }
}

/// A humantime duration (`90d`, `12h`) as a chrono one, within `max`.
pub fn parse_duration(text: &str, max: Duration) -> Result<chrono::Duration, String> {
    let duration = humantime_serde::re::humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > max {
        return Err(format!("at most {}", humantime_serde::re::humantime::format_duration(max)));
    }
    chrono::Duration::from_std(duration).map_err(|e| e.to_string())
}

/// A grace as the spec writes it: digits and one unit (`s`, `m`, `h`, `d`), at most 30 days.
fn parse_grace(text: &str) -> Result<chrono::Duration, String> {
    let shape = "a number and a unit (s, m, h, d), such as 7d";
    let split = text.len().checked_sub(1).filter(|&at| at > 0 && text.is_char_boundary(at)).ok_or(shape)?;
    let (digits, unit) = text.split_at(split);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(shape.into());
    }
    let n: u64 = digits.parse().map_err(|_| shape)?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(shape.into()),
    };
    let secs = n.checked_mul(unit_secs).filter(|&s| s <= MAX_GRACE.as_secs()).ok_or("at most 30d")?;
    Ok(chrono::Duration::seconds(secs as i64))
}

/// A key request, checked: every broken rule at once.
async fn parse_request(
    state: &AppState,
    r: &KeyRequest,
) -> Result<(Role, Option<AgencyId>, Option<DateTime<Utc>>), ApiError> {
    let mut errors = Vec::new();
    let role = r.role.parse::<Role>().map_err(|e| errors.push(invalid("role", "invalid_role", e.to_string()))).ok();
    let agency = match r.agency_id.as_deref().map(str::parse::<AgencyId>).transpose() {
        Ok(agency) => agency,
        Err(e) => {
            errors.push(invalid("agency_id", "invalid_id", e.to_string()));
            None
        }
    };
    match (role, &agency, &r.agency_id) {
        (Some(Role::Agency), None, None) => {
            errors.push(invalid("agency_id", "required", "agency keys need an agency_id"))
        }
        (Some(Role::Staff | Role::Finance | Role::Admin), _, Some(_)) => {
            errors.push(invalid("agency_id", "not_allowed", "only agency keys belong to an agency"))
        }
        (Some(Role::Agency), Some(id), _) if agencies::find(&state.db, id).await?.is_none() => {
            errors.push(invalid("agency_id", "unknown_agency", format!("no agency {id}")))
        }
        _ => {}
    }
    if let Some(label) = &r.label
        && (label.chars().count() > 200 || label.chars().any(char::is_control))
    {
        errors.push(invalid("label", "invalid_label", "at most 200 characters, no control characters"));
    }
    let now = Utc::now();
    let expires_at = match (&r.expires_in, r.expires_at) {
        (Some(_), Some(_)) => {
            errors.push(invalid("expires_in", "conflicting", "give expires_in or expires_at, not both"));
            None
        }
        (Some(text), None) => {
            match parse_duration(text, crate::auth::MAX_KEY_LIFETIME.to_std().expect("a positive lifetime")) {
                Ok(lifetime) if lifetime > chrono::Duration::zero() => Some(now + lifetime),
                Ok(_) => {
                    errors.push(invalid("expires_in", "invalid_duration", "must be more than 0"));
                    None
                }
                Err(e) => {
                    errors.push(invalid("expires_in", "invalid_duration", e));
                    None
                }
            }
        }
        (None, Some(at)) if at <= now => {
            errors.push(invalid("expires_at", "in_the_past", "must be in the future"));
            None
        }
        (None, Some(at))
            if at.checked_sub_signed(crate::auth::MAX_KEY_LIFETIME).is_some_and(|t| t > adapters::store::now()) =>
        {
            errors.push(invalid("expires_at", "too_late", "must be within 10 years"));
            None
        }
        (None, at) => at,
    };
    match role {
        Some(role) if errors.is_empty() => Ok((role, agency, expires_at)),
        _ => Err(ApiError::Validation(FieldErrors { errors, truncated: false })),
    }
}

/// List API keys, newest first (admin). Never shows a key's secret or hash.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(ListParams),
    responses(
        (status = 200, body = Page<KeyView>),
        (status = 400, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let after: Option<ApiKeyId> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let mut keys = api_keys::list(&state.db, after.as_ref(), limit).await?;
    let next_cursor = adapters::store::next_page(&mut keys, limit, |k| pagination::encode_cursor(k.id.as_str()));
    Ok(HttpResponse::Ok().json(Page { data: keys.iter().map(KeyView::from).collect(), next_cursor }))
}

/// Create an API key (admin); its secret is answered this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyRequest,
    responses(
        (status = 201, description = "Created; `api_key` is shown only now", body = IssuedKey),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    body: JsonBody<KeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = &body.parsed;
    let (role, agency, expires_at) = parse_request(&state, request).await?;
    let new = NewKey { role, agency_id: agency.as_ref(), label: request.label.as_deref(), expires_at };
    let (api_key, record) = auth::issue(&state.db, &new).await?;
    Ok(HttpResponse::Created().json(IssuedKey { api_key, key: KeyView::from(&record) }))
}

/// Revoke an API key (admin). Every bookhub process refuses it within
/// `rate_limit.key_cache_ttl` (5 s at most); this one at once. Revoking again changes nothing.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys",
    params(("id" = String, Path, description = "The key's id, `key_…`")),
    responses(
        (status = 200, description = "Revoked", body = KeyView),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn revoke(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = id.parse().map_err(|_| ApiError::NotFound("key"))?;
    let key = api_keys::revoke(&state.db, &id, adapters::store::now()).await?.ok_or(ApiError::NotFound("key"))?;
    state.keys.forget(&id);
    Ok(HttpResponse::Ok().json(KeyView::from(&key)))
}

/// Rotate the calling agency key: answers a new key (same role, agency and label), shown this
/// once; the calling key keeps working until the grace period ends.
#[utoipa::path(post, path = "/v1/keys/self/rotate", tag = "keys", params(RotateParams),
    responses(
        (status = 200, description = "The new key; the old one expires after the grace period", body = IssuedKey),
        (status = 400, description = "A grace that is not a duration, or longer than 30 days", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This key was already rotated (use its successor): a key has one successor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn rotate_self(
    state: web::Data<AppState>,
    caller: AgencyCaller,
    params: web::Query<RotateParams>,
) -> Result<HttpResponse, ApiError> {
    let grace = match given(&params.grace) {
        None => chrono::Duration::from_std(DEFAULT_GRACE).map_err(|e| ApiError::Internal(e.into()))?,
        Some(text) => parse_grace(text).map_err(|e| ApiError::bad_request("invalid_grace", format!("grace: {e}")))?,
    };
    let old = &caller.caller.0;
    let (api_key, record) = auth::rotate(&state.db, old, grace).await.map_err(|e| match e {
        auth::RotateError::Store(e) => e.into(),
        refused => ApiError::Conflict { code: "not_rotatable", detail: refused.to_string() },
    })?;
    state.keys.forget(&old.id);
    Ok(HttpResponse::Ok().json(IssuedKey { api_key, key: KeyView::from(&record) }))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/keys", handler: || web::to(list) },
    Endpoint { method: Method::Post, path: "/v1/keys", handler: || web::to(create) },
    Endpoint { method: Method::Post, path: "/v1/keys/{id}/revoke", handler: || web::to(revoke) },
    Endpoint { method: Method::Post, path: "/v1/keys/self/rotate", handler: || web::to(rotate_self) },
];
