//! `/v1/bookings`: agencies book, read, list and cancel.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::booking_intake::{IntakeItem, IntakeOutcome};
use adapters::store::bookings::{self, CancelOutcome};
use adapters::store::idempotency::IdempotencyRecord;
use chrono::{DateTime, NaiveDate, Utc};
use domain::booking::{BookingDraft, GuestDraft, RoomDraft};
use domain::{Booking, BookingId, BookingStatus, NewBooking};
use jobs::{CancelBooking, SubmitBooking};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Problem, method_not_allowed};
use crate::extract::JsonBody;
use crate::idempotency::{self, IdempotencyKey};
use crate::pagination;

/// A booking request, in bookhub's own codes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
#[schema(example = json!({"supplier": "sandbox", "hotel_code": "PMI-00042", "check_in": "2027-03-15", "check_out": "2027-03-18",
    "rooms": [{"room_type": "DBL", "board": "BB", "guests": [{"first_name": "Ana", "last_name": "Pérez", "email": "ana@example.com"}]}],
    "total": {"amount": "450.00", "currency": "EUR"}, "client_reference": "AG-123"}))]
pub struct BookingRequest {
    /// A configured supplier's code.
    pub supplier: String,
    pub hotel_code: String,
    /// `YYYY-MM-DD`.
    pub check_in: String,
    /// `YYYY-MM-DD`, after `check_in`.
    pub check_out: String,
    pub rooms: Vec<RoomRequest>,
    pub total: MoneyDto,
    /// The agency's own reference.
    pub client_reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct RoomRequest {
    /// `SGL`, `DBL`, `TWN`, `DBL_SUP`, `TPL`, `FAM` or `JSU`.
    pub room_type: String,
    /// `RO`, `BB`, `HB`, `FB` or `AI`.
    pub board: String,
    /// At least one; the first guest of the first room is the lead guest and needs an email.
    pub guests: Vec<GuestDto>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct GuestDto {
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An amount as a decimal string, never a float, and its ISO 4217 currency.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct MoneyDto {
    #[schema(example = "450.00")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
}

impl From<BookingRequest> for BookingDraft {
    fn from(r: BookingRequest) -> Self {
        BookingDraft {
            supplier: r.supplier,
            hotel_code: r.hotel_code,
            check_in: r.check_in,
            check_out: r.check_out,
            rooms: r
                .rooms
                .into_iter()
                .map(|room| RoomDraft {
                    room_type: room.room_type,
                    board: room.board,
                    guests: room
                        .guests
                        .into_iter()
                        .map(|g| GuestDraft { first_name: g.first_name, last_name: g.last_name, email: g.email })
                        .collect(),
                })
                .collect(),
            total_amount: r.total.amount,
            total_currency: r.total.currency,
            client_reference: r.client_reference,
        }
    }
}

/// A booking as bookhub holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    #[schema(example = "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub id: String,
    /// `pending`, `confirmed`, `rejected`, `failed`, `cancellation_pending` or `cancelled`.
    pub status: String,
    pub supplier: String,
    pub hotel_code: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub rooms: Vec<RoomRequest>,
    pub total: MoneyDto,
    pub client_reference: Option<String>,
    /// The supplier's own reference, once it has one.
    pub supplier_reference: Option<String>,
    /// Why the booking was rejected or failed.
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Booking> for BookingView {
    fn from(b: &Booking) -> Self {
        let d = &b.details;
        BookingView {
            id: b.id.to_string(),
            status: b.status.to_string(),
            supplier: d.supplier.to_string(),
            hotel_code: d.hotel_code.clone(),
            check_in: d.check_in,
            check_out: d.check_out,
            rooms: d
                .rooms
                .iter()
                .map(|r| RoomRequest {
                    room_type: r.room_type.to_string(),
                    board: r.board.to_string(),
                    guests: r
                        .guests
                        .iter()
                        .map(|g| GuestDto {
                            first_name: g.first_name.clone(),
                            last_name: g.last_name.clone(),
                            email: g.email.as_ref().map(|e| e.as_str().to_owned()),
                        })
                        .collect(),
                })
                .collect(),
            total: MoneyDto { amount: d.total.amount().to_string(), currency: d.total.currency().to_string() },
            client_reference: d.client_reference.clone(),
            supplier_reference: b.supplier_reference.clone(),
            status_reason: b.status_reason.clone(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// A page of bookings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingPage {
    pub data: Vec<BookingView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only bookings in this status.
    pub status: Option<String>,
}

/// Book a stay.
///
/// Validates the request, then stores the booking as `pending` together with the job that
/// submits it to the supplier, in one transaction, and answers 202. Requires an
/// `Idempotency-Key`: a retry with the same key and body gets this same answer back.
#[utoipa::path(post, path = "/v1/bookings", tag = "bookings", request_body = BookingRequest,
    params(("Idempotency-Key" = String, Header, description = "Unique per intended booking; kept `idempotency.ttl` (24 h by default)")),
    responses(
        (status = 202, description = "Accepted, pending at the supplier", body = BookingView),
        (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The first request with this key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed, or the key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let agency = caller.agency()?;
    let request_hash = idempotency::request_hash(&body.value);
    let details =
        NewBooking::parse(&body.parsed.into(), |code| state.suppliers.contains(code)).map_err(ApiError::Validation)?;
    let _in_flight = state.in_flight.claim(agency, &key)?;

    let now = adapters::store::now();
    let booking = Booking::accept(agency.clone(), details, now);
    let response_body =
        serde_json::to_string(&BookingView::from(&booking)).map_err(|e| ApiError::Internal(e.into()))?;
    let item = IntakeItem {
        submit_job: SubmitBooking::for_booking(&booking),
        idempotency: IdempotencyRecord {
            agency_id: agency.clone(),
            key: key.0.clone(),
            request_hash: request_hash.clone(),
            response_status: 202,
            response_body: response_body.clone(),
            created_at: now,
            expires_at: now + state.idempotency_ttl,
        },
        booking,
    };
    let id = item.booking.id.clone();
    match state.intake.submit(item).await? {
        IntakeOutcome::Created => Ok(booking_response(StatusCode::ACCEPTED, &id, response_body, false)),
        IntakeOutcome::KeyTaken => {
            let first = idempotency::first_response(&state.db, agency, &key, &request_hash).await?;
            let id: BookingId = serde_json::from_str::<BookingRef>(&first.body)
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("a stored response does not parse")))?
                .id;
            Ok(booking_response(first.status, &id, first.body, true))
        }
    }
}

/// The id of a stored booking response.
#[derive(Deserialize)]
struct BookingRef {
    id: BookingId,
}

/// The answer to a create — the first time, and the same on every replay of it.
fn booking_response(status: StatusCode, id: &BookingId, body: String, replayed: bool) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("application/json").insert_header((header::LOCATION, format!("/v1/bookings/{id}")));
    if replayed {
        response.insert_header((idempotency::REPLAYED, "true"));
    }
    response.body(body)
}

/// Read one booking.
///
/// Answers with an `ETag`; send it back in `If-None-Match` to get 304 when nothing changed.
/// An agency sees only its own bookings (404 for anyone else's).
#[utoipa::path(get, path = "/v1/bookings/{id}", tag = "bookings",
    params(("id" = String, Path, description = "The booking id, `bk_…`")),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 304, description = "Unchanged since the given ETag"),
        (status = 404, description = "No such booking for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = caller.booking_scope()?;
    let id: BookingId = id.parse().map_err(|_| ApiError::NotFound("booking"))?;
    let booking = bookings::find(&state.db, &scope, &id).await?.ok_or(ApiError::NotFound("booking"))?;
    let body = serde_json::to_vec(&BookingView::from(&booking)).map_err(|e| ApiError::Internal(e.into()))?;
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    if if_none_match(&req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .content_type("application/json")
        .body(body))
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches anything).
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// List bookings, newest first.
///
/// Cursor pages stay stable while new bookings arrive: a new booking never shifts the pages
/// still to be read. Agencies see their own bookings; staff see all.
#[utoipa::path(get, path = "/v1/bookings", tag = "bookings", params(ListParams),
    responses(
        (status = 200, description = "A page of bookings", body = BookingPage),
        (status = 400, description = "A bad limit, cursor or status", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = caller.booking_scope()?;
    let limit = pagination::limit(params.limit)?;
    let status = params
        .status
        .as_deref()
        .map(str::parse::<BookingStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}")))?;
    let after: Option<BookingId> = params.cursor.as_deref().map(pagination::decode_cursor).transpose()?;
    let page = bookings::page(&state.db, &scope, status, after.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(BookingPage {
        data: page.items.iter().map(BookingView::from).collect(),
        next_cursor: page.next_after.map(|id| pagination::encode_cursor(id.as_str())),
    }))
}

/// Cancel a booking.
///
/// Moves it to `cancellation_pending` and queues its cancellation at the supplier (202).
/// Idempotent: asking again while it is cancelling answers the same; a cancelled booking
/// answers 200. A rejected or failed booking cannot be cancelled (409).
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "bookings",
    params(("id" = String, Path, description = "The booking id, `bk_…`")),
    responses(
        (status = 202, description = "Cancellation under way", body = BookingView),
        (status = 200, description = "Already cancelled", body = BookingView),
        (status = 404, description = "No such booking for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The booking's status does not allow cancelling", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = caller.booking_scope()?;
    let id: BookingId = id.parse().map_err(|_| ApiError::NotFound("booking"))?;
    let booking = match bookings::request_cancellation(&state.db, &scope, &id, CancelBooking::for_booking).await? {
        CancelOutcome::NotFound => return Err(ApiError::NotFound("booking")),
        CancelOutcome::Refused(e) => {
            return Err(ApiError::Conflict { code: "invalid_transition", detail: e.to_string() });
        }
        CancelOutcome::Unchanged(b) | CancelOutcome::Requested(b) => b,
    };
    let mut response =
        if booking.status == BookingStatus::Cancelled { HttpResponse::Ok() } else { HttpResponse::Accepted() };
    Ok(response.json(BookingView::from(&booking)))
}

pub fn scope() -> actix_web::Scope {
    web::scope("/bookings")
        .service(
            web::resource("")
                .route(web::get().to(list))
                .route(web::post().to(create))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(web::resource("/{id}").route(web::get().to(get)).default_service(method_not_allowed("GET")))
        .service(
            web::resource("/{id}/cancel").route(web::post().to(cancel)).default_service(method_not_allowed("POST")),
        )
}
