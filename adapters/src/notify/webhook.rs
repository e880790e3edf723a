//! Agency webhooks, outbound: [`WebhookSender`] POSTs one stored agency event to the agency's
//! callback URL, signed per Standard Webhooks with the agency's own `whsec_` secret(s), and
//! returns what happened as an [`Attempt`] for the attempt log. It makes exactly one attempt;
//! when to try again is the job's to decide, from [`Attempt::outcome`],
//! [`AgencyWebhookSettings::next_retry`] and [`Attempt::retry_after`].
//!
//! The callback URL is the agency's to choose, so every call goes through the SSRF guard in
//! [`ssrf`]: https only, public addresses only (checked on the connection itself), no
//! redirects, no proxy, and at most 4 KiB of the answer read.

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

mod secret;
mod settings;
pub mod ssrf;

pub use secret::{WebhookSecret, signature_header};
pub use settings::AgencyWebhookSettings;
pub use ssrf::{CallbackUrlError, NetworkPolicy, check_callback_url};

use crate::settings::SettingError;

/// How much of an answer's body is read (and kept for the attempt log); the rest is never read.
pub const RESPONSE_HEAD_BYTES: usize = 4 * 1024;

/// The longest `Retry-After` taken at its word: an agency cannot park its events for longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One event as it goes on the wire: the body is sent and signed byte for byte.
#[derive(Debug, Clone, Copy)]
pub struct OutboundMessage<'a> {
    /// The event's id, sent as `webhook-id`: receivers dedupe on it.
    pub id: &'a str,
    /// Unix seconds, sent as `webhook-timestamp`: the time of this attempt, not of the event.
    pub timestamp: i64,
    /// The JSON body.
    pub body: &'a [u8],
}

/// What one delivery attempt did, for the attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's status; `None` when no answer came (refused, unreachable, timed out).
    pub status: Option<u16>,
    /// From starting the request to the end of reading the answer's head.
    pub duration: Duration,
    /// The first [`RESPONSE_HEAD_BYTES`] of the answer's body, as lossy UTF-8.
    pub response_head: String,
    /// What went wrong, in words; `None` for a 2xx. Never holds a secret, nor the URL.
    pub error: Option<String>,
    /// The answer's `Retry-After` (seconds or an HTTP date), at most [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
}

/// What an attempt means for the event and the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer: the event is delivered.
    Delivered,
    /// 410 Gone: the agency says the endpoint is no more; disable it at once.
    Gone,
    /// Anything else: retry per the schedule.
    Failed,
}

impl Attempt {
    /// Decided by the status alone: a 2xx whose body broke off is still delivered.
    pub fn outcome(&self) -> AttemptOutcome {
        match self.status {
            Some(200..=299) => AttemptOutcome::Delivered,
            Some(410) => AttemptOutcome::Gone,
            _ => AttemptOutcome::Failed,
        }
    }

    fn not_sent(error: impl ToString) -> Self {
        Attempt {
            status: None,
            duration: Duration::ZERO,
            response_head: String::new(),
            error: Some(error.to_string()),
            retry_after: None,
        }
    }
}

/// Why a [`WebhookSender`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error(transparent)]
    Settings(#[from] SettingError),
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(String),
}

/// The HTTP client for agency webhooks: one per process, shared by every delivery.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    policy: NetworkPolicy,
}

impl WebhookSender {
    /// A client with the guarded resolver, no redirects, no proxy (not even from the
    /// environment: a proxy would connect where the guard cannot see) and `settings.timeout`.
    pub fn new(settings: &AgencyWebhookSettings) -> Result<Self, SenderError> {
        settings.validate()?;
        let policy = settings.network_policy();
        // One crypto provider for the process (ring); installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("bookhub-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(ssrf::GuardedResolver { allow_private_networks: policy.allow_private_networks })
            .build()
            .map_err(|error| SenderError::Client(error.to_string()))?;
        Ok(WebhookSender { http, policy })
    }

    /// POSTs `message` to `url`, signed with every one of `secrets` (two during a rotation's
    /// grace period). The URL is checked again first: it may have been stored under another
    /// policy, and an IP literal never reaches the resolver.
    #[tracing::instrument(skip_all, fields(webhook.id = %message.id))]
    pub async fn send(&self, url: &url::Url, message: &OutboundMessage<'_>, secrets: &[&WebhookSecret]) -> Attempt {
        if let Err(error) = ssrf::check_shape(url, &self.policy) {
            return Attempt::not_sent(format!("refused: the callback URL {error}"));
        }
        if ssrf::check_literal(url, &self.policy).is_err() {
            return Attempt::not_sent(ssrf::Refused);
        }
        if secrets.is_empty() {
            return Attempt::not_sent("not sent: the endpoint has no signing secret");
        }
        let signature = signature_header(secrets, message.id, message.timestamp, message.body);
        let started = Instant::now();
        let sent = self
            .http
            .post(url.clone())
            .header("webhook-id", message.id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json")
            .body(message.body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Attempt { duration: started.elapsed(), ..Attempt::not_sent(no_answer(&error)) };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let mut head = Vec::new();
        let mut cut_off = None;
        while head.len() < RESPONSE_HEAD_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = RESPONSE_HEAD_BYTES - head.len();
                    head.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(error) => {
                    cut_off = Some(format!("the answer broke off: {}", no_answer(&error)));
                    break;
                }
            }
        }
        // Dropping the response here closes the connection on an unread rest of the body.
        drop(response);
        let error = if status.is_success() { cut_off } else { Some(status_error(status)) };
        Attempt {
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            response_head: String::from_utf8_lossy(&head).into_owned(),
            error,
            retry_after,
        }
    }
}

/// A non-2xx answer in words.
fn status_error(status: StatusCode) -> String {
    let code = status.as_u16();
    if status.is_redirection() {
        format!("the endpoint answered a redirect (HTTP {code}), which is not followed")
    } else if status == StatusCode::GONE {
        "the endpoint answered HTTP 410 Gone".to_owned()
    } else {
        format!("the endpoint answered HTTP {code}")
    }
}

/// Why no answer came, in words: reqwest's own text carries the URL, which is left out.
fn no_answer(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<ssrf::Refused>() {
            return refused.to_string();
        }
        if let Some(unresolved) = cause.downcast_ref::<ssrf::Unresolved>() {
            return unresolved.to_string();
        }
        source = cause.source();
    }
    crate::suppliers::no_answer(error).to_owned()
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past is 0), at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests;
