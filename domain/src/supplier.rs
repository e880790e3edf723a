//! The supplier port: what bookhub asks of every supplier, whatever its protocol.
//!
//! Everything here speaks the **supplier's** codes (room types, boards, statuses). The mapping
//! tables translate between them and bookhub's own codes before a request is built and after an
//! answer or event is parsed; no adapter translates a code itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::SupplierCode;
use crate::money::Money;

/// A booking as sent to a supplier. `client_reference` is bookhub's booking id: both supplier
/// protocols keep one booking per client reference, which makes a retried submit safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierBookingRequest {
    pub client_reference: String,
    pub hotel_code: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub holder: SupplierGuest,
    pub rooms: Vec<SupplierRoom>,
    pub expected_total: Money,
}

/// The lead guest as a supplier gets it; `Debug` hides the person.
#[derive(Clone, PartialEq, Eq)]
pub struct SupplierGuest {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl fmt::Debug for SupplierGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupplierGuest").field("email", &self.email.is_some()).finish_non_exhaustive()
    }
}

/// A room in the supplier's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierRoom {
    pub room_type_code: String,
    pub board_code: String,
    /// Every guest is booked as an adult: bookhub's API does not take children's ages yet.
    pub guests: Vec<SupplierGuest>,
}

/// A booking as a supplier reports it (answer to book/read/list, or inside a webhook event).
/// Fields a message does not carry are `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierBooking {
    /// The supplier's own reference (confirmation number).
    pub reference: String,
    /// bookhub's booking id, when the supplier echoes it.
    pub client_reference: Option<String>,
    /// The supplier's status code, e.g. `CNF` or `Reserved`.
    pub status_code: String,
    pub hotel_code: Option<String>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    /// (room type code, board code) per room, in the supplier's codes.
    pub rooms: Vec<(String, String)>,
    pub total: Option<Money>,
    pub modified_at: Option<DateTime<Utc>>,
}

/// One event out of a supplier's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierEvent {
    /// The supplier's message id (`webhook-id`, `EchoToken`): deliveries with the same id are
    /// the same event.
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub booking: SupplierBooking,
}

crate::code_enum! {
    /// Why a supplier refused a booking for good.
    pub enum RejectionReason ("rejection reason") {
        PriceChanged = "price_changed",
        NoAvailability = "no_availability",
        HotelUnknown = "hotel_unknown",
        InvalidRequest = "invalid_request",
    }
}

/// A supplier's refusal with its reason and the supplier's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectionReason,
    pub detail: String,
}

/// What can go wrong talking to a supplier. Only [`SupplierError::Transient`] is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupplierError {
    /// The supplier refused the request for good (a final 4xx or error code).
    #[error("rejected: {} ({})", .0.reason, .0.detail)]
    Rejected(Rejection),
    /// The supplier does not know the reference.
    #[error("not found at the supplier")]
    NotFound,
    /// Worth trying again later: connect errors, timeouts, 5xx, 429, the partner's own transient
    /// codes. `retry_after` is the supplier's own hint.
    #[error("transient failure: {reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// The circuit breaker is open: no request was sent.
    #[error("circuit open; the supplier is failing and is not called until it cools down")]
    CircuitOpen,
    /// Anything else the supplier answered that is final and not a business refusal
    /// (authentication, an unexpected status).
    #[error("supplier error: {0}")]
    Permanent(String),
}

impl SupplierError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SupplierError::Transient { reason: reason.into(), retry_after: None }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SupplierError::Transient { .. })
    }
}

/// An inbound webhook request as received: header names lower-cased, the raw body untouched.
/// `Debug` shows the header names and the body's size, never the body (it carries guests).
#[derive(Clone, Default)]
pub struct InboundWebhook {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl fmt::Debug for InboundWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundWebhook")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl InboundWebhook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Why an inbound webhook was refused. Says what was wrong, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the timestamp is outside the tolerance")]
    StaleTimestamp,
    #[error("no signature matches")]
    BadSignature,
    #[error("the body does not parse: {0}")]
    Malformed(String),
}

/// The answer a supplier expects once its webhook is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAck {
    pub content_type: &'static str,
    pub body: String,
}

/// A supplier, reached through its own protocol. Implementations do the wire format and the
/// status-code rules of their partner document; retries and the circuit breaker wrap them.
#[async_trait::async_trait]
pub trait SupplierAdapter: Send + Sync + fmt::Debug {
    /// The code bookhub knows this supplier by (its configuration table's name).
    fn code(&self) -> &SupplierCode;

    /// Books, or finds the booking already made for the same client reference.
    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError>;

    /// Cancels; cancelling a cancelled booking succeeds again.
    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError>;

    /// Reads one booking by the supplier's reference.
    async fn get(&self, reference: &str) -> Result<SupplierBooking, SupplierError>;

    /// Every booking modified in `[from, to]`, all pages.
    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError>;

    /// Checks an inbound webhook's signature and timestamp against the configured secrets.
    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError>;

    /// Parses a verified webhook body into events.
    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError>;

    /// The supplier's id of the message these events came in (`webhook-id`, `EchoToken`):
    /// deliveries with the same id are the same message. By default the first event's id.
    fn message_id(&self, events: &[SupplierEvent]) -> Option<String> {
        events.first().map(|e| e.event_id.clone())
    }

    /// The success answer the supplier expects for a taken webhook.
    fn webhook_ack(&self, events: &[SupplierEvent]) -> WebhookAck {
        let _ = events;
        WebhookAck { content_type: "application/json", body: "{}".into() }
    }
}
