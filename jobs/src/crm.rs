//! The CRM job: upsert the booking's record, mapped through the live mapping file. The record is
//! keyed by the booking id, so a repeat (a retried job, a later change) replaces it.

use adapters::crm::mapping::CrmInput;
use adapters::store::bookings::{self, Scope};

use crate::fanout::UpdateCrm;
use crate::supplier::{JobError, SupplierJobs};

impl SupplierJobs {
    /// Sends the booking as it is now. A job for an older version finds the booking changed
    /// since: what is still true is the current state, so that is what it sends (the newer
    /// change's own job then sends the same record, which changes nothing). A booking the
    /// mapping cannot map fails the job, naming each field, and nothing is sent.
    #[tracing::instrument(skip_all, fields(booking.id = %job.booking_id))]
    pub async fn update_crm(&self, job: &UpdateCrm) -> Result<(), JobError> {
        let Some(crm) = &self.fanout.crm else {
            tracing::debug!("no CRM is configured; nothing to update");
            return Ok(());
        };
        // A newer change's job may write while this one's call is still retrying an older body;
        // so after each write the booking is read again, and sent again if it moved on.
        let mut current = bookings::find_versioned(&self.db, &Scope::All, &job.booking_id).await?;
        for _ in 0..MAX_CATCH_UPS {
            let Some((booking, version)) = current else {
                tracing::warn!("CRM job for a booking that does not exist");
                return Ok(());
            };
            if version > job.version {
                tracing::info!(
                    job.version,
                    booking.version = version,
                    "a newer change superseded this one; sending the booking as it is now"
                );
            }
            let mapping = self.fanout.crm_mapping.current();
            if !mapping.records_status(booking.status) {
                tracing::info!(status = %booking.status, "the CRM mapping has no word for this status; its record stays as it was");
                return Ok(());
            }
            let agency_name = self.agency_name(&booking.agency_id).await?;
            let record = mapping
                .record(&CrmInput { booking: &booking, agency_name: &agency_name })
                .map_err(|unmappable| JobError::Unmappable(unmappable.to_string()))?;
            crm.upsert(&booking.id, &record).await.map_err(JobError::Crm)?;
            current = bookings::find_versioned(&self.db, &Scope::All, &job.booking_id).await?;
            if current.as_ref().map(|(_, v)| *v) == Some(version) {
                tracing::info!(booking.version = version, "CRM record written");
                return Ok(());
            }
        }
        tracing::info!("the booking kept changing; its own newer jobs write it");
        Ok(())
    }
}

/// Writes one job makes when the booking changes under it.
const MAX_CATCH_UPS: usize = 3;
