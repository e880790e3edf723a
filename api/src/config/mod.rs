//! Settings: defaults → `bookhub.toml` (or the file named by `BOOKHUB_CONFIG`) → `BOOKHUB_*`
//! environment variables, with `__` between levels (`BOOKHUB_SUPPLIERS__JSONREST__BASE_URL`).
//!
//! Each section is a type with its own `validate`; durations are `Duration`s, written as
//! humantime strings (`"10s"`, `"24h"`). The `_ms`/`_secs`/`_hours`/`_days` keys of earlier
//! releases are still read for one release ([`legacy`]), each with a deprecation warning.
//! Validated once at start-up; secrets ([`Secret`], [`DatabaseUrl`]) never print.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use adapters::crm::CrmSettings;
pub use adapters::notify::email::EmailSettings;
pub use adapters::notify::webhook::AgencyWebhookSettings;
pub use adapters::settings::Secret;
use adapters::settings::{DatabaseUrl, SettingError, in_duration_range, in_range};
pub use adapters::suppliers::registry::{JsonrestTable, OtaTable, SandboxTable, SupplierKind, SupplierSettings};
use domain::SupplierCode;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod legacy;
#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://FILE?mode=rwc` (the default, embedded) or `postgres://USER@HOST/DB`.
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    /// Address the HTTP API listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per CPU core.
    pub http_workers: usize,
    /// Largest request body accepted, in bytes (413 beyond).
    pub body_limit_bytes: usize,
    pub idempotency: IdempotencySettings,
    pub intake: IntakeSettings,
    pub rate_limit: RateLimitSettings,
    /// One table per supplier, keyed by the supplier's code.
    pub suppliers: BTreeMap<SupplierCode, SupplierSettings>,
    pub jobs: JobSettings,
    pub webhooks: WebhookSettings,
    pub mappings: MappingSettings,
    /// The web admin UI at `/admin`.
    pub admin: AdminSettings,
    /// Scheduled reconciliation runs with the suppliers.
    pub reconciliation: ReconciliationSettings,
    /// Invoicing to agencies and the finance report.
    pub finance: FinanceSettings,
    /// The CRM's records API; absent: no CRM, and CRM jobs finish at once.
    pub crm: Option<CrmSettings>,
    /// Agency emails over SMTP (off by default).
    pub email: EmailSettings,
    /// Deliveries of booking events to agencies' callback URLs.
    pub agency_webhooks: AgencyWebhookSettings,
    /// bookhub's own base URL as suppliers and agencies reach it (the sandbox posts its webhooks
    /// there; vouchers' QR codes point there); empty means `http://` + the address it listens on.
    pub public_url: String,
    /// A tracing filter such as `info` or `bookhub=debug,info` (`RUST_LOG` wins when set).
    pub log: String,
    /// Deprecated keys that were read, with what replaces them; logged at start-up.
    #[serde(skip)]
    pub deprecations: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a completed request's response is kept for replay.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often expired records are purged.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
}

impl IdempotencySettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_duration_range("ttl", self.ttl, Duration::from_secs(3600)..=Duration::from_secs(365 * 86_400))?;
        positive("purge_interval", self.purge_interval)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    /// Most bookings written in one shared transaction.
    pub max_batch: usize,
    /// Concurrent writer transactions.
    pub writers: usize,
}

impl IntakeSettings {
    fn validate(&self) -> Result<(), SettingError> {
        // A batch binds 27 values a booking; 1000 stays within both databases' limits.
        in_range("max_batch", self.max_batch, 1..=1000)?;
        in_range("writers", self.writers, 1..=64)
    }
}

/// Per API key: `per_minute` sustained, in bursts of up to `burst`. Per client address:
/// `failed_auth_per_minute` failed authentications sustained, in bursts of `failed_auth_burst`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_minute: u32,
    pub burst: u32,
    /// How long a process trusts what it learnt about a key (known or unknown); also the longest
    /// a revoked key may still work in another process, hence at most 5 s.
    #[serde(with = "humantime_serde")]
    pub key_cache_ttl: Duration,
    pub failed_auth_per_minute: u32,
    pub failed_auth_burst: u32,
}

impl RateLimitSettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_range("per_minute", self.per_minute, 1..=u32::MAX)?;
        in_range("burst", self.burst, 1..=u32::MAX)?;
        in_duration_range("key_cache_ttl", self.key_cache_ttl, Duration::from_millis(100)..=Duration::from_secs(5))?;
        in_range("failed_auth_per_minute", self.failed_auth_per_minute, 1..=u32::MAX)?;
        in_range("failed_auth_burst", self.failed_auth_burst, 1..=u32::MAX)
    }
}

