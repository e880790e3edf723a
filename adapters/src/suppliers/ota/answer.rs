//! Reading the supplier's answers and notifications, and mapping its `<Errors>` to
//! [`SupplierError`] as the partner document says: `SystemUnavailable` is transient, the codes it
//! names are refusals, anything else is final. Reading never quotes a body back: it may hold
//! personal data.

use chrono::{DateTime, NaiveDate, Utc};
use domain::supplier::{Rejection, RejectionReason, SupplierEvent, WebhookError};
use domain::{Money, SupplierBooking, SupplierError};
use serde::de::DeserializeOwned;

use super::wire::*;
use super::{PARTNER_REFERENCE, SUPPLIER_REFERENCE};

/// A 200 body that is not the expected message may still mean the booking was made: transient,
/// and safe to retry since the supplier keeps one reservation per `UniqueID`. The parser's own
/// message is left out: it can quote the body, which may hold personal data.
fn parse_answer<T: DeserializeOwned>(body: &str) -> Result<T, SupplierError> {
    quick_xml::de::from_str(body).map_err(|_| malformed("not an OTA message".into()))
}

pub(super) fn malformed(what: String) -> SupplierError {
    SupplierError::transient(format!("malformed answer: {what}"))
}

pub(super) fn parse_booking_answer(body: &str) -> Result<SupplierBooking, SupplierError> {
    let answer: HotelResRs = parse_answer(body)?;
    outcome(answer.success.is_some(), answer.errors)?;
    let reservation = answer.reservations.and_then(|list| list.items.into_iter().next());
    reservation.ok_or_else(|| malformed("no HotelReservation".into()))?.into_booking().map_err(malformed)
}

/// The `OTA_CancelRS` to cancelling `reference`: the reservation as cancelled (the supplier
/// answers the same to a repeat).
pub(super) fn parse_cancel_answer(reference: &str, body: &str) -> Result<SupplierBooking, SupplierError> {
    let answer: CancelRs = parse_answer(body)?;
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

/// The `OTA_ResRetrieveRS` to one `OTA_ReadRQ`: how many reservations it held, and those
/// reservations.
pub(super) fn parse_read_answer(body: &str) -> Result<(usize, Vec<SupplierBooking>), SupplierError> {
    let answer: ResRetrieveRs = parse_answer(body)?;
    outcome(answer.success.is_some(), answer.errors)?;
    let reservations = answer.reservations.map(|list| list.items).unwrap_or_default();
    let count = reservations.len();
    let bookings = reservations.into_iter().map(|r| r.into_booking().map_err(malformed)).collect::<Result<_, _>>()?;
    Ok((count, bookings))
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

pub(super) fn parse_notification(body: &[u8]) -> Result<Vec<SupplierEvent>, WebhookError> {
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

/// The `EchoToken` the events were parsed from.
pub(super) fn echo_token(events: &[SupplierEvent]) -> Option<&str> {
    events.first().map(|event| match events.len() {
        1 => event.event_id.as_str(),
        _ => strip_index(&event.event_id),
    })
}

/// `ntf-5521/3` → `ntf-5521`; an id without a numeric suffix is returned as it is.
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
