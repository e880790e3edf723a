//! One error type for the whole API, answered as RFC 9457 `application/problem+json` with a
//! stable `code` (and `type` built from it). 5xx answers never carry internals: those are
//! logged once, here, where they are handled.
//!
//! # Error policy, per layer
//!
//! | layer | error type | logs? |
//! |---|---|---|
//! | `domain` | one small `thiserror` enum per rule set (`FieldError`, `TransitionError`, `SupplierError`) | never: it has no IO |
//! | `adapters` | `thiserror` enums that keep their cause as a value (`StoreError`, `QueueError`, `SupplierError` from the adapters) | only what it absorbs itself (a retry, a breaker trip), never what it returns |
//! | `mappings` | `MappingError`, `UpsertError` | never |
//! | `jobs` | `JobError`, keeping the `SupplierError` or `StoreError` itself | once, where the worker settles the job, with the whole chain (`jobs::supplier::chain`) |
//! | `api` | [`ApiError`] | once, here: 5xx with the cause chain (`{:#}`), 4xx not at all (the access log has them) |
//! | the binary | `anyhow` | once, at exit |
//!
//! The client sees a stable `code` chosen by variant (as is `Retry-After`), never a cause's text
//! for a 5xx. Causes are `anyhow::Error` or typed values, never strings: the log keeps all of it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use adapters::store::StoreError;
use domain::{FieldError, FieldErrors};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("this API key has expired; ask for a new one")]
    KeyExpired,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this resource does not take that method; it takes {0}")]
    MethodNotAllowed(&'static str),
    #[error("the request breaks {}{} rule(s); see `errors`", .0.errors.len(), if .0.truncated { " or more" } else { "" })]
    Validation(FieldErrors),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String, errors: Vec<FieldError> },
    #[error("this request creates a resource and needs an `Idempotency-Key` header")]
    MissingIdempotencyKey,
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyKeyInFlight,
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Someone else changed the resource between our read and our write; a retry is safe.
    #[error("the {resource} changed meanwhile; try again")]
    ConcurrentUpdate { resource: &'static str },
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    #[error("the webhook's signature does not verify: {0}")]
    InvalidSignature(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body must be JSON (`Content-Type: application/json`)")]
    UnsupportedMediaType,
    #[error("the request body must be CSV (`Content-Type: text/csv`)")]
    NotCsv,
    /// A CSV import refused as a whole, with every row's problem.
    #[error("{0}; see `row_errors`; nothing was changed")]
    CsvRejected(mappings::csv::CsvRejected),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The cause is logged, never answered.
    #[error("too many requests for this API key; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64, status: crate::rate_limit::RateLimitStatus },
    /// Too many failed authentications from this address.
    #[error("too many failed authentications from this address; retry after {retry_after_secs} s")]
    AuthRateLimited { retry_after_secs: u64 },
    /// The database or a dependency cannot be reached: 503 with `Retry-After`. The cause is logged.
    #[error("the service is not ready; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected state: 500. The cause is logged, never answered.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::KeyExpired => "key_expired",
            ApiError::AuthRateLimited { .. } => "rate_limited",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Validation(_) => "validation_failed",
            ApiError::ConcurrentUpdate { .. } => "concurrent_update",
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::MissingIdempotencyKey => "idempotency_key_missing",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType | ApiError::NotCsv => "unsupported_media_type",
            ApiError::CsvRejected(_) => "invalid_csv",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { code, detail: detail.into(), errors: Vec::new() }
    }
}

/// The problem document (RFC 9457) every error answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:bookhub:problem:<code>`; stable, safe to branch on.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The same stable code as in `type`.
    pub code: String,
    /// Each broken rule with the JSON path of its field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<ProblemFieldError>)]
    pub errors: Vec<FieldError>,
    /// For a refused CSV import: each problem with its row (the header is row 1) and column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<ProblemRowError>)]
    pub row_errors: Vec<mappings::csv::RowError>,
    /// `true` when more rules were broken than `errors` (or `row_errors`) lists.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A CSV row that broke a rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemRowError {
    /// The row as a spreadsheet numbers it: the header is row 1.
    pub row: u64,
    /// The column's name; absent for a problem with the whole row.
    pub column: Option<String>,
    pub code: String,
    pub reason: String,
}

