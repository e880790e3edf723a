//! The `ota` supplier: a small profile of the OpenTravel Alliance (OTA 2003/05) hotel messages,
//! XML over HTTP POST with Basic authentication and `X-OTA-Signature` webhooks, exactly as its
//! partner document (`shared/partners/ota.md`) describes it.
//!
//! Messages are written and read with quick-xml's serde support. Elements and attributes are
//! matched on their local names, so an answer reads the same with or without a namespace prefix.
//! Failures follow the document: 429/5xx, dropped connections and `SystemUnavailable` are
//! transient, every other `<Errors>` is final.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use domain::supplier::{InboundWebhook, Rejection, RejectionReason, SupplierEvent, WebhookAck, WebhookError};
use domain::{Money, SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{signing, transient_status, unreachable};

const OTA_NS: &str = "http://www.opentravel.org/OTA/2003/05";
const VERSION: &str = "1.0";
/// `UniqueID/@Type` of the partner's (bookhub's) reference.
const PARTNER_REFERENCE: &str = "14";
/// `ResID_Type` (and cancel `UniqueID/@Type`) of the supplier's confirmation number.
const SUPPLIER_REFERENCE: &str = "10";
const ADULT: &str = "10";
/// The most reservations one `OTA_ReadRQ` answers; a full answer means the window must narrow.
const READ_CAP: usize = 500;

/// Where and how to reach an `ota` supplier.
#[derive(Clone, Deserialize, Serialize)]
pub struct OtaSettings {
    pub base_url: String,
    /// HTTP Basic credentials: the partner id and password the supplier gave us.
    pub username: String,
    pub password: String,
    /// Raw shared secrets accepted on `X-OTA-Signature` (several while one is rotated out).
    pub webhook_secrets: Vec<String>,
}

impl std::fmt::Debug for OtaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtaSettings")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &"…")
            .field("webhook_secrets", &format_args!("[{} × …]", self.webhook_secrets.len()))
            .finish()
    }
}

#[derive(Debug)]
pub struct OtaAdapter {
    code: SupplierCode,
    settings: OtaSettings,
    http: reqwest::Client,
    webhook_tolerance: chrono::Duration,
}

impl OtaAdapter {
    pub fn new(
        code: SupplierCode,
        mut settings: OtaSettings,
        http: reqwest::Client,
        webhook_tolerance: chrono::Duration,
    ) -> Self {
        settings.base_url = settings.base_url.trim_end_matches('/').to_owned();
        OtaAdapter { code, settings, http, webhook_tolerance }
    }

    /// POSTs one message to `{base}/{operation}` and returns the body of its `200` answer.
    async fn post(&self, operation: &str, xml: String) -> Result<String, SupplierError> {
        let response = self
            .http
            .post(format!("{}/{operation}", self.settings.base_url))
            .basic_auth(&self.settings.username, Some(&self.settings.password))
            .header(CONTENT_TYPE, "application/xml")
            .body(xml)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if let Some(transient) = transient_status(status, response.headers()) {
            return Err(transient);
        }
        match status {
            StatusCode::OK => response.text().await.map_err(unreachable),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(SupplierError::Permanent("authentication refused".into()))
            }
            other => Err(SupplierError::Permanent(format!("unexpected HTTP {}", other.as_u16()))),
        }
    }

    /// One `OTA_ReadRQ` for `[start, end]` (whole seconds, both ends included): how many
    /// reservations the supplier answered, and those reservations.
    #[tracing::instrument(skip_all, fields(supplier = %self.code, window.start = start, window.end = end))]
    async fn read_window(&self, start: i64, end: i64) -> Result<(usize, Vec<SupplierBooking>), SupplierError> {
        let body = self.post("OTA_ReadRQ", read_request_xml(seconds(start), seconds(end))?).await?;
        let answer: ResRetrieveRs = parse_answer(&body)?;
        outcome(answer.success.is_some(), answer.errors)?;
        let reservations = answer.reservations.map(|list| list.items).unwrap_or_default();
        let count = reservations.len();
        let bookings =
            reservations.into_iter().map(|r| r.into_booking().map_err(malformed)).collect::<Result<_, _>>()?;
        Ok((count, bookings))
    }
}

#[async_trait::async_trait]
impl SupplierAdapter for OtaAdapter {
    fn code(&self) -> &SupplierCode {
        &self.code
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code, booking.id = %request.client_reference))]
    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError> {
        let body = self.post("OTA_HotelResRQ", booking_request_xml(request, Utc::now())?).await?;
        parse_booking_answer(&body)
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code, supplier.reference = %reference))]
    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        let message = CancelRq {
            xmlns: OTA_NS,
            cancel_type: "Commit",
            version: VERSION,
            unique_id: UniqueIdOut { kind: SUPPLIER_REFERENCE, id: reference },
        };
        let body = self.post("OTA_CancelRQ", to_xml(&message)?).await?;
        let answer: CancelRs = parse_answer(&body)?;
        outcome(answer.success.is_some(), answer.errors)?;
        Ok(SupplierBooking {
            reference: reference.to_owned(),
            client_reference: None,
            status_code: present(answer.status).unwrap_or_else(|| "Cancelled".into()),
            hotel_code: None,
            check_in: None,
            check_out: None,
            rooms: Vec::new(),
            total: None,
            modified_at: None,
        })
    }

    /// Not offered: the OTA profile has no read-by-reference message (only `OTA_ReadRQ` by
    /// modification window), so this always answers [`SupplierError::Permanent`] without
    /// calling the supplier. Bookings are followed through webhooks and [`Self::list_modified`].
    async fn get(&self, _reference: &str) -> Result<SupplierBooking, SupplierError> {
        Err(SupplierError::Permanent("the ota profile cannot read one booking by reference".into()))
    }

    /// Reads `[from, to]` widened to whole seconds. The supplier answers at most 500
    /// reservations per read, so a full answer splits its window in two halves, read in turn,
    /// until every answer is below the cap; a booking seen twice is kept once (the latest
    /// `LastModifyDateTime`). A one-second window that is still full cannot be narrowed: that is
    /// a permanent error rather than a silently short list.
    #[tracing::instrument(skip_all, fields(supplier = %self.code, window.from = %from, window.to = %to))]
    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError> {
        let start = from.timestamp();
        let end = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
        let mut windows = if start <= end { vec![(start, end)] } else { Vec::new() };
        let mut found: BTreeMap<String, SupplierBooking> = BTreeMap::new();
        while let Some((start, end)) = windows.pop() {
            let (count, bookings) = self.read_window(start, end).await?;
            for booking in bookings {
                match found.entry(booking.reference.clone()) {
                    Entry::Vacant(slot) => {
                        slot.insert(booking);
                    }
                    Entry::Occupied(mut slot) if booking.modified_at >= slot.get().modified_at => {
                        slot.insert(booking);
                    }
                    Entry::Occupied(_) => {}
                }
            }
            if count >= READ_CAP {
                if start == end {
                    return Err(SupplierError::Permanent(format!(
                        "{count} reservations modified within the second {}: OTA_ReadRQ cannot list them all",
                        seconds(start)
                    )));
                }
                let middle = start + (end - start) / 2;
                windows.push((middle + 1, end));
                windows.push((start, middle));
            }
        }
        Ok(found.into_values().collect())
    }

    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError> {
        signing::verify_ota(&self.settings.webhook_secrets, webhook, now, self.webhook_tolerance)
    }

    /// One event per `HotelReservation`: its id is the `EchoToken`, or `{EchoToken}/{index}`
    /// (from 0, in document order) when the notification carries several reservations.
    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
        parse_notification(&webhook.body)
    }

    /// The notification's `EchoToken`, whatever the number of reservations in it.
    fn message_id(&self, events: &[SupplierEvent]) -> Option<String> {
        echo_token(events).map(str::to_owned)
    }

    /// `OTA_HotelResNotifRS` with `<Success/>`, echoing the notification's `EchoToken`.
    fn webhook_ack(&self, events: &[SupplierEvent]) -> WebhookAck {
        let echo_token = echo_token(events);
        let ack = HotelResNotifRs { xmlns: OTA_NS, echo_token, version: VERSION, success: () };
        WebhookAck {
            content_type: "application/xml",
            body: quick_xml::se::to_string(&ack).expect("fixed element names always serialize"),
        }
    }
}

