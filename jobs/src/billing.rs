//! The billing job: a booking's invoice line once it is confirmed, and its credit note once
//! it is cancelled after that ([`domain::billing::owed`]). Queued with every confirmation and
//! cancellation; each run issues what is owed and not yet issued, so repeats and runs out of
//! order end in the same documents.

use adapters::store::bookings::{self, Scope};
use adapters::store::{agency_events, invoices};
use domain::{AgencyEventType, BookingId};
use serde::{Deserialize, Serialize};

use crate::supplier::{JobError, SupplierJobs};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub booking_id: BookingId,
}

impl Bill {
    pub const QUEUE: &'static str = "bookhub.bill";
}

impl SupplierJobs {
    #[tracing::instrument(skip_all, fields(booking.id = %job.booking_id))]
    pub async fn bill(&self, job: &Bill) -> Result<(), JobError> {
        let Some(booking) = bookings::find(&self.db, &Scope::All, &job.booking_id).await? else {
            tracing::warn!("billing job for a booking that does not exist");
            return Ok(());
        };
        let was_confirmed = agency_events::has_happened(&self.db, &booking.id, AgencyEventType::Confirmed).await?;
        for kind in domain::billing::owed(&booking, was_confirmed) {
            let terms = self.fanout.payment_terms_days;
            if let Some(issued) = invoices::issue(&self.db, &booking, kind, terms).await? {
                tracing::info!(invoice.number = %issued.number, kind = kind.as_str(), "billing document issued");
            }
        }
        Ok(())
    }
}