/// Background jobs (supplier calls).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Run the job workers in this process (`false` for an API-only process).
    pub enabled: bool,
    /// Jobs of one queue run at once, per process.
    pub concurrency: usize,
    /// How often an idle worker looks for new jobs.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A job that failed transiently runs again after a full-jitter backoff from `retry_base`
    /// doubling up to `retry_cap` (or the supplier's `Retry-After`).
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_cap: Duration,
    /// Workers report alive this often; a worker silent for `heartbeat × missed_heartbeats`
    /// has its running jobs taken back by another.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    pub missed_heartbeats: usize,
}

impl JobSettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_range("concurrency", self.concurrency, 1..=1024)?;
        positive("poll_interval", self.poll_interval)?;
        positive("retry_base", self.retry_base)?;
        if self.retry_cap < self.retry_base {
            return Err(SettingError::new("retry_cap", "must be at least jobs.retry_base"));
        }
        in_duration_range("heartbeat", self.heartbeat, Duration::from_secs(1)..=Duration::from_secs(3600))?;
        in_range("missed_heartbeats", self.missed_heartbeats, 2..=1000)
    }
}

/// Inbound supplier webhooks.
/// The mapping tables' cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// How often this process checks whether another one changed a mapping table: the longest
    /// a change made elsewhere takes to be used here.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl MappingSettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_duration_range(
            "refresh_interval",
            self.refresh_interval,
            Duration::from_millis(50)..=Duration::from_secs(60),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// How long a sign-in lasts; staff sign in again after it.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

impl AdminSettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_duration_range("session_ttl", self.session_ttl, Duration::from_secs(60)..=Duration::from_secs(7 * 86_400))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationSettings {
    /// Run the schedule in this process. Every process may: each slot runs once among all the
    /// processes sharing the database.
    pub enabled: bool,
    /// When every supplier is reconciled: a cron expression with seconds first, in UTC
    /// (`"0 0 */6 * * *"`: every 6 hours on the hour).
    pub schedule: String,
    /// Another schedule for some suppliers, by code.
    #[serde(default)]
    pub schedules: BTreeMap<SupplierCode, String>,
    /// How far back from its slot a scheduled run looks: longer than the time between slots,
    /// so a slot missed while bookhub was down is covered by the next.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How often the schedule is looked at: the most a run starts after its slot.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
}

impl ReconciliationSettings {
    fn validate(&self, suppliers: &BTreeMap<SupplierCode, SupplierSettings>) -> Result<(), SettingError> {
        in_duration_range("window", self.window, Duration::from_secs(60)..=Duration::from_secs(31 * 86_400))?;
        in_duration_range("tick", self.tick, Duration::from_millis(10)..=Duration::from_secs(60))?;
        self.covered("schedule", &self.schedule)?;
        for (code, schedule) in &self.schedules {
            let key = format!("schedules.{code}");
            if !suppliers.contains_key(code) {
                return Err(SettingError::new(key, "not a configured supplier"));
            }
            self.covered(&key, schedule)?;
        }
        Ok(())
    }

    /// Checks that `text` is a schedule that fires, and whose slots the window spans: a
    /// window shorter than the time between two slots would leave bookings no run looks at.
    fn covered(&self, key: &str, text: &str) -> Result<(), SettingError> {
        let schedule = cron_schedule(key, text)?;
        let mut upcoming = schedule.upcoming(chrono::Utc);
        let (Some(first), Some(second)) = (upcoming.next(), upcoming.next()) else {
            return Err(SettingError::new(key, "never runs: no slot comes after now"));
        };
        let gap = (second - first).to_std().unwrap_or_default();
        if self.window < gap {
            let message = format!("the window ({:?}) is shorter than the time between slots ({gap:?})", self.window);
            return Err(SettingError::new(key, message));
        }
        Ok(())
    }

    /// Each enabled supplier's schedule, parsed.
    pub fn schedules(&self, suppliers: impl IntoIterator<Item = SupplierCode>) -> Vec<(SupplierCode, cron::Schedule)> {
        suppliers
            .into_iter()
            .map(|code| {
                let text = self.schedules.get(&code).unwrap_or(&self.schedule);
                (code, text.parse().expect("checked by validate"))
            })
            .collect()
    }
}

