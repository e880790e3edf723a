//! The `jsonrest` supplier's partner API v2 (`/jsonrest/v2/bookings...`), its webhook body,
//! and its request signature check.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Protocol::Jsonrest;
use super::faults::Fault;
use super::state::{
    Booked, Booking, Holder, Money, NewBooking, Pax, Room, Shared, book, constant_time_eq, method_not_allowed,
    timestamp,
};

const ROOM_TYPES: [&str; 7] = ["SGL.ST", "DBL.ST", "TWN.ST", "DBL.SU", "TPL.ST", "FAM.ST", "JSU.ST"];
const BOARDS: [&str; 5] = ["RO", "BB", "HB", "FB", "AI"];
const PAGE_SIZE: usize = 100;
const CLOCK_SKEW_SECS: i64 = 300;

/// Counts and faults a request, then checks its signature: `Some` answer stops it there.
async fn gate(sim: &Shared, request: &HttpRequest, client_reference: Option<&str>) -> Option<HttpResponse> {
    if let Some(fault) = sim.admit(Jsonrest, client_reference).await {
        return Some(fault_answer(fault));
    }
    (!authorized(sim, request)).then(|| answer(401, json!({"error": "unauthorized"})))
}

/// Checks `Api-Key`, `X-Timestamp` (±300 s) and `X-Signature` = hex sha256(key + secret + seconds).
fn authorized(sim: &Shared, request: &HttpRequest) -> bool {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (key, seconds, signature) = (header("Api-Key"), header("X-Timestamp"), header("X-Signature"));
    let fresh = seconds.parse::<i64>().is_ok_and(|s| (Utc::now().timestamp() - s).abs() <= CLOCK_SKEW_SECS);
    let expected = hex::encode(Sha256::digest(format!("{key}{}{seconds}", sim.jsonrest.api_secret)));
    fresh
        & constant_time_eq(key.as_bytes(), sim.jsonrest.api_key.as_bytes())
        & constant_time_eq(signature.as_bytes(), expected.as_bytes())
}

/// `POST /v2/bookings`: books once per `client_reference`; a repeat answers the booking with 200.
async fn create(sim: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let parsed = serde_json::from_slice::<Value>(&body);
    let client_reference = parsed.as_ref().ok().and_then(|v| v["client_reference"].as_str());
    if let Some(answer) = gate(&sim, &request, client_reference).await {
        return answer;
    }
    let new = match parsed.map_err(|e| vec![detail("body", &format!("invalid JSON: {e}"))]).and_then(|v| validate(&v)) {
        Ok(new) => new,
        Err(details) => return answer(422, json!({"error": "invalid_request", "details": details})),
    };
    if sim.with(Jsonrest, |p| p.faults.price_change) {
        return answer(409, json!({"error": "price_changed", "total": money(&new.total.raised())}));
    } else if new.hotel_code.starts_with("NOHOTEL") {
        return answer(404, json!({"error": "hotel_not_found"}));
    } else if new.hotel_code.starts_with("NOROOM") {
        return answer(422, json!({"error": "no_availability"}));
    }
    let (status, b) = match book(&sim.into_inner(), Jsonrest, new) {
        Booked::Created(booking, _) => (201, booking),
        Booked::Existing(booking) => (200, booking),
    };
    let body = json!({"reference": b.reference, "client_reference": b.request.client_reference,
        "status": b.status.code(Jsonrest), "total": money(&b.request.total), "created_at": timestamp(b.created_at)});
    answer(status, body)
}

/// `GET /v2/bookings/{reference}`.
async fn read(sim: web::Data<Shared>, request: HttpRequest, reference: web::Path<String>) -> HttpResponse {
    if let Some(answer) = gate(&sim, &request, None).await {
        return answer;
    }
    match sim.with(Jsonrest, |p| p.find(&reference).map(|b| booking_object(b))) {
        Some(object) => answer(200, object),
        None => answer(404, json!({"error": "booking_not_found"})),
    }
}

/// `DELETE /v2/bookings/{reference}`: idempotent, free of charge.
async fn cancel(sim: web::Data<Shared>, request: HttpRequest, reference: web::Path<String>) -> HttpResponse {
    if let Some(answer) = gate(&sim, &request, None).await {
        return answer;
    }
    let Some(b) = sim.with(Jsonrest, |p| p.cancel(&reference)) else {
        return answer(404, json!({"error": "booking_not_found"}));
    };
    let fee = Money { amount: rust_decimal::Decimal::ZERO, currency: b.request.total.currency };
    answer(200, json!({"reference": b.reference, "status": b.status.code(Jsonrest), "cancellation_fee": money(&fee)}))
}

