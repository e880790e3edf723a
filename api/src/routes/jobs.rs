//! `/v1/jobs`: staff see dead jobs (retries exhausted, or given up) and retry them.

use actix_web::{HttpResponse, web};
use adapters::store::queue::{self, JobRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::pagination;
use crate::routes::{Endpoint, Method, Page, given};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// The queue, e.g. `bookhub.submit_booking`.
    pub queue: String,
    /// The queue's own status (`Killed`, `Failed`).
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The last run's result (an error message).
    pub last_result: Option<String>,
}

impl From<JobRow> for JobView {
    fn from(j: JobRow) -> Self {
        JobView {
            id: j.id,
            queue: j.queue,
            status: j.status,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            last_result: j.last_result,
        }
    }
}

/// A job queued again.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRetried {
    pub id: String,
    /// `Pending`.
    pub status: &'static str,
}

/// The jobs a listing shows.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobListStatus {
    Dead,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct JobParams {
    /// `dead` (the only listing so far).
    #[param(value_type = JobListStatus)]
    pub status: String,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List dead jobs, newest first (staff).
#[utoipa::path(get, path = "/v1/jobs", tag = "operations", params(JobParams),
    responses(
        (status = 200, body = Page<JobView>),
        (status = 400, description = "A status other than `dead`, a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    params: web::Query<JobParams>,
) -> Result<HttpResponse, ApiError> {
    if params.status != "dead" {
        return Err(ApiError::bad_request("invalid_status", "status must be `dead`"));
    }
    let limit = pagination::limit(params.limit)?;
    let after: Option<String> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let mut rows = queue::dead(state.db.pool(), after.as_deref(), limit as i64 + 1).await?;
    let next_cursor = adapters::store::next_page(&mut rows, limit, |j| pagination::encode_cursor(&j.id));
    Ok(HttpResponse::Ok().json(Page { data: rows.into_iter().map(JobView::from).collect(), next_cursor }))
}

/// Retry a dead job (staff): it gets a fresh set of attempts and runs as soon as a worker is free.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "operations",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 202, description = "Queued again", body = JobRetried),
        (status = 404, description = "No dead job with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !queue::retry_dead(state.db.pool(), &id).await? {
        return Err(ApiError::NotFound("dead job"));
    }
    Ok(HttpResponse::Accepted().json(JobRetried { id: id.into_inner(), status: "Pending" }))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/jobs", handler: || web::to(list) },
    Endpoint { method: Method::Post, path: "/v1/jobs/{id}/retry", handler: || web::to(retry) },
];
