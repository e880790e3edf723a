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

domain::code_enum! {
    /// A supplier protocol bookhub speaks.
    pub enum SupplierKind ("supplier kind") {
        Jsonrest = "jsonrest",
        Ota = "ota",
        Sandbox = "sandbox",
    }
}

/// One supplier's table. Which keys apply depends on `kind`; [`SupplierSettings::check`] says
/// which are missing.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupplierSettings {
    /// The protocol; defaults to the table's name when that is a protocol's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<SupplierKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// jsonrest: `Api-Key` and the secret that signs requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<String>,
    /// ota: HTTP Basic credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Secrets accepted on inbound webhooks; several while one is rotated out.
    /// jsonrest and sandbox: `whsec_<base64>`; ota: the raw shared secret.
    pub webhook_secrets: Vec<String>,
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    pub breaker_failure_threshold: u32,
    pub breaker_cooldown_ms: u64,
    /// sandbox: how long before it confirms by webhook; 0 confirms at once.
    pub confirm_delay_ms: u64,
}

impl std::fmt::Debug for SupplierSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials and secrets are never printed.
        f.debug_struct("SupplierSettings")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl Default for SupplierSettings {
    fn default() -> Self {
        SupplierSettings {
            kind: None,
            base_url: None,
            api_key: None,
            api_secret: None,
            username: None,
            password: None,
            webhook_secrets: Vec::new(),
            timeout_ms: 10_000,
            max_retries: 3,
            retry_base_ms: 1_000,
            retry_cap_ms: 30_000,
            breaker_failure_threshold: 5,
            breaker_cooldown_ms: 30_000,
            confirm_delay_ms: 2_000,
        }
    }
}

/// A setting a supplier table lacks or gets wrong: its key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SupplierConfigError {
    pub key: &'static str,
    pub message: String,
}

fn missing(key: &'static str, kind: SupplierKind) -> SupplierConfigError {
    SupplierConfigError { key, message: format!("is required for a {} supplier", kind.as_str()) }
}

impl SupplierSettings {
    pub fn kind(&self, code: &str) -> Option<SupplierKind> {
        self.kind.or_else(|| serde_json::from_value(serde_json::Value::String(code.to_owned())).ok())
    }

    fn resilience(&self) -> ResilienceSettings {
        ResilienceSettings {
            max_retries: self.max_retries,
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_cap: Duration::from_millis(self.retry_cap_ms),
            breaker_failure_threshold: self.breaker_failure_threshold,
            breaker_cooldown: Duration::from_millis(self.breaker_cooldown_ms),
        }
    }

    /// Checks the table for its kind.
    pub fn check(&self, kind: SupplierKind) -> Result<(), SupplierConfigError> {
        let required = |key: &'static str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err(missing(key, kind)),
        };
        match kind {
            SupplierKind::Jsonrest => {
                required("base_url", &self.base_url)?;
                required("api_key", &self.api_key)?;
                required("api_secret", &self.api_secret)?;
                self.check_secrets_present(kind)?;
                self.check_standard_secrets()?;
            }
            SupplierKind::Ota => {
                required("base_url", &self.base_url)?;
                required("username", &self.username)?;
                required("password", &self.password)?;
                self.check_secrets_present(kind)?;
            }
            SupplierKind::Sandbox => self.check_standard_secrets()?,
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(SupplierConfigError { key: "base_url", message: "must be an http:// or https:// URL".into() });
        }
        if self.timeout_ms == 0 {
            return Err(SupplierConfigError { key: "timeout_ms", message: "must be at least 1".into() });
        }
        if self.retry_base_ms == 0 || self.retry_cap_ms < self.retry_base_ms {
            return Err(SupplierConfigError {
                key: "retry_cap_ms",
                message: "retry_base_ms must be at least 1 and retry_cap_ms at least retry_base_ms".into(),
            });
        }
        if self.breaker_failure_threshold == 0 {
            return Err(SupplierConfigError { key: "breaker_failure_threshold", message: "must be at least 1".into() });
        }
        Ok(())
    }

    /// A supplier that signs its webhooks needs at least one secret, none of them empty (an
    /// empty HMAC key is one anybody can use).
    fn check_secrets_present(&self, kind: SupplierKind) -> Result<(), SupplierConfigError> {
        if self.webhook_secrets.is_empty() {
            return Err(missing("webhook_secrets", kind));
        }
        if self.webhook_secrets.iter().any(|s| s.trim().is_empty()) {
            return Err(SupplierConfigError {
                key: "webhook_secrets",
                message: "must not contain an empty secret".into(),
            });
        }
        Ok(())
    }

    fn check_standard_secrets(&self) -> Result<(), SupplierConfigError> {
        for secret in &self.webhook_secrets {
            StandardKey::parse(secret)
                .map_err(|e| SupplierConfigError { key: "webhook_secrets", message: e.to_string() })?;
        }
        Ok(())
    }
}