/// `GET /v2/bookings?modified_from&modified_to&page`, 100 per page.
async fn list(sim: web::Data<Shared>, request: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&sim, &request, None).await {
        return answer;
    }
    let query = web::Query::<Vec<(String, String)>>::from_query(request.query_string()).map(|q| q.into_inner());
    let param = |name: &str| query.as_ref().ok().and_then(|q| q.iter().find(|(k, _)| k == name).map(|(_, v)| v));
    let mut details = Vec::new();
    let mut instant = |name: &str| {
        let parsed = DateTime::parse_from_rfc3339(param(name)?).map(|t| t.to_utc());
        parsed.map_err(|_| details.push(detail(name, "must be an RFC 3339 timestamp"))).ok()
    };
    let (from, to) = (instant("modified_from"), instant("modified_to"));
    let page = param("page").map_or(Ok(1), |p| p.parse::<usize>()).ok().filter(|&p| p >= 1);
    if page.is_none() {
        details.push(detail("page", "must be a whole number from 1"));
    }
    let (Some(page), true) = (page, details.is_empty()) else {
        return answer(422, json!({"error": "invalid_request", "details": details}));
    };
    let (bookings, more): (Vec<Value>, bool) = sim.with(Jsonrest, |p| {
        let all = p.modified_between(from, to);
        let shown = all.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).map(|b| booking_object(b)).collect();
        (shown, all.len() > page * PAGE_SIZE)
    });
    answer(200, json!({"bookings": bookings, "page": page, "next_page": more.then_some(page + 1)}))
}

/// The answer a faulted request gets instead of the API's.
fn fault_answer(fault: Fault) -> HttpResponse {
    match fault {
        Fault::Status(status) => answer(status, json!({"error": "unavailable"})),
        Fault::Timeout => answer(504, json!({"error": "timeout"})),
        Fault::RateLimited { retry_after_secs } => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", retry_after_secs.to_string()))
            .json(json!({"error": "rate_limited"})),
        Fault::Malformed | Fault::SystemUnavailable => {
            HttpResponse::Ok().content_type("application/json").body(r#"{"reference": "JR-0000"#)
        }
    }
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)).json(body)
}

fn detail(field: &str, message: &str) -> Value {
    json!({"field": field, "message": message})
}

pub(crate) fn money(m: &Money) -> Value {
    json!({"amount": m.amount_string(), "currency": m.currency})
}

/// The booking object of `GET /v2/bookings/{reference}` and the list.
fn booking_object(b: &Booking) -> Value {
    let r = &b.request;
    let rooms: Vec<Value> = r
        .rooms
        .iter()
        .map(|room| json!({"room_type_code": room.room_type, "board_code": room.board, "paxes": room.paxes}))
        .collect();
    json!({"reference": b.reference, "client_reference": r.client_reference, "hotel_code": r.hotel_code,
           "check_in": r.check_in, "check_out": r.check_out, "status": b.status.code(Jsonrest), "rooms": rooms,
           "holder": {"name": r.holder.name, "surname": r.holder.surname, "email": r.holder.email},
           "total": money(&r.total), "created_at": timestamp(b.created_at), "modified_at": timestamp(b.modified_at)})
}

/// The webhook body of a `booking.confirmed` event, and its id.
pub(crate) fn confirmed_event(b: &Booking) -> (String, String) {
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let r = &b.request;
    let rooms: Vec<Value> =
        r.rooms.iter().map(|room| json!({"room_type_code": room.room_type, "board_code": room.board})).collect();
    let body = json!({"id": id, "type": "booking.confirmed", "occurred_at": timestamp(b.modified_at),
        "data": {"reference": b.reference, "client_reference": r.client_reference, "status": b.status.code(Jsonrest),
                 "hotel_code": r.hotel_code, "check_in": r.check_in, "check_out": r.check_out, "rooms": rooms,
                 "guest_email": r.holder.email, "booking_date": b.created_at.date_naive(),
                 "total": money(&r.total)}});
    (id, body.to_string())
}

