//! Reading the supplier's answers: each endpoint's HTTP status and error body mapped to a
//! booking or a [`SupplierError`], as the partner document lists them. Transient statuses
//! (429, 5xx) and refused authentication are settled before these run (see `send`).

use domain::supplier::{Rejection, RejectionReason};
use domain::{SupplierBooking, SupplierError};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::wire::{ErrorAnswer, ListAnswer, WireBooking, WireMoney};

/// A response body, parsed on demand.
pub(super) struct Answer(pub(super) Vec<u8>);

impl Answer {
    /// A success answer that does not parse: the supplier may have acted, so it is worth
    /// asking again (the supplier dedupes on the client reference).
    fn parse<T: DeserializeOwned>(&self) -> Result<T, SupplierError> {
        serde_json::from_slice(&self.0).map_err(|_| SupplierError::transient("malformed answer"))
    }

    fn error(&self) -> ErrorAnswer {
        serde_json::from_slice(&self.0).unwrap_or_default()
    }
}

/// `POST /v2/bookings`: `201` (or `200` for a repeat) is the booking; `409 price_changed`,
/// `404 hotel_not_found` and `422 no_availability` / `invalid_request` are refusals.
pub(super) fn book_answer(status: StatusCode, body: &Answer) -> Result<SupplierBooking, SupplierError> {
    match status.as_u16() {
        200 | 201 => Ok(body.parse::<WireBooking>()?.into()),
        409 => {
            let quoted = body.error().total.as_ref().and_then(WireMoney::parse);
            let detail =
                quoted.map_or_else(|| "the price changed".to_owned(), |t| format!("the supplier now asks {t}"));
            Err(rejected(RejectionReason::PriceChanged, detail))
        }
        404 => Err(rejected(RejectionReason::HotelUnknown, "the supplier does not know the hotel")),
        422 => {
            let answer = body.error();
            if answer.error == "no_availability" {
                return Err(rejected(RejectionReason::NoAvailability, "no availability for the stay"));
            }
            let details: Vec<String> = answer.details.iter().map(|d| format!("{}: {}", d.field, d.message)).collect();
            Err(rejected(RejectionReason::InvalidRequest, details.join("; ")))
        }
        _ => Err(unexpected(status, body)),
    }
}

/// `GET` or `DELETE /v2/bookings/{reference}`: `200` is the booking, `404` is not found.
pub(super) fn booking_answer(status: StatusCode, body: &Answer) -> Result<SupplierBooking, SupplierError> {
    match status.as_u16() {
        200 => Ok(body.parse::<WireBooking>()?.into()),
        404 => Err(SupplierError::NotFound),
        _ => Err(unexpected(status, body)),
    }
}

/// One `200` page of `GET /v2/bookings`: its bookings and the next page, if any.
pub(super) fn list_answer(status: StatusCode, body: &Answer) -> Result<ListAnswer, SupplierError> {
    if status != StatusCode::OK {
        return Err(unexpected(status, body));
    }
    body.parse()
}

fn rejected(reason: RejectionReason, detail: impl Into<String>) -> SupplierError {
    SupplierError::Rejected(Rejection { reason, detail: detail.into() })
}

fn unexpected(status: StatusCode, body: &Answer) -> SupplierError {
    SupplierError::Permanent(format!("unexpected HTTP {} ({})", status.as_u16(), body.error().error))
}
