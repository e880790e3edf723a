//! The partner API's JSON, as serde sees it: the book request we write, and the booking
//! object, error bodies, list pages and webhook events we read.

use chrono::{DateTime, NaiveDate, Utc};
use domain::supplier::SupplierGuest;
use domain::{Money, SupplierBooking, SupplierBookingRequest};
use serde::{Deserialize, Serialize};

/// Money as the partner writes it: `{"amount": "450.00", "currency": "EUR"}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(super) struct WireMoney {
    amount: String,
    currency: String,
}

impl From<&Money> for WireMoney {
    fn from(m: &Money) -> Self {
        WireMoney { amount: m.amount().to_string(), currency: m.currency().code().to_owned() }
    }
}

impl WireMoney {
    pub(super) fn parse(&self) -> Option<Money> {
        Money::parse(&self.amount, &self.currency).ok()
    }
}

/// The body of `POST /v2/bookings`.
#[derive(Serialize)]
pub(super) struct BookRequest<'a> {
    client_reference: &'a str,
    hotel_code: &'a str,
    check_in: NaiveDate,
    check_out: NaiveDate,
    holder: Holder<'a>,
    rooms: Vec<RoomRequest<'a>>,
    expected_total: WireMoney,
}

#[derive(Serialize)]
struct Holder<'a> {
    name: &'a str,
    surname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct RoomRequest<'a> {
    room_type_code: &'a str,
    board_code: &'a str,
    paxes: Vec<Pax<'a>>,
}

#[derive(Serialize)]
struct Pax<'a> {
    name: &'a str,
    surname: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> BookRequest<'a> {
    pub(super) fn new(r: &'a SupplierBookingRequest) -> Self {
        let person = |g: &'a SupplierGuest| Pax { name: &g.first_name, surname: &g.last_name, kind: "AD" };
        BookRequest {
            client_reference: &r.client_reference,
            hotel_code: &r.hotel_code,
            check_in: r.check_in,
            check_out: r.check_out,
            holder: Holder {
                name: &r.holder.first_name,
                surname: &r.holder.last_name,
                email: r.holder.email.as_deref(),
            },
            rooms: r
                .rooms
                .iter()
                .map(|room| RoomRequest {
                    room_type_code: &room.room_type_code,
                    board_code: &room.board_code,
                    paxes: room.guests.iter().map(person).collect(),
                })
                .collect(),
            expected_total: WireMoney::from(&r.expected_total),
        }
    }
}

/// The booking object (and the shorter answers to book and cancel, which carry a subset).
#[derive(Deserialize, Debug)]
pub(super) struct WireBooking {
    reference: String,
    #[serde(default)]
    client_reference: Option<String>,
    status: String,
    #[serde(default)]
    hotel_code: Option<String>,
    #[serde(default)]
    check_in: Option<NaiveDate>,
    #[serde(default)]
    check_out: Option<NaiveDate>,
    #[serde(default)]
    rooms: Vec<WireRoom>,
    #[serde(default)]
    total: Option<WireMoney>,
    #[serde(default)]
    modified_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Debug)]
struct WireRoom {
    room_type_code: String,
    board_code: String,
}

impl From<WireBooking> for SupplierBooking {
    fn from(b: WireBooking) -> Self {
        SupplierBooking {
            reference: b.reference,
            client_reference: b.client_reference,
            status_code: b.status,
            hotel_code: b.hotel_code,
            check_in: b.check_in,
            check_out: b.check_out,
            rooms: b.rooms.into_iter().map(|r| (r.room_type_code, r.board_code)).collect(),
            total: b.total.as_ref().and_then(WireMoney::parse),
            modified_at: b.modified_at,
        }
    }
}

/// An error body: `{"error": "...", "total": {...}, "details": [...]}`, every part optional.
#[derive(Deserialize, Debug, Default)]
pub(super) struct ErrorAnswer {
    #[serde(default)]
    pub(super) error: String,
    #[serde(default)]
    pub(super) total: Option<WireMoney>,
    #[serde(default)]
    pub(super) details: Vec<FieldDetail>,
}

#[derive(Deserialize, Debug)]
pub(super) struct FieldDetail {
    #[serde(default)]
    pub(super) field: String,
    #[serde(default)]
    pub(super) message: String,
}

/// One page of `GET /v2/bookings`.
#[derive(Deserialize, Debug)]
pub(super) struct ListAnswer {
    pub(super) bookings: Vec<WireBooking>,
    pub(super) next_page: Option<u32>,
}

/// A Standard Webhooks event body.
#[derive(Deserialize, Debug)]
pub(super) struct WireEvent {
    pub(super) id: String,
    #[serde(default)]
    pub(super) occurred_at: Option<DateTime<Utc>>,
    pub(super) data: WireBooking,
}
