//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use crate::routes::{Endpoint, Method};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.db.ping().await.map_err(|e| ApiError::Unavailable(anyhow::Error::new(e).context("database")))?;
    let pending = state
        .db
        .pending_migrations()
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::Error::new(e).context("migrations")))?;
    if pending > 0 {
        return Err(ApiError::Unavailable(anyhow::anyhow!("{pending} migration(s) not applied")));
    }
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/healthz", handler: || web::to(healthz) },
    Endpoint { method: Method::Get, path: "/readyz", handler: || web::to(readyz) },
];
