//! The configured suppliers: one `[suppliers.<code>]` table each, built into adapters behind
//! retries and a circuit breaker. A second supplier speaking a known protocol is one more table.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use domain::SupplierCode;
use serde::{Deserialize, Serialize};

use super::jsonrest::{JsonrestAdapter, JsonrestSettings};
use super::ota::{OtaAdapter, OtaSettings};
use super::resilience::{ResilienceSettings, Resilient, SupplierHealth};
use super::sandbox::SandboxAdapter;
use super::{http_client, signing::StandardKey};
use crate::settings::{Secret, SettingError, UnknownKeys};

domain::code_enum! {
    /// A supplier protocol bookhub speaks.
    pub enum SupplierKind ("supplier kind") {
        Jsonrest = "jsonrest",
        Ota = "ota",
        Sandbox = "sandbox",
    }
}

/// One `[suppliers.<code>]` table: its protocol's own keys, plus the [`ResilienceSettings`]
/// block every protocol shares (flattened: `timeout`, `max_retries`, … sit in the table itself).
/// `kind` names the protocol; the config layer fills it in from the table's name when that
/// is a protocol's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SupplierSettings {
    Jsonrest(JsonrestTable),
    Ota(OtaTable),
    Sandbox(SandboxTable),
}

/// `kind = "jsonrest"`: JSON over HTTPS, requests signed with `api_secret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonrestTable {
    #[serde(flatten)]
    pub protocol: JsonrestSettings,
    #[serde(flatten)]
    pub resilience: ResilienceSettings,
    #[serde(flatten)]
    pub unknown: UnknownKeys,
}

/// `kind = "ota"`: OpenTravel XML over HTTPS with HTTP Basic credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtaTable {
    #[serde(flatten)]
    pub protocol: OtaSettings,
    #[serde(flatten)]
    pub resilience: ResilienceSettings,
    #[serde(flatten)]
    pub unknown: UnknownKeys,
}

/// `kind = "sandbox"`: bookhub's built-in supplier, which confirms every booking by webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxTable {
    /// Whether agencies can book it. Unset: on with the embedded SQLite database (a first run,
    /// the demo), off on Postgres (production), where it would confirm fake bookings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `whsec_<base64>` secrets; empty: one is generated at start-up, which only one process
    /// can verify, so an enabled sandbox on Postgres (several processes) needs one.
    pub webhook_secrets: Vec<Secret>,
    /// How long before it confirms by webhook; 0 confirms at once.
    #[serde(with = "humantime_serde")]
    pub confirm_delay: Duration,
    #[serde(flatten)]
    pub resilience: ResilienceSettings,
    #[serde(flatten)]
    pub unknown: UnknownKeys,
}

impl Default for SandboxTable {
    fn default() -> Self {
        SandboxTable {
            enabled: None,
            webhook_secrets: Vec::new(),
            confirm_delay: Duration::from_secs(2),
            resilience: ResilienceSettings::default(),
            unknown: UnknownKeys::default(),
        }
    }
}

impl SupplierSettings {
    pub fn kind(&self) -> SupplierKind {
        match self {
            SupplierSettings::Jsonrest(_) => SupplierKind::Jsonrest,
            SupplierSettings::Ota(_) => SupplierKind::Ota,
            SupplierSettings::Sandbox(_) => SupplierKind::Sandbox,
        }
    }

    /// Whether the supplier is served, on a database that is (`true`) or is not Postgres.
    pub fn enabled(&self, on_postgres: bool) -> bool {
        match self {
            SupplierSettings::Sandbox(t) => t.enabled.unwrap_or(!on_postgres),
            _ => true,
        }
    }

    pub fn resilience(&self) -> &ResilienceSettings {
        match self {
            SupplierSettings::Jsonrest(t) => &t.resilience,
            SupplierSettings::Ota(t) => &t.resilience,
            SupplierSettings::Sandbox(t) => &t.resilience,
        }
    }

    /// Checks the table; the error names the key within it.
    pub fn validate(&self) -> Result<(), SettingError> {
        match self {
            SupplierSettings::Jsonrest(JsonrestTable { protocol: p, unknown, .. }) => {
                unknown.check()?;
                crate::settings::check_base_url(&p.base_url, p.allow_http)?;
                required("api_key", p.api_key.is_blank())?;
                required("api_secret", p.api_secret.is_blank())?;
                check_secrets_present(&p.webhook_secrets)?;
                check_standard_secrets(&p.webhook_secrets)?;
            }
            SupplierSettings::Ota(OtaTable { protocol: p, unknown, .. }) => {
                unknown.check()?;
                crate::settings::check_base_url(&p.base_url, p.allow_http)?;
                required("username", p.username.trim().is_empty())?;
                required("password", p.password.is_blank())?;
                check_secrets_present(&p.webhook_secrets)?;
            }
            SupplierSettings::Sandbox(t) => {
                t.unknown.check()?;
                check_standard_secrets(&t.webhook_secrets)?;
            }
        }
        self.resilience().validate()
    }
}

