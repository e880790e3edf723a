//! Bookings: the validated request to book ([`NewBooking`]), the stored [`Booking`] and its
//! state machine ([`BookingStatus::apply`]).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::codes::{Board, RoomType};
use crate::ids::{AgencyId, ApiKeyId, BookingId, SupplierCode};
use crate::money::Money;
use crate::validation::{EmailAddress, FieldErrors, Violations};

/// A guest as booked. The first guest of the first room is the lead guest and must have an email.
/// Its `Debug` hides the person: a log line that prints a booking leaks no guest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub first_name: String,
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").field("email", &self.email.is_some()).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub room_type: RoomType,
    pub board: Board,
    pub guests: Vec<Guest>,
}

/// A booking request exactly as received, every field still text. [`NewBooking::parse`] turns
/// it into a [`NewBooking`] or lists every rule it breaks.
#[derive(Debug, Clone, Default)]
pub struct BookingDraft {
    pub supplier: String,
    pub hotel_code: String,
    pub check_in: String,
    pub check_out: String,
    pub rooms: Vec<RoomDraft>,
    pub total_amount: String,
    pub total_currency: String,
    pub client_reference: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RoomDraft {
    pub room_type: String,
    pub board: String,
    pub guests: Vec<GuestDraft>,
}

#[derive(Clone, Default)]
pub struct GuestDraft {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl std::fmt::Debug for GuestDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestDraft").field("email", &self.email.is_some()).finish_non_exhaustive()
    }
}

/// A booking request that obeys every rule; what the intake stores as `pending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    pub supplier: SupplierCode,
    pub hotel_code: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub rooms: Vec<Room>,
    pub total: Money,
    pub client_reference: Option<String>,
}

const MAX_ROOMS: usize = 9;
const MAX_GUESTS_PER_ROOM: usize = 8;
const MAX_TEXT: usize = 200;
const MAX_NIGHTS: i64 = 90;
/// Stay dates outside these years are typing mistakes, not bookings.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2999;

impl NewBooking {
    /// Checks every rule; `is_known_supplier` answers whether a supplier code is configured.
    pub fn parse(draft: &BookingDraft, is_known_supplier: impl Fn(&SupplierCode) -> bool) -> Result<Self, FieldErrors> {
        let mut v = Violations::default();
        let supplier = v
            .required("supplier", &draft.supplier)
            .and_then(|s| {
                v.check(
                    "supplier",
                    "unknown_supplier",
                    s.parse::<SupplierCode>().map_err(|_| "is not a configured supplier"),
                )
            })
            .filter(|code| {
                let known = is_known_supplier(code);
                if !known {
                    v.add("supplier", "unknown_supplier", "is not a configured supplier");
                }
                known
            });
        let hotel_code = v
            .required("hotel_code", &draft.hotel_code)
            .and_then(|h| v.at_most("hotel_code", MAX_TEXT, h))
            .map(str::to_owned);
        let check_in = parse_date(&mut v, "check_in", &draft.check_in);
        let check_out = parse_date(&mut v, "check_out", &draft.check_out);
        if let (Some(i), Some(o)) = (check_in, check_out) {
            if o <= i {
                v.add("check_out", "stay_dates", "must be after check_in");
            } else if (o - i).num_days() > MAX_NIGHTS {
                v.add("check_out", "stay_dates", format!("a stay is at most {MAX_NIGHTS} nights"));
            }
        }
        let rooms = parse_rooms(&mut v, &draft.rooms);
        let total = v
            .required("total.currency", &draft.total_currency)
            .zip(v.required("total.amount", &draft.total_amount))
            .and_then(|(currency, amount)| {
                Money::parse_each(amount, currency)
                    .map_err(|errors| {
                        for e in errors {
                            v.add(format!("total.{}", e.field()), e.code(), e.to_string());
                        }
                    })
                    .ok()
            })
            .filter(|m| {
                if m.is_zero() {
                    v.add("total.amount", "invalid_amount", "must be greater than zero");
                }
                !m.is_zero()
            });
        let client_reference = draft
            .client_reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .and_then(|r| v.text("client_reference", r))
            .and_then(|r| v.at_most("client_reference", MAX_TEXT, r))
            .map(str::to_owned);
        v.finish(|| NewBooking {
            supplier: supplier.expect("checked"),
            hotel_code: hotel_code.expect("checked"),
            check_in: check_in.expect("checked"),
            check_out: check_out.expect("checked"),
            rooms,
            total: total.expect("checked"),
            client_reference,
        })
    }

    /// The lead guest: the first guest of the first room (parse made sure there is one).
    pub fn lead_guest(&self) -> &Guest {
        &self.rooms[0].guests[0]
    }
}