/// A random `whsec_` secret, for a sandbox configured without one.
fn generated_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
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
        tables: &BTreeMap<String, SupplierSettings>,
        webhook_tolerance: chrono::Duration,
        hub_url: Arc<OnceLock<String>>,
    ) -> Result<Self, (String, SupplierConfigError)> {
        let mut adapters = BTreeMap::new();
        for (name, s) in tables {
            let fail = |e: SupplierConfigError| (name.clone(), e);
            let code: SupplierCode = name.parse().map_err(|_| {
                fail(SupplierConfigError { key: "code", message: "use lower-case letters, digits, _ and -".into() })
            })?;
            let kind = s.kind(name).ok_or_else(|| fail(missing("kind", SupplierKind::Sandbox)))?;
            s.check(kind).map_err(fail)?;
            let http = http_client(Duration::from_millis(s.timeout_ms));
            let secret_error = |e: super::signing::InvalidSecret| {
                fail(SupplierConfigError { key: "webhook_secrets", message: e.to_string() })
            };
            let adapter: Arc<dyn domain::SupplierAdapter> = match kind {
                SupplierKind::Jsonrest => Arc::new(
                    JsonrestAdapter::new(
                        code.clone(),
                        JsonrestSettings {
                            base_url: s.base_url.clone().unwrap_or_default(),
                            api_key: s.api_key.clone().unwrap_or_default(),
                            api_secret: s.api_secret.clone().unwrap_or_default(),
                            webhook_secrets: s.webhook_secrets.clone(),
                        },
                        http,
                        webhook_tolerance,
                    )
                    .map_err(secret_error)?,
                ),
                SupplierKind::Ota => Arc::new(OtaAdapter::new(
                    code.clone(),
                    OtaSettings {
                        base_url: s.base_url.clone().unwrap_or_default(),
                        username: s.username.clone().unwrap_or_default(),
                        password: s.password.clone().unwrap_or_default(),
                        webhook_secrets: s.webhook_secrets.clone(),
                    },
                    http,
                    webhook_tolerance,
                )),
                SupplierKind::Sandbox => {
                    let secrets =
                        if s.webhook_secrets.is_empty() { vec![generated_secret()] } else { s.webhook_secrets.clone() };
                    Arc::new(
                        SandboxAdapter::new(
                            code.clone(),
                            &secrets,
                            Duration::from_millis(s.confirm_delay_ms),
                            hub_url.clone(),
                            http,
                            webhook_tolerance,
                        )
                        .map_err(secret_error)?,
                    )
                }
            };
            adapters.insert(code, (kind, Arc::new(Resilient::new(adapter, s.resilience()))));
        }
        Ok(Suppliers { adapters })
    }

    pub fn get(&self, code: &SupplierCode) -> Option<Arc<Resilient>> {
        self.adapters.get(code).map(|(_, a)| a.clone())
    }

    pub fn contains(&self, code: &SupplierCode) -> bool {
        self.adapters.contains_key(code)
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
