//! `/v1/bookings`: agencies book, read, list and cancel.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::api_keys::Role;
use adapters::store::booking_intake::{IntakeItem, IntakeOutcome};
use adapters::store::bookings::{self, CancelOutcome};
use adapters::store::idempotency::IdempotencyRecord;
use chrono::{DateTime, NaiveDate, Utc};
use domain::booking::{BookingDraft, CancelledBy, GuestDraft, RoomDraft};
use domain::{Booking, BookingId, BookingStatus, NewBooking};
use jobs::{SubmitBooking, fanout};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::{AgencyCaller, BookingAccess};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::idempotency::{self, IdempotencyKey};
use crate::pagination;
use crate::routes::{Endpoint, Method, Page, given};

/// A booking request, in bookhub's own codes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
#[schema(example = json!({"supplier": "sandbox", "hotel_code": "PMI-00042", "check_in": "2027-03-15", "check_out": "2027-03-18",
    "rooms": [{"room_type": "DBL", "board": "BB", "guests": [{"first_name": "Ana", "last_name": "Pérez", "email": "ana@example.com"}]}],
    "total": {"amount": "450.00", "currency": "EUR"}, "client_reference": "AG-123"}))]
pub struct BookingRequest {
    /// A configured supplier's code.
    #[schema(required = true, min_length = 1, max_length = 32, pattern = r"^[a-z0-9_-]+$")]
    pub supplier: String,
    /// The hotel's code: printable ASCII, not blank.
    #[schema(required = true, min_length = 1, max_length = 200, pattern = r"^[ -~]*[!-~][ -~]*$")]
    pub hotel_code: String,
    /// `YYYY-MM-DD`, in the years 2000 to 2999.
    #[schema(required = true, value_type = String, format = Date, pattern = r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$")]
    pub check_in: String,
    /// `YYYY-MM-DD`, after `check_in` and at most 90 nights later.
    #[schema(required = true, value_type = String, format = Date, pattern = r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$")]
    pub check_out: String,
    #[schema(required = true, min_items = 1, max_items = 9)]
    pub rooms: Vec<RoomRequest>,
    #[schema(required = true)]
    pub total: MoneyDto,
    /// The agency's own reference: at most 200 bytes of UTF-8, no control characters; blank
    /// means none.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub client_reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct RoomRequest {
    #[schema(required = true, value_type = RoomTypeCode)]
    pub room_type: String,
    #[schema(required = true, value_type = BoardCode)]
    pub board: String,
    /// One to eight; the first guest of the first room is the lead guest and needs an email.
    #[schema(required = true, min_items = 1, max_items = 8)]
    pub guests: Vec<GuestDto>,
}

/// A room type, in bookhub's codes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum RoomTypeCode {
    #[serde(rename = "SGL")]
    Single,
    #[serde(rename = "DBL")]
    Double,
    #[serde(rename = "TWN")]
    Twin,
    #[serde(rename = "DBL_SUP")]
    DoubleSuperior,
    #[serde(rename = "TPL")]
    Triple,
    #[serde(rename = "FAM")]
    Family,
    #[serde(rename = "JSU")]
    JuniorSuite,
}

/// A board (meal plan), in bookhub's codes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum BoardCode {
    #[serde(rename = "RO")]
    RoomOnly,
    #[serde(rename = "BB")]
    BedAndBreakfast,
    #[serde(rename = "HB")]
    HalfBoard,
    #[serde(rename = "FB")]
    FullBoard,
    #[serde(rename = "AI")]
    AllInclusive,
}

/// Where a booking stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatusCode {
    Pending,
    Confirmed,
    Rejected,
    Failed,
    CancellationPending,
    Cancelled,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct GuestDto {
    /// Not blank, no control characters.
    #[schema(
        required = true,
        min_length = 1,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub first_name: String,
    /// Not blank, no control characters.
    #[schema(
        required = true,
        min_length = 1,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub last_name: String,
    /// Required for the lead guest (the first of the first room).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// An amount as a decimal string, never a float, and its ISO 4217 currency.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct MoneyDto {
    /// Greater than zero, with at most as many decimals as the currency has.
    #[schema(required = true, example = "450.00", pattern = r"^[0-9]{1,14}(\.[0-9]{1,4})?$")]
    pub amount: String,
    #[schema(required = true, schema_with = currency_schema)]
    pub currency: String,
}

