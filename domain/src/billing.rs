//! Billing agencies: each confirmed booking is invoiced once, and a confirmed booking later
//! cancelled is credited once. What is owed follows from the booking's history alone, so the
//! job that bills converges whatever order, or however often, it runs in.

use chrono::NaiveDate;

use crate::{Booking, BookingStatus};

crate::code_enum! {
    /// An invoice line to the agency, or a credit note that reverses one.
    pub enum DocumentKind ("billing document kind") {
        Invoice = "invoice",
        CreditNote = "credit_note",
    }
}

impl DocumentKind {
    /// A document's number: `INV-2027-000123` or `CRN-2027-000124`, from one gapless series
    /// (the serial is unique across both kinds).
    pub fn number(self, year: i32, serial: i64) -> String {
        let prefix = match self {
            DocumentKind::Invoice => "INV",
            DocumentKind::CreditNote => "CRN",
        };
        format!("{prefix}-{year}-{serial:06}")
    }
}

/// What `booking` is owed now, invoice first: an invoice once it has been confirmed, and a
/// credit note once it was confirmed and the supplier no longer holds it (cancelled, or
/// rejected while its cancellation was pending). `was_confirmed`: the booking's history holds
/// a confirmation (a booking cancelled while pending never had one, nor one the supplier
/// confirmed after its cancellation).
pub fn owed(booking: &Booking, was_confirmed: bool) -> Vec<DocumentKind> {
    match (was_confirmed, booking.status) {
        (false, _) => Vec::new(),
        (true, BookingStatus::Confirmed | BookingStatus::CancellationPending) => vec![DocumentKind::Invoice],
        (true, _) => vec![DocumentKind::Invoice, DocumentKind::CreditNote],
    }
}

/// Whether a booking that reached `status` may now owe a document: the statuses the billing
/// job is queued for.
pub fn may_owe(status: BookingStatus) -> bool {
    matches!(
        status,
        BookingStatus::Confirmed | BookingStatus::Cancelled | BookingStatus::Rejected | BookingStatus::Failed
    )
}

/// The due date of a document issued on `issued` with `terms_days` to pay.
pub fn due_date(issued: NaiveDate, terms_days: u32) -> NaiveDate {
    issued + chrono::Days::new(u64::from(terms_days))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::tests::booking_in;

    #[test]
    fn a_confirmation_is_invoiced_and_its_cancellation_credited() {
        for (status, confirmed, expected) in [
            (BookingStatus::Pending, false, vec![]),
            (BookingStatus::Confirmed, true, vec![DocumentKind::Invoice]),
            (BookingStatus::CancellationPending, true, vec![DocumentKind::Invoice]),
            (BookingStatus::Cancelled, true, vec![DocumentKind::Invoice, DocumentKind::CreditNote]),
            (BookingStatus::Cancelled, false, vec![]),
            (BookingStatus::Rejected, false, vec![]),
            (BookingStatus::Rejected, true, vec![DocumentKind::Invoice, DocumentKind::CreditNote]),
        ] {
            assert_eq!(owed(&booking_in(status), confirmed), expected, "{status:?}");
        }
    }

    #[test]
    fn numbers_and_due_dates() {
        assert_eq!(DocumentKind::Invoice.number(2027, 123), "INV-2027-000123");
        assert_eq!(DocumentKind::CreditNote.number(2027, 1_234_567), "CRN-2027-1234567");
        let issued = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
        assert_eq!(due_date(issued, 30), NaiveDate::from_ymd_opt(2027, 3, 2).unwrap());
        assert_eq!(due_date(issued, 0), issued);
    }
}
