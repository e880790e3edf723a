//! `/v1/suppliers`: staff see each supplier's protocol and health (circuit breaker and recent
//! failures).

use actix_web::{HttpResponse, web};
use adapters::suppliers::registry::SupplierKind;
use adapters::suppliers::resilience::{BreakerState, SupplierHealth};
use chrono::{DateTime, Utc};
use domain::SupplierCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::routes::{Endpoint, Method};

/// A supplier and how its calls have been going in this process.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplierView {
    #[schema(example = "jsonrest")]
    pub code: String,
    /// `jsonrest`, `ota` or `sandbox`.
    pub kind: &'static str,
    pub health: HealthView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `closed` (calls flow), `open` (calls fail fast without touching the network) or
    /// `half_open` (after the cool-down: calls go through again; the first success closes it, a
    /// failure opens it again).
    #[schema(example = "closed")]
    pub breaker: &'static str,
    /// Transient failures since the last success.
    pub consecutive_failures: u32,
    /// Transient failures in the last five minutes.
    pub recent_failures: u32,
    /// Calls refused by the open breaker.
    pub rejected_calls: u64,
    pub calls: u64,
    pub failures: u64,
    /// Calls (each try) and failures in the last 60 minutes.
    pub calls_last_hour: u64,
    pub failures_last_hour: u64,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_failure: Option<String>,
}

impl From<SupplierHealth> for HealthView {
    fn from(h: SupplierHealth) -> Self {
        HealthView {
            breaker: match h.breaker {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half_open",
            },
            consecutive_failures: h.consecutive_failures,
            recent_failures: h.recent_failures,
            rejected_calls: h.rejected_calls,
            calls: h.calls,
            failures: h.failures,
            calls_last_hour: h.calls_last_hour,
            failures_last_hour: h.failures_last_hour,
            last_failure_at: h.last_failure_at,
            last_failure: h.last_failure,
        }
    }
}

fn view((code, kind, health): (SupplierCode, SupplierKind, SupplierHealth)) -> SupplierView {
    SupplierView { code: code.to_string(), kind: kind.as_str(), health: health.into() }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupplierList {
    pub data: Vec<SupplierView>,
}

/// List the configured suppliers with their health (staff).
#[utoipa::path(get, path = "/v1/suppliers", tag = "suppliers",
    responses(
        (status = 200, body = SupplierList),
    ),
    security(("api_key" = [])))]
pub async fn list(state: web::Data<AppState>, _caller: StaffCaller) -> Result<HttpResponse, ApiError> {
    let data = state.suppliers.health().into_iter().map(view).collect();
    Ok(HttpResponse::Ok().json(SupplierList { data }))
}

/// One supplier's health (staff).
#[utoipa::path(get, path = "/v1/suppliers/{code}/health", tag = "suppliers",
    params(("code" = String, Path, description = "The supplier's code")),
    responses(
        (status = 200, body = SupplierView),
        (status = 404, description = "No such supplier", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn health(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code: SupplierCode = code.parse().map_err(|_| ApiError::NotFound("supplier"))?;
    let (kind, health) = state.suppliers.health_of(&code).ok_or(ApiError::NotFound("supplier"))?;
    Ok(HttpResponse::Ok().json(view((code, kind, health))))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/suppliers", handler: || web::to(list) },
    Endpoint { method: Method::Get, path: "/v1/suppliers/{code}/health", handler: || web::to(health) },
];