/// The ISO 4217 codes bookhub takes, exactly: every three-letter code that parses.
fn currency_schema() -> utoipa::openapi::Object {
    let letters = b'A'..=b'Z';
    let codes = letters.clone().flat_map(|a| {
        let letters = letters.clone();
        letters
            .clone()
            .flat_map(move |b| letters.clone().map(move |c| String::from_utf8_lossy(&[a, b, c]).into_owned()))
    });
    let known: Vec<String> = codes.filter(|c| c.parse::<domain::Currency>().is_ok()).collect();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("An ISO 4217 currency code."))
        .examples([serde_json::json!("EUR")])
        .enum_values(Some(known))
        .build()
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
    #[schema(value_type = BookingStatusCode)]
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
    /// Who cancelled it when it was not its agency (staff, an admin); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<CancelledByView>,
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
            cancelled_by: b
                .cancelled_by
                .as_ref()
                .map(|by| CancelledByView { role: by.role.clone(), key_id: by.key_id.to_string() }),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// The staff or admin key that cancelled a booking on its agency's behalf.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelledByView {
    /// `staff` or `admin`.
    #[schema(example = "staff")]
    pub role: String,
    #[schema(example = "key_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b")]
    pub key_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only bookings in this status; empty means any.
    #[param(value_type = Option<BookingStatusCode>)]
    pub status: Option<String>,
}

/// The largest booking request accepted, whatever `body_limit_bytes` says: nine rooms of eight
/// guests with long ASCII names and emails fit, and nothing much larger reaches the JSON parser.
pub const MAX_BOOKING_BODY: usize = 64 * 1024;

/// Book a stay.
///
/// Validates the request, then stores the booking as `pending` together with the job that
/// submits it to the supplier, in one transaction, and answers 202. Requires an
/// `Idempotency-Key`: a retry with the same key and body gets this same answer back.

#[utoipa::path(post, path = "/v1/bookings", tag = "bookings", request_body = BookingRequest,
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$",
        description = "Unique per intended booking: 1 to 255 visible ASCII characters; kept `idempotency.ttl` (24 h by default)")),
    responses(
        (status = 202, description = "Accepted, pending at the supplier (also the replay of an earlier answer, with `Idempotent-Replayed: true`)", body = BookingView),
        (status = 400, description = "Missing or invalid Idempotency-Key, or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The first request with this key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed, or the key was used with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: AgencyCaller,
    key: IdempotencyKey,
    body: JsonBody<BookingRequest, MAX_BOOKING_BODY>,
) -> Result<HttpResponse, ApiError> {
    let agency = &caller.agency;
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
    params(
        ("id" = String, Path, description = "The booking id, `bk_…`"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of this booking, or `*`"),
    ),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 304, description = "Unchanged since the given ETag"),
        (status = 404, description = "No such booking for this caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    access: BookingAccess,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = access.scope;
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
        (status = 200, description = "A page of bookings", body = Page<BookingView>),
        (status = 400, description = "A bad limit, cursor or status", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    access: BookingAccess,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = access.scope;
    let limit = pagination::limit(params.limit)?;
    let status = given(&params.status)
        .map(str::parse::<BookingStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}")))?;
    let after: Option<BookingId> = given(&params.cursor).map(pagination::decode_cursor).transpose()?;
    let page = bookings::page(&state.db, &scope, status, after.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        data: page.items.iter().map(BookingView::from).collect(),
        next_cursor: page.next_after.map(|id| pagination::encode_cursor(id.as_str())),
    }))
}

/// Cancel a booking.
///
/// An agency cancels its own bookings; staff and admins any agency's, and the booking's
/// `cancelled_by` names their key. Moves it to `cancellation_pending` and queues its cancellation at the supplier (202).
/// Idempotent: asking again while it is cancelling answers the same; a cancelled booking
/// answers 200. A rejected or failed booking cannot be cancelled (409).
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "bookings",
    params(("id" = String, Path, description = "The booking id, `bk_…`")),
    responses(
        (status = 202, description = "Cancellation under way", body = BookingView),
        (status = 200, description = "Already cancelled", body = BookingView),
        (status = 404, description = "No such booking for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The booking's status does not allow cancelling, or it changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    access: BookingAccess,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: BookingId = id.parse().map_err(|_| ApiError::NotFound("booking"))?;
    let key = &access.caller.0;
    // Staff and admins cancel on an agency's behalf, and say so; an agency's own cancel does not.
    let by = (key.role != Role::Agency).then(|| CancelledBy { role: key.role.to_string(), key_id: key.id.clone() });
    let outcome =
        bookings::request_cancellation(&state.db, &access.scope, &id, by.as_ref(), fanout::for_cancellation).await?;
    let booking = match outcome {
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

pub const ROUTES: &[Endpoint] = &[
    Endpoint { method: Method::Get, path: "/v1/bookings", handler: || web::to(list) },
    Endpoint { method: Method::Post, path: "/v1/bookings", handler: || web::to(create) },
    Endpoint { method: Method::Get, path: "/v1/bookings/{id}", handler: || web::to(get) },
    Endpoint { method: Method::Post, path: "/v1/bookings/{id}/cancel", handler: || web::to(cancel) },
];