fn parse_date(v: &mut Violations, field: &str, value: &str) -> Option<NaiveDate> {
    let value = v.required(field, value)?;
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().filter(|d| YEARS.contains(&d.year()));
    v.check(field, "invalid_date", date.ok_or("must be a date as YYYY-MM-DD, in the years 2000 to 2999"))
}

fn parse_rooms(v: &mut Violations, drafts: &[RoomDraft]) -> Vec<Room> {
    if drafts.is_empty() {
        v.add("rooms", "required", "at least one room is required");
    } else if drafts.len() > MAX_ROOMS {
        // Past the count the rooms themselves are not read: a list of a million empty rooms
        // costs one error, not three million.
        v.add("rooms", "too_many", format!("at most {MAX_ROOMS} rooms per booking"));
        return Vec::new();
    }
    let mut rooms = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let at = format!("rooms[{i}]");
        let room_type = v.check(format!("{at}.room_type"), "unknown_code", draft.room_type.trim().parse::<RoomType>());
        let board = v.check(format!("{at}.board"), "unknown_code", draft.board.trim().parse::<Board>());
        if draft.guests.is_empty() {
            v.add(format!("{at}.guests"), "required", "at least one guest per room is required");
        } else if draft.guests.len() > MAX_GUESTS_PER_ROOM {
            v.add(format!("{at}.guests"), "too_many", format!("at most {MAX_GUESTS_PER_ROOM} guests per room"));
            continue;
        }
        let guests: Vec<Guest> = draft
            .guests
            .iter()
            .enumerate()
            .filter_map(|(j, g)| parse_guest(v, &format!("{at}.guests[{j}]"), g, i == 0 && j == 0))
            .collect();
        if let (Some(room_type), Some(board)) = (room_type, board) {
            rooms.push(Room { room_type, board, guests });
        }
    }
    rooms
}

fn parse_guest(v: &mut Violations, at: &str, g: &GuestDraft, lead: bool) -> Option<Guest> {
    let name = |v: &mut Violations, field: String, value: &'_ str| {
        v.required(field.clone(), value).and_then(|n| v.at_most(field, MAX_TEXT, n)).map(str::to_owned)
    };
    let first_name = name(v, format!("{at}.first_name"), &g.first_name);
    let last_name = name(v, format!("{at}.last_name"), &g.last_name);
    let email = match g.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => v.check(format!("{at}.email"), "invalid_email", EmailAddress::parse(e)).map(Some).unwrap_or(None),
        None if lead => {
            v.add(format!("{at}.email"), "required", "the lead guest needs an email address");
            None
        }
        None => None,
    };
    Some(Guest { first_name: first_name?, last_name: last_name?, email })
}

crate::code_enum! {
    /// Where a booking stands.
    pub enum BookingStatus ("booking status") {
        Pending = "pending",
        Confirmed = "confirmed",
        Rejected = "rejected",
        Failed = "failed",
        CancellationPending = "cancellation_pending",
        Cancelled = "cancelled",
    }
}

impl BookingStatus {
    /// The state machine. Events that were already applied, or that arrive after a later state
    /// made them moot, leave the status `Unchanged` — so applying an event twice, or events
    /// out of order, is safe. Events that contradict the status are errors.
    pub fn apply(self, event: &BookingEvent) -> Result<Transition, TransitionError> {
        use BookingEvent as E;
        use BookingStatus as S;
        let next = match (self, event) {
            (S::Pending | S::Failed, E::SupplierConfirmed { .. }) => S::Confirmed,
            (S::Pending, E::SupplierRejected { .. }) => S::Rejected,
            (S::Pending, E::SubmissionFailed { .. }) => S::Failed,
            (S::Pending | S::Confirmed, E::CancellationRequested) => S::CancellationPending,
            (S::Pending | S::Confirmed | S::CancellationPending, E::SupplierCancelled) => S::Cancelled,
            (S::CancellationPending, E::SupplierRejected { .. }) => S::Rejected,
            // Cancelled before the supplier ever took it: nothing is booked, nothing to cancel.
            (S::CancellationPending, E::SubmissionFailed { .. }) => S::Cancelled,
            // Cancelled here, yet the supplier took it (a submission that gave up had reached it):
            // the supplier holds a live booking nobody pays for, so it is cancelled there too.
            (S::Cancelled, E::SupplierConfirmed { .. } | E::SupplierAcknowledged { .. }) => {
                return Ok(Transition::CancelAtSupplier);
            }
            // The supplier holds the booking but has not confirmed it: only its reference is news.
            (_, E::SupplierAcknowledged { .. }) => return Ok(Transition::Unchanged),
            // Already there, or overtaken by a later state.
            (S::Confirmed, E::SupplierConfirmed { .. })
            | (S::Rejected, E::SupplierRejected { .. })
            | (S::Failed, E::SubmissionFailed { .. })
            | (S::CancellationPending, E::CancellationRequested | E::SupplierConfirmed { .. })
            | (S::Cancelled, _) => return Ok(Transition::Unchanged),
            (from, event) => {
                return Err(TransitionError { from, event: event.name() });
            }
        };
        Ok(Transition::Changed(next))
    }

