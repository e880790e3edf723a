//! The supplier jobs: submit a booking, cancel it, and apply what a supplier reports. Each is
//! idempotent: running it twice has the effect of running it once (the suppliers dedupe on the
//! client reference; the state machine ignores repeats).

use std::sync::Arc;
use std::time::Duration;

use adapters::notify::email::EmailError;
use adapters::store::bookings::{self, Applied, Scope};
use adapters::store::{Database, queue};
use adapters::suppliers::registry::Suppliers;
use adapters::voucher::VoucherError;
use apalis_core::error::AbortError;
use domain::supplier::SupplierBooking;
use domain::{Booking, BookingEvent, BookingId, BookingStatus, CrmError, SupplierAdapter, SupplierCode, SupplierError};
use mappings::{Mappings, Translator, Unmapped};

use crate::fanout::{DeliverWebhook, EndpointDisabled, Fanout, IssueVoucher, NotifyAgency, UpdateCrm};
use crate::{CancelBooking, ProcessWebhook, RequeueWaiting, SubmitBooking};

/// What the jobs need: the store, the suppliers and their mappings, and the fan-out's peers.
#[derive(Debug, Clone)]
pub struct SupplierJobs {
    pub db: Database,
    pub suppliers: Suppliers,
    pub mappings: Mappings,
    pub fanout: Arc<Fanout>,
}

