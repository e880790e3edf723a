//! Fault injection: what the next request to a protocol's partner endpoints suffers.

use serde::{Deserialize, Serialize};

use super::Protocol;

/// Faults of one protocol. Every field may be left out of the JSON; the default is no fault.
/// A faulted request (every fault except latency) never reaches the booking logic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before every answer.
    pub latency_ms: u64,
    /// The next N requests are answered with `fail_status`.
    pub fail_next: u32,
    pub fail_status: u16,
    /// Share (0–1) of requests answered 500 or 503 at random.
    pub error_rate: f64,
    /// Every request is answered 503 until cleared.
    pub outage: bool,
    /// The next N requests are answered 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    pub retry_after_secs: u64,
    /// The next N requests are never answered (the client's timeout fires first).
    pub timeout_next: u32,
    /// The next N requests get `200` with a truncated body.
    pub malformed_next: u32,
    /// ota only: the next N requests get `200` with a `SystemUnavailable` error.
    pub system_unavailable_next: u32,
    /// Confirmations due are not sent (counted as dropped).
    pub drop_webhooks: bool,
    /// Bookings are refused as price changed (+10 %).
    pub price_change: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            fail_next: 0,
            fail_status: 503,
            error_rate: 0.0,
            outage: false,
            rate_limit_next: 0,
            retry_after_secs: 1,
            timeout_next: 0,
            malformed_next: 0,
            system_unavailable_next: 0,
            drop_webhooks: false,
            price_change: false,
        }
    }
}

/// What a faulted request gets instead of the protocol's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// The answer comes only after the client has given up.
    Timeout,
    Malformed,
    SystemUnavailable,
}

impl Faults {
    /// The fault the next request suffers, counting down the `*_next` counters.
    pub(crate) fn take(&mut self, protocol: Protocol) -> Option<Fault> {
        fn next(counter: &mut u32) -> bool {
            let hit = *counter > 0;
            *counter = counter.saturating_sub(1);
            hit
        }
        if self.outage {
            Some(Fault::Status(503))
        } else if next(&mut self.timeout_next) {
            Some(Fault::Timeout)
        } else if next(&mut self.fail_next) {
            let valid = (100..=599).contains(&self.fail_status);
            Some(Fault::Status(if valid { self.fail_status } else { 503 }))
        } else if next(&mut self.rate_limit_next) {
            Some(Fault::RateLimited { retry_after_secs: self.retry_after_secs })
        } else if next(&mut self.malformed_next) {
            Some(Fault::Malformed)
        } else if protocol == Protocol::Ota && next(&mut self.system_unavailable_next) {
            Some(Fault::SystemUnavailable)
        } else if self.error_rate > 0.0 && rand::random::<f64>() < self.error_rate {
            Some(Fault::Status(if rand::random::<bool>() { 500 } else { 503 }))
        } else {
            None
        }
    }
}
