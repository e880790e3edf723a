//! Settings: defaults → `bookhub.toml` (or the file named by `BOOKHUB_CONFIG`) → `BOOKHUB_*`
//! environment variables, with `__` between levels (`BOOKHUB_SUPPLIERS__JSONREST__BASE_URL`).
//! Validated once at start-up; secrets are never logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use adapters::suppliers::registry::{SupplierKind, SupplierSettings};
use domain::SupplierCode;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://FILE?mode=rwc` (the default, embedded) or `postgres://USER@HOST/DB`.
    pub database_url: String,
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
    pub suppliers: BTreeMap<String, SupplierSettings>,
    pub jobs: JobSettings,
    pub webhooks: WebhookSettings,
    /// bookhub's own base URL as suppliers reach it (the sandbox posts its webhooks there);
    /// empty means `http://` + the address it listens on.
    pub public_url: String,
    /// A tracing filter such as `info` or `bookhub=debug,info` (`RUST_LOG` wins when set).
    pub log: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a completed request's response is kept for replay.
    pub ttl_hours: u32,
    /// How often expired records are purged.
    pub purge_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    /// Most bookings written in one shared transaction.
    pub max_batch: usize,
    /// Concurrent writer transactions.
    pub writers: usize,
}

/// Per API key: `per_minute` sustained, in bursts of up to `burst`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_minute: u32,
    pub burst: u32,
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
    pub poll_interval_ms: u64,
    /// A job that failed transiently runs again after a full-jitter backoff from `retry_base_ms`
    /// doubling up to `retry_cap_ms` (or the supplier's `Retry-After`).
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Workers report alive this often; a worker silent for `heartbeat_secs × missed_heartbeats`
    /// has its running jobs taken back by another.
    pub heartbeat_secs: u64,
    pub missed_heartbeats: usize,
}

