//! The `ota` supplier's OpenTravel (2003/05) profile under `/ota`: `OTA_HotelResRQ`,
//! `OTA_CancelRQ`, `OTA_ReadRQ`, and the `OTA_HotelResNotifRQ` it pushes.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::Protocol::Ota;
use super::faults::Fault;
use super::state::{Booked, Booking, Holder, Money, NewBooking, Room, Shared, book, constant_time_eq};
use super::state::{method_not_allowed, now, timestamp};
use super::xml::{Element, OTA_NS, esc, parse};

const ROOM_TYPES: [&str; 7] = ["SNG", "DBX", "DBS", "TWS", "TRP", "FAM", "JRS"];
const MEAL_PLANS: [&str; 5] = ["14", "3", "12", "10", "1"];
/// Most reservations one `OTA_ReadRQ` answers.
const READ_LIMIT: usize = 500;

/// An `<Error Type="3">`: the supplier's code, its short text and an optional explanation.
struct OtaError(&'static str, &'static str, String);

fn invalid(text: impl Into<String>) -> OtaError {
    OtaError("450", "InvalidRequest", text.into())
}

/// What an action answers: the root's extra attributes and its content.
type Answer = Result<(&'static str, String), OtaError>;

/// Runs one message: counts and faults it, checks Basic auth, parses, acts, and answers `rs`.
async fn handle(
    sim: web::Data<Shared>,
    request: HttpRequest,
    body: web::Bytes,
    rs: &str,
    action: fn(&Arc<Shared>, &Element) -> Answer,
) -> HttpResponse {
    let document = std::str::from_utf8(&body).map_err(|_| "the body is not UTF-8".to_owned()).and_then(parse);
    let booking = document.as_ref().ok().filter(|_| rs == "OTA_HotelResRS");
    let client_reference =
        booking.and_then(|d| d.path(&["HotelReservations", "HotelReservation"])).and_then(partner_id);
    if let Some(fault) = sim.admit(Ota, client_reference).await {
        return fault_answer(fault, rs);
    }
    if !authorized(&sim, &request) {
        return HttpResponse::Unauthorized().insert_header(("WWW-Authenticate", "Basic realm=\"ota\"")).finish();
    }
    let echo = document.as_ref().ok().and_then(|d| d.attr("EchoToken")).map(str::to_owned);
    let body = match document.map_err(invalid).and_then(|d| action(&sim.into_inner(), &d)) {
        Ok((attributes, inner)) => message(rs, echo.as_deref(), attributes, &inner),
        Err(OtaError(code, short_text, text)) => {
            let error = format!("<Error Type=\"3\" Code=\"{code}\" ShortText=\"{short_text}\"");
            let error = if text.is_empty() { format!("{error}/>") } else { format!("{error}>{}</Error>", esc(&text)) };
            message(rs, echo.as_deref(), "", &format!("<Errors>{error}</Errors>"))
        }
    };
    xml_answer(body)
}

/// `POST /OTA_HotelResRQ`: books, or answers the reservation already made for the UniqueID.
async fn hotel_res(sim: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle(sim, request, body, "OTA_HotelResRS", |sim, document| {
        let new = booking_request(document)?;
        if sim.with(Ota, |p| p.faults.price_change) {
            return Err(OtaError("361", "PriceChanged", String::new()));
        } else if new.hotel_code.starts_with("NOHOTEL") {
            return Err(OtaError("392", "InvalidHotelCode", String::new()));
        } else if new.hotel_code.starts_with("NOROOM") {
            return Err(OtaError("322", "NoAvailability", String::new()));
        }
        let (Booked::Created(b, _) | Booked::Existing(b)) = book(sim, Ota, new);
        let (status, partner_reference) = (b.status.code(Ota), esc(&b.request.client_reference));
        let reservation = format!(
            "<HotelReservation ResStatus=\"{status}\"><UniqueID Type=\"14\" ID=\"{partner_reference}\"/>{}\
             </HotelReservation>",
            reservation_ids(&b)
        );
        Ok(("", format!("<Success/><HotelReservations>{reservation}</HotelReservations>")))
    })
    .await
}

/// `POST /OTA_CancelRQ`: cancels by the supplier's `UniqueID Type="10"`, also when repeated.
async fn cancel(sim: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle(sim, request, body, "OTA_CancelRS", |sim, document| {
        expect_root(document, "OTA_CancelRQ")?;
        if document.attr("CancelType").is_some_and(|t| t != "Commit") {
            return Err(invalid("CancelType must be Commit"));
        }
        let id = document.children("UniqueID").find(|u| u.attr("Type") == Some("10")).and_then(|u| u.attr("ID"));
        let id = id.ok_or_else(|| invalid("missing UniqueID Type=\"10\" ID"))?;
        let b = sim.with(Ota, |p| p.cancel(id)).ok_or_else(|| invalid(format!("unknown reservation {id}")))?;
        Ok((" Status=\"Cancelled\"", format!("<Success/><UniqueID Type=\"10\" ID=\"{}\"/>", esc(&b.reference))))
    })
    .await
}

/// `POST /OTA_ReadRQ`: reservations last modified in the `LastUpdateDate` window, at most 500.
async fn read(sim: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle(sim, request, body, "OTA_ResRetrieveRS", |sim, document| {
        expect_root(document, "OTA_ReadRQ")?;
        let criteria = document
            .path(&["ReadRequests", "HotelReadRequest", "SelectionCriteria"])
            .ok_or_else(|| invalid("missing ReadRequests/HotelReadRequest/SelectionCriteria"))?;
        if criteria.attr("DateType").is_some_and(|t| t != "LastUpdateDate") {
            return Err(invalid("only DateType=\"LastUpdateDate\" is supported"));
        }
        // A date alone spans the whole day.
        let instant = |name: &str, time: NaiveTime| -> Result<Option<DateTime<Utc>>, OtaError> {
            let Some(value) = criteria.attr(name) else { return Ok(None) };
            let parsed = DateTime::parse_from_rfc3339(value).map(|t| t.to_utc());
            let parsed =
                parsed.or_else(|_| NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|d| d.and_time(time).and_utc()));
            parsed.map(Some).map_err(|_| invalid(format!("SelectionCriteria/@{name} must be a date or time")))
        };
        let end_of_day = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
        let (from, to) = (instant("Start", NaiveTime::MIN)?, instant("End", end_of_day)?);
        let list: String = sim
            .with(Ota, |p| p.modified_between(from, to).into_iter().take(READ_LIMIT).map(hotel_reservation).collect());
        Ok(("", format!("<Success/><ReservationsList>{list}</ReservationsList>")))
    })
    .await
}

