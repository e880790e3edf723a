//! Suppliers: one module per protocol, each implementing [`domain::SupplierAdapter`] exactly as
//! its partner document says, and [`resilience`] wrapping any of them in retries and a circuit
//! breaker.

use std::time::Duration;

use domain::SupplierError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

pub mod jsonrest;
pub mod ota;
pub mod registry;
pub mod resilience;
pub mod sandbox;
pub mod signing;

/// An HTTP client for one supplier: `timeout` bounds each call, connect included. Redirects
/// are never followed: reqwest would carry the supplier's credentials (jsonrest's `Api-Key` and
/// signature) to whatever host the `Location` names, and resend the guests' data on a 307/308.
/// A 3xx answer is a permanent error instead (see [`read_answer`]).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    // One crypto provider for the process (ring, as the database driver uses); installing it
    // twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("bookhub/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A failure to get an answer at all (connect error, timeout, dropped connection): always
/// transient.
pub(crate) fn unreachable(error: reqwest::Error) -> SupplierError {
    SupplierError::transient(no_answer(&error))
}

/// Why a call got no answer, in words (no URL or body: they can hold credentials or guests).
pub(crate) fn no_answer(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    }
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

/// The largest supplier answer read: a bigger one is refused before it is buffered whole (the
/// partners' largest, a full `OTA_ReadRS` of 500 reservations, is well under 1 MiB).
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A supplier's answer after the checks every protocol shares: a redirect is a permanent error
/// (it is never followed, see [`http_client`]); 429 and 5xx are transient; the body is read in
/// chunks up to [`MAX_ANSWER_BYTES`].
///
/// A body over the cap is a transient error, like a malformed one: the supplier may have acted
/// on the request, and asking again is safe (the partners dedupe on the client reference), while
/// the job's attempt limit and the circuit breaker bound the retries.
pub(crate) async fn read_answer(mut response: Response) -> Result<(StatusCode, Vec<u8>), SupplierError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(SupplierError::Permanent(format!(
            "the supplier answered a redirect (HTTP {}); supplier redirects are not followed",
            status.as_u16()
        )));
    }
    if let Some(transient) = transient_status(status, response.headers()) {
        return Err(transient);
    }
    if response.content_length().is_some_and(|length| length > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

fn too_large() -> SupplierError {
    SupplierError::transient(format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES / (1024 * 1024)))
}