// ---- writing requests ----

fn booking_request_xml(request: &SupplierBookingRequest, now: DateTime<Utc>) -> Result<String, SupplierError> {
    if request.rooms.is_empty() {
        return Err(SupplierError::Rejected(Rejection {
            reason: RejectionReason::InvalidRequest,
            detail: "a booking needs at least one room".into(),
        }));
    }
    let (start, end) = (request.check_in.to_string(), request.check_out.to_string());
    let hotel_code = request.hotel_code.as_str();
    let room_stays = request
        .rooms
        .iter()
        .zip(split_total(&request.expected_total, request.rooms.len()))
        .map(|(room, total)| RoomStayOut {
            room_types: Wrap { inner: RoomTypeOut { code: &room.room_type_code } },
            rate_plans: Wrap { inner: RatePlanOut { meal_plan_codes: &room.board_code } },
            guest_counts: Wrap { inner: GuestCountOut { age_qualifying_code: ADULT, count: room.guests.len() } },
            time_span: TimeSpanOut { start: start.clone(), end: end.clone() },
            total: TotalOut { amount_after_tax: total.amount().to_string(), currency: total.currency().code() },
            property: PropertyOut { hotel_code },
        })
        .collect();
    let holder = &request.holder;
    let message = HotelResRq {
        xmlns: OTA_NS,
        echo_token: &request.client_reference,
        time_stamp: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        version: VERSION,
        reservations: Wrap {
            inner: ReservationOut {
                unique_id: UniqueIdOut { kind: PARTNER_REFERENCE, id: &request.client_reference },
                room_stays: Wrap { inner: room_stays },
                res_guests: Wrap {
                    inner: ResGuestOut {
                        profiles: Wrap {
                            inner: ProfileInfoOut {
                                profile: Wrap {
                                    inner: CustomerOut {
                                        person_name: PersonNameOut {
                                            given_name: &holder.first_name,
                                            surname: &holder.last_name,
                                        },
                                        email: holder.email.as_deref(),
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    };
    to_xml(&message)
}

/// The total in whole minor units split across `rooms`, the remainder on the first room.
fn split_total(total: &Money, rooms: usize) -> Vec<Money> {
    let rooms = i64::try_from(rooms).expect("a booking has a handful of rooms");
    let (share, remainder) = (total.minor_units() / rooms, total.minor_units() % rooms);
    (0..rooms)
        .map(|i| {
            let minor = if i == 0 { share + remainder } else { share };
            Money::from_minor_units(minor, total.currency()).expect("a share of a valid amount is valid")
        })
        .collect()
}

fn read_request_xml(start: String, end: String) -> Result<String, SupplierError> {
    let criteria = SelectionCriteriaOut { date_type: "LastUpdateDate", start, end };
    let message = ReadRq {
        xmlns: OTA_NS,
        version: VERSION,
        read_requests: Wrap { inner: HotelReadRequestOut { selection_criteria: criteria } },
    };
    to_xml(&message)
}

fn to_xml(message: &impl Serialize) -> Result<String, SupplierError> {
    quick_xml::se::to_string(message).map_err(|e| SupplierError::Permanent(format!("cannot write the request: {e}")))
}

fn seconds(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---- reading answers ----

/// A 200 body that is not the expected message may still mean the booking was made: transient,
/// and safe to retry since the supplier keeps one reservation per `UniqueID`. The parser's own
/// message is left out: it can quote the body, which may hold personal data.
fn parse_answer<T: DeserializeOwned>(body: &str) -> Result<T, SupplierError> {
    quick_xml::de::from_str(body).map_err(|_| malformed("not an OTA message".into()))
}

fn malformed(what: String) -> SupplierError {
    SupplierError::transient(format!("malformed answer: {what}"))
}

fn parse_booking_answer(body: &str) -> Result<SupplierBooking, SupplierError> {
    let answer: HotelResRs = parse_answer(body)?;
    outcome(answer.success.is_some(), answer.errors)?;
    let reservation = answer.reservations.and_then(|list| list.items.into_iter().next());
    reservation.ok_or_else(|| malformed("no HotelReservation".into()))?.into_booking().map_err(malformed)
}

/// `<Errors>` wins over `<Success/>`; an answer with neither is malformed.
fn outcome(success: bool, errors: Option<Wrap<Vec<ErrorIn>>>) -> Result<(), SupplierError> {
    match errors {
        Some(errors) => Err(failure(&errors.inner)),
        None if success => Ok(()),
        None => Err(malformed("neither Success nor Errors".into())),
    }
}

/// The document's error rules: `Type="1"` + `SystemUnavailable` is transient; the codes it names
/// are refusals; anything else is final.
fn failure(errors: &[ErrorIn]) -> SupplierError {
    let unavailable =
        |e: &ErrorIn| e.kind.as_deref() == Some("1") && e.short_text.as_deref() == Some("SystemUnavailable");
    if errors.iter().any(unavailable) {
        return SupplierError::transient("the supplier is unavailable (SystemUnavailable)");
    }
    let refusal = errors.iter().find_map(|e| {
        let reason = match e.code.as_deref()?.trim() {
            "392" => RejectionReason::HotelUnknown,
            "322" => RejectionReason::NoAvailability,
            "361" => RejectionReason::PriceChanged,
            "450" => RejectionReason::InvalidRequest,
            _ => return None,
        };
        let words: Vec<&str> = [&e.short_text, &e.text].into_iter().flatten().map(|s| s.trim()).collect();
        Some(Rejection { reason, detail: words.join(": ") })
    });
    if let Some(rejection) = refusal {
        return SupplierError::Rejected(rejection);
    }
    let described: Vec<String> = errors
        .iter()
        .map(|e| {
            let field = |v: &Option<String>| v.as_deref().unwrap_or("-").trim().to_owned();
            format!("Type {} Code {} {} {}", field(&e.kind), field(&e.code), field(&e.short_text), field(&e.text))
        })
        .collect();
    SupplierError::Permanent(format!("OTA errors: [{}]", described.join("; ")))
}

fn parse_notification(body: &[u8]) -> Result<Vec<SupplierEvent>, WebhookError> {
    let text = std::str::from_utf8(body).map_err(|_| WebhookError::Malformed("the body is not UTF-8".into()))?;
    let message: HotelResNotifRq = quick_xml::de::from_str(text)
        .map_err(|_| WebhookError::Malformed("not an OTA_HotelResNotifRQ document".into()))?;
    let echo_token = present(message.echo_token).ok_or_else(|| WebhookError::Malformed("missing EchoToken".into()))?;
    let occurred_at =
        message.time_stamp.as_deref().map(|t| utc(t, "TimeStamp")).transpose().map_err(WebhookError::Malformed)?;
    let reservations = message.reservations.map(|list| list.items).unwrap_or_default();
    if reservations.is_empty() {
        return Err(WebhookError::Malformed("missing HotelReservation".into()));
    }
    let several = reservations.len() > 1;
    let in_reservation = |i: usize, what: String| {
        WebhookError::Malformed(if several { format!("HotelReservation {i}: {what}") } else { what })
    };
    reservations
        .into_iter()
        .enumerate()
        .map(|(i, reservation)| {
            let booking = reservation.into_booking().map_err(|what| in_reservation(i, what))?;
            if booking.client_reference.is_none() {
                return Err(in_reservation(i, format!("missing UniqueID Type {PARTNER_REFERENCE}")));
            }
            let event_id = if several { format!("{echo_token}/{i}") } else { echo_token.clone() };
            Ok(SupplierEvent { event_id, occurred_at, booking })
        })
        .collect()
}

/// `ntf-5521/3` → `ntf-5521`; an id without a numeric suffix is returned as it is.
/// The `EchoToken` the events were parsed from.
fn echo_token(events: &[SupplierEvent]) -> Option<&str> {
    events.first().map(|event| match events.len() {
        1 => event.event_id.as_str(),
        _ => strip_index(&event.event_id),
    })
}

fn strip_index(event_id: &str) -> &str {
    match event_id.rsplit_once('/') {
        Some((token, index)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => token,
        _ => event_id,
    }
}

fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn utc(value: &str, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.to_utc())
        .map_err(|_| format!("{what} is not an RFC 3339 time"))
}

fn date(value: Option<String>, what: &str) -> Result<Option<NaiveDate>, String> {
    value
        .map(|v| NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| format!("{what} is not a date")))
        .transpose()
}

impl ReservationIn {
    /// The notification form of a reservation (also used by `OTA_HotelResRS` and
    /// `OTA_ResRetrieveRS`) as a [`SupplierBooking`]; the error says what is missing or wrong.
    fn into_booking(self) -> Result<SupplierBooking, String> {
        let ids = self.global_info.and_then(|g| g.ids).map(|ids| ids.inner).unwrap_or_default();
        let reference =
            ids.into_iter().find(|id| id.kind.as_deref() == Some(SUPPLIER_REFERENCE)).and_then(|id| present(id.value));
        let reference = reference.ok_or(format!("missing HotelReservationID ResID_Type {SUPPLIER_REFERENCE}"))?;
        let status_code = present(self.status).ok_or("missing ResStatus")?;
        let partner_id = self.unique_ids.into_iter().find(|id| id.kind.as_deref() == Some(PARTNER_REFERENCE));
        let modified_at = self.last_modified.as_deref().map(|t| utc(t, "LastModifyDateTime")).transpose()?;
        let (mut rooms, mut hotel_code, mut totals) = (Vec::new(), None, Vec::new());
        let (mut check_in, mut check_out) = (None::<NaiveDate>, None::<NaiveDate>);
        for stay in self.room_stays.map(|s| s.inner).unwrap_or_default() {
            let room_type = stay.room_types.and_then(|t| t.inner.into_iter().next()).and_then(|t| present(t.code));
            let meal_plan =
                stay.rate_plans.and_then(|p| p.inner.into_iter().next()).and_then(|p| present(p.meal_plan_codes));
            rooms.push((room_type.ok_or("missing RoomTypeCode")?, meal_plan.ok_or("missing MealPlanCodes")?));
            hotel_code = hotel_code.or_else(|| stay.property.and_then(|p| present(p.hotel_code)));
            if let Some(span) = stay.time_span {
                let (start, end) = (date(span.start, "TimeSpan Start")?, date(span.end, "TimeSpan End")?);
                check_in = check_in.into_iter().chain(start).min();
                check_out = check_out.into_iter().chain(end).max();
            }
            let total = stay
                .total
                .map(|t| Money::parse(t.amount.as_deref().unwrap_or(""), t.currency.as_deref().unwrap_or("")));
            totals.push(total.transpose().map_err(|e| format!("Total {}: {e}", e.field()))?);
        }
        Ok(SupplierBooking {
            reference,
            client_reference: partner_id.and_then(|id| present(id.id)),
            status_code,
            hotel_code,
            check_in,
            check_out,
            rooms,
            total: sum(totals)?,
            modified_at,
        })
    }
}

/// The sum of every room's total; `None` unless every room carries one.
fn sum(totals: Vec<Option<Money>>) -> Result<Option<Money>, String> {
    let Some(totals) = totals.into_iter().collect::<Option<Vec<Money>>>() else { return Ok(None) };
    let Some(currency) = totals.first().map(Money::currency) else { return Ok(None) };
    if totals.iter().any(|t| t.currency() != currency) {
        return Err("the rooms' totals are in different currencies".into());
    }
    let minor = totals.iter().try_fold(0i64, |acc, t| acc.checked_add(t.minor_units())).ok_or("Total is too large")?;
    Money::from_minor_units(minor, currency).map(Some).map_err(|_| "Total is too large".into())
}

// ---- wire structs ----

/// An element holding one child (or, as `Wrap<Vec<T>>`, a list of children); the child's tag is
/// its own type's serde name.
#[derive(Serialize, Deserialize)]
struct Wrap<T> {
    #[serde(rename = "$value", default)]
    inner: T,
}

#[derive(Serialize)]
#[serde(rename = "OTA_HotelResRQ")]
struct HotelResRq<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "@EchoToken")]
    echo_token: &'a str,
    #[serde(rename = "@TimeStamp")]
    time_stamp: String,
    #[serde(rename = "@Version")]
    version: &'static str,
    #[serde(rename = "HotelReservations")]
    reservations: Wrap<ReservationOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "HotelReservation")]
struct ReservationOut<'a> {
    #[serde(rename = "UniqueID")]
    unique_id: UniqueIdOut<'a>,
    #[serde(rename = "RoomStays")]
    room_stays: Wrap<Vec<RoomStayOut<'a>>>,
    #[serde(rename = "ResGuests")]
    res_guests: Wrap<ResGuestOut<'a>>,
}

#[derive(Serialize)]
struct UniqueIdOut<'a> {
    #[serde(rename = "@Type")]
    kind: &'static str,
    #[serde(rename = "@ID")]
    id: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "RoomStay")]
struct RoomStayOut<'a> {
    #[serde(rename = "RoomTypes")]
    room_types: Wrap<RoomTypeOut<'a>>,
    #[serde(rename = "RatePlans")]
    rate_plans: Wrap<RatePlanOut<'a>>,
    #[serde(rename = "GuestCounts")]
    guest_counts: Wrap<GuestCountOut>,
    #[serde(rename = "TimeSpan")]
    time_span: TimeSpanOut,
    #[serde(rename = "Total")]
    total: TotalOut,
    #[serde(rename = "BasicPropertyInfo")]
    property: PropertyOut<'a>,
}