fn expect_root(document: &Element, name: &str) -> Result<(), OtaError> {
    let message = || invalid(format!("expected {name} in the namespace {OTA_NS}"));
    document.is(name).then_some(()).ok_or_else(message)
}

/// The partner's reference: `UniqueID Type="14"`.
fn partner_id(reservation: &Element) -> Option<&str> {
    reservation.children("UniqueID").find(|u| u.attr("Type") == Some("14")).and_then(|u| u.attr("ID"))
}

/// The non-empty attribute `name` of the element at `path`, or what is missing.
fn attr_at<'a>(element: &'a Element, path: &[&str], name: &str) -> Result<&'a str, String> {
    let value = element.path(path).and_then(|e| e.attr(name)).map(str::trim).filter(|v| !v.is_empty());
    value.ok_or_else(|| format!("missing {}/@{name}", path.join("/")))
}

fn date_at(element: &Element, path: &[&str], name: &str) -> Result<NaiveDate, String> {
    let value = attr_at(element, path, name)?;
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().filter(|_| value.len() == 10);
    date.ok_or_else(|| format!("{}/@{name} must be a date YYYY-MM-DD", path.join("/")))
}

/// Reads an `OTA_HotelResRQ`: one reservation, one `RoomStay` per room, all on one hotel and span.
fn booking_request(document: &Element) -> Result<NewBooking, OtaError> {
    expect_root(document, "OTA_HotelResRQ")?;
    let mut reservations =
        document.path(&["HotelReservations"]).into_iter().flat_map(|r| r.children("HotelReservation"));
    let (Some(reservation), None) = (reservations.next(), reservations.next()) else {
        return Err(invalid("exactly one HotelReservations/HotelReservation is expected"));
    };
    let client_reference = partner_id(reservation).ok_or_else(|| invalid("missing UniqueID Type=\"14\" ID"))?;
    let mut stays = Vec::new();
    for (i, stay) in reservation.path(&["RoomStays"]).into_iter().flat_map(|s| s.children("RoomStay")).enumerate() {
        stays.push(room_stay(stay).map_err(|e| invalid(format!("RoomStay {}: {e}", i + 1)))?);
    }
    let Some(first) = stays.first() else { return Err(invalid("missing RoomStays/RoomStay")) };
    let key = |s: &Stay| (s.hotel_code.clone(), s.check_in, s.check_out, s.total.currency.clone());
    if stays.iter().any(|s| key(s) != key(first)) {
        return Err(invalid("all RoomStays must share hotel, time span and currency"));
    }
    let (hotel_code, check_in, check_out, currency) = key(first);
    let customer = ["ResGuests", "ResGuest", "Profiles", "ProfileInfo", "Profile", "Customer"];
    let text = |path: &[&str]| {
        let element = reservation.path(&customer)?.path(path)?;
        Some(element.text.trim().to_owned()).filter(|t| !t.is_empty())
    };
    let missing = |what: &str| invalid(format!("missing {}/{what}", customer.join("/")));
    let holder = Holder {
        name: text(&["PersonName", "GivenName"]).ok_or_else(|| missing("PersonName/GivenName"))?,
        surname: text(&["PersonName", "Surname"]).ok_or_else(|| missing("PersonName/Surname"))?,
        email: text(&["Email"]),
    };
    let amount = stays.iter().map(|s| s.total.amount).sum();
    Ok(NewBooking {
        client_reference: client_reference.to_owned(),
        hotel_code,
        check_in,
        check_out,
        rooms: stays.into_iter().map(|s| Room { total: Some(s.total), ..s.room }).collect(),
        holder,
        total: Money { amount, currency },
    })
}

