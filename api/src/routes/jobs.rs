//! `/v1/jobs`: staff see dead jobs (retries exhausted, or given up) and retry them.

use actix_web::{HttpResponse, web};
use adapters::store::queue::{self, JobRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem, method_not_allowed};
use crate::pagination;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub data: Vec<JobView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct JobParams {
    /// `dead` (the only listing so far).
    pub status: String,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List dead jobs, newest first (staff).
#[utoipa::path(get, path = "/v1/jobs", tag = "operations", params(JobParams),
    responses(
        (status = 200, body = JobPage),
        (status = 400, description = "A status other than `dead`, a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a staff key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<JobParams>,
) -> Result<HttpResponse, ApiError> {
    caller.staff()?;
    if params.status != "dead" {
        return Err(ApiError::bad_request("invalid_status", "status must be `dead`"));
    }
    let limit = pagination::limit(params.limit)?;
    let after: Option<String> = params.cursor.as_deref().map(pagination::decode_cursor).transpose()?;
    let mut rows = queue::dead(state.db.pool(), after.as_deref(), limit as i64 + 1).await?;
    let next_cursor = adapters::store::next_page(&mut rows, limit, |j| pagination::encode_cursor(&j.id));
    Ok(HttpResponse::Ok().json(JobPage { data: rows.into_iter().map(JobView::from).collect(), next_cursor }))
}

/// Retry a dead job (staff): it gets a fresh set of attempts and runs as soon as a worker is free.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "operations",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 202, description = "Queued again"),
        (status = 403, description = "Not a staff key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No dead job with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.staff()?;
    if !queue::retry_dead(state.db.pool(), &id).await? {
        return Err(ApiError::NotFound("dead job"));
    }
    Ok(HttpResponse::Accepted().json(serde_json::json!({"id": id.as_str(), "status": "Pending"})))
}

pub fn scope() -> actix_web::Scope {
    web::scope("/jobs")
        .service(web::resource("").route(web::get().to(list)).default_service(method_not_allowed("GET")))
        .service(web::resource("/{id}/retry").route(web::post().to(retry)).default_service(method_not_allowed("POST")))
}