    /// No event moves a booking out of these.
    pub fn is_final(&self) -> bool {
        matches!(self, BookingStatus::Cancelled | BookingStatus::Rejected)
    }
}

/// Something that happened to a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BookingEvent {
    /// The supplier took the booking and will confirm later.
    SupplierAcknowledged {
        supplier_reference: String,
    },
    SupplierConfirmed {
        supplier_reference: String,
    },
    SupplierRejected {
        reason: String,
    },
    SubmissionFailed {
        reason: String,
    },
    CancellationRequested,
    SupplierCancelled,
}

impl BookingEvent {
    pub fn name(&self) -> &'static str {
        match self {
            BookingEvent::SupplierAcknowledged { .. } => "supplier_acknowledged",
            BookingEvent::SupplierConfirmed { .. } => "supplier_confirmed",
            BookingEvent::SupplierRejected { .. } => "supplier_rejected",
            BookingEvent::SubmissionFailed { .. } => "submission_failed",
            BookingEvent::CancellationRequested => "cancellation_requested",
            BookingEvent::SupplierCancelled => "supplier_cancelled",
        }
    }

    /// The supplier's reference, for the events that carry one.
    pub fn supplier_reference(&self) -> Option<&str> {
        match self {
            BookingEvent::SupplierAcknowledged { supplier_reference }
            | BookingEvent::SupplierConfirmed { supplier_reference } => Some(supplier_reference),
            _ => None,
        }
    }

    /// Why the booking ended where it did, for the events that say.
    pub fn reason(&self) -> Option<&str> {
        match self {
            BookingEvent::SupplierRejected { reason } | BookingEvent::SubmissionFailed { reason } => Some(reason),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Changed(BookingStatus),
    Unchanged,
    /// The status stays (`cancelled`), but the supplier reports holding the booking: when the
    /// event brings a reference bookhub did not know, the booking must be cancelled at the
    /// supplier (with a known one, that cancellation already happened).
    CancelAtSupplier,
}

/// The `status_reason` of a cancelled booking the supplier took after all.
pub const LATE_CONFIRMATION_REASON: &str = "confirmed by the supplier after cancellation; cancelled at the supplier";

/// An event that a booking in status `from` cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} booking cannot take {event}")]
pub struct TransitionError {
    pub from: BookingStatus,
    pub event: &'static str,
}

/// A booking as bookhub keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: BookingId,
    pub agency_id: AgencyId,
    pub status: BookingStatus,
    pub details: NewBooking,
    pub supplier_reference: Option<String>,
    pub status_reason: Option<String>,
    /// Set when someone other than the booking's agency (staff, an admin) asked to cancel it.
    pub cancelled_by: Option<CancelledBy>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an event does to one booking: its status's [`Transition`], and the supplier reference
/// it brings that the booking did not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub transition: Transition,
    pub new_reference: Option<String>,
    /// The event carried a reference other than the one recorded; the first is kept (another
    /// would redirect the cancellation).
    pub other_reference: bool,
}

impl Booking {
    /// The state machine ([`BookingStatus::apply`]) seen with the booking's reference: a
    /// reference is recorded once, and a late confirmation cancels at the supplier only when it
    /// brings a reference bookhub did not know (with a known one, that cancel already ran).
    pub fn take(&self, event: &BookingEvent) -> Result<Taken, TransitionError> {
        let transition = self.status.apply(event)?;
        let (new_reference, other_reference) = match (&self.supplier_reference, event.supplier_reference()) {
            (None, Some(reference)) => (Some(reference.to_owned()), false),
            (Some(known), Some(other)) => (None, known != other),
            _ => (None, false),
        };
        let transition = match transition {
            Transition::CancelAtSupplier if new_reference.is_none() => Transition::Unchanged,
            other => other,
        };
        Ok(Taken { transition, new_reference, other_reference })
    }
}

/// Who cancelled a booking on its agency's behalf: the role and id of the key that asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelledBy {
    /// `staff` or `admin`.
    pub role: String,
    pub key_id: ApiKeyId,
}

impl Booking {
    /// A freshly accepted booking: `pending`, not yet sent to the supplier.
    pub fn accept(agency_id: AgencyId, details: NewBooking, now: DateTime<Utc>) -> Self {
        Booking {
            id: BookingId::generate(),
            agency_id,
            status: BookingStatus::Pending,
            details,
            supplier_reference: None,
            status_reason: None,
            cancelled_by: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
