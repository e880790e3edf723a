//! Per-API-key rate limits (GCRA, via governor). Every authenticated answer carries
//! `X-RateLimit-Limit` (the burst a key may send at once), `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (seconds until the full burst is available again); past the limit, 429
//! with `Retry-After`. Only authenticated keys are counted, so the limiter's memory is bounded
//! by the number of real keys.

use std::num::NonZeroU32;

use domain::ApiKeyId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type KeyedLimiter = RateLimiter<ApiKeyId, DefaultKeyedStateStore<ApiKeyId>, DefaultClock, StateInformationMiddleware>;

#[derive(Debug)]
pub struct RateLimits {
    limiter: KeyedLimiter,
    quota: Quota,
    clock: DefaultClock,
}

/// Where a key stands after a request; kept in the request's extensions for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

impl RateLimitStatus {
    pub fn write_headers(&self, response: &mut actix_web::http::header::HeaderMap) {
        use actix_web::http::header::{HeaderName, HeaderValue};
        for (name, value) in [
            ("x-ratelimit-limit", u64::from(self.limit)),
            ("x-ratelimit-remaining", u64::from(self.remaining)),
            ("x-ratelimit-reset", self.reset_secs),
        ] {
            response.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}

impl RateLimits {
    /// `per_minute` sustained, with bursts of up to `burst`.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        RateLimits { limiter, quota, clock: DefaultClock::default() }
    }

    /// Counts one request for `key`.
    pub fn check(&self, key: &ApiKeyId) -> Result<RateLimitStatus, ApiError> {
        let limit = self.quota.burst_size().get();
        let refill = self.quota.replenish_interval();
        match self.limiter.check_key(key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let reset = refill * (limit - remaining);
                Ok(RateLimitStatus { limit, remaining, reset_secs: reset.as_secs_f64().ceil() as u64 })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let reset_secs = (refill * limit).as_secs_f64().ceil() as u64;
                Err(ApiError::RateLimited {
                    retry_after_secs,
                    status: RateLimitStatus { limit, remaining: 0, reset_secs },
                })
            }
        }
    }
}
