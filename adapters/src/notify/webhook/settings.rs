//! The `[agency_webhooks]` block: who may be called, how long a call may take, and the
//! delivery schedule the retry job follows. Durations are humantime strings in files
//! (`"10s"`, `"5days"`).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ssrf::NetworkPolicy;
use crate::settings::{SettingError, in_duration_range, in_range};

/// How bookhub delivers events to agencies' callback URLs. The defaults are svix's: retries
/// after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each ±20 %, and an endpoint disabled
/// after 5 days of nothing but failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgencyWebhookSettings {
    /// Callback URLs on loopback and private networks, for tests and the demo. Off, every
    /// callback address must be public (see [`super::ssrf`]).
    pub allow_private_networks: bool,
    /// Plain http callback URLs, for tests and the demo.
    pub allow_http: bool,
    /// Each attempt's timeout, from connecting to the end of the answer's first 4 KiB.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The wait before each retry in turn, after the first attempt; once it is used up the
    /// event is given up for that endpoint.
    #[serde(with = "humantime_list")]
    pub retry_schedule: Vec<Duration>,
    /// Each wait is spread uniformly over `±jitter` of its step (0.2: ±20 %), so events that
    /// failed together do not come back together.
    pub jitter: f64,
    /// An endpoint whose attempts have all failed for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// How long a rotated-out secret still signs (next to the new one) after a rotation.
    #[serde(with = "humantime_serde")]
    pub secret_grace: Duration,
}

impl Default for AgencyWebhookSettings {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        AgencyWebhookSettings {
            allow_private_networks: false,
            allow_http: false,
            timeout: Duration::from_secs(10),
            retry_schedule: [5, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            disable_after: Duration::from_secs(5 * 24 * HOUR),
            secret_grace: Duration::from_secs(24 * HOUR),
        }
    }
}

/// The most retries a schedule may list.
const MAX_RETRIES: usize = 30;

impl AgencyWebhookSettings {
    /// Checks the block; the error names the key within it.
    pub fn validate(&self) -> Result<(), SettingError> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        in_duration_range("timeout", self.timeout, Duration::from_millis(100)..=Duration::from_secs(300))?;
        if self.retry_schedule.len() > MAX_RETRIES {
            return Err(SettingError::new("retry_schedule", format!("must list at most {MAX_RETRIES} waits")));
        }
        for wait in &self.retry_schedule {
            in_duration_range("retry_schedule", *wait, Duration::from_secs(1)..=DAY)?;
        }
        in_range("jitter", self.jitter, 0.0..=0.5)?;
        in_duration_range("disable_after", self.disable_after, Duration::from_secs(3600)..=30 * DAY)?;
        in_duration_range("secret_grace", self.secret_grace, Duration::ZERO..=30 * DAY)?;
        Ok(())
    }

    /// Whom the webhook client may reach beyond public https.
    pub fn network_policy(&self) -> NetworkPolicy {
        NetworkPolicy { allow_private_networks: self.allow_private_networks, allow_http: self.allow_http }
    }

    /// The wait before retry `n` (0-based: `next_retry(0)` follows the first failed attempt),
    /// uniform within ±`jitter` of its step; `None` once the schedule is used up.
    pub fn next_retry(&self, failed_attempts: usize) -> Option<Duration> {
        let step = *self.retry_schedule.get(failed_attempts)?;
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 { rand::rng().random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
        Some(step.mul_f64(factor))
    }
}

/// A list of humantime durations (`["5s", "5m"]`): humantime_serde takes single values only.
mod humantime_list {
    use std::time::Duration;

    use humantime_serde::Serde;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(waits: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(waits.iter().map(Serde::from))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
        let waits = Vec::<Serde<Duration>>::deserialize(deserializer)?;
        Ok(waits.into_iter().map(Serde::into_inner).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_within_the_jitter_and_then_stop() {
        let settings = AgencyWebhookSettings::default();
        let steps = [5, 300, 1800, 7200, 18000, 36000, 36000];
        for (n, step) in steps.iter().enumerate() {
            let step = *step as f64;
            let waits: Vec<f64> = (0..200).map(|_| settings.next_retry(n).unwrap().as_secs_f64()).collect();
            assert!(waits.iter().all(|w| (step * 0.8..=step * 1.2).contains(w)), "retry {n}: {waits:?}");
            // Spread, not fixed: waits land both below and above the step.
            assert!(waits.iter().any(|w| *w < step * 0.95) && waits.iter().any(|w| *w > step * 1.05), "retry {n}");
        }
        assert_eq!(settings.next_retry(7), None);
        assert_eq!(settings.next_retry(100), None);
        let exact = AgencyWebhookSettings { jitter: 0.0, ..AgencyWebhookSettings::default() };
        assert_eq!(exact.next_retry(1), Some(Duration::from_secs(300)));
    }

    #[test]
    fn the_defaults_are_valid_and_read_from_humantime() {
        let defaults = AgencyWebhookSettings::default();
        assert_eq!(defaults.validate(), Ok(()));
        assert_eq!(defaults.network_policy(), NetworkPolicy::default());
        let read: AgencyWebhookSettings = serde_json::from_value(serde_json::json!({
            "allow_http": true,
            "timeout": "3s",
            "retry_schedule": ["1s", "1m"],
            "disable_after": "2days",
        }))
        .unwrap();
        assert_eq!(read.timeout, Duration::from_secs(3));
        assert_eq!(read.retry_schedule, [Duration::from_secs(1), Duration::from_secs(60)]);
        assert_eq!(read.disable_after, Duration::from_secs(2 * 86400));
        assert_eq!(read.secret_grace, defaults.secret_grace);
        assert_eq!(read.network_policy(), NetworkPolicy { allow_private_networks: false, allow_http: true });
        let json = serde_json::to_value(&defaults).unwrap();
        assert_eq!(serde_json::from_value::<AgencyWebhookSettings>(json).unwrap(), defaults);
    }

    #[test]
    fn unknown_keys_and_values_out_of_range_are_refused() {
        assert!(serde_json::from_value::<AgencyWebhookSettings>(serde_json::json!({"alow_http": true})).is_err());
        let key = |s: AgencyWebhookSettings| s.validate().unwrap_err().key;
        let base = AgencyWebhookSettings::default;
        assert_eq!(key(AgencyWebhookSettings { timeout: Duration::ZERO, ..base() }), "timeout");
        assert_eq!(key(AgencyWebhookSettings { jitter: 0.9, ..base() }), "jitter");
        assert_eq!(key(AgencyWebhookSettings { jitter: f64::NAN, ..base() }), "jitter");
        assert_eq!(key(AgencyWebhookSettings { retry_schedule: vec![Duration::ZERO], ..base() }), "retry_schedule");
        assert_eq!(key(AgencyWebhookSettings { disable_after: Duration::from_secs(60), ..base() }), "disable_after");
    }
}