/// A field that broke a rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemFieldError {
    /// JSON path, such as `rooms[0].guests[0].email`.
    pub field: String,
    pub code: String,
    pub message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::KeyExpired | ApiError::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_)
            | ApiError::IdempotencyKeyReused
            | ApiError::Unprocessable { .. }
            | ApiError::CsvRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } | ApiError::MissingIdempotencyKey | ApiError::MalformedJson(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IdempotencyKeyInFlight | ApiError::Conflict { .. } | ApiError::ConcurrentUpdate { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType | ApiError::NotCsv => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::AuthRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = self {
            tracing::error!(error.cause = format!("{cause:#}"), error.code = self.code(), "request failed");
        }
        let (errors, truncated) = match self {
            ApiError::Validation(e) => (e.errors.clone(), e.truncated),
            ApiError::BadRequest { errors, .. } => (errors.clone(), false),
            ApiError::CsvRejected(e) => (Vec::new(), e.truncated),
            _ => (Vec::new(), false),
        };
        let row_errors = match self {
            ApiError::CsvRejected(e) => e.errors.clone(),
            _ => Vec::new(),
        };
        let problem = Problem {
            type_: format!("urn:bookhub:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
            errors,
            row_errors,
            truncated,
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            ApiError::IdempotencyKeyInFlight | ApiError::ConcurrentUpdate { .. } | ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::RateLimited { retry_after_secs, .. } | ApiError::AuthRateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, *retry_after_secs));
            }
            _ => {}
        }
        let mut response = response.body(serde_json::to_string(&problem).expect("problems serialise"));
        if let ApiError::RateLimited { status, .. } = self {
            status.write_headers(response.headers_mut());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { resource } => ApiError::ConcurrentUpdate { resource },
            e if e.is_unavailable() => ApiError::Unavailable(e.into()),
            e => ApiError::Internal(e.into()),
        }
    }
}

impl From<mappings::MappingError> for ApiError {
    fn from(e: mappings::MappingError) -> Self {
        match e {
            // Through the store's rule: an unreachable database is 503, anything else 500.
            mappings::MappingError::Db(e) => StoreError::Orm(e).into(),
            e @ mappings::MappingError::Corrupt { .. } => ApiError::Internal(e.into()),
        }
    }
}

impl From<mappings::EditError> for ApiError {
    fn from(e: mappings::EditError) -> Self {
        match e {
            mappings::EditError::Conflict(_) => ApiError::Conflict { code: "outbound_conflict", detail: e.to_string() },
            mappings::EditError::Store(e) => e.into(),
        }
    }
}

/// `default_service` for a resource: answers 405 naming the methods it does take.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::route().to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn answer(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().try_into_bytes().unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn a_concurrent_update_names_its_resource_and_asks_for_a_retry() {
        let (status, retry_after, problem) = answer(StoreError::Conflict { resource: "webhook event" }.into());
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(problem["code"], "concurrent_update");
        assert_eq!(problem["detail"], "the webhook event changed meanwhile; try again");
    }

    #[test]
    fn an_unreachable_database_is_503_and_a_bug_is_500_without_its_cause() {
        let (status, retry_after, problem) = answer(StoreError::Sqlx(sqlx::Error::PoolTimedOut).into());
        assert_eq!((status, retry_after.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("1")));
        assert_eq!(problem["code"], "unavailable");

        let corrupt = StoreError::corrupt("bookings/bk_1".into(), "secret guest data in the cause");
        let (status, retry_after, problem) = answer(corrupt.into());
        assert_eq!((status, retry_after), (StatusCode::INTERNAL_SERVER_ERROR, None));
        assert!(!problem.to_string().contains("secret"), "{problem}");
    }

    #[test]
    fn other_conflicts_do_not_ask_for_a_retry() {
        let (status, retry_after, _) =
            answer(ApiError::Conflict { code: "not_cancellable", detail: "already cancelled".into() });
        assert_eq!((status, retry_after), (StatusCode::CONFLICT, None));
    }
}