/// One `RoomStay`, read.
struct Stay {
    hotel_code: String,
    check_in: NaiveDate,
    check_out: NaiveDate,
    total: Money,
    room: Room,
}

fn room_stay(stay: &Element) -> Result<Stay, String> {
    let room_type = attr_at(stay, &["RoomTypes", "RoomType"], "RoomTypeCode")?;
    let meal_plan = attr_at(stay, &["RatePlans", "RatePlan"], "MealPlanCodes")?;
    if !ROOM_TYPES.contains(&room_type) || !MEAL_PLANS.contains(&meal_plan) {
        return Err(format!("unknown RoomTypeCode {room_type} or MealPlanCodes {meal_plan}"));
    }
    let mut counts = stay.path(&["GuestCounts"]).into_iter().flat_map(|g| g.children("GuestCount")).peekable();
    let valid = |c: &Element| {
        matches!(c.attr("AgeQualifyingCode"), Some("10" | "8"))
            && c.attr("Count").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 1)
    };
    if counts.peek().is_none() || !counts.all(valid) {
        return Err("GuestCounts needs GuestCount with AgeQualifyingCode 10 or 8 and a Count from 1".into());
    }
    let (check_in, check_out) = (date_at(stay, &["TimeSpan"], "Start")?, date_at(stay, &["TimeSpan"], "End")?);
    if check_out <= check_in {
        return Err("TimeSpan/@End must be after @Start".into());
    }
    let currency = attr_at(stay, &["Total"], "CurrencyCode")?;
    let total =
        Money::parse(attr_at(stay, &["Total"], "AmountAfterTax")?, currency).map_err(|e| format!("Total: {e}"))?;
    let room = Room { room_type: room_type.into(), board: meal_plan.into(), paxes: Vec::new(), total: None };
    let hotel_code = attr_at(stay, &["BasicPropertyInfo"], "HotelCode")?.to_owned();
    Ok(Stay { hotel_code, check_in, check_out, total, room })
}

/// Basic authentication with the partner id and password.
fn authorized(sim: &Shared, request: &HttpRequest) -> bool {
    let credentials = request.headers().get("Authorization").and_then(|v| v.to_str().ok());
    let credentials = credentials.and_then(|v| v.strip_prefix("Basic "));
    let decoded = credentials.and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.trim()).ok());
    let decoded = decoded.and_then(|v| String::from_utf8(v).ok()).unwrap_or_default();
    decoded.split_once(':').is_some_and(|(user, password)| {
        constant_time_eq(user.as_bytes(), sim.ota.username.as_bytes())
            & constant_time_eq(password.as_bytes(), sim.ota.password.as_bytes())
    })
}