/// Validates a booking body, collecting every field error.
fn validate(body: &Value) -> Result<NewBooking, Vec<Value>> {
    let mut check = Check(Vec::new());
    let client_reference = check.text(body, "client_reference");
    let hotel_code = check.text(body, "hotel_code");
    let (check_in, check_out) = (check.date(body, "check_in"), check.date(body, "check_out"));
    if let (Some(start), Some(end)) = (check_in, check_out)
        && end <= start
    {
        check.fail("check_out", "must be after check_in");
    }
    let holder = Holder {
        name: check.text(&body["holder"], "holder.name").unwrap_or_default(),
        surname: check.text(&body["holder"], "holder.surname").unwrap_or_default(),
        email: body["holder"]["email"].as_str().map(str::to_owned),
    };
    if holder.email.as_deref().is_some_and(|email| !email.contains('@')) {
        check.fail("holder.email", "must be an email address");
    }
    let total = match (
        check.text(&body["expected_total"], "expected_total.amount"),
        check.text(&body["expected_total"], "expected_total.currency"),
    ) {
        (Some(amount), Some(currency)) => {
            Money::parse(&amount, &currency).map_err(|message| check.fail("expected_total", &message)).ok()
        }
        _ => None,
    };
    let rooms = body["rooms"].as_array().map(Vec::as_slice).unwrap_or_default();
    if rooms.is_empty() {
        check.fail("rooms", "at least one room is required");
    }
    let rooms =
        rooms.iter().enumerate().map(|(i, room)| check.room(room, &format!("rooms[{i}]"))).collect::<Vec<Room>>();
    match (client_reference, hotel_code, check_in, check_out, total) {
        (Some(client_reference), Some(hotel_code), Some(check_in), Some(check_out), Some(total))
            if check.0.is_empty() =>
        {
            Ok(NewBooking { client_reference, hotel_code, check_in, check_out, rooms, holder, total })
        }
        _ => Err(check.0),
    }
}

/// Field checks of a booking body; each failure becomes one `details` entry.
struct Check(Vec<Value>);

impl Check {
    fn fail(&mut self, field: &str, message: &str) {
        self.0.push(detail(field, message));
    }

    /// The non-empty string at `field` (its last dotted segment is the key in `parent`).
    fn text(&mut self, parent: &Value, field: &str) -> Option<String> {
        let key = field.rsplit('.').next().unwrap_or(field);
        match parent[key].as_str().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ => {
                self.fail(field, "required, a non-empty string");
                None
            }
        }
    }

    fn date(&mut self, parent: &Value, field: &str) -> Option<NaiveDate> {
        let text = self.text(parent, field)?;
        let date = NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok().filter(|_| text.len() == 10);
        if date.is_none() {
            self.fail(field, "must be a date YYYY-MM-DD");
        }
        date
    }

    fn code(&mut self, parent: &Value, field: &str, known: &[&str]) -> String {
        let code = self.text(parent, field).unwrap_or_default();
        if !code.is_empty() && !known.contains(&code.as_str()) {
            self.fail(field, &format!("unknown code, expected one of {}", known.join(" ")));
        }
        code
    }

    fn room(&mut self, room: &Value, field: &str) -> Room {
        let room_type = self.code(room, &format!("{field}.room_type_code"), &ROOM_TYPES);
        let board = self.code(room, &format!("{field}.board_code"), &BOARDS);
        let paxes = room["paxes"].as_array().map(Vec::as_slice).unwrap_or_default();
        if paxes.is_empty() {
            self.fail(&format!("{field}.paxes"), "at least one pax is required");
        }
        let paxes = paxes.iter().enumerate().map(|(j, pax)| self.pax(pax, &format!("{field}.paxes[{j}]"))).collect();
        Room { room_type, board, paxes, total: None }
    }

    fn pax(&mut self, pax: &Value, field: &str) -> Pax {
        let name = self.text(pax, &format!("{field}.name")).unwrap_or_default();
        let surname = self.text(pax, &format!("{field}.surname")).unwrap_or_default();
        let kind = self.code(pax, &format!("{field}.type"), &["AD", "CH"]);
        let age = pax["age"].as_u64();
        if kind == "CH" && age.is_none_or(|a| a >= 18) {
            self.fail(&format!("{field}.age"), "a child (CH) needs an age under 18");
        }
        Pax { name, surname, age: age.filter(|_| kind == "CH"), kind }
    }
}

/// The jsonrest routes, under `/jsonrest`.
pub(crate) fn scope() -> actix_web::Scope {
    web::scope("/jsonrest")
        .service(
            web::resource("/v2/bookings")
                .route(web::post().to(create))
                .route(web::get().to(list))
                .default_service(web::to(|| async { method_not_allowed("GET, POST") })),
        )
        .service(
            web::resource("/v2/bookings/{reference}")
                .route(web::get().to(read))
                .route(web::delete().to(cancel))
                .default_service(web::to(|| async { method_not_allowed("GET, DELETE") })),
        )
}