#[derive(Serialize)]
#[serde(rename = "RoomType")]
struct RoomTypeOut<'a> {
    #[serde(rename = "@RoomTypeCode")]
    code: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "RatePlan")]
struct RatePlanOut<'a> {
    #[serde(rename = "@MealPlanCodes")]
    meal_plan_codes: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "GuestCount")]
struct GuestCountOut {
    #[serde(rename = "@AgeQualifyingCode")]
    age_qualifying_code: &'static str,
    #[serde(rename = "@Count")]
    count: usize,
}

#[derive(Serialize)]
struct TimeSpanOut {
    #[serde(rename = "@Start")]
    start: String,
    #[serde(rename = "@End")]
    end: String,
}

#[derive(Serialize)]
struct TotalOut {
    #[serde(rename = "@AmountAfterTax")]
    amount_after_tax: String,
    #[serde(rename = "@CurrencyCode")]
    currency: &'static str,
}

#[derive(Serialize)]
struct PropertyOut<'a> {
    #[serde(rename = "@HotelCode")]
    hotel_code: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "ResGuest")]
struct ResGuestOut<'a> {
    #[serde(rename = "Profiles")]
    profiles: Wrap<ProfileInfoOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "ProfileInfo")]
struct ProfileInfoOut<'a> {
    #[serde(rename = "Profile")]
    profile: Wrap<CustomerOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename = "Customer")]