/// Why a job did not finish. Each variant keeps its cause as a value (the source chain), so the
/// one place that logs it — the worker that settles the job — shows all of it with [`chain`].
/// A retryable error runs the job again later; the rest are bugs or outages of our own, also
/// retried; [`JobError::is_permanent`] ones are given up at once.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A transient failure or an open breaker; the supplier may have said when to come back.
    #[error("the supplier is unavailable; trying again later")]
    SupplierUnavailable(#[source] SupplierError),
    #[error("the store failed")]
    Store(#[from] adapters::store::StoreError),
    #[error("the mapping tables could not be read")]
    Mappings(#[from] mappings::MappingError),
    /// The supplier refused the cancellation for good.
    #[error("the supplier refused the cancellation")]
    CancelRefused(#[source] SupplierError),
    /// The booking's supplier is not configured in this process.
    #[error("supplier {0} is not configured")]
    SupplierNotConfigured(SupplierCode),
    /// The CRM refused the record (final) or could not take it now (retried).
    #[error("the CRM did not take the record")]
    Crm(#[source] CrmError),
    /// The mapping file cannot map the booking: each field and why (no personal data).
    #[error("the booking cannot be mapped for the CRM: {0}")]
    Unmappable(String),
    #[error("the email was not sent")]
    Email(#[source] EmailError),
    #[error("the voucher could not be drawn")]
    Voucher(#[source] VoucherError),
    /// What the job needs is not there yet (another job is still working): tried again later.
    #[error("not yet: {0}")]
    NotYet(&'static str),
    /// A report could not be written (a bug: the data is bookhub's own).
    #[error("the report could not be written: {0}")]
    Report(String),
}

impl JobError {
    /// Retrying cannot help: the job is given up at once (and listed as dead).
    pub fn is_permanent(&self) -> bool {
        match self {
            JobError::CancelRefused(_)
            | JobError::SupplierNotConfigured(_)
            | JobError::Unmappable(_)
            | JobError::Voucher(_)
            | JobError::Report(_)
            // A stored row that no longer parses stays so: retrying reads it again.
            | JobError::Store(adapters::store::StoreError::Corrupt { .. }) => true,
            JobError::Crm(e) => !e.is_retryable(),
            JobError::Email(e) => !e.is_retryable(),
            _ => false,
        }
    }

    /// Whether the job that failed with this on its `attempt`-th run is given up now.
    pub fn gives_up(&self, attempt: usize) -> bool {
        self.is_permanent() || attempt >= adapters::store::queue::MAX_ATTEMPTS
    }

    /// How long the supplier asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JobError::SupplierUnavailable(SupplierError::Transient { retry_after, .. })
            | JobError::Crm(CrmError::Transient { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

/// An error and its sources on one line (`a: b: c`), for the log line that handles it.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// The booking event a supplier's report means, through the mapping tables.
pub fn booking_event(translator: &Translator, reported: &SupplierBooking) -> Result<BookingEvent, Unmapped> {
    let supplier_reference = reported.reference.clone();
    Ok(match translator.status(&reported.status_code)? {
        BookingStatus::Confirmed => BookingEvent::SupplierConfirmed { supplier_reference },
        BookingStatus::Cancelled => BookingEvent::SupplierCancelled,
        BookingStatus::Rejected => BookingEvent::SupplierRejected { reason: "rejected_by_supplier".into() },
        // Pending (or a status that only bookhub sets): the supplier holds it, nothing more.
        _ => BookingEvent::SupplierAcknowledged { supplier_reference },
    })
}

impl SupplierJobs {
    /// The agency's name, as vouchers, emails and the CRM show it.
    pub(crate) async fn agency_name(&self, agency: &domain::AgencyId) -> Result<String, JobError> {
        Ok(adapters::store::agencies::find(&self.db, agency).await?.map(|a| a.name).unwrap_or_default())
    }

    async fn load(&self, id: &BookingId) -> Result<Option<Booking>, JobError> {
        Ok(bookings::find(&self.db, &Scope::All, id).await?)
    }

    async fn apply(&self, id: &BookingId, event: BookingEvent) -> Result<Applied, JobError> {
        // What the supplier reports fans out (CRM, agency, voucher) with the change it makes.
        let applied = bookings::apply_event(&self.db, &Scope::All, id, &event, crate::fanout::for_outcome).await?;
        if let Applied::Refused(refused, _) = &applied {
            tracing::warn!(booking.id = %id, error = %refused, "supplier outcome does not apply");
        }
        Ok(applied)
    }

    /// Sends a booking to its supplier and records the outcome: confirmed, pending at the
    /// supplier, rejected (with the reason), or failed. A transient failure, or an open breaker,
    /// is an error: the job runs again later and the booking stays `pending`.
    #[tracing::instrument(skip_all, fields(booking.id = %id))]
    pub async fn submit(&self, id: &BookingId) -> Result<(), JobError> {
        let Some(booking) = self.load(id).await? else {
            tracing::warn!("submit job for a booking that does not exist");
            return Ok(());
        };
        match booking.status {
            // Failed is retried too: a staff retry after fixing a mapping, say.
            BookingStatus::Pending | BookingStatus::Failed => {}
            // Cancelled before we knew the supplier's reference: the supplier may hold it (an
            // earlier attempt may have reached it), so book — which finds it if so — and cancel.
            BookingStatus::CancellationPending if booking.supplier_reference.is_none() => {}
            // Booked by an earlier run and cancelled since: finish the cancellation here, so
            // that a failure retries this job.
            BookingStatus::CancellationPending => return self.cancel(id).await,
            _ => return Ok(()),
        }
        let supplier = booking.details.supplier.clone();
        let Some(adapter) = self.suppliers.get(&supplier) else {
            self.apply(id, BookingEvent::SubmissionFailed { reason: format!("supplier {supplier} is not configured") })
                .await?;
            return Ok(());
        };
        let translator = self.mappings.translator(&supplier).await?;
        let request = match translator.request(&booking) {
            Ok(request) => request,
            Err(unmapped) => {
                self.apply(id, BookingEvent::SubmissionFailed { reason: unmapped.to_string() }).await?;
                return Ok(());
            }
        };
        let event = match adapter.book(&request).await {
            Ok(reported) => booking_event(&translator, &reported).unwrap_or_else(|unmapped| {
                // The supplier holds the booking: keep its reference, never drop it as failed.
                tracing::error!(error = %unmapped, "the supplier's status has no mapping; the booking stays pending");
                BookingEvent::SupplierAcknowledged { supplier_reference: reported.reference.clone() }
            }),
            Err(SupplierError::Rejected(rejection)) => {
                BookingEvent::SupplierRejected { reason: format!("{}: {}", rejection.reason, rejection.detail) }
            }
            Err(e @ (SupplierError::Transient { .. } | SupplierError::CircuitOpen)) => {
                return Err(JobError::SupplierUnavailable(e));
            }
            Err(e @ (SupplierError::Permanent(_) | SupplierError::NotFound)) => {
                BookingEvent::SubmissionFailed { reason: e.to_string() }
            }
        };
        let applied = self.apply(id, event).await?;
        // The agency asked to cancel while the booking was on its way: cancel it now.
        if let Applied::Changed(b) | Applied::Unchanged(b) = applied
            && b.status == BookingStatus::CancellationPending
            && b.supplier_reference.is_some()
        {
            self.cancel(id).await?;
        }
        Ok(())
    }

    /// The last attempt to submit failed: the booking becomes `failed`, with the reason, for the
    /// agency and staff to see (a retried job can still book it).
    pub async fn give_up_submitting(&self, id: &BookingId, error: &JobError) -> Result<(), JobError> {
        self.apply(id, BookingEvent::SubmissionFailed { reason: format!("gave up: {}", chain(error)) }).await?;
        Ok(())
    }

    /// Cancels a booking at its supplier: a `cancellation_pending` one, or a `cancelled` one the
    /// supplier took after all (a confirmation that came after the cancellation; cancelling is
    /// idempotent at the supplier, so a repeat is harmless). Without a supplier reference there
    /// is nothing to cancel yet: the submit job cancels it once it has booked.
    #[tracing::instrument(skip_all, fields(booking.id = %id))]
    pub async fn cancel(&self, id: &BookingId) -> Result<(), JobError> {
        let Some(booking) = self.load(id).await? else {
            return Ok(());
        };
        let (BookingStatus::CancellationPending | BookingStatus::Cancelled, Some(reference)) =
            (booking.status, &booking.supplier_reference)
        else {
            return Ok(());
        };
        let Some(adapter) = self.suppliers.get(&booking.details.supplier) else {
            return Err(JobError::SupplierNotConfigured(booking.details.supplier));
        };
        match adapter.cancel(reference).await {
            // Unknown at the supplier: there is nothing left to cancel.
            Ok(_) | Err(SupplierError::NotFound) => {
                self.apply(id, BookingEvent::SupplierCancelled).await?;
                Ok(())
            }
            Err(e @ (SupplierError::Transient { .. } | SupplierError::CircuitOpen)) => {
                Err(JobError::SupplierUnavailable(e))
            }
            Err(e) => Err(JobError::CancelRefused(e)),
        }
    }
}

impl SupplierJobs {
    /// Runs one job of `queue` (its `attempt`-th run): what the workers and the test drain both
    /// do. The outer `Err` is a payload that does not parse, or an unknown queue: never retried.
    pub(crate) async fn run_job(
        &self,
        queue: &str,
        payload: &[u8],
        attempt: usize,
    ) -> Result<Result<(), JobError>, AbortError> {
        Ok(match queue {
            SubmitBooking::QUEUE => {
                let booking_id = parse::<SubmitBooking>(payload)?.booking_id;
                let result = self.submit(&booking_id).await;
                if let Err(error) = &result
                    && attempt >= queue::MAX_ATTEMPTS
                    && let Err(e) = self.give_up_submitting(&booking_id, error).await
                {
                    return Ok(Err(e));
                }
                result
            }
            CancelBooking::QUEUE => self.cancel(&parse::<CancelBooking>(payload)?.booking_id).await,
            RequeueWaiting::QUEUE => self.requeue_waiting(&parse::<RequeueWaiting>(payload)?).await,
            crate::reconcile::Reconcile::QUEUE => self.reconcile_and_report(&parse(payload)?).await,
            ProcessWebhook::QUEUE => self.process_webhook(&parse::<ProcessWebhook>(payload)?.event).await,
            UpdateCrm::QUEUE => self.update_crm(&parse(payload)?).await,
            NotifyAgency::QUEUE => self.notify_agency(&parse(payload)?).await,
            DeliverWebhook::QUEUE => self.deliver_webhook(&parse(payload)?).await,
            IssueVoucher::QUEUE => self.issue_voucher(&parse(payload)?).await,
            crate::billing::Bill::QUEUE => self.bill(&parse(payload)?).await,
            crate::finance_report::SendFinanceReport::QUEUE => self.send_finance_report(&parse(payload)?).await,
            EndpointDisabled::QUEUE => self.endpoint_disabled(&parse(payload)?).await,
            other => return Err(AbortError::new(format!("no handler for queue {other}"))),
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, AbortError> {
    serde_json::from_slice(payload).map_err(|e| AbortError::new(format!("the job's payload does not parse: {e}")))
}
