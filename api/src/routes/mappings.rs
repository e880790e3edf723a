//! `/v1/mappings`: staff set what a supplier's code means. Messages that waited for a mapping
//! (`needs_mapping`) are then requeued by a background job, in batches (`jobs::requeue`).

use actix_web::{HttpResponse, web};
use adapters::store::queue;
use adapters::store::webhooks;
use domain::SupplierCode;
use jobs::RequeueWaiting;
use mappings::{CodeKind, UpsertError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::routes::{Endpoint, Method};

#[derive(Debug, Deserialize, ToSchema)]
pub struct MappingRequest {
    /// bookhub's code of that kind, e.g. `DBL` (room type), `BB` (board), `confirmed` (status).
    #[schema(example = "DBL")]
    pub bookhub_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingView {
    pub supplier: String,
    pub kind: String,
    pub supplier_code: String,
    pub bookhub_code: String,
    /// Messages of this supplier waiting for a mapping when it was set; a background job
    /// queues them to be processed again.
    pub requeued_events: u64,
}

/// Set a supplier code's mapping (staff).
///
/// Creates or changes the row; then every message of this supplier waiting for a mapping is
/// processed again, queued by a background job in batches (the answer does not wait for it).
#[utoipa::path(put, path = "/v1/mappings/{supplier}/{kind}/{supplier_code}", tag = "mappings",
    params(
        ("supplier" = String, Path, description = "A configured supplier's code"),
        ("kind" = String, Path, description = "`room_type`, `board` or `status`"),
        ("supplier_code" = String, Path, description = "The supplier's own code"),
    ),
    request_body = MappingRequest,
    responses(
        (status = 200, body = MappingView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier or kind", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not one of bookhub's codes, a bad supplier code, or a field of the wrong type", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    path: web::Path<(String, String, String)>,
    body: JsonBody<MappingRequest>,
) -> Result<HttpResponse, ApiError> {
    let (supplier, kind, supplier_code) = path.into_inner();
    let code: SupplierCode = supplier.parse().map_err(|_| ApiError::NotFound("supplier"))?;
    if !state.suppliers.contains(&code) {
        return Err(ApiError::NotFound("supplier"));
    }
    let kind_code = kind.parse::<CodeKind>().map_err(|_| ApiError::NotFound("mapping kind"))?;
    if supplier_code.is_empty() || supplier_code.len() > 100 || supplier_code.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable {
            code: "invalid_code",
            detail: "a supplier code is 1 to 100 characters, none of them control characters".into(),
        });
    }
    let bookhub_code = body.parsed.bookhub_code.trim().to_owned();
    state.mappings.upsert(&code, kind_code, &supplier_code, &bookhub_code).await.map_err(|e| match e {
        UpsertError::UnknownBookhubCode => ApiError::Unprocessable {
            code: "unknown_code",
            detail: format!("{bookhub_code} is not one of bookhub's {kind} codes"),
        },
        UpsertError::Store(e) => ApiError::Internal(e.into()),
    })?;
    let waiting = webhooks::count_needing_mapping(&state.db, &code).await?;
    if waiting > 0 {
        let request = uuid::Uuid::new_v4().to_string();
        queue::push(state.db.pool(), &[RequeueWaiting::for_supplier(&code, &request)]).await?;
    }
    Ok(HttpResponse::Ok().json(MappingView { supplier, kind, supplier_code, bookhub_code, requeued_events: waiting }))
}

pub const ROUTES: &[Endpoint] = &[Endpoint {
    method: Method::Put,
    path: "/v1/mappings/{supplier}/{kind}/{supplier_code}",
    handler: || web::to(put),
}];