struct CustomerOut<'a> {
    #[serde(rename = "PersonName")]
    person_name: PersonNameOut<'a>,
    #[serde(rename = "Email", skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct PersonNameOut<'a> {
    #[serde(rename = "GivenName")]
    given_name: &'a str,
    #[serde(rename = "Surname")]
    surname: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "OTA_CancelRQ")]
struct CancelRq<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "@CancelType")]
    cancel_type: &'static str,
    #[serde(rename = "@Version")]
    version: &'static str,
    #[serde(rename = "UniqueID")]
    unique_id: UniqueIdOut<'a>,
}

#[derive(Serialize)]
#[serde(rename = "OTA_ReadRQ")]
struct ReadRq {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "@Version")]
    version: &'static str,
    #[serde(rename = "ReadRequests")]
    read_requests: Wrap<HotelReadRequestOut>,
}

#[derive(Serialize)]
#[serde(rename = "HotelReadRequest")]
struct HotelReadRequestOut {
    #[serde(rename = "SelectionCriteria")]
    selection_criteria: SelectionCriteriaOut,
}

#[derive(Serialize)]
struct SelectionCriteriaOut {
    #[serde(rename = "@DateType")]
    date_type: &'static str,
    #[serde(rename = "@Start")]
    start: String,
    #[serde(rename = "@End")]
    end: String,
}

#[derive(Serialize)]
#[serde(rename = "OTA_HotelResNotifRS")]
struct HotelResNotifRs<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "@EchoToken", skip_serializing_if = "Option::is_none")]
    echo_token: Option<&'a str>,
    #[serde(rename = "@Version")]
    version: &'static str,
    #[serde(rename = "Success")]
    success: (),
}

// Answers and notifications: everything optional, so a missing part is reported by name.

#[derive(Deserialize)]
struct Empty {}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(rename = "@Type")]
    kind: Option<String>,
    #[serde(rename = "@Code")]
    code: Option<String>,
    #[serde(rename = "@ShortText")]
    short_text: Option<String>,
    #[serde(rename = "$text")]
    text: Option<String>,
}

#[derive(Deserialize)]
struct HotelResRs {
    #[serde(rename = "Success")]
    success: Option<Empty>,
    #[serde(rename = "Errors")]
    errors: Option<Wrap<Vec<ErrorIn>>>,
    #[serde(rename = "HotelReservations")]
    reservations: Option<Reservations>,
}

