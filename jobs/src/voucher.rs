//! The voucher job: issue the confirmed booking's voucher number, once. The PDF is drawn from
//! the booking and its voucher whenever it is needed (the email, a download).

use adapters::store::bookings::{self, Scope};
use adapters::store::vouchers::{self, Voucher};
use adapters::voucher::{VoucherDocument, render};
use domain::{Booking, BookingStatus};

use crate::fanout::IssueVoucher;
use crate::supplier::{JobError, SupplierJobs};

impl SupplierJobs {
    /// Issues the voucher of a booking that is still confirmed; a booking cancelled since gets
    /// none. Issuing again finds the first voucher: one number per booking, ever.
    #[tracing::instrument(skip_all, fields(booking.id = %job.booking_id))]
    pub async fn issue_voucher(&self, job: &IssueVoucher) -> Result<(), JobError> {
        let Some((booking, version)) = bookings::find_versioned(&self.db, &Scope::All, &job.booking_id).await? else {
            tracing::warn!("voucher job for a booking that does not exist");
            return Ok(());
        };
        if booking.status != BookingStatus::Confirmed {
            tracing::info!(booking.version = version, status = %booking.status, "the booking is no longer confirmed; no voucher");
            return Ok(());
        }
        let voucher = vouchers::issue(&self.db, &booking.id).await?;
        tracing::info!(voucher.number = %voucher.number, "voucher issued");
        Ok(())
    }

    /// The voucher's PDF for `booking` as given, made out to `agency_name`.
    pub fn voucher_pdf(&self, booking: &Booking, voucher: &Voucher, agency_name: &str) -> Result<Vec<u8>, JobError> {
        let verify_url = format!("{}/v1/vouchers/{}/verify", self.fanout.public_url, voucher.number);
        let document = VoucherDocument {
            number: &voucher.number,
            agency_name,
            booking,
            verify_url: &verify_url,
            issued_on: voucher.issued_at.date_naive(),
        };
        render(&document).map_err(JobError::Voucher)
    }
}
