//! bookhub's domain: pure types and rules, no IO.
//!
//! Everything that crosses the edge is parsed into these types first (see [`booking::BookingDraft`]),
//! so the rest of the system only ever handles values that already obey the rules.

pub mod agency_event;
pub mod billing;
pub mod booking;
pub mod code_enum;
pub mod codes;
pub mod crm;
pub mod finance;
pub mod ids;
pub mod money;
pub mod reconciliation;
pub mod supplier;
pub mod validation;

pub use agency_event::{AgencyEventType, Delivery};
pub use booking::{Booking, BookingDraft, BookingEvent, BookingStatus, NewBooking, Transition};
pub use code_enum::UnknownCode;
pub use codes::{Board, RoomType};
pub use crm::{Crm, CrmError, CrmRecord};
pub use ids::{
    AgencyEventId, AgencyId, ApiKeyId, BookingId, OperatorEventId, ReconciliationRunId, StatementId, SupplierCode,
    WebhookEventId,
};
pub use money::{Currency, Money};
pub use supplier::{SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierError, SupplierEvent};
pub use validation::{FieldError, FieldErrors, Violations};
