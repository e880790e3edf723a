//! What an agency is told: every change of one of its bookings is one event, read from the feed
//! (`GET /v1/events`) and delivered to its callback URL — "webhook to know, REST to fetch".

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::booking::BookingStatus;

crate::code_enum! {
    /// The kind of change an event reports: the booking's new status.
    pub enum AgencyEventType ("event type") {
        Confirmed = "booking.confirmed",
        Rejected = "booking.rejected",
        Failed = "booking.failed",
        Cancelled = "booking.cancelled",
        /// Back to `pending` (a staff retry of a failed booking).
        Modified = "booking.modified",
        CancellationPending = "booking.cancellation_pending",
    }
}

impl AgencyEventType {
    /// The event a change to `status` makes.
    pub fn for_status(status: BookingStatus) -> Self {
        match status {
            BookingStatus::Confirmed => AgencyEventType::Confirmed,
            BookingStatus::Rejected => AgencyEventType::Rejected,
            BookingStatus::Failed => AgencyEventType::Failed,
            BookingStatus::Cancelled => AgencyEventType::Cancelled,
            BookingStatus::CancellationPending => AgencyEventType::CancellationPending,
            BookingStatus::Pending => AgencyEventType::Modified,
        }
    }
}

crate::code_enum! {
    /// Where an event's webhook delivery stands.
    pub enum Delivery ("delivery status") {
        /// Not delivered yet: the first try or a scheduled retry is queued.
        Pending = "pending",
        Delivered = "delivered",
        /// Every scheduled attempt failed, or the endpoint was disabled: `recover` or `resend`
        /// queue it again.
        Failed = "failed",
        /// A newer change of the same booking was delivered first, with the booking as it is
        /// now; sending this one would tell an older status after a newer one.
        Superseded = "superseded",
        /// The agency had no (enabled) callback URL: the event waits in the feed.
        NoEndpoint = "no_endpoint",
    }
}

/// What the last attempt on an endpoint means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointVerdict {
    /// It answered 2xx: its failure streak ends.
    Healthy,
    /// Still failing, but not long enough to be disabled.
    Failing,
    /// Disabled now (a 410, or failing for longer than the limit), with the reason.
    Disable(&'static str),
}

/// Why an endpoint answering 410 Gone is disabled.
pub const GONE: &str = "the endpoint answered 410 Gone";
/// Why an endpoint failing for too long is disabled.
pub const FAILING_TOO_LONG: &str = "every delivery failed for the whole disable period";

impl EndpointVerdict {
    /// The rule: 2xx heals; 410 disables at once; failures disable once the first failure
    /// since the last success is older than `disable_after`.
    pub fn judge(
        status: Option<u16>,
        failing_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Self {
        match status {
            Some(200..=299) => EndpointVerdict::Healthy,
            Some(410) => EndpointVerdict::Disable(GONE),
            _ => {
                let since = failing_since.unwrap_or(now);
                let limit = chrono::Duration::from_std(disable_after).unwrap_or(chrono::Duration::MAX);
                if now - since >= limit { EndpointVerdict::Disable(FAILING_TOO_LONG) } else { EndpointVerdict::Failing }
            }
        }
    }
}

/// A voucher's number, `VCH-<year>-<serial>`: human-readable, and unique because its serial is.
pub fn voucher_number(year: i32, serial: i64) -> String {
    format!("VCH-{year}-{serial:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_change_has_its_event_type() {
        assert_eq!(AgencyEventType::for_status(BookingStatus::Confirmed).as_str(), "booking.confirmed");
        assert_eq!(
            AgencyEventType::for_status(BookingStatus::CancellationPending).as_str(),
            "booking.cancellation_pending"
        );
        assert_eq!(AgencyEventType::for_status(BookingStatus::Pending).as_str(), "booking.modified");
        assert_eq!(AgencyEventType::ALL.len(), 6);
    }

    #[test]
    fn an_endpoint_is_disabled_by_a_410_or_by_failing_for_the_whole_period() {
        let now = Utc::now();
        let five_days = Duration::from_secs(5 * 86_400);
        assert_eq!(
            EndpointVerdict::judge(Some(204), Some(now - chrono::Duration::days(9)), now, five_days),
            EndpointVerdict::Healthy
        );
        assert_eq!(EndpointVerdict::judge(Some(410), None, now, five_days), EndpointVerdict::Disable(GONE));
        assert_eq!(EndpointVerdict::judge(Some(503), None, now, five_days), EndpointVerdict::Failing);
        assert_eq!(
            EndpointVerdict::judge(None, Some(now - chrono::Duration::days(4)), now, five_days),
            EndpointVerdict::Failing
        );
        assert_eq!(
            EndpointVerdict::judge(Some(500), Some(now - chrono::Duration::days(5)), now, five_days),
            EndpointVerdict::Disable(FAILING_TOO_LONG)
        );
    }

    #[test]
    fn voucher_numbers_are_padded_serials_under_their_year() {
        assert_eq!(voucher_number(2027, 123), "VCH-2027-000123");
        assert_eq!(voucher_number(2027, 1_234_567), "VCH-2027-1234567");
    }
}
