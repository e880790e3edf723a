//! Liveness and readiness, for load balancers and orchestrators. Readiness costs two queries,
//! so its answer is reused for a second: probes (and floods) of `/readyz` cost at most two
//! queries a second per process.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a readiness answer is reused.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last readiness answer: when it was found, and why not ready (`None`: ready).
#[derive(Debug, Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Option<String>)>>,
}

impl Readiness {
    fn cached(&self) -> Option<Option<String>> {
        let last = self.last.lock().expect("readiness lock");
        last.as_ref().filter(|(at, _)| at.elapsed() < READINESS_TTL).map(|(_, answer)| answer.clone())
    }

    fn store(&self, answer: Option<String>) {
        *self.last.lock().expect("readiness lock") = Some((Instant::now(), answer));
    }
}

/// Why the database is not ready, or `None` when it is.
async fn check(state: &AppState) -> Option<String> {
    if let Err(e) = state.db.ping().await {
        return Some(format!("{:#}", anyhow::Error::new(e).context("database")));
    }
    match state.db.pending_migrations().await {
        Err(e) => Some(format!("{:#}", anyhow::Error::new(e).context("migrations"))),
        Ok(0) => None,
        Ok(pending) => Some(format!("{pending} migration(s) not applied")),
    }
}

/// Readiness: the database answers and every migration is applied (checked at most once a
/// second; later calls within it get the same answer).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let answer = match state.readiness.cached() {
        Some(answer) => answer,
        None => {
            let answer = check(&state).await;
            state.readiness.store(answer.clone());
            answer
        }
    };
    match answer {
        Some(why) => Err(ApiError::Unavailable(anyhow::anyhow!(why))),
        None => Ok(HttpResponse::Ok().json(Health { status: "ok" })),
    }
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/healthz", handler: || web::to(healthz) },
    Endpoint { method: Method::Get, path: "/readyz", handler: || web::to(readyz) },
];
