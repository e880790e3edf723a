//! `POST /v1/webhooks/suppliers/{code}`: suppliers' signed event notifications.
//!
//! This first intake verifies the supplier's signature scheme and timestamp, then applies each
//! event to its booking through the state machine (idempotent: a repeat changes nothing) and
//! answers what the supplier expects. Unknown bookings and unmapped codes are refused with a
//! 4xx so the supplier delivers again later; nothing is lost.

use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::bookings::{self, Applied, Scope};
use domain::supplier::{InboundWebhook, WebhookError};
use domain::{BookingId, SupplierAdapter, SupplierCode};
use jobs::supplier::booking_event;

use crate::app::AppState;
use crate::error::{ApiError, Problem, method_not_allowed};
use crate::extract::RawBody;

/// Receive a supplier's webhook.
///
/// Signed per the supplier's scheme: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) for `jsonrest` and `sandbox`, `X-OTA-Timestamp` + `X-OTA-Signature` for
/// `ota`. The answer is the supplier's own success message.
#[utoipa::path(post, path = "/v1/webhooks/suppliers/{code}", tag = "webhooks",
    params(("code" = String, Path, description = "The supplier's code")),
    request_body(content = String, description = "The supplier's event, as it signed it", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Taken (the supplier's success message)"),
        (status = 400, description = "Malformed event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad signature or stale timestamp", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier or booking", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A code has no mapping yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn receive(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let code: SupplierCode = code.parse().map_err(|_| ApiError::NotFound("supplier"))?;
    let adapter = state.suppliers.get(&code).ok_or(ApiError::NotFound("supplier"))?;
    let webhook = InboundWebhook {
        headers: request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.0.to_vec(),
    };
    adapter.verify_webhook(&webhook, chrono::Utc::now()).map_err(refused)?;
    let events = adapter.parse_webhook(&webhook).map_err(refused)?;
    let translator = state.mappings.translator(&code).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    for event in &events {
        let id: BookingId = event
            .booking
            .client_reference
            .as_deref()
            .and_then(|r| r.parse().ok())
            .ok_or(ApiError::NotFound("booking"))?;
        let change = booking_event(&translator, &event.booking)
            .map_err(|unmapped| ApiError::Unprocessable { code: "unmapped_code", detail: unmapped.to_string() })?;
        match bookings::apply_event(&state.db, &Scope::All, &id, &change, |_| Vec::new()).await? {
            Applied::NotFound => return Err(ApiError::NotFound("booking")),
            Applied::Refused(refused, _) => {
                tracing::warn!(supplier = %code, booking.id = %id, error = %refused, "webhook event does not apply")
            }
            Applied::Changed(_) | Applied::Unchanged(_) => {}
        }
    }
    let ack = adapter.webhook_ack(&events);
    Ok(HttpResponse::Ok().content_type(ack.content_type).body(ack.body))
}

fn refused(error: WebhookError) -> ApiError {
    match error {
        WebhookError::Malformed(detail) => ApiError::bad_request("malformed_event", detail),
        other => ApiError::InvalidSignature(other.to_string()),
    }
}

pub fn scope() -> actix_web::Scope {
    web::scope("/webhooks/suppliers")
        .service(web::resource("/{code}").route(web::post().to(receive)).default_service(method_not_allowed("POST")))
}
