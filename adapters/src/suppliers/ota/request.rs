//! Writing the OTA requests: `OTA_HotelResRQ`, `OTA_CancelRQ`, `OTA_ReadRQ`, and the
//! `OTA_HotelResNotifRS` that acknowledges a notification.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::supplier::{Rejection, RejectionReason};
use domain::{Money, SupplierBookingRequest, SupplierError};
use serde::Serialize;

use super::wire::*;
use super::{OTA_NS, PARTNER_REFERENCE, SUPPLIER_REFERENCE, VERSION};

/// `AgeQualifyingCode` of an adult.
const ADULT: &str = "10";

pub(super) fn booking_request_xml(
    request: &SupplierBookingRequest,
    now: DateTime<Utc>,
) -> Result<String, SupplierError> {
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
pub(super) fn split_total(total: &Money, rooms: usize) -> Vec<Money> {
    let rooms = i64::try_from(rooms).expect("a booking has a handful of rooms");
    let (share, remainder) = (total.minor_units() / rooms, total.minor_units() % rooms);
    (0..rooms)
        .map(|i| {
            let minor = if i == 0 { share + remainder } else { share };
            Money::from_minor_units(minor, total.currency()).expect("a share of a valid amount is valid")
        })
        .collect()
}

pub(super) fn read_request_xml(start: String, end: String) -> Result<String, SupplierError> {
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

pub(super) fn seconds(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `OTA_CancelRQ` committing the cancellation of the supplier's reservation `reference`.
pub(super) fn cancel_request_xml(reference: &str) -> Result<String, SupplierError> {
    let message = CancelRq {
        xmlns: OTA_NS,
        cancel_type: "Commit",
        version: VERSION,
        unique_id: UniqueIdOut { kind: SUPPLIER_REFERENCE, id: reference },
    };
    to_xml(&message)
}

/// `OTA_HotelResNotifRS` with `<Success/>`, echoing the notification's `EchoToken`.
pub(super) fn ack_xml(echo_token: Option<&str>) -> String {
    let ack = HotelResNotifRs { xmlns: OTA_NS, echo_token, version: VERSION, success: () };
    quick_xml::se::to_string(&ack).expect("fixed element names always serialize")
}
