//! Suppliers: one module per protocol, each implementing [`domain::SupplierAdapter`] exactly as
//! its partner document says, and [`resilience`] wrapping any of them in retries and a circuit
//! breaker.

use std::time::Duration;

use domain::SupplierError;
use reqwest::header::{HeaderMap, RETRY_AFTER};

pub mod jsonrest;
pub mod ota;
pub mod registry;
pub mod resilience;
pub mod sandbox;
pub mod signing;

/// An HTTP client for one supplier: `timeout` bounds each call, connect included.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    // One crypto provider for the process (ring, as the database driver uses); installing it
    // twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("bookhub/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A failure to get an answer at all (connect error, timeout, dropped connection): always
/// transient.
pub(crate) fn unreachable(error: reqwest::Error) -> SupplierError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    SupplierError::transient(what)
}

/// The longest `Retry-After` taken at its word: a supplier cannot park a job for days.
const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// `Retry-After` in seconds (the partners send seconds), when present, at most an hour.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds.min(MAX_RETRY_AFTER_SECS)))
}

/// The transient HTTP answers both partner documents name: 429, 500, 502, 503, 504.
pub(crate) fn transient_status(status: reqwest::StatusCode, headers: &HeaderMap) -> Option<SupplierError> {
    match status.as_u16() {
        429 | 500 | 502 | 503 | 504 => Some(SupplierError::Transient {
            reason: format!("HTTP {}", status.as_u16()),
            retry_after: if status.as_u16() == 429 || status.as_u16() == 503 { retry_after(headers) } else { None },
        }),
        _ => None,
    }
}
