//! `/v1/webhook-events`: staff read the webhook log (every supplier request, valid or not) and
//! replay a message.

use actix_web::{HttpResponse, web};
use adapters::store::webhooks::{self, EventStatus, Filter, PastOutcome, REPLAYABLE, Replay, WebhookEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use domain::WebhookEventId;
use jobs::ProcessWebhook;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::StaffCaller;
use crate::error::{ApiError, Problem};
use crate::pagination;
use crate::routes::{Endpoint, Method, Page, given};

/// A logged webhook request.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventView {
    #[schema(example = "whe_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub id: String,
    pub supplier: String,
    /// The supplier's message id (once verified).
    pub event_id: Option<String>,
    /// `verified`, `unknown_supplier`, `missing_header`, `stale_timestamp`, `bad_signature` or
    /// `malformed`.
    pub verification: String,
    #[schema(value_type = WebhookEventStatus)]
    pub status: String,
    pub detail: Option<String>,
    /// For `needs_mapping`: the codes without a mapping, as `{"kind", "code"}`.
    #[schema(value_type = Option<Object>)]
    pub missing_codes: Option<serde_json::Value>,
    pub booking_id: Option<String>,
    pub replays: i32,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The outcomes it had before each replay, oldest first; the current one is
    /// `status` / `detail`.
    pub previous_outcomes: Vec<PastOutcomeView>,
}

/// An outcome a message had before it was replayed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PastOutcomeView {
    #[schema(value_type = WebhookEventStatus)]
    pub status: String,
    pub detail: Option<String>,
    pub booking_id: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl From<&PastOutcome> for PastOutcomeView {
    fn from(o: &PastOutcome) -> Self {
        PastOutcomeView {
            status: o.status.to_string(),
            detail: o.detail.clone(),
            booking_id: o.booking_id.clone(),
            processed_at: o.processed_at,
        }
    }
}

impl From<&WebhookEvent> for WebhookEventView {
    fn from(e: &WebhookEvent) -> Self {
        WebhookEventView {
            id: e.id.to_string(),
            supplier: e.supplier.clone(),
            event_id: e.event_id.clone(),
            verification: e.verification.to_string(),
            status: e.status.to_string(),
            detail: e.detail.clone(),
            missing_codes: e.missing_codes.clone(),
            booking_id: e.booking_id.clone(),
            replays: e.replays,
            received_at: e.received_at,
            processed_at: e.processed_at,
            previous_outcomes: e.previous_outcomes.iter().map(PastOutcomeView::from).collect(),
        }
    }
}

/// Where a logged request stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventStatus {
    Rejected,
    Duplicate,
    Queued,
    Applied,
    Parked,
    NeedsMapping,
    Ignored,
}

/// A logged request with its headers (only an allowlist of names, never credentials) and raw
/// body.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventDetail {
    #[serde(flatten)]
    pub event: WebhookEventView,
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// The body as received: text when it is UTF-8, else base64 (see `body_encoding`).
    pub body: String,
    /// `utf-8` or `base64`.
    pub body_encoding: &'static str,
}

impl From<WebhookEvent> for WebhookEventDetail {
    fn from(e: WebhookEvent) -> Self {
        let (body, body_encoding) = match String::from_utf8(e.body.clone()) {
            Ok(text) => (text, "utf-8"),
            Err(_) => (STANDARD.encode(&e.body), "base64"),
        };
        WebhookEventDetail { event: WebhookEventView::from(&e), headers: e.headers, body, body_encoding }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WebhookEventParams {
    /// A supplier's code; empty means any.
    #[param(max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub supplier: Option<String>,
    /// Only requests in this status; empty means any.
    #[param(value_type = Option<WebhookEventStatus>)]
    pub status: Option<String>,
    /// Received at or after (RFC 3339).
    pub received_from: Option<DateTime<Utc>>,
    /// Received before (RFC 3339).
    pub received_to: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List logged webhook requests, newest first (staff).
#[utoipa::path(get, path = "/v1/webhook-events", tag = "webhooks", params(WebhookEventParams),
    responses(
        (status = 200, body = Page<WebhookEventView>),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    params: web::Query<WebhookEventParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let status = given(&params.status)
        .map(|s| s.parse::<EventStatus>().map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}"))))
        .transpose()?;
    let supplier = given(&params.supplier);
    if supplier.is_some_and(|s| s.len() > 64 || s.chars().any(char::is_control)) {
        return Err(ApiError::bad_request("invalid_supplier", "supplier: not a supplier code"));
    }
    let filter = Filter {
        supplier: supplier.map(str::to_owned),
        status,
        received_from: params.received_from,
        received_to: params.received_to,
    };
    let after: Option<WebhookEventId> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let (events, next) = webhooks::page(&state.db, &filter, after.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        data: events.iter().map(WebhookEventView::from).collect(),
        next_cursor: next.map(|id| pagination::encode_cursor(id.as_str())),
    }))
}

/// One logged webhook request, with its headers and raw body (staff).
#[utoipa::path(get, path = "/v1/webhook-events/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "`whe_…`")),
    responses(
        (status = 200, body = WebhookEventDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: WebhookEventId = id.parse().map_err(|_| ApiError::NotFound("webhook event"))?;
    let event = webhooks::find(&state.db, &id).await?.ok_or(ApiError::NotFound("webhook event"))?;
    Ok(HttpResponse::Ok().json(WebhookEventDetail::from(event)))
}

/// Process a logged message again (staff).
///
/// Queues its processing job anew for any message that was taken: waiting (`parked`,
/// `needs_mapping`, `queued`) or finished (`applied`, `ignored`, e.g. after a fix). The state
/// machine is idempotent and order-tolerant, so a replay of an applied event changes nothing;
/// the outcome it had is kept in `previous_outcomes` and the replay's becomes its status. A
/// rejected request or a duplicate was never taken, and a queued one has its job coming (a dead
/// job is retried at `/v1/jobs`): neither can be replayed (409 `not_replayable`); a replay that races with its job finishing or another replay answers 409
/// `concurrent_update`.
#[utoipa::path(post, path = "/v1/webhook-events/{id}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "`whe_…`")),
    responses(
        (status = 202, description = "Queued for processing", body = WebhookEventView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Never taken (rejected or duplicate), already queued, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn replay(
    state: web::Data<AppState>,
    _caller: StaffCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: WebhookEventId = id.parse().map_err(|_| ApiError::NotFound("webhook event"))?;
    match webhooks::replay(&state.db, &id, &REPLAYABLE, |n| ProcessWebhook::for_event(&id, n)).await? {
        Replay::NotFound => Err(ApiError::NotFound("webhook event")),
        Replay::NotReplayable(event) => Err(ApiError::Conflict {
            code: "not_replayable",
            detail: match event.status {
                EventStatus::Queued => {
                    "this request is queued already; its job runs it (retry a dead job at /v1/jobs)".into()
                }
                status => format!("a {status} request was never taken and cannot be replayed"),
            },
        }),
        Replay::Queued(event) => Ok(HttpResponse::Accepted().json(WebhookEventView::from(&event))),
    }
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/webhook-events", handler: || web::to(list) },
    Endpoint { method: Method::Get, path: "/v1/webhook-events/{id}", handler: || web::to(get) },
    Endpoint { method: Method::Post, path: "/v1/webhook-events/{id}/replay", handler: || web::to(replay) },
];