fn required(key: &str, blank: bool) -> Result<(), SettingError> {
    if blank { Err(SettingError::new(key, "must not be empty")) } else { Ok(()) }
}

/// A supplier that signs its webhooks needs at least one secret, none of them empty (an empty
/// HMAC key is one anybody can use).
fn check_secrets_present(secrets: &[Secret]) -> Result<(), SettingError> {
    if secrets.is_empty() {
        return Err(SettingError::new("webhook_secrets", "needs at least one secret"));
    }
    if secrets.iter().any(Secret::is_blank) {
        return Err(SettingError::new("webhook_secrets", "must not contain an empty secret"));
    }
    Ok(())
}

fn check_standard_secrets(secrets: &[Secret]) -> Result<(), SettingError> {
    for secret in secrets {
        StandardKey::parse(secret.expose()).map_err(|e| SettingError::new("webhook_secrets", e.to_string()))?;
    }
    Ok(())
}

/// A random `whsec_` secret, for a sandbox configured without one.
fn generated_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn build_adapter(
    code: &SupplierCode,
    table: &SupplierSettings,
    webhook_tolerance: chrono::Duration,
    hub_url: &Arc<OnceLock<String>>,
) -> Result<Arc<dyn domain::SupplierAdapter>, SettingError> {
    let http = http_client(table.resilience().timeout);
    let secret_error = |e: super::signing::InvalidSecret| SettingError::new("webhook_secrets", e.to_string());
    Ok(match table {
        SupplierSettings::Jsonrest(t) => Arc::new(
            JsonrestAdapter::new(code.clone(), t.protocol.clone(), http, webhook_tolerance).map_err(secret_error)?,
        ),
        SupplierSettings::Ota(t) => {
            Arc::new(OtaAdapter::new(code.clone(), t.protocol.clone(), http, webhook_tolerance))
        }
        SupplierSettings::Sandbox(t) => {
            let secrets = if t.webhook_secrets.is_empty() {
                vec![generated_secret()]
            } else {
                t.webhook_secrets.iter().map(|s| s.expose().to_owned()).collect()
            };
            Arc::new(
                SandboxAdapter::new(code.clone(), &secrets, t.confirm_delay, hub_url.clone(), http, webhook_tolerance)
                    .map_err(secret_error)?,
            )
        }
    })
}

/// The configured suppliers, each behind its breaker.
#[derive(Debug, Clone, Default)]
pub struct Suppliers {
    adapters: BTreeMap<SupplierCode, (SupplierKind, Arc<Resilient>)>,
}

impl Suppliers {
    /// Builds every supplier. `hub_url` is bookhub's own address, filled in once it is bound
    /// (the sandbox sends its webhooks there).
    pub fn build(
        tables: &BTreeMap<SupplierCode, SupplierSettings>,
        webhook_tolerance: chrono::Duration,
        hub_url: Arc<OnceLock<String>>,
    ) -> Result<Self, (SupplierCode, SettingError)> {
        let mut adapters = BTreeMap::new();
        for (code, table) in tables {
            let fail = |e: SettingError| (code.clone(), e);
            table.validate().map_err(fail)?;
            let adapter = build_adapter(code, table, webhook_tolerance, &hub_url).map_err(fail)?;
            adapters
                .insert(code.clone(), (table.kind(), Arc::new(Resilient::new(adapter, table.resilience().clone()))));
        }
        Ok(Suppliers { adapters })
    }

    pub fn get(&self, code: &SupplierCode) -> Option<Arc<Resilient>> {
        self.adapters.get(code).map(|(_, a)| a.clone())
    }

    pub fn contains(&self, code: &SupplierCode) -> bool {
        self.adapters.contains_key(code)
    }

    /// Every configured supplier's code, in code order.
    pub fn codes(&self) -> impl Iterator<Item = &SupplierCode> {
        self.adapters.keys()
    }

    /// Every supplier's code, protocol and health.
    pub fn health(&self) -> Vec<(SupplierCode, SupplierKind, SupplierHealth)> {
        self.adapters.iter().map(|(code, (kind, a))| (code.clone(), *kind, a.health())).collect()
    }

    /// One supplier's protocol and health.
    pub fn health_of(&self, code: &SupplierCode) -> Option<(SupplierKind, SupplierHealth)> {
        self.adapters.get(code).map(|(kind, a)| (*kind, a.health()))
    }
}
