//! The jobs a booking's change fans out to: the CRM, the agency, the voucher (and, for a
//! cancelled booking a supplier took after all, the cancel at that supplier). Each is queued in
//! the same transaction as the change, once per change (its idempotency key names the booking
//! and the version it describes). Their handlers come with the fan-out work; until then they
//! wait in the queue.

use adapters::store::queue::EnqueuedJob;
use domain::{Booking, BookingId, BookingStatus, Transition};
use serde::{Deserialize, Serialize};

use crate::{CancelBooking, enqueued};

/// Upserts the booking's record in the CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCrm {
    pub booking_id: BookingId,
    pub status: BookingStatus,
}

impl UpdateCrm {
    pub const QUEUE: &'static str = "bookhub.update_crm";
}

/// Tells the agency (email and signed webhook) that its booking changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAgency {
    pub booking_id: BookingId,
    pub status: BookingStatus,
}

impl NotifyAgency {
    pub const QUEUE: &'static str = "bookhub.notify_agency";
}

/// Issues the PDF voucher of a confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueVoucher {
    pub booking_id: BookingId,
}

impl IssueVoucher {
    pub const QUEUE: &'static str = "bookhub.issue_voucher";
}

/// The fan-out of one change of `booking` (already in its new status): CRM and agency always,
/// the voucher on confirmation.
pub fn for_change(booking: &Booking) -> Vec<EnqueuedJob> {
    let key = format!("{}:{}:{}", booking.id, booking.status, booking.updated_at.timestamp_micros());
    let (booking_id, status) = (booking.id.clone(), booking.status);
    let mut jobs = vec![
        enqueued(UpdateCrm::QUEUE, &UpdateCrm { booking_id: booking_id.clone(), status }, key.clone()),
        enqueued(NotifyAgency::QUEUE, &NotifyAgency { booking_id: booking_id.clone(), status }, key.clone()),
    ];
    if status == BookingStatus::Confirmed {
        jobs.push(enqueued(IssueVoucher::QUEUE, &IssueVoucher { booking_id }, key));
    }
    jobs
}

/// The jobs one applied supplier outcome queues with it: a status change fans out
/// ([`for_change`]); a cancelled booking the supplier took after all is cancelled there.
pub fn for_outcome(booking: &Booking, transition: Transition) -> Vec<EnqueuedJob> {
    match transition {
        Transition::Changed(_) => for_change(booking),
        Transition::CancelAtSupplier => vec![CancelBooking::for_booking(booking)],
        Transition::Unchanged => Vec::new(),
    }
}