#[derive(Deserialize)]
struct CancelRs {
    #[serde(rename = "@Status")]
    status: Option<String>,
    #[serde(rename = "Success")]
    success: Option<Empty>,
    #[serde(rename = "Errors")]
    errors: Option<Wrap<Vec<ErrorIn>>>,
}

#[derive(Deserialize)]
struct ResRetrieveRs {
    #[serde(rename = "Success")]
    success: Option<Empty>,
    #[serde(rename = "Errors")]
    errors: Option<Wrap<Vec<ErrorIn>>>,
    #[serde(rename = "ReservationsList")]
    reservations: Option<Reservations>,
}

#[derive(Deserialize)]
struct HotelResNotifRq {
    #[serde(rename = "@EchoToken")]
    echo_token: Option<String>,
    #[serde(rename = "@TimeStamp")]
    time_stamp: Option<String>,
    #[serde(rename = "HotelReservations")]
    reservations: Option<Reservations>,
}

#[derive(Deserialize)]
struct Reservations {
    #[serde(rename = "HotelReservation", default)]
    items: Vec<ReservationIn>,
}

#[derive(Deserialize)]
struct ReservationIn {
    #[serde(rename = "@ResStatus")]
    status: Option<String>,
    #[serde(rename = "@LastModifyDateTime")]
    last_modified: Option<String>,
    #[serde(rename = "UniqueID", default)]
    unique_ids: Vec<UniqueIdIn>,
    #[serde(rename = "RoomStays")]
    room_stays: Option<Wrap<Vec<RoomStayIn>>>,
    #[serde(rename = "ResGlobalInfo")]
    global_info: Option<GlobalInfoIn>,
}

#[derive(Deserialize)]
struct UniqueIdIn {
    #[serde(rename = "@Type")]
    kind: Option<String>,
    #[serde(rename = "@ID")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct RoomStayIn {
    #[serde(rename = "RoomTypes")]
    room_types: Option<Wrap<Vec<RoomTypeIn>>>,
    #[serde(rename = "RatePlans")]
    rate_plans: Option<Wrap<Vec<RatePlanIn>>>,
    #[serde(rename = "TimeSpan")]
    time_span: Option<TimeSpanIn>,
    #[serde(rename = "Total")]
    total: Option<TotalIn>,
    #[serde(rename = "BasicPropertyInfo")]
    property: Option<PropertyIn>,
}

#[derive(Deserialize)]
struct RoomTypeIn {
    #[serde(rename = "@RoomTypeCode")]
    code: Option<String>,
}

#[derive(Deserialize)]
struct RatePlanIn {
    #[serde(rename = "@MealPlanCodes")]
    meal_plan_codes: Option<String>,
}

#[derive(Deserialize)]
struct TimeSpanIn {
    #[serde(rename = "@Start")]
    start: Option<String>,
    #[serde(rename = "@End")]
    end: Option<String>,
}

#[derive(Deserialize)]
struct TotalIn {
    #[serde(rename = "@AmountAfterTax")]
    amount: Option<String>,
    #[serde(rename = "@CurrencyCode")]
    currency: Option<String>,
}

#[derive(Deserialize)]
struct PropertyIn {
    #[serde(rename = "@HotelCode")]
    hotel_code: Option<String>,
}

#[derive(Deserialize)]
struct GlobalInfoIn {
    #[serde(rename = "HotelReservationIDs")]
    ids: Option<Wrap<Vec<ReservationIdIn>>>,
}

#[derive(Deserialize)]
struct ReservationIdIn {
    #[serde(rename = "@ResID_Type")]
    kind: Option<String>,
    #[serde(rename = "@ResID_Value")]
    value: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::supplier::{SupplierGuest, SupplierRoom};
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// The namespace as the partner document spells it (not the module's constant).
    const NS: &str = "http://www.opentravel.org/OTA/2003/05";
    const RES_RS: &str = include_str!("../../../tests/fixtures/ota/hotel_res_rs.xml");
    const NOTIF_RQ: &str = include_str!("../../../tests/fixtures/ota/hotel_res_notif_rq.xml");

    fn guest(first: &str, last: &str, email: Option<&str>) -> SupplierGuest {
        SupplierGuest { first_name: first.into(), last_name: last.into(), email: email.map(Into::into) }
    }

    fn two_room_request() -> SupplierBookingRequest {
        let adult = || guest("Guest", "Adult", None);
        SupplierBookingRequest {
            client_reference: "bk_01JD5QAB".into(),
            hotel_code: "PMI-00042".into(),
            check_in: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
            check_out: NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
            holder: guest("Ana & \"Bea\"", "Pérez <O'Brien>", Some("ana@example.com")),
            rooms: vec![
                SupplierRoom { room_type_code: "DBS".into(), board_code: "3".into(), guests: vec![adult(), adult()] },
                SupplierRoom { room_type_code: "SNG".into(), board_code: "14".into(), guests: vec![adult()] },
            ],
            expected_total: Money::parse("450.01", "EUR").unwrap(),
        }
    }

