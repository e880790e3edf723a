//! `POST /v1/webhooks/suppliers/{code}`: suppliers' signed event notifications.
//!
//! The endpoint is unauthenticated (anyone can reach it; the signature is the check), so what a
//! refused request may cost is bounded here:
//! - an unknown supplier code writes nothing: it is counted, and sampled in the log;
//! - refused deliveries (unknown supplier, missing headers, stale timestamp, bad signature,
//!   malformed) are limited per client address and per supplier ([`RefusedDeliveries`]); past
//!   the limit the answer is 429 with `Retry-After` and nothing is logged;
//! - a refused delivery within the limit is logged with the allowlisted headers and 4 KiB of
//!   its body.
//!
//! A verified message is never limited: it is logged whole, deduplicated on (supplier, message
//! id), and its processing job queued in the same transaction as its log row; then the
//! supplier gets its success answer. No supplier, CRM or mail call happens inside the request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpRequest, HttpResponse, web};
use adapters::store::webhook_intake::VerifiedWebhook;
use adapters::store::webhooks::{self, ReceivedWebhook, Recorded, Verification};
use domain::supplier::{InboundWebhook, WebhookError};
use domain::{SupplierAdapter, SupplierCode, WebhookEventId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jobs::ProcessWebhook;

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::RawBody;
use crate::rate_limit::RateLimitStatus;
use crate::routes::{Endpoint, Method};

/// The longest supplier message id taken (it is a database key).
const MAX_MESSAGE_ID: usize = 200;

/// Receive a supplier's webhook.
///
/// Signed per the supplier's scheme: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) for `jsonrest` and `sandbox`, `X-OTA-Timestamp` + `X-OTA-Signature` for
/// `ota`. A verified message is taken once (a repeat is answered the same and not processed
/// again) and answered with the supplier's own success message. Refused deliveries are limited
/// per client address and per supplier (429 past the limit); verified ones never are.
#[utoipa::path(post, path = "/v1/webhooks/suppliers/{code}", tag = "webhooks",
    params(("code" = String, Path, description = "The supplier's code")),
    request_body(content = String, description = "The supplier's event, as it signed it", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Taken (the supplier's success message)"),
        (status = 400, description = "Malformed event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad signature, stale timestamp or missing headers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown supplier", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many refused deliveries from this address or for this supplier; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn receive(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let client = crate::rate_limit::client_address(&request);
    let adapter = code.parse::<SupplierCode>().ok().and_then(|c| state.suppliers.get(&c));
    let Some(adapter) = adapter else {
        // Nothing is written for a code that is not configured: anyone can invent them.
        state.refused_webhooks.unknown_supplier(&code);
        state.refused_webhooks.check(client, None)?;
        return Err(ApiError::NotFound("supplier"));
    };
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
        .collect();
    let received = ReceivedWebhook {
        id: WebhookEventId::generate(),
        supplier: adapter.code().to_string(),
        request: InboundWebhook { headers, body: body.0.into() },
        received_at: adapters::store::now(),
    };
    let refusing = Refusing { state: &state, client, supplier: adapter.code(), received: &received };
    let inbound = &received.request;
    let verified = adapter.verify_webhook(inbound, chrono::Utc::now()).and_then(|()| adapter.parse_webhook(inbound));
    let events = match verified {
        Ok(events) if !events.is_empty() => events,
        Ok(_) => return Err(refusing.refuse(WebhookError::Malformed("no events".into())).await),
        Err(e) => return Err(refusing.refuse(e).await),
    };
    let message_id = match adapter.message_id(&events) {
        Some(id) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID && !id.chars().any(char::is_control) => id,
        _ => {
            let error = WebhookError::Malformed(format!("the message id must be 1 to {MAX_MESSAGE_ID} characters"));
            return Err(refusing.refuse(error).await);
        }
    };
    let job = ProcessWebhook::for_event(&received.id, 0);
    match state.webhook_intake.submit(VerifiedWebhook { received, message_id, job }).await? {
        Recorded::Queued => tracing::debug!(supplier = %adapter.code(), "webhook taken"),
        Recorded::Duplicate => {
            tracing::info!(supplier = %adapter.code(), "repeated webhook delivery; not processed again")
        }
    }
    let ack = adapter.webhook_ack(&events);
    Ok(HttpResponse::Ok().content_type(ack.content_type).body(ack.body))
}

/// A delivery being refused: who sent it, for which supplier, as received.
struct Refusing<'a> {
    state: &'a AppState,
    client: IpAddr,
    supplier: &'a SupplierCode,
    received: &'a ReceivedWebhook,
}

impl Refusing<'_> {
    /// Past the refusal limits: 429, nothing logged. Else logs the refused request and answers
    /// 401 (signature, timestamp, headers) or 400 (malformed).
    async fn refuse(&self, error: WebhookError) -> ApiError {
        if let Err(limited) = self.state.refused_webhooks.check(self.client, Some(self.supplier)) {
            return limited;
        }
        let verification = match &error {
            WebhookError::MissingHeader(_) => Verification::MissingHeader,
            WebhookError::StaleTimestamp => Verification::StaleTimestamp,
            WebhookError::BadSignature => Verification::BadSignature,
            WebhookError::Malformed(_) => Verification::Malformed,
        };
        // The refusal is answered even when the log cannot be written.
        if let Err(e) = webhooks::record_rejected(&self.state.db, self.received, verification, &error.to_string()).await
        {
            tracing::error!(supplier = %self.supplier, error = %e, "could not log a refused webhook");
        }
        match error {
            WebhookError::Malformed(detail) => ApiError::bad_request("malformed_event", detail),
            other => ApiError::InvalidSignature(other.to_string()),
        }
    }
}

/// How often the unknown-supplier count is written to the log: the first, then every this many.
const UNKNOWN_SUPPLIER_LOG_EVERY: u64 = 1000;
/// Checks between two sweeps of the per-address limiter's idle entries (its memory).
const SWEEP_EVERY: u64 = 4096;

/// The limits on refused deliveries (GCRA, via governor): one bucket per client address and one
/// per configured supplier; and the count of requests for unknown supplier codes (there is no
/// metrics endpoint yet: it is in the log, sampled).
#[derive(Debug)]
pub struct RefusedDeliveries {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_supplier: DefaultKeyedRateLimiter<SupplierCode>,
    address_quota: Quota,
    supplier_quota: Quota,
    clock: DefaultClock,
    checks: AtomicU64,
    unknown: AtomicU64,
}

/// A refusal limit: `per_minute` sustained, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct RefusalLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RefusalLimit {
    fn quota(self) -> Quota {
        Quota::per_minute(self.per_minute).allow_burst(self.burst)
    }
}

impl RefusedDeliveries {
    pub fn new(per_address: RefusalLimit, per_supplier: RefusalLimit) -> Self {
        let (address_quota, supplier_quota) = (per_address.quota(), per_supplier.quota());
        RefusedDeliveries {
            by_address: RateLimiter::keyed(address_quota),
            by_supplier: RateLimiter::keyed(supplier_quota),
            address_quota,
            supplier_quota,
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
        }
    }

    /// Counts one refusal for `client` (and `supplier`, when it is a configured one); past
    /// either limit, the 429 to answer.
    pub fn check(&self, client: IpAddr, supplier: Option<&SupplierCode>) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.by_address.retain_recent();
            self.by_address.shrink_to_fit();
        }
        self.by_address.check_key(&client).map_err(|not_until| self.limited(self.address_quota, not_until))?;
        if let Some(supplier) = supplier {
            self.by_supplier.check_key(supplier).map_err(|not_until| self.limited(self.supplier_quota, not_until))?;
        }
        Ok(())
    }

    fn limited(&self, quota: Quota, not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        let limit = quota.burst_size().get();
        let wait = not_until.wait_time_from(self.clock.now());
        ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            status: RateLimitStatus {
                limit,
                remaining: 0,
                reset_secs: (quota.replenish_interval() * limit).as_secs_f64().ceil() as u64,
            },
        }
    }

    /// Counts a request for a supplier code that is not configured; the first and every
    /// [`UNKNOWN_SUPPLIER_LOG_EVERY`]th are logged with the code (cut, printable only).
    pub fn unknown_supplier(&self, code: &str) {
        let total = self.unknown.fetch_add(1, Ordering::Relaxed) + 1;
        if total % UNKNOWN_SUPPLIER_LOG_EVERY == 1 {
            let sample: String = code.chars().filter(|c| !c.is_control()).take(64).collect();
            tracing::warn!(code = %sample, unknown_supplier_total = total, "webhooks for unknown supplier codes (sampled)");
        }
    }
}

pub const ROUTES: &[Endpoint] =
    &[Endpoint { method: Method::Post, path: "/v1/webhooks/suppliers/{code}", handler: || web::to(receive) }];
