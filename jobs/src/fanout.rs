//! The jobs a booking's change fans out to: the CRM, the agency (email and signed webhook), the
//! voucher (and, for a cancelled booking a supplier took after all, the cancel at that
//! supplier). Each is queued in the same transaction as the change, once per change: its
//! idempotency key names the booking and the version the change made. The handlers are in
//! [`crate::crm`], [`crate::notify`] and [`crate::voucher`].

use std::sync::Arc;

use adapters::crm::live::LiveMapping;
use adapters::notify::email::Mailer;
use adapters::notify::webhook::{AgencyWebhookSettings, WebhookSender};
use adapters::store::agency_events::{AgencyEvent, Trigger};
use adapters::store::bookings::Change;
use adapters::store::queue::EnqueuedJob;
use domain::{AgencyEventId, BookingId, BookingStatus, Crm, Transition};
use serde::{Deserialize, Serialize};

use crate::billing::Bill;
use crate::{CancelBooking, enqueued};

/// The fan-out's peers, as configuration builds them.
#[derive(Clone)]
pub struct Fanout {
    /// `None`: no CRM is configured, and CRM jobs finish at once.
    pub crm: Option<Arc<dyn Crm>>,
    pub crm_mapping: LiveMapping,
    /// `None`: email is off.
    pub mailer: Option<Mailer>,
    pub webhooks: WebhookSender,
    pub webhook_settings: AgencyWebhookSettings,
    /// bookhub's public base URL, which vouchers' QR codes point at.
    pub public_url: String,
    /// The body an event's webhook carries: the API owns its shape, the same JSON its feed lists.
    pub event_body: fn(&AgencyEvent) -> Vec<u8>,
    /// Days from an invoice line's issue date to its due date.
    pub payment_terms_days: u32,
    /// Who receives the finance report after each scheduled reconciliation run.
    pub report_recipients: Vec<String>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("crm", &self.crm.is_some())
            .field("mailer", &self.mailer.is_some())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Upserts the booking's record in the CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCrm {
    pub booking_id: BookingId,
    /// The booking's version after the change: a booking found at a later one was changed
    /// again since, and its own job follows.
    pub version: i32,
}

impl UpdateCrm {
    pub const QUEUE: &'static str = "bookhub.update_crm";
}

/// Tells the agency of one change: the first webhook attempt and the email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAgency {
    pub event: AgencyEventId,
}

impl NotifyAgency {
    pub const QUEUE: &'static str = "bookhub.notify_agency";
}

/// One more webhook attempt for an event: a retry on the schedule, a resend, a recover.
/// Queue them with `queue::push_once`: a repeat of the same key is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub event: AgencyEventId,
    pub trigger: Trigger,
    /// Whether a failure schedules the next retry: the schedule's own attempts and a recover
    /// do; a resend is one attempt and leaves the event's state as it was.
    pub schedule: bool,
}

impl DeliverWebhook {
    pub const QUEUE: &'static str = "bookhub.deliver_webhook";

    /// The retry after `attempts` failed attempts, due after `delay`: one per attempt count.
    pub fn retry(event: &AgencyEventId, attempts: i32, delay: std::time::Duration) -> EnqueuedJob {
        let job = DeliverWebhook { event: event.clone(), trigger: Trigger::Scheduled, schedule: true };
        enqueued(Self::QUEUE, &job, format!("{event}:retry:{attempts}")).after(delay)
    }

    /// A resend asked by a person, after `attempts` attempts: one more attempt. Asking twice
    /// before it ran queues it once.
    pub fn resend(event: &AgencyEventId, attempts: i32) -> EnqueuedJob {
        let job = DeliverWebhook { event: event.clone(), trigger: Trigger::Manual, schedule: false };
        enqueued(Self::QUEUE, &job, format!("{event}:resend:{attempts}"))
    }

    /// A recovered event, after `attempts` attempts: sent again, with the schedule behind it.
    pub fn recover(event: &AgencyEventId, attempts: i32) -> EnqueuedJob {
        let job = DeliverWebhook { event: event.clone(), trigger: Trigger::Manual, schedule: true };
        enqueued(Self::QUEUE, &job, format!("{event}:recover:{attempts}"))
    }
}

/// Tells an agency by email that its webhook endpoint was disabled: a job of its own, so a
/// mail server that is down delays the notice instead of losing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDisabled {
    pub agency_id: domain::AgencyId,
}

impl EndpointDisabled {
    pub const QUEUE: &'static str = "bookhub.endpoint_disabled";

    /// One notice per disable (`disabled_at` names it).
    pub fn notice(agency_id: &domain::AgencyId, disabled_at: chrono::DateTime<chrono::Utc>) -> EnqueuedJob {
        let job = EndpointDisabled { agency_id: agency_id.clone() };
        enqueued(Self::QUEUE, &job, format!("{agency_id}:{}", disabled_at.timestamp_micros()))
    }
}

/// Issues the PDF voucher of a confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueVoucher {
    pub booking_id: BookingId,
    pub version: i32,
}

impl IssueVoucher {
    pub const QUEUE: &'static str = "bookhub.issue_voucher";
}

/// The fan-out of one status change: the CRM and the agency always, the voucher on
/// confirmation, billing on confirmation and cancellation.
pub fn for_change(change: &Change<'_>) -> Vec<EnqueuedJob> {
    let booking = change.booking;
    let key = format!("{}:{}", booking.id, change.version);
    let (booking_id, version) = (booking.id.clone(), change.version);
    let mut jobs =
        vec![enqueued(UpdateCrm::QUEUE, &UpdateCrm { booking_id: booking_id.clone(), version }, key.clone())];
    if let Some(event) = change.event {
        jobs.push(enqueued(NotifyAgency::QUEUE, &NotifyAgency { event: event.clone() }, key.clone()));
    }
    if domain::billing::may_owe(booking.status) {
        jobs.push(enqueued(Bill::QUEUE, &Bill { booking_id: booking_id.clone() }, key.clone()));
    }
    if booking.status == BookingStatus::Confirmed {
        jobs.push(enqueued(IssueVoucher::QUEUE, &IssueVoucher { booking_id, version }, key));
    }
    jobs
}

/// The jobs one applied supplier outcome queues with it: a status change fans out
/// ([`for_change`]); a cancelled booking the supplier took after all is cancelled there.
pub fn for_outcome(change: &Change<'_>) -> Vec<EnqueuedJob> {
    match change.transition {
        Transition::Changed(_) => for_change(change),
        Transition::CancelAtSupplier => vec![CancelBooking::for_booking(change.booking)],
        Transition::Unchanged => Vec::new(),
    }
}

/// The jobs an agency's (or staff's) cancellation request queues: the cancel at the supplier,
/// and the fan-out of the change to `cancellation_pending`.
pub fn for_cancellation(change: &Change<'_>) -> Vec<EnqueuedJob> {
    let mut jobs = vec![CancelBooking::for_booking(change.booking)];
    jobs.extend(for_change(change));
    jobs
}
