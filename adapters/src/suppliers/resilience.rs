//! What every supplier call goes through: retries with exponential backoff and full jitter
//! (backon), honouring `Retry-After`, and a circuit breaker per supplier (failsafe) that fails
//! fast while the supplier is down and probes again after a cool-down.
//!
//! Only transient failures are retried or count against the breaker; a supplier's final answer
//! (a 4xx, a refusal) is a healthy answer.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::Retryable;
use chrono::{DateTime, Utc};
use domain::supplier::{InboundWebhook, SupplierEvent, WebhookAck, WebhookError};
use domain::{SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{StateMachine, backoff};
use rand::Rng;

/// Timeout, retry and breaker settings for one supplier: the block every `[suppliers.<code>]`
/// table shares, whatever its protocol. Durations are humantime strings in files (`"10s"`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ResilienceSettings {
    /// Each call's timeout, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after the first attempt (0: try once).
    pub max_retries: u32,
    /// The first backoff ceiling; each retry doubles it, up to `retry_cap`.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_cap: Duration,
    /// Consecutive transient failures that open the breaker.
    pub breaker_failure_threshold: u32,
    /// How long the breaker stays open before letting a probe through.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
}

impl ResilienceSettings {
    pub fn validate(&self) -> Result<(), crate::settings::SettingError> {
        use crate::settings::SettingError;
        if self.timeout.is_zero() {
            return Err(SettingError::new("timeout", "must be more than 0"));
        }
        if self.retry_base.is_zero() || self.retry_cap < self.retry_base {
            return Err(SettingError::new(
                "retry_cap",
                "retry_base must be more than 0 and retry_cap at least retry_base",
            ));
        }
        if self.breaker_failure_threshold == 0 {
            return Err(SettingError::new("breaker_failure_threshold", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for ResilienceSettings {
    fn default() -> Self {
        ResilienceSettings {
            timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(30),
            breaker_failure_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with full jitter, the one schedule for every retry in bookhub (supplier
/// calls here, failed jobs in the workers): retry `n` (from 0) waits a uniform random time in
/// `[0, min(cap, base·2ⁿ)]` (the "full jitter" of the AWS architecture blog), so clients that
/// failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullJitter {
    base: Duration,
    cap: Duration,
}

impl FullJitter {
    pub fn new(base: Duration, cap: Duration) -> Self {
        FullJitter { base, cap }
    }

    /// The longest wait before retry `n` (from 0): `min(cap, base·2ⁿ)`, without overflow.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry)).min(self.cap)
    }

    /// The wait before retry `n` (from 0): uniform in `[0, ceiling(n)]`, in microseconds.
    pub fn wait(&self, retry: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=ceiling))
    }

    /// The waits of `retries` retries in turn, as backon takes them.
    pub fn retries(self, retries: u32) -> impl Iterator<Item = Duration> + Send + Sync + Unpin {
        (0..retries).map(move |retry| self.wait(retry))
    }
}

/// Where a supplier's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// A supplier's recent health, for `GET /v1/suppliers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierHealth {
    pub breaker: BreakerState,
    /// Transient failures since the last success.
    pub consecutive_failures: u32,
    /// Transient failures in the last five minutes.
    pub recent_failures: u32,
    /// Calls refused by the open breaker without touching the network.
    pub rejected_calls: u64,
    pub calls: u64,
    pub failures: u64,
    /// Calls (after retries, each try counted) and failures in the last 60 minutes.
    pub calls_last_hour: u64,
    pub failures_last_hour: u64,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the last failure was (never a secret or personal data).
    pub last_failure: Option<String>,
}

const RECENT: Duration = Duration::from_secs(300);

/// Calls and failures per wall-clock minute, the last 60 minutes of them.
#[derive(Debug, Default)]
struct LastHour {
    /// `(minute since the epoch, calls, failures)`, oldest first, one entry per busy minute.
    minutes: VecDeque<(i64, u32, u32)>,
}

impl LastHour {
    fn record(&mut self, minute: i64, failed: bool) {
        match self.minutes.back_mut() {
            Some((m, calls, failures)) if *m == minute => {
                *calls += 1;
                *failures += u32::from(failed);
            }
            _ => self.minutes.push_back((minute, 1, u32::from(failed))),
        }
        while self.minutes.front().is_some_and(|(m, _, _)| *m <= minute - 60) {
            self.minutes.pop_front();
        }
    }

    /// The calls and failures of the 60 minutes up to `minute`.
    fn totals(&self, minute: i64) -> (u64, u64) {
        let hour = self.minutes.iter().filter(|(m, _, _)| *m > minute - 60);
        hour.fold((0, 0), |(calls, failures), (_, c, f)| (calls + u64::from(*c), failures + u64::from(*f)))
    }
}

fn minute_now() -> i64 {
    Utc::now().timestamp().div_euclid(60)
}

#[derive(Debug)]
struct Tracker {
    breaker: BreakerState,
    consecutive_failures: u32,
    recent: VecDeque<Instant>,
    rejected_calls: u64,
    calls: u64,
    failures: u64,
    last_hour: LastHour,
    last_failure_at: Option<DateTime<Utc>>,
    last_failure: Option<String>,
}

/// Shared by the breaker (which reports its transitions) and the caller (which reports outcomes).
#[derive(Debug, Clone)]
struct Health {
    supplier: SupplierCode,
    tracker: Arc<Mutex<Tracker>>,
}

impl Health {
    fn update(&self, f: impl FnOnce(&mut Tracker)) {
        f(&mut self.tracker.lock().expect("the health tracker is never poisoned"));
    }

    fn transition(&self, to: BreakerState) {
        self.update(|t| t.breaker = to);
        tracing::warn!(supplier = %self.supplier, breaker = ?to, "supplier circuit breaker changed state");
    }

    fn succeeded(&self) {
        self.update(|t| {
            t.calls += 1;
            t.last_hour.record(minute_now(), false);
            t.consecutive_failures = 0;
        });
    }

    fn failed(&self, error: &SupplierError) {
        self.update(|t| {
            t.calls += 1;
            t.failures += 1;
            t.last_hour.record(minute_now(), true);
            t.consecutive_failures += 1;
            let now = Instant::now();
            t.recent.push_back(now);
            while t.recent.front().is_some_and(|at| now.duration_since(*at) > RECENT) {
                t.recent.pop_front();
            }
            t.last_failure_at = Some(Utc::now());
            t.last_failure = Some(error.to_string());
        });
    }

    fn snapshot(&self) -> SupplierHealth {
        let t = self.tracker.lock().expect("the health tracker is never poisoned");
        let now = Instant::now();
        let (calls_last_hour, failures_last_hour) = t.last_hour.totals(minute_now());
        SupplierHealth {
            breaker: t.breaker,
            consecutive_failures: t.consecutive_failures,
            recent_failures: t.recent.iter().filter(|at| now.duration_since(**at) <= RECENT).count() as u32,
            rejected_calls: t.rejected_calls,
            calls: t.calls,
            failures: t.failures,
            calls_last_hour,
            failures_last_hour,
            last_failure_at: t.last_failure_at,
            last_failure: t.last_failure.clone(),
        }
    }
}

impl failsafe::Instrument for Health {
    fn on_call_rejected(&self) {
        self.update(|t| t.rejected_calls += 1);
    }

    fn on_open(&self) {
        self.transition(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.transition(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.update(|t| t.breaker = BreakerState::Closed);
    }
}

type Breaker = StateMachine<ConsecutiveFailures<backoff::Constant>, Health>;

/// A supplier adapter behind retries and a circuit breaker. It is itself a [`SupplierAdapter`],
/// so callers cannot tell — and cannot forget — the difference.
#[derive(Debug)]
pub struct Resilient {
    inner: Arc<dyn SupplierAdapter>,
    settings: ResilienceSettings,
    breaker: Breaker,
    health: Health,
}

impl Resilient {
    pub fn new(inner: Arc<dyn SupplierAdapter>, settings: ResilienceSettings) -> Self {
        let health = Health {
            supplier: inner.code().clone(),
            tracker: Arc::new(Mutex::new(Tracker {
                breaker: BreakerState::Closed,
                consecutive_failures: 0,
                recent: VecDeque::new(),
                rejected_calls: 0,
                calls: 0,
                failures: 0,
                last_hour: LastHour::default(),
                last_failure_at: None,
                last_failure: None,
            })),
        };
        let policy =
            consecutive_failures(settings.breaker_failure_threshold, backoff::constant(settings.breaker_cooldown));
        let breaker = StateMachine::new(policy, health.clone());
        Resilient { inner, settings, breaker, health }
    }

    pub fn health(&self) -> SupplierHealth {
        self.health.snapshot()
    }

    /// Runs `call` through the breaker, retrying transient failures with full-jitter backoff.
    /// A `Retry-After` longer than the retry cap ends the retries: the caller (a job) comes back
    /// later instead of holding a worker.
    async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, SupplierError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SupplierError>>,
    {
        let attempt = || {
            let fut = call();
            async move {
                if !self.breaker.is_call_permitted() {
                    return Err(SupplierError::CircuitOpen);
                }
                let result = fut.await;
                match &result {
                    Err(error) if error.is_retryable() => {
                        self.health.failed(error);
                        self.breaker.on_error();
                    }
                    _ => {
                        self.health.succeeded();
                        self.breaker.on_success();
                    }
                }
                result
            }
        };
        let cap = self.settings.retry_cap;
        attempt
            .retry(FullJitter::new(self.settings.retry_base, cap).retries(self.settings.max_retries))
            .sleep(tokio::time::sleep)
            .when(SupplierError::is_retryable)
            .adjust(move |error, backoff| match (error, backoff) {
                (SupplierError::Transient { retry_after: Some(wait), .. }, Some(_)) if *wait > cap => None,
                (SupplierError::Transient { retry_after: Some(wait), .. }, Some(_)) => Some(*wait),
                (_, backoff) => backoff,
            })
            .notify(|error, wait| {
                tracing::info!(supplier = %self.inner.code(), operation, error = %error, wait_ms = wait.as_millis() as u64, "retrying supplier call");
            })
            .await
    }
}

#[async_trait::async_trait]
impl SupplierAdapter for Resilient {
    fn code(&self) -> &SupplierCode {
        self.inner.code()
    }

    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError> {
        self.call("book", || self.inner.book(request)).await
    }

    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        self.call("cancel", || self.inner.cancel(reference)).await
    }

    async fn get(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        self.call("get", || self.inner.get(reference)).await
    }

    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError> {
        self.call("list_modified", || self.inner.list_modified(from, to)).await
    }

    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError> {
        self.inner.verify_webhook(webhook, now)
    }

    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
        self.inner.parse_webhook(webhook)
    }

    fn message_id(&self, events: &[SupplierEvent]) -> Option<String> {
        self.inner.message_id(events)
    }

    fn webhook_ack(&self, events: &[SupplierEvent]) -> WebhookAck {
        self.inner.webhook_ack(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hour_counts_sixty_minutes_and_forgets_older_ones() {
        let mut hour = LastHour::default();
        hour.record(1_000, true);
        hour.record(1_000, false);
        hour.record(1_030, false);
        assert_eq!(hour.totals(1_030), (3, 1));
        assert_eq!(hour.totals(1_059), (3, 1), "minute 1000 is 59 minutes back");
        assert_eq!(hour.totals(1_060), (1, 0), "minute 1000 is an hour back");
        hour.record(1_100, true);
        assert_eq!(hour.minutes.len(), 1, "older minutes are dropped as new ones come");
        assert_eq!(hour.totals(1_100), (1, 1));
    }

    #[test]
    fn full_jitter_stays_under_a_doubling_ceiling_and_stops() {
        let jitter = FullJitter::new(Duration::from_millis(100), Duration::from_millis(300));
        let waits: Vec<_> = jitter.retries(4).collect();
        assert_eq!(waits.len(), 4);
        for (wait, ceiling) in waits.iter().zip([100, 200, 300, 300]) {
            assert!(*wait <= Duration::from_millis(ceiling), "{wait:?} over {ceiling} ms");
        }
        let ceilings: Vec<_> = (0..4).map(|n| jitter.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 300, 300]);
    }

    #[test]
    fn full_jitter_ceilings_saturate_instead_of_overflowing() {
        let jitter = FullJitter::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(jitter.ceiling(10), Duration::from_secs(1024));
        assert_eq!(jitter.ceiling(40), Duration::from_secs(u64::from(u32::MAX)));
        let capped = FullJitter::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(capped.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn full_jitter_spreads_its_waits_over_the_whole_range() {
        // Full jitter, not "equal jitter": waits reach both the low and the high quarter.
        let jitter = FullJitter::new(Duration::from_millis(1000), Duration::from_millis(1000));
        let waits: Vec<_> = (0..400).map(|_| jitter.wait(0)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(1000)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(250)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(750)));
    }
}