    /// Every element as (path of local names, the namespace it resolves to), in document order.
    fn elements(xml: &str) -> Vec<(String, String)> {
        let mut reader = quick_xml::NsReader::from_str(xml);
        let (mut stack, mut found) = (Vec::<String>::new(), Vec::new());
        loop {
            let (ns, event) = reader.read_resolved_event().unwrap();
            let ns = match ns {
                ResolveResult::Bound(Namespace(ns)) => ns.to_owned(),
                other => format!("{other:?}"),
            };
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    stack.push(e.local_name().into_inner().to_owned());
                    found.push((stack.join("/"), ns));
                    if matches!(event, Event::Empty(_)) {
                        stack.pop();
                    }
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Eof => return found,
                _ => {}
            }
        }
    }

    /// An element's only child, whatever its name (names are checked with [`elements`]).
    #[derive(Deserialize)]
    struct Child<T> {
        #[serde(rename = "$value")]
        inner: T,
    }

    #[derive(Deserialize)]
    struct RequestView {
        #[serde(rename = "@EchoToken")]
        echo_token: String,
        #[serde(rename = "@TimeStamp")]
        time_stamp: String,
        #[serde(rename = "@Version")]
        version: String,
        #[serde(rename = "HotelReservations")]
        reservations: Child<ReservationView>,
    }

    #[derive(Deserialize)]
    struct ReservationView {
        #[serde(rename = "UniqueID")]
        unique_id: UniqueIdIn,
        #[serde(rename = "RoomStays")]
        room_stays: Child<Vec<RoomStayView>>,
        /// ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer
        #[serde(rename = "ResGuests")]
        res_guests: Child<Child<Child<Child<Child<CustomerView>>>>>,
    }

    #[derive(Deserialize)]
    struct RoomStayView {
        #[serde(rename = "RoomTypes")]
        room_types: Child<RoomTypeIn>,
        #[serde(rename = "RatePlans")]
        rate_plans: Child<RatePlanIn>,
        #[serde(rename = "GuestCounts")]
        guest_counts: Child<GuestCountView>,
        #[serde(rename = "TimeSpan")]
        time_span: TimeSpanIn,
        #[serde(rename = "Total")]
        total: TotalIn,
        #[serde(rename = "BasicPropertyInfo")]
        property: PropertyIn,
    }

    #[derive(Deserialize)]
    struct GuestCountView {
        #[serde(rename = "@AgeQualifyingCode")]
        age: String,
        #[serde(rename = "@Count")]
        count: String,
    }

    #[derive(Deserialize)]
    struct CustomerView {
        #[serde(rename = "PersonName")]
        name: PersonNameView,
        #[serde(rename = "Email")]
        email: Option<String>,
    }

    #[derive(Deserialize)]
    struct PersonNameView {
        #[serde(rename = "GivenName")]
        given: String,
        #[serde(rename = "Surname")]
        surname: String,
    }

    #[test]
    fn a_two_room_request_follows_the_document_and_escapes_the_names() {
        let now = DateTime::parse_from_rfc3339("2027-01-10T12:00:00.734Z").unwrap().to_utc();
        let xml = booking_request_xml(&two_room_request(), now).unwrap();

        let found = elements(&xml);
        assert!(found.iter().all(|(_, ns)| ns == NS), "every element in the OTA namespace: {found:?}");
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        let stay = "OTA_HotelResRQ/HotelReservations/HotelReservation/RoomStays/RoomStay";
        assert_eq!(paths.iter().filter(|p| **p == stay).count(), 2);
        for leaf in ["RoomTypes/RoomType", "RatePlans/RatePlan", "GuestCounts/GuestCount", "TimeSpan", "Total"] {
            assert_eq!(paths.iter().filter(|p| **p == format!("{stay}/{leaf}")).count(), 2, "{leaf}");
        }
        let name = concat!(
            "OTA_HotelResRQ/HotelReservations/HotelReservation/",
            "ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer/PersonName/Surname"
        );
        assert!(paths.contains(&name), "{paths:?}");
        assert!(xml.contains("&amp;") && xml.contains("&lt;O'Brien&gt;") && xml.contains("Pérez"), "{xml}");

        let view: RequestView = quick_xml::de::from_str(&xml).unwrap();
        assert_eq!(
            (view.echo_token.as_str(), view.time_stamp.as_str(), view.version.as_str()),
            ("bk_01JD5QAB", "2027-01-10T12:00:00Z", "1.0")
        );
        let reservation = view.reservations.inner;
        assert_eq!(reservation.unique_id.kind.as_deref(), Some("14"));
        assert_eq!(reservation.unique_id.id.as_deref(), Some("bk_01JD5QAB"));
        let stays = reservation.room_stays.inner;
        let summary: Vec<_> = stays
            .iter()
            .map(|s| {
                (
                    s.room_types.inner.code.as_deref().unwrap(),
                    s.rate_plans.inner.meal_plan_codes.as_deref().unwrap(),
                    (s.guest_counts.inner.age.as_str(), s.guest_counts.inner.count.as_str()),
                    s.total.amount.as_deref().unwrap(),
                    s.total.currency.as_deref().unwrap(),
                    s.property.hotel_code.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("DBS", "3", ("10", "2"), "225.01", "EUR", "PMI-00042"),
                ("SNG", "14", ("10", "1"), "225.00", "EUR", "PMI-00042")
            ]
        );
        assert!(
            stays.iter().all(|s| s.time_span.start.as_deref() == Some("2027-03-15")
                && s.time_span.end.as_deref() == Some("2027-03-18"))
        );
        let customer = reservation.res_guests.inner.inner.inner.inner.inner;
        assert_eq!(customer.name.given, "Ana & \"Bea\"");
        assert_eq!(customer.name.surname, "Pérez <O'Brien>");
        assert_eq!(customer.email.as_deref(), Some("ana@example.com"));
    }

    #[test]
    fn totals_split_in_whole_minor_units_with_the_remainder_first() {
        let split = |total: &str, currency: &str, rooms| -> Vec<String> {
            split_total(&Money::parse(total, currency).unwrap(), rooms).iter().map(|m| m.amount().to_string()).collect()
        };
        assert_eq!(split("100.00", "EUR", 3), ["33.34", "33.33", "33.33"]);
        assert_eq!(split("1001", "JPY", 2), ["501", "500"]);
        assert_eq!(split("450.00", "EUR", 1), ["450.00"]);
    }

    #[test]
    fn the_documents_booking_answer_reads_into_a_supplier_booking() {
        let booking = parse_booking_answer(RES_RS).unwrap();
        assert_eq!(
            booking,
            SupplierBooking {
                reference: "OTA-77812".into(),
                client_reference: Some("bk_01JD5Q...".into()),
                status_code: "Reserved".into(),
                hotel_code: None,
                check_in: None,
                check_out: None,
                rooms: vec![],
                total: None,
                modified_at: None,
            }
        );
        // The same answer with a namespace prefix reads the same.
        let prefixed = RES_RS.replace("<", "<ota:").replace("<ota:/", "</ota:").replace("xmlns=", "xmlns:ota=");
        assert!(prefixed.contains("<ota:HotelReservationID "));
        assert_eq!(parse_booking_answer(&prefixed), Ok(booking));
    }

    #[test]
    fn the_documents_notification_reads_into_one_event() {
        let events = parse_notification(NOTIF_RQ.as_bytes()).unwrap();
        let time = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            events,
            [SupplierEvent {
                event_id: "ntf-5521".into(),
                occurred_at: Some(time("2027-01-10T12:00:00Z")),
                booking: SupplierBooking {
                    reference: "OTA-77812".into(),
                    client_reference: Some("bk_01JD5Q...".into()),
                    status_code: "Reserved".into(),
                    hotel_code: Some("PMI-00042".into()),
                    check_in: NaiveDate::from_ymd_opt(2027, 3, 15),
                    check_out: NaiveDate::from_ymd_opt(2027, 3, 18),
                    rooms: vec![("DBS".into(), "3".into())],
                    total: Some(Money::parse("450.00", "EUR").unwrap()),
                    modified_at: Some(time("2027-01-10T12:00:00Z")),
                },
            }]
        );
    }

    #[test]
    fn several_reservations_are_several_events_and_the_ack_echoes_the_token() {
        let start = NOTIF_RQ.find("<HotelReservation ").unwrap();
        let end = NOTIF_RQ.find("</HotelReservations>").unwrap();
        let second = NOTIF_RQ[start..end].replace("OTA-77812", "OTA-9").replace("450.00", "99.50");
        let body = NOTIF_RQ.replacen("</HotelReservations>", &format!("{second}</HotelReservations>"), 1);
        let events = parse_notification(body.as_bytes()).unwrap();
        let ids: Vec<_> = events.iter().map(|e| (e.event_id.as_str(), e.booking.reference.as_str())).collect();
        assert_eq!(ids, [("ntf-5521/0", "OTA-77812"), ("ntf-5521/1", "OTA-9")]);
        assert_eq!(events[1].booking.total, Some(Money::parse("99.50", "EUR").unwrap()));

        let adapter = adapter_for("http://127.0.0.1:9");
        let expected = format!(
            r#"<OTA_HotelResNotifRS xmlns="{NS}" EchoToken="ntf-5521" Version="1.0"><Success/></OTA_HotelResNotifRS>"#
        );
        let ack = adapter.webhook_ack(&events);
        assert_eq!((ack.content_type, ack.body.as_str()), ("application/xml", expected.as_str()));
        let single = parse_notification(NOTIF_RQ.replace("ntf-5521", "ntf/7").as_bytes()).unwrap();
        assert!(
            adapter.webhook_ack(&single).body.contains(r#"EchoToken="ntf/7""#),
            "a lone event's id is the token itself"
        );
    }

    #[test]
    fn notifications_missing_their_ids_are_malformed() {
        let malformed = |body: &str| match parse_notification(body.as_bytes()) {
            Err(WebhookError::Malformed(what)) => what,
            other => panic!("expected Malformed, got {other:?}"),
        };
        assert_eq!(malformed(&NOTIF_RQ.replace(r#"EchoToken="ntf-5521" "#, "")), "missing EchoToken");
        assert_eq!(malformed(&NOTIF_RQ.replace(r#"ResStatus="Reserved" "#, "")), "missing ResStatus");
        assert_eq!(
            malformed(&NOTIF_RQ.replace(r#"ResID_Type="10""#, r#"ResID_Type="5""#)),
            "missing HotelReservationID ResID_Type 10"
        );
        assert_eq!(malformed(&NOTIF_RQ.replace(r#"Type="14""#, r#"Type="99""#)), "missing UniqueID Type 14");
        assert_eq!(malformed(r#"{"event": "booking.confirmed"}"#), "not an OTA_HotelResNotifRQ document");
        assert_eq!(malformed("<OTA_HotelResNotifRQ EchoToken=\"x\">"), "not an OTA_HotelResNotifRQ document");
    }

    #[test]
    fn webhooks_verify_with_the_x_ota_signature_and_debug_hides_the_secrets() {
        let adapter = adapter_for("http://127.0.0.1:9");
        let now = Utc::now();
        let signature = signing::sign_ota("shared-secret", now.timestamp(), NOTIF_RQ.as_bytes());
        let headers = [("x-ota-timestamp", now.timestamp().to_string()), ("x-ota-signature", signature)];
        let mut webhook = InboundWebhook {
            headers: headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            body: NOTIF_RQ.as_bytes().to_vec(),
        };
        assert_eq!(adapter.verify_webhook(&webhook, now), Ok(()));
        webhook.body.push(b' ');
        assert_eq!(adapter.verify_webhook(&webhook, now), Err(WebhookError::BadSignature));
        let debug = format!("{adapter:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("shared-secret"), "{debug}");
    }

    // ---- against a real HTTP peer on loopback ----

    fn adapter_for(base_url: &str) -> OtaAdapter {
        let settings = OtaSettings {
            base_url: format!("{base_url}/"),
            username: "partner".into(),
            password: "s3cret".into(),
            webhook_secrets: vec!["shared-secret".into()],
        };
        let http = super::super::http_client(Duration::from_secs(5));
        OtaAdapter::new("ota".parse().unwrap(), settings, http, chrono::Duration::minutes(5))
    }

    fn xml(status: u16, body: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/xml")
    }

    /// Books the two-room request against a peer answering `answer` to an authenticated
    /// `OTA_HotelResRQ` (anything else gets wiremock's 404).
    async fn book_against(answer: ResponseTemplate) -> Result<SupplierBooking, SupplierError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/OTA_HotelResRQ"))
            .and(header("authorization", "Basic cGFydG5lcjpzM2NyZXQ="))
            .and(header("content-type", "application/xml"))
            .and(body_string_contains(r#"<UniqueID Type="14" ID="bk_01JD5QAB"/>"#))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        adapter_for(&server.uri()).book(&two_room_request()).await
    }

    fn errors(error: &str) -> ResponseTemplate {
        xml(200, &format!(r#"<OTA_HotelResRS xmlns="{NS}" Version="1.0"><Errors>{error}</Errors></OTA_HotelResRS>"#))
    }

    fn rejection(result: Result<SupplierBooking, SupplierError>) -> (RejectionReason, String) {
        match result {
            Err(SupplierError::Rejected(Rejection { reason, detail })) => (reason, detail),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn book_sends_basic_auth_and_reads_the_reservation() {
        let booking = book_against(xml(200, RES_RS)).await.unwrap();
        assert_eq!((booking.reference.as_str(), booking.status_code.as_str()), ("OTA-77812", "Reserved"));
    }

    #[tokio::test]
    async fn error_codes_become_refusals_or_final_or_transient_failures() {
        let hotel = book_against(errors(r#"<Error Type="3" Code="392" ShortText="InvalidHotelCode"/>"#)).await;
        assert_eq!(rejection(hotel), (RejectionReason::HotelUnknown, "InvalidHotelCode".into()));
        let price =
            book_against(errors(r#"<Error Type="3" Code="361" ShortText="PriceChanged">now 480.00 EUR</Error>"#)).await;
        assert_eq!(rejection(price), (RejectionReason::PriceChanged, "PriceChanged: now 480.00 EUR".into()));
        let full = book_against(errors(r#"<Error Type="3" Code="322" ShortText="NoAvailability"/>"#)).await;
        assert_eq!(rejection(full).0, RejectionReason::NoAvailability);
        let unavailable = book_against(errors(r#"<Error Type="1" ShortText="SystemUnavailable"/>"#)).await;
        assert!(matches!(unavailable, Err(SupplierError::Transient { .. })), "{unavailable:?}");
        let other = book_against(errors(r#"<Error Type="3" Code="187" ShortText="SystemError"/>"#)).await;
        assert!(matches!(&other, Err(SupplierError::Permanent(m)) if m.contains("187")), "{other:?}");
    }

    #[tokio::test]
    async fn http_failures_map_to_transient_or_permanent() {
        let busy = book_against(xml(503, "").insert_header("Retry-After", "7")).await;
        assert_eq!(
            busy,
            Err(SupplierError::Transient { reason: "HTTP 503".into(), retry_after: Some(Duration::from_secs(7)) })
        );
        let refused = book_against(xml(401, "")).await;
        assert_eq!(refused, Err(SupplierError::Permanent("authentication refused".into())));
        let garbled = book_against(xml(200, "<html><body>Bad gateway")).await;
        assert!(
            matches!(&garbled, Err(SupplierError::Transient { reason, .. }) if reason.starts_with("malformed answer"))
        );
        let empty = book_against(xml(200, &format!(r#"<OTA_HotelResRS xmlns="{NS}"/>"#))).await;
        assert!(
            matches!(&empty, Err(SupplierError::Transient { reason, .. }) if reason.starts_with("malformed answer"))
        );
        let nobody = adapter_for("http://127.0.0.1:1").book(&two_room_request()).await;
        assert!(matches!(nobody, Err(SupplierError::Transient { .. })), "{nobody:?}");
    }

    #[tokio::test]
    async fn cancel_commits_and_a_repeat_succeeds_again() {
        let server = MockServer::start().await;
        let answer =
            format!(r#"<OTA_CancelRS xmlns="{NS}" Status="Cancelled" Version="1.0"><Success/></OTA_CancelRS>"#);
        Mock::given(method("POST"))
            .and(path("/OTA_CancelRQ"))
            .and(header("authorization", "Basic cGFydG5lcjpzM2NyZXQ="))
            .and(body_string_contains(r#"CancelType="Commit""#))
            .and(body_string_contains(r#"<UniqueID Type="10" ID="OTA-77812"/>"#))
            .respond_with(xml(200, &answer))
            .expect(2)
            .mount(&server)
            .await;
        let adapter = adapter_for(&server.uri());
        for _ in 0..2 {
            let cancelled = adapter.cancel("OTA-77812").await.unwrap();
            assert_eq!((cancelled.reference.as_str(), cancelled.status_code.as_str()), ("OTA-77812", "Cancelled"));
        }
        assert!(matches!(adapter.get("OTA-77812").await, Err(SupplierError::Permanent(_))));
    }

    fn reservation(reference: &str, status: &str, modified: &str) -> String {
        format!(
            r#"<HotelReservation ResStatus="{status}" LastModifyDateTime="{modified}"><UniqueID Type="14" ID="bk_{reference}"/><ResGlobalInfo><HotelReservationIDs><HotelReservationID ResID_Type="10" ResID_Value="{reference}"/></HotelReservationIDs></ResGlobalInfo></HotelReservation>"#
        )
    }

    fn retrieved(reservations: &[String]) -> ResponseTemplate {
        let list = reservations.concat();
        xml(
            200,
            &format!(
                r#"<OTA_ResRetrieveRS xmlns="{NS}" Version="1.0"><Success/><ReservationsList>{list}</ReservationsList></OTA_ResRetrieveRS>"#
            ),
        )
    }

    async fn mount_read(server: &MockServer, start: &str, end: &str, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/OTA_ReadRQ"))
            .and(body_string_contains(format!(
                r#"<SelectionCriteria DateType="LastUpdateDate" Start="2027-01-01T00:00:{start}Z" End="2027-01-01T00:00:{end}Z"/>"#
            )))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn a_full_read_splits_its_window_in_halves_and_dedupes() {
        let server = MockServer::start().await;
        let full: Vec<String> =
            (0..500).map(|i| reservation(&format!("R-{i:03}"), "Reserved", "2027-01-01T00:00:01Z")).collect();
        mount_read(&server, "00", "10", retrieved(&full)).await;
        let first = [
            reservation("R-000", "Reserved", "2027-01-01T00:00:01Z"),
            reservation("R-500", "Reserved", "2027-01-01T00:00:04Z"),
        ];
        mount_read(&server, "00", "05", retrieved(&first)).await;
        let second = [
            reservation("R-499", "Cancelled", "2027-01-01T00:00:08Z"),
            reservation("R-501", "Pending", "2027-01-01T00:00:09Z"),
        ];
        mount_read(&server, "06", "10", retrieved(&second)).await;

        let from = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").unwrap().to_utc();
        let to = DateTime::parse_from_rfc3339("2027-01-01T00:00:09.250Z").unwrap().to_utc();
        let bookings = adapter_for(&server.uri()).list_modified(from, to).await.unwrap();

        assert_eq!(bookings.len(), 502);
        let status =
            |reference: &str| bookings.iter().find(|b| b.reference == reference).map(|b| b.status_code.as_str());
        assert_eq!(
            (status("R-499"), status("R-500"), status("R-501")),
            (Some("Cancelled"), Some("Reserved"), Some("Pending"))
        );
        assert_eq!(
            bookings.iter().find(|b| b.reference == "R-000").unwrap().client_reference.as_deref(),
            Some("bk_R-000")
        );
    }

    #[tokio::test]
    async fn a_full_one_second_window_is_an_error_not_a_short_list() {
        let server = MockServer::start().await;
        let full: Vec<String> =
            (0..500).map(|i| reservation(&format!("R-{i:03}"), "Reserved", "2027-01-01T00:00:03Z")).collect();
        mount_read(&server, "03", "03", retrieved(&full)).await;
        let second = DateTime::parse_from_rfc3339("2027-01-01T00:00:03Z").unwrap().to_utc();
        let result = adapter_for(&server.uri()).list_modified(second, second).await;
        assert!(matches!(result, Err(SupplierError::Permanent(_))), "{result:?}");
    }
}
