//! `/v1/events`: the agency's feed of booking changes, oldest first, and each event's delivery
//! attempts — the REST half of "webhook to know, REST to fetch". An agency that missed
//! webhooks reads on from its last cursor. An agency sees its own events; staff see all.

use actix_web::{HttpResponse, web};
use adapters::store::agency_events::{self, AgencyEvent, AttemptRecord, EventScope};
use adapters::store::bookings::Scope;
use chrono::{DateTime, Utc};
use domain::AgencyEventId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::BookingAccess;
use crate::error::{ApiError, Problem};
use crate::pagination;
use crate::routes::bookings::BookingView;
use crate::routes::{Endpoint, Method, Page, given};

/// One change of a booking, as the feed lists it and as its webhook delivers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`; the `webhook-id` of its deliveries, so a receiver can drop a repeat.
    #[schema(example = "evt_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeCode)]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// The booking right after the change, as `GET /v1/bookings/{id}` showed it then.
    pub data: BookingView,
}

/// The kinds of change.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum EventTypeCode {
    #[serde(rename = "booking.confirmed")]
    Confirmed,
    #[serde(rename = "booking.rejected")]
    Rejected,
    #[serde(rename = "booking.failed")]
    Failed,
    #[serde(rename = "booking.cancelled")]
    Cancelled,
    #[serde(rename = "booking.modified")]
    Modified,
    #[serde(rename = "booking.cancellation_pending")]
    CancellationPending,
}

impl From<&AgencyEvent> for EventView {
    fn from(e: &AgencyEvent) -> Self {
        EventView {
            id: e.id.to_string(),
            event_type: e.event_type.to_string(),
            created_at: e.created_at,
            data: BookingView::from(&e.booking),
        }
    }
}

/// The bytes an event's webhook carries: the same JSON the feed lists.
pub fn webhook_body(event: &AgencyEvent) -> Vec<u8> {
    serde_json::to_vec(&EventView::from(event)).expect("an event serialises to JSON")
}

/// The events a caller may see: its agency's, or all of them for staff.
fn scope(access: &BookingAccess) -> EventScope {
    match &access.scope {
        Scope::Agency(agency) => EventScope::Agency(agency.clone()),
        Scope::All => EventScope::All,
        // Not a caller's scope; nothing is shown rather than everything.
        Scope::Supplier(_) => EventScope::None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedParams {
    /// The `next_cursor` of the previous page; absent for the oldest events.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

/// List booking events, oldest first.
///
/// Pass the answer's `next_cursor` as `after` to read on; on the last page `next_cursor` is the
/// cursor to poll with for later events (it is `null` only when there are no events at all).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(FeedParams),
    responses(
        (status = 200, body = Page<EventView>),
        (status = 400, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    access: BookingAccess,
    params: web::Query<FeedParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let after: Option<i64> = given(&params.after).map(pagination::decode_cursor).transpose()?;
    let (events, next) = agency_events::feed(&state.db, &scope(&access), after, limit).await?;
    // The last page still hands out where it ended, so a poller never starts over.
    let next = next.or_else(|| events.last().map(|e| e.seq)).or(after);
    Ok(HttpResponse::Ok().json(Page {
        data: events.iter().map(EventView::from).collect(),
        next_cursor: next.map(|seq| pagination::encode_cursor(&seq.to_string())),
    }))
}

/// One delivery attempt of an event's webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the first try.
    pub attempt: i32,
    /// `scheduled` (the first try and the retries) or `manual` (a resend or recover).
    #[schema(example = "scheduled")]
    pub trigger: String,
    pub url: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// The first 4 KiB of the answer's body.
    pub response: String,
    /// Why no answer came (a timeout, a refused address, …).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        AttemptView {
            attempt: a.attempt,
            trigger: a.trigger.as_str().to_owned(),
            url: a.url,
            status: a.status,
            duration_ms: a.duration_ms,
            response: a.response_head,
            error: a.error,
            created_at: a.created_at,
        }
    }
}

/// The event's delivery and its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempts {
    pub event_id: String,
    /// `pending`, `delivered`, `failed`, `superseded` (a newer change of the booking was
    /// delivered instead) or `no_endpoint`.
    #[schema(example = "delivered")]
    pub delivery: String,
    pub data: Vec<AttemptView>,
}

async fn find(state: &AppState, access: &BookingAccess, id: &str) -> Result<AgencyEvent, ApiError> {
    let id: AgencyEventId = id.parse().map_err(|_| ApiError::NotFound("event"))?;
    agency_events::find(&state.db, &scope(access), &id).await?.ok_or(ApiError::NotFound("event"))
}

/// List an event's webhook attempts, oldest first.
#[utoipa::path(get, path = "/v1/events/{id}/attempts", tag = "events",
    params(("id" = String, Path, description = "The event id, `evt_…`")),
    responses(
        (status = 200, body = Attempts),
        (status = 404, description = "No such event for this caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn attempts(
    state: web::Data<AppState>,
    access: BookingAccess,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event = find(&state, &access, &id).await?;
    let attempts = agency_events::attempts(&state.db, &event.id).await?;
    Ok(HttpResponse::Ok().json(Attempts {
        event_id: event.id.to_string(),
        delivery: event.delivery.to_string(),
        data: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// A resend queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    pub event_id: String,
    /// `queued`.
    pub status: &'static str,
}

/// Send an event's webhook again.
///
/// One more attempt, logged with trigger `manual`, to the agency's callback URL as it is now.
#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "events",
    params(("id" = String, Path, description = "The event id, `evt_…`")),
    responses(
        (status = 202, body = Resent),
        (status = 404, description = "No such event for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agency has no enabled callback URL", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn resend(
    state: web::Data<AppState>,
    access: BookingAccess,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event = find(&state, &access, &id).await?;
    queue_resend(&state, &event).await?;
    Ok(HttpResponse::Accepted().json(Resent { event_id: event.id.to_string(), status: "queued" }))
}

/// Queues one more attempt of `event`'s webhook: the API's resend and the admin UI's.
pub async fn queue_resend(state: &AppState, event: &AgencyEvent) -> Result<(), ApiError> {
    let endpoint = adapters::store::agency_webhooks::find(&state.db, &event.agency_id).await?;
    if endpoint.as_ref().and_then(|e| e.target()).is_none() {
        return Err(ApiError::Conflict {
            code: "no_endpoint",
            detail: "the agency has no enabled callback URL; set one (or recover it) first".into(),
        });
    }
    let resend = jobs::fanout::DeliverWebhook::resend(&event.id, event.attempts);
    adapters::store::queue::push_once(state.db.pool(), &[resend]).await?;
    Ok(())
}

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/events", handler: || web::to(list) },
    Endpoint { method: Method::Get, path: "/v1/events/{id}/attempts", handler: || web::to(attempts) },
    Endpoint { method: Method::Post, path: "/v1/events/{id}/resend", handler: || web::to(resend) },
];
