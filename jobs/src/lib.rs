//! bookhub's background jobs. Each job type names its queue and how it is enqueued; a job's
//! idempotency key makes queueing the same logical job twice a no-op in the database. Jobs are
//! written in the same transaction as the rows that call for them; [`workers`] runs them.

pub mod billing;
pub mod crm;
pub mod drain;
pub mod fanout;
pub mod finance_report;
pub mod notify;
pub mod reconcile;
pub mod requeue;
pub mod schedule;
pub mod supplier;
pub mod voucher;
pub mod webhooks;
pub mod workers;

use adapters::store::queue::EnqueuedJob;
use domain::{Booking, BookingId, WebhookEventId};
use serde::{Deserialize, Serialize};

pub use crate::requeue::RequeueWaiting;

/// Sends a freshly accepted booking to its supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBooking {
    pub booking_id: BookingId,
}

impl SubmitBooking {
    pub const QUEUE: &'static str = "bookhub.submit_booking";

    /// One submit job per booking, ever.
    pub fn for_booking(booking: &Booking) -> EnqueuedJob {
        enqueued(Self::QUEUE, &SubmitBooking { booking_id: booking.id.clone() }, booking.id.to_string())
    }
}

/// Cancels a booking at its supplier after the agency asked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelBooking {
    pub booking_id: BookingId,
}

impl CancelBooking {
    pub const QUEUE: &'static str = "bookhub.cancel_booking";

    /// One cancel job per cancellation request (a booking's status changes once per request).
    pub fn for_booking(booking: &Booking) -> EnqueuedJob {
        let key = format!("{}:{}", booking.id, booking.updated_at.timestamp_micros());
        enqueued(Self::QUEUE, &CancelBooking { booking_id: booking.id.clone() }, key)
    }
}

/// Applies a logged supplier webhook to its booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessWebhook {
    pub event: WebhookEventId,
}

impl ProcessWebhook {
    pub const QUEUE: &'static str = "bookhub.process_webhook";

    /// One job per logged message, and one more per replay.
    pub fn for_event(event: &WebhookEventId, replay: i32) -> EnqueuedJob {
        enqueued(Self::QUEUE, &ProcessWebhook { event: event.clone() }, format!("{event}:{replay}"))
    }
}

pub(crate) fn enqueued(queue: &'static str, job: &impl Serialize, idempotency_key: String) -> EnqueuedJob {
    EnqueuedJob::new(queue, serde_json::to_vec(job).expect("job types serialise to JSON"), idempotency_key)
}