/// Inbound supplier webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// How far a webhook's timestamp may be from now, either way.
    pub tolerance_secs: u64,
    /// How long the webhook log keeps a request.
    pub retention_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://bookhub.db?mode=rwc".into(),
            database_max_connections: 16,
            listen: ([127, 0, 0, 1], 8080).into(),
            http_workers: 0,
            body_limit_bytes: 1024 * 1024,
            idempotency: IdempotencySettings { ttl_hours: 24, purge_interval_secs: 300 },
            intake: IntakeSettings { max_batch: 128, writers: 2 },
            rate_limit: RateLimitSettings { per_minute: 1200, burst: 120 },
            suppliers: BTreeMap::from([(
                "sandbox".into(),
                SupplierSettings { kind: Some(SupplierKind::Sandbox), ..SupplierSettings::default() },
            )]),
            jobs: JobSettings {
                enabled: true,
                concurrency: 8,
                poll_interval_ms: 200,
                retry_base_ms: 1_000,
                retry_cap_ms: 300_000,
                heartbeat_secs: 5,
                missed_heartbeats: 6,
            },
            webhooks: WebhookSettings { tolerance_secs: 300, retention_days: 30 },
            public_url: String::new(),
            log: "info".into(),
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
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment.merge(Env::prefixed("BOOKHUB_").split("__").ignore(&[
            "config",
            "test_postgres_url",
            "test_backend",
        ]));
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|e| {
            let path = e.path.join(".");
            // Unknown keys and unreadable files carry no path of their own; the message names them.
            let path = if path.is_empty() { "config" } else { &path };
            ConfigError::new(path, e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let db = &self.database_url;
        if !(db.starts_with("sqlite:") || db.starts_with("postgres:") || db.starts_with("postgresql:")) {
            return Err(ConfigError::new("database_url", "must start with sqlite: or postgres:"));
        }
        // Start-up holds one connection for the migration lock while migrating on another.
        if self.database_max_connections < 2 {
            return Err(ConfigError::new("database_max_connections", "must be at least 2"));
        }
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::new("body_limit_bytes", "must be at least 1"));
        }
        if !(1..=8760).contains(&self.idempotency.ttl_hours) {
            return Err(ConfigError::new("idempotency.ttl_hours", "must be from 1 to 8760 (a year)"));
        }
        if self.idempotency.purge_interval_secs == 0 {
            return Err(ConfigError::new("idempotency.purge_interval_secs", "must be at least 1"));
        }
        // A batch binds 27 values a booking; 1000 stays within both databases' limits.
        if !(1..=1000).contains(&self.intake.max_batch) {
            return Err(ConfigError::new("intake.max_batch", "must be from 1 to 1000"));
        }
        if self.intake.writers == 0 {
            return Err(ConfigError::new("intake.writers", "must be at least 1"));
        }
        if self.rate_limit.per_minute == 0 {
            return Err(ConfigError::new("rate_limit.per_minute", "must be at least 1"));
        }
        if self.rate_limit.burst == 0 {
            return Err(ConfigError::new("rate_limit.burst", "must be at least 1"));
        }
        for (code, supplier) in &self.suppliers {
            let path = format!("suppliers.{code}");
            code.parse::<SupplierCode>()
                .map_err(|_| ConfigError::new(&path, "supplier codes use lower-case letters, digits, _ and -"))?;
            let Some(kind) = supplier.kind(code) else {
                return Err(ConfigError::new(&format!("{path}.kind"), "is required: jsonrest, ota or sandbox"));
            };
            supplier.check(kind).map_err(|e| ConfigError::new(&format!("{path}.{}", e.key), e.message))?;
        }
        if self.jobs.concurrency == 0 {
            return Err(ConfigError::new("jobs.concurrency", "must be at least 1"));
        }
        if self.jobs.poll_interval_ms == 0 {
            return Err(ConfigError::new("jobs.poll_interval_ms", "must be at least 1"));
        }
        if self.jobs.retry_base_ms == 0 || self.jobs.retry_cap_ms < self.jobs.retry_base_ms {
            return Err(ConfigError::new(
                "jobs.retry_cap_ms",
                "must be at least jobs.retry_base_ms, which must be at least 1",
            ));
        }
        if self.jobs.heartbeat_secs == 0 || self.jobs.missed_heartbeats < 2 {
            return Err(ConfigError::new(
                "jobs.missed_heartbeats",
                "heartbeat_secs must be at least 1 and missed_heartbeats at least 2",
            ));
        }
        if !(1..=86_400).contains(&self.webhooks.tolerance_secs) {
            return Err(ConfigError::new("webhooks.tolerance_secs", "must be from 1 to 86400"));
        }
        // Suppliers retry for up to a day: a repeat must still find the first delivery's row.
        if !(2..=3650).contains(&self.webhooks.retention_days) {
            return Err(ConfigError::new("webhooks.retention_days", "must be from 2 to 3650"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(key: &str, value: impl Serialize) -> Result<Settings, ConfigError> {
        Settings::from_figment(
            Figment::from(Serialized::defaults(Settings::default())).merge(Serialized::global(key, value)),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let s = with("log", "info").unwrap();
        assert_eq!(s.database_url, "sqlite://bookhub.db?mode=rwc");
        assert_eq!(s.listen.port(), 8080);
        assert_eq!(s.suppliers.keys().collect::<Vec<_>>(), ["sandbox"]);
    }

    #[test]
    fn a_bad_value_names_the_setting_and_its_variable() {
        let err = with("listen", "not-an-address").unwrap_err();
        assert_eq!(err.path, "listen");
        assert_eq!(err.env, "BOOKHUB_LISTEN");
        let err = with("database_url", "mysql://x").unwrap_err();
        assert_eq!(err.env, "BOOKHUB_DATABASE_URL");
    }

    #[test]
    fn a_supplier_kind_defaults_to_its_code() {
        let jsonrest = serde_json::json!({"base_url": "http://127.0.0.1:9001", "api_key": "k", "api_secret": "s",
            "webhook_secrets": ["whsec_c2VjcmV0"]});
        let s = with("suppliers", serde_json::json!({"jsonrest": jsonrest, "sandbox": {}})).unwrap();
        assert_eq!(s.suppliers["jsonrest"].kind("jsonrest"), Some(SupplierKind::Jsonrest));
        assert_eq!(s.suppliers["jsonrest"].max_retries, 3, "unset keys take their defaults");
        let err = with("suppliers", serde_json::json!({"acme": {}})).unwrap_err();
        assert_eq!(err.env, "BOOKHUB_SUPPLIERS__ACME__KIND");
    }

    #[test]
    fn a_supplier_table_needs_its_protocols_keys() {
        let err = with("suppliers", serde_json::json!({"jsonrest": {"base_url": "http://x"}})).unwrap_err();
        assert_eq!(err.env, "BOOKHUB_SUPPLIERS__JSONREST__API_KEY");
        let err =
            with("suppliers", serde_json::json!({"acme": {"kind": "ota", "base_url": "http://x", "username": "u"}}))
                .unwrap_err();
        assert_eq!(err.env, "BOOKHUB_SUPPLIERS__ACME__PASSWORD");
        let err = with("suppliers", serde_json::json!({"sandbox": {"webhook_secrets": ["plain"]}})).unwrap_err();
        assert_eq!(err.env, "BOOKHUB_SUPPLIERS__SANDBOX__WEBHOOK_SECRETS");
        let ota =
            serde_json::json!({"base_url": "http://x", "username": "u", "password": "p", "webhook_secrets": [""]});
        let err = with("suppliers", serde_json::json!({"ota": ota})).unwrap_err();
        assert_eq!(err.env, "BOOKHUB_SUPPLIERS__OTA__WEBHOOK_SECRETS");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn a_list_of_secrets_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__BASE_URL", "http://127.0.0.1:9001");
            jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__API_KEY", "key");
            jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__API_SECRET", "secret");
            jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__WEBHOOK_SECRETS", r#"["whsec_c2VjcmV0", "whsec_b2xk"]"#);
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.suppliers["jsonrest"].webhook_secrets, ["whsec_c2VjcmV0", "whsec_b2xk"]);
            assert_eq!(s.suppliers["jsonrest"].base_url.as_deref(), Some("http://127.0.0.1:9001"));
            Ok(())
        });
    }

    #[test]
    fn the_example_file_documents_exactly_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../bookhub.example.toml");
        let settings = Settings::from_figment(Figment::from(Toml::file_exact(example))).unwrap();
        assert_eq!(serde_json::to_value(&settings).unwrap(), serde_json::to_value(Settings::default()).unwrap());
    }

    #[test]
    fn values_past_what_the_databases_can_take_are_refused() {
        assert_eq!(
            with("idempotency", serde_json::json!({"ttl_hours": 9000})).unwrap_err().path,
            "idempotency.ttl_hours"
        );
        assert_eq!(with("intake", serde_json::json!({"max_batch": 5000})).unwrap_err().path, "intake.max_batch");
        assert_eq!(with("database_max_connections", 1).unwrap_err().path, "database_max_connections");
    }

    #[test]
    fn unknown_keys_and_zero_intervals_are_refused() {
        let err = with("idempotency", serde_json::json!({"ttl_hour": 4})).unwrap_err();
        assert!(err.message.contains("ttl_hour"), "{err}");
        let err = with("idempotency", serde_json::json!({"purge_interval_secs": 0})).unwrap_err();
        assert_eq!(err.env, "BOOKHUB_IDEMPOTENCY__PURGE_INTERVAL_SECS");
    }
}