/// What a faulted request gets instead of the supplier's answer.
fn fault_answer(fault: Fault, rs: &str) -> HttpResponse {
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    match fault {
        Fault::Status(code) => HttpResponse::build(status(code)).finish(),
        Fault::Timeout => HttpResponse::GatewayTimeout().finish(),
        Fault::RateLimited { retry_after_secs } => {
            HttpResponse::TooManyRequests().insert_header(("Retry-After", retry_after_secs.to_string())).finish()
        }
        Fault::Malformed => xml_answer(format!("<{rs} xmlns=\"{OTA_NS}\" Version=\"1.0\"><Success/><HotelRes")),
        Fault::SystemUnavailable => {
            xml_answer(message(rs, None, "", "<Errors><Error Type=\"1\" ShortText=\"SystemUnavailable\"/></Errors>"))
        }
    }
}

fn xml_answer(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("application/xml").body(body)
}

/// A whole message: the root in the OTA namespace with its `EchoToken` and other attributes.
fn message(root: &str, echo: Option<&str>, attributes: &str, inner: &str) -> String {
    let echo = echo.map(|e| format!(" EchoToken=\"{}\"", esc(e))).unwrap_or_default();
    format!("<{root} xmlns=\"{OTA_NS}\"{echo}{attributes} Version=\"1.0\">{inner}</{root}>")
}

fn reservation_ids(b: &Booking) -> String {
    let id = esc(&b.reference);
    format!(
        "<ResGlobalInfo><HotelReservationIDs><HotelReservationID ResID_Type=\"10\" ResID_Value=\"{id}\"/>\
         </HotelReservationIDs></ResGlobalInfo>"
    )
}

/// A reservation in the `OTA_HotelResNotifRQ` form, also used by `OTA_ResRetrieveRS`.
fn hotel_reservation(b: &Booking) -> String {
    let r = &b.request;
    let (hotel, check_in, check_out) = (esc(&r.hotel_code), r.check_in, r.check_out);
    let stays: String = r
        .rooms
        .iter()
        .map(|room| {
            let total = room.total.as_ref().unwrap_or(&r.total);
            let (room_type, board, currency) = (esc(&room.room_type), esc(&room.board), esc(&total.currency));
            format!(
                "<RoomStay><RoomTypes><RoomType RoomTypeCode=\"{room_type}\"/></RoomTypes><RatePlans><RatePlan \
                 MealPlanCodes=\"{board}\"/></RatePlans><TimeSpan Start=\"{check_in}\" End=\"{check_out}\"/><Total \
                 AmountAfterTax=\"{}\" CurrencyCode=\"{currency}\"/><BasicPropertyInfo HotelCode=\"{hotel}\"/></RoomStay>",
                total.amount_string()
            )
        })
        .collect();
    format!(
        "<HotelReservation ResStatus=\"{}\" CreateDateTime=\"{}\" LastModifyDateTime=\"{}\"><UniqueID Type=\"14\" \
         ID=\"{}\"/><RoomStays>{stays}</RoomStays>{}</HotelReservation>",
        b.status.code(Ota),
        timestamp(b.created_at),
        timestamp(b.modified_at),
        esc(&r.client_reference),
        reservation_ids(b)
    )
}

/// The `OTA_HotelResNotifRQ` pushed for a reservation; `EchoToken` is `ntf-<sequence>`.
pub(crate) fn notification(b: &Booking, sequence: u64) -> String {
    let attributes = format!(" TimeStamp=\"{}\"", timestamp(now()));
    let inner = format!("<HotelReservations>{}</HotelReservations>", hotel_reservation(b));
    message("OTA_HotelResNotifRQ", Some(&format!("ntf-{sequence}")), &attributes, &inner)
}

/// Whether the hub acknowledged a notification: `OTA_HotelResNotifRS` with `<Success/>`.
pub(crate) fn acknowledged(body: &str) -> bool {
    parse(body).is_ok_and(|d| {
        d.is("OTA_HotelResNotifRS") && d.children("Success").next().is_some() && d.children("Errors").next().is_none()
    })
}

/// The ota routes, under `/ota`.
pub(crate) fn scope() -> actix_web::Scope {
    let not_allowed = || web::to(|| async { method_not_allowed("POST") });
    web::scope("/ota")
        .service(web::resource("/OTA_HotelResRQ").route(web::post().to(hotel_res)).default_service(not_allowed()))
        .service(web::resource("/OTA_CancelRQ").route(web::post().to(cancel)).default_service(not_allowed()))
        .service(web::resource("/OTA_ReadRQ").route(web::post().to(read)).default_service(not_allowed()))
}
