//! `POST /v1/webhooks/suppliers/{code}`: suppliers' signed event notifications.
//!
//! Every request is logged (headers without credentials, the raw body, the verification
//! result). A verified message is deduplicated on (supplier, message id) and its processing job
//! queued in the same transaction as its log row; then the supplier gets its success answer.
//! No supplier, CRM or mail call happens inside the request.

use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::webhook_intake::VerifiedWebhook;
use adapters::store::webhooks::{self, ReceivedWebhook, Recorded, Verification};
use domain::supplier::{InboundWebhook, WebhookError};
use domain::{SupplierAdapter, SupplierCode, WebhookEventId};
use jobs::ProcessWebhook;

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::RawBody;
use crate::routes::{Endpoint, Method};

/// The longest supplier message id taken (it is a database key).
const MAX_MESSAGE_ID: usize = 200;

/// Receive a supplier's webhook.
///
/// Signed per the supplier's scheme: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) for `jsonrest` and `sandbox`, `X-OTA-Timestamp` + `X-OTA-Signature` for
/// `ota`. A verified message is taken once (a repeat is answered the same and not processed
/// again) and answered with the supplier's own success message.
#[utoipa::path(post, path = "/v1/webhooks/suppliers/{code}", tag = "webhooks",
    params(("code" = String, Path, description = "The supplier's code")),
    request_body(content = String, description = "The supplier's event, as it signed it", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Taken (the supplier's success message)"),
        (status = 400, description = "Malformed event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad signature, stale timestamp or missing headers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn receive(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
        .collect();
    let received = ReceivedWebhook {
        id: WebhookEventId::generate(),
        supplier: code.chars().take(64).collect(),
        request: InboundWebhook { headers, body: body.0.into() },
        received_at: adapters::store::now(),
    };
    let adapter = code.parse::<SupplierCode>().ok().and_then(|c| state.suppliers.get(&c));
    let Some(adapter) = adapter else {
        reject(&state, &received, Verification::UnknownSupplier, "no such supplier").await;
        return Err(ApiError::NotFound("supplier"));
    };
    let inbound = &received.request;
    let verified = adapter.verify_webhook(inbound, chrono::Utc::now()).and_then(|()| adapter.parse_webhook(inbound));
    let events = match verified {
        Ok(events) if !events.is_empty() => events,
        Ok(_) => return Err(refused(&state, &received, WebhookError::Malformed("no events".into())).await),
        Err(e) => return Err(refused(&state, &received, e).await),
    };
    let message_id = match adapter.message_id(&events) {
        Some(id) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID && !id.chars().any(char::is_control) => id,
        _ => {
            let error = WebhookError::Malformed(format!("the message id must be 1 to {MAX_MESSAGE_ID} characters"));
            return Err(refused(&state, &received, error).await);
        }
    };
    let job = ProcessWebhook::for_event(&received.id, 0);
    match state.webhook_intake.submit(VerifiedWebhook { received, message_id, job }).await? {
        Recorded::Queued => tracing::debug!(supplier = %adapter.code(), "webhook taken"),
        Recorded::Duplicate => {
            tracing::info!(supplier = %adapter.code(), "repeated webhook delivery; not processed again")
        }
    }
    let ack = adapter.webhook_ack(&events);
    Ok(HttpResponse::Ok().content_type(ack.content_type).body(ack.body))
}

/// Logs a refused request and answers 401 (signature, timestamp, headers) or 400 (malformed).
async fn refused(state: &AppState, received: &ReceivedWebhook, error: WebhookError) -> ApiError {
    let verification = match &error {
        WebhookError::MissingHeader(_) => Verification::MissingHeader,
        WebhookError::StaleTimestamp => Verification::StaleTimestamp,
        WebhookError::BadSignature => Verification::BadSignature,
        WebhookError::Malformed(_) => Verification::Malformed,
    };
    reject(state, received, verification, &error.to_string()).await;
    match error {
        WebhookError::Malformed(detail) => ApiError::bad_request("malformed_event", detail),
        other => ApiError::InvalidSignature(other.to_string()),
    }
}

/// Logs a refused request; the refusal is answered even when the log cannot be written.
async fn reject(state: &AppState, received: &ReceivedWebhook, verification: Verification, detail: &str) {
    if let Err(e) = webhooks::record_rejected(&state.db, received, verification, detail).await {
        tracing::error!(supplier = ?received.supplier, error = %e, "could not log a refused webhook");
    }
}

pub const ROUTES: &[Endpoint] =
    &[Endpoint { method: Method::Post, path: "/v1/webhooks/suppliers/{code}", handler: || web::to(receive) }];
