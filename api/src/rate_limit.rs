//! Per-API-key rate limits (GCRA, via governor). Every authenticated answer carries
//! `X-RateLimit-Limit` (the burst a key may send at once), `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (seconds until the full burst is available again); past the limit, 429
//! with `Retry-After`. Only authenticated keys are counted, so the limiter's memory is bounded
//! by the number of real keys.
//!
//! In front of authentication, [`AuthAttempts`] limits failed authentications per client
//! address, so a flood of made-up keys costs neither a database lookup each nor unbounded cache
//! memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::time::{Duration, Instant};

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

type AddressLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// Addresses the limiter tracks before it forgets the idle ones.
const TRACKED_ADDRESSES: usize = 10_000;

/// Failed authentications per client address (the TCP peer: a forwarded-for header would let
/// the attacker pick the address). Only failures are counted, so many concurrent first requests
/// with a real key are never throttled; once an address is past its limit, its requests get 429
/// before any key lookup until the limiter lets it try again.
#[derive(Debug)]
pub struct AuthAttempts {
    limiter: AddressLimiter,
    clock: DefaultClock,
    blocked: RwLock<HashMap<IpAddr, Instant>>,
}

impl AuthAttempts {
    /// `per_minute` sustained, in bursts of up to `burst`.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let limiter = RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        AuthAttempts { limiter, clock: DefaultClock::default(), blocked: RwLock::default() }
    }

    /// 429 while `address` is past its limit of failures.
    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        let blocked = self.blocked.read().expect("auth limiter lock");
        match blocked.get(&address).map(|until| until.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(Self::refusal(wait)),
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`: the error to answer (401, or 429 when
    /// this failure took the address past its limit).
    pub fn failed(&self, address: IpAddr, error: ApiError) -> ApiError {
        if self.limiter.len() > TRACKED_ADDRESSES {
            self.limiter.retain_recent();
        }
        let Err(not_until) = self.limiter.check_key(&address) else {
            return error;
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let mut blocked = self.blocked.write().expect("auth limiter lock");
        if blocked.len() >= TRACKED_ADDRESSES {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(address, Instant::now() + wait);
        Self::refusal(wait)
    }

    fn refusal(wait: Duration) -> ApiError {
        ApiError::AuthRateLimited { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }
    }
}

/// The address a limiter counts a request against: the TCP peer (no forwarding header is
/// trusted), an IPv6 peer by its /64 (one host holds a whole /64), an IPv4-mapped one as IPv4.
pub fn client_address(request: &actix_web::HttpRequest) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr};
    match request.peer_addr().map(|a| a.ip()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_past_its_burst_is_refused_and_others_are_not() {
        let attempts = AuthAttempts::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(3).unwrap());
        let flooder: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..3 {
            attempts.check(flooder).unwrap();
            assert!(matches!(attempts.failed(flooder, ApiError::Unauthorized), ApiError::Unauthorized));
        }
        let ApiError::AuthRateLimited { retry_after_secs } = attempts.failed(flooder, ApiError::Unauthorized) else {
            panic!("the fourth failure must be refused");
        };
        assert!(retry_after_secs >= 1);
        assert!(matches!(attempts.check(flooder), Err(ApiError::AuthRateLimited { .. })), "and what follows it");
        attempts.check([192, 0, 2, 2].into()).unwrap();
    }
}