/// A cron expression `cron` reads: six or seven fields, seconds first.
fn cron_schedule(key: &str, text: &str) -> Result<cron::Schedule, SettingError> {
    text.parse::<cron::Schedule>().map_err(|e| {
        SettingError::new(key, format!("not a cron schedule (seconds minutes hours day month weekday): {e}"))
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceSettings {
    /// Days from an invoice line's (or credit note's) issue date to its due date.
    pub payment_terms_days: u32,
    /// Who receives the finance report (XLSX attached) after each scheduled run; none: no
    /// email. Needs `[email]` enabled.
    #[serde(default)]
    pub report_recipients: Vec<String>,
}

impl FinanceSettings {
    fn validate(&self, email: &EmailSettings) -> Result<(), SettingError> {
        in_range("payment_terms_days", self.payment_terms_days, 0..=365)?;
        for (i, address) in self.report_recipients.iter().enumerate() {
            adapters::notify::email::check_address(address)
                .map_err(|why| SettingError::new(format!("report_recipients.{i}"), why))?;
        }
        if !self.report_recipients.is_empty() && !email.enabled {
            return Err(SettingError::new("report_recipients", "needs [email] enabled to be sent"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// How far a webhook's timestamp may be from now, either way.
    #[serde(with = "humantime_serde")]
    pub tolerance: Duration,
    /// How long the webhook log keeps a request.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Refused deliveries (unknown supplier, missing headers, stale timestamp, bad signature,
    /// malformed) taken from one client address: `refused_per_minute` sustained, in bursts of
    /// up to `refused_burst`; past that, 429 and nothing logged. Verified deliveries are never
    /// limited.
    pub refused_per_minute: u32,
    pub refused_burst: u32,
    /// The same for one supplier code, from every address together: bounds the refused rows a
    /// distributed flood can write.
    pub refused_per_supplier_per_minute: u32,
    pub refused_per_supplier_burst: u32,
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), SettingError> {
        in_duration_range("tolerance", self.tolerance, Duration::from_secs(1)..=Duration::from_secs(86_400))?;
        // Suppliers retry for up to a day: a repeat must still find the first delivery's row.
        in_duration_range(
            "retention",
            self.retention,
            Duration::from_secs(2 * 86_400)..=Duration::from_secs(3650 * 86_400),
        )?;
        in_range("refused_per_minute", self.refused_per_minute, 1..=1_000_000)?;
        in_range("refused_burst", self.refused_burst, 1..=100_000)?;
        in_range("refused_per_supplier_per_minute", self.refused_per_supplier_per_minute, 1..=1_000_000)?;
        in_range("refused_per_supplier_burst", self.refused_per_supplier_burst, 1..=100_000)
    }
}

fn positive(key: &str, value: Duration) -> Result<(), SettingError> {
    if value.is_zero() { Err(SettingError::new(key, "must be more than 0")) } else { Ok(()) }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://bookhub.db?mode=rwc".parse().expect("a valid default"),
            database_max_connections: 16,
            listen: ([127, 0, 0, 1], 8080).into(),
            http_workers: 0,
            body_limit_bytes: 1024 * 1024,
            idempotency: IdempotencySettings {
                ttl: Duration::from_secs(24 * 3600),
                purge_interval: Duration::from_secs(300),
            },
            intake: IntakeSettings { max_batch: 128, writers: 2 },
            rate_limit: RateLimitSettings {
                per_minute: 1200,
                burst: 120,
                key_cache_ttl: Duration::from_secs(5),
                failed_auth_per_minute: 60,
                failed_auth_burst: 30,
            },
            suppliers: BTreeMap::from([(
                "sandbox".parse().expect("a valid code"),
                SupplierSettings::Sandbox(SandboxTable::default()),
            )]),
            jobs: JobSettings {
                enabled: true,
                concurrency: 8,
                poll_interval: Duration::from_millis(200),
                retry_base: Duration::from_secs(1),
                retry_cap: Duration::from_secs(300),
                heartbeat: Duration::from_secs(5),
                missed_heartbeats: 6,
            },
            webhooks: WebhookSettings {
                tolerance: Duration::from_secs(300),
                retention: Duration::from_secs(30 * 86_400),
                refused_per_minute: 30,
                refused_burst: 20,
                refused_per_supplier_per_minute: 60,
                refused_per_supplier_burst: 30,
            },
            mappings: MappingSettings { refresh_interval: Duration::from_secs(1) },
            admin: AdminSettings { session_ttl: Duration::from_secs(8 * 3600) },
            reconciliation: ReconciliationSettings {
                enabled: true,
                schedule: "0 0 */6 * * *".into(),
                schedules: BTreeMap::new(),
                window: Duration::from_secs(24 * 3600),
                tick: Duration::from_secs(1),
            },
            finance: FinanceSettings { payment_terms_days: 30, report_recipients: Vec::new() },
            crm: None,
            email: EmailSettings::default(),
            agency_webhooks: AgencyWebhookSettings::default(),
            public_url: String::new(),
            log: "info".into(),
            deprecations: Vec::new(),
        }
    }
}

/// A setting that cannot be used, named as the operator would set it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{path}` (env {env}): {message}")]
pub struct ConfigError {
    pub path: String,
    pub env: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_owned(),
            env: match path {
                "config" => "BOOKHUB_CONFIG".to_owned(),
                _ => format!("BOOKHUB_{}", path.replace('.', "__").to_uppercase()),
            },
            message: message.into(),
        }
    }

    /// `section`'s error, its key prefixed with the section's path.
    fn in_section(section: &str) -> impl Fn(SettingError) -> ConfigError + '_ {
        move |e| ConfigError::new(&format!("{section}.{}", e.key), e.message)
    }

    fn from_figment(e: figment::Error) -> Self {
        let mut path = e.path.clone();
        // A missing key is named by the error, not its path: name it in the path.
        if let figment::error::Kind::MissingField(field) = &e.kind {
            path.push(field.to_string());
        }
        let path = path.join(".");
        // Unreadable files carry no path of their own; the message names them.
        let path = if path.is_empty() { "config" } else { &path };
        // The value itself is never repeated: it may be a secret in the wrong place.
        let message = match &e.kind {
            figment::error::Kind::InvalidType(_, expected) => format!("invalid type: expected {expected}"),
            figment::error::Kind::InvalidValue(_, expected) => format!("invalid value: expected {expected}"),
            kind => kind.to_string(),
        };
        ConfigError::new(path, message.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

impl Settings {
    /// Reads the layers in order and validates the result.
    pub fn load() -> Result<Self, ConfigError> {
        // A file named by BOOKHUB_CONFIG must exist; ./bookhub.toml is read when present.
        let file = match std::env::var_os("BOOKHUB_CONFIG").map(PathBuf::from) {
            Some(named) if !named.is_file() => {
                return Err(ConfigError::new("config", format!("{} is not a readable file", named.display())));
            }
            Some(named) => Some(named),
            None => Some(PathBuf::from("bookhub.toml")).filter(|default| default.is_file()),
        };
        let mut layers = legacy::Layers::new(Figment::from(Serialized::defaults(Settings::default())));
        if let Some(file) = file {
            layers.merge(Toml::file_exact(file))?;
        }
        // `BOOKHUB_CONFIG` picks the file; `BOOKHUB_TEST_*` configure the test suite, not bookhub.
        layers.merge(
            Env::prefixed("BOOKHUB_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    key != "config" && !key.starts_with("test_")
                })
                .split("__"),
        )?;
        layers.into_settings()
    }

    /// Extracts and validates; `figment`'s layers are taken as they are (no legacy keys).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        legacy::Layers::new(figment).into_settings()
    }

    /// The CRM mapping file: `crm.mapping_file`, or its default when no CRM is configured.
    pub fn crm_mapping_file(&self) -> PathBuf {
        self.crm.clone().unwrap_or_default().mapping_file
    }

    /// The suppliers this process serves: every table but a sandbox that is off (see
    /// [`SandboxTable::enabled`]).
    pub fn enabled_suppliers(&self) -> BTreeMap<SupplierCode, SupplierSettings> {
        let on_postgres = self.database_url.is_postgres();
        self.suppliers.iter().filter(|(_, s)| s.enabled(on_postgres)).map(|(c, s)| (c.clone(), s.clone())).collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // Start-up holds one connection for the migration lock while migrating on another.
        if self.database_max_connections < 2 {
            return Err(ConfigError::new("database_max_connections", "must be at least 2"));
        }
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::new("body_limit_bytes", "must be at least 1"));
        }
        self.idempotency.validate().map_err(ConfigError::in_section("idempotency"))?;
        self.intake.validate().map_err(ConfigError::in_section("intake"))?;
        self.rate_limit.validate().map_err(ConfigError::in_section("rate_limit"))?;
        self.jobs.validate().map_err(ConfigError::in_section("jobs"))?;
        self.webhooks.validate().map_err(ConfigError::in_section("webhooks"))?;
        self.mappings.validate().map_err(ConfigError::in_section("mappings"))?;
        self.admin.validate().map_err(ConfigError::in_section("admin"))?;
        self.reconciliation.validate(&self.suppliers).map_err(ConfigError::in_section("reconciliation"))?;
        self.finance.validate(&self.email).map_err(ConfigError::in_section("finance"))?;
        if let Some(crm) = &self.crm {
            crm.validate().map_err(ConfigError::in_section("crm"))?;
        }
        self.email.validate().map_err(ConfigError::in_section("email"))?;
        self.agency_webhooks.validate().map_err(ConfigError::in_section("agency_webhooks"))?;
        for (code, supplier) in &self.suppliers {
            supplier.validate().map_err(ConfigError::in_section(&format!("suppliers.{code}")))?;
        }
        for (code, supplier) in self.enabled_suppliers() {
            if let SupplierSettings::Sandbox(sandbox) = supplier
                && self.database_url.is_postgres()
                && sandbox.webhook_secrets.is_empty()
            {
                return Err(ConfigError::new(
                    &format!("suppliers.{code}.webhook_secrets"),
                    "an enabled sandbox on Postgres needs a secret that every process shares",
                ));
            }
        }
        Ok(())
    }
}
