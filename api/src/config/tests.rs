use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Serialize;

use super::*;

fn with(key: &str, value: impl Serialize) -> Result<Settings, ConfigError> {
    Settings::from_figment(
        Figment::from(Serialized::defaults(Settings::default())).merge(Serialized::global(key, value)),
    )
}

fn jsonrest(extra: serde_json::Value) -> serde_json::Value {
    let mut table = serde_json::json!({"base_url": "http://127.0.0.1:9001", "api_key": "k", "api_secret": "s",
        "webhook_secrets": ["whsec_c2VjcmV0"], "allow_http": true});
    table.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    table
}

#[test]
fn defaults_are_valid() {
    let s = with("log", "info").unwrap();
    assert_eq!(s.database_url.as_str(), "sqlite://bookhub.db?mode=rwc");
    assert_eq!(s.listen.port(), 8080);
    assert_eq!(s.suppliers.keys().map(|c| c.as_str()).collect::<Vec<_>>(), ["sandbox"]);
    assert!(s.deprecations.is_empty());
}

#[test]
fn a_bad_value_names_the_setting_and_its_variable() {
    let err = with("listen", "not-an-address").unwrap_err();
    assert_eq!(err.path, "listen");
    assert_eq!(err.env, "BOOKHUB_LISTEN");
    let err = with("database_url", "mysql://x").unwrap_err();
    assert_eq!(err.env, "BOOKHUB_DATABASE_URL");
    let err = with("jobs", serde_json::json!({"poll_interval": "soon"})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_JOBS__POLL_INTERVAL");
}

#[test]
fn a_supplier_kind_defaults_to_its_code() {
    let s = with("suppliers", serde_json::json!({"jsonrest": jsonrest(serde_json::json!({})), "sandbox": {}})).unwrap();
    let table = &s.suppliers[&"jsonrest".parse().unwrap()];
    assert_eq!(table.kind(), SupplierKind::Jsonrest);
    assert_eq!(table.resilience().max_retries, 3, "unset keys take their defaults");
    let err = with("suppliers", serde_json::json!({"acme": {}})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__ACME__KIND");
}

#[test]
fn a_supplier_table_holds_exactly_its_protocols_keys() {
    let err = with("suppliers", serde_json::json!({"jsonrest": {"base_url": "http://x"}})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__JSONREST__API_KEY");
    let err =
        with("suppliers", serde_json::json!({"jsonrest": jsonrest(serde_json::json!({"api_key": " "}))})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__JSONREST__API_KEY");
    let err = with("suppliers", serde_json::json!({"acme": {"kind": "ota", "base_url": "http://x", "username": "u"}}))
        .unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__ACME__PASSWORD");
    let err = with("suppliers", serde_json::json!({"sandbox": {"webhook_secrets": ["plain"]}})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__SANDBOX__WEBHOOK_SECRETS");
    let ota = serde_json::json!({"base_url": "http://x", "username": "u", "password": "p", "webhook_secrets": [""],
        "allow_http": true});
    let err = with("suppliers", serde_json::json!({"ota": ota})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__OTA__WEBHOOK_SECRETS");
    // Another protocol's key, or a typo, is refused, even beside the shared resilience block.
    let err =
        with("suppliers", serde_json::json!({"jsonrest": jsonrest(serde_json::json!({"username": "u"}))})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__JSONREST__USERNAME");
    let err = with("suppliers", serde_json::json!({"sandbox": {"max_retrys": 1}})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__SANDBOX__MAX_RETRYS");
    let err = with("suppliers", serde_json::json!({"sandbox": {"retry_base": "2s", "retry_cap": "1s"}})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__SANDBOX__RETRY_CAP");
}

#[test]
fn a_plain_http_supplier_url_needs_allow_http() {
    let plain = jsonrest(serde_json::json!({"allow_http": false}));
    let err = with("suppliers", serde_json::json!({"jsonrest": plain})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__JSONREST__BASE_URL");
    let ota = serde_json::json!({"kind": "ota", "base_url": "http://x", "username": "u", "password": "p",
        "webhook_secrets": ["s"]});
    let err = with("suppliers", serde_json::json!({"acme": ota})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__ACME__BASE_URL");
    let https = jsonrest(serde_json::json!({"base_url": "https://partner.example.com", "allow_http": false}));
    assert!(with("suppliers", serde_json::json!({"jsonrest": https})).is_ok());
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's own error type
fn a_list_of_secrets_can_come_from_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__BASE_URL", "http://127.0.0.1:9001");
        jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__ALLOW_HTTP", "true");
        jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__API_KEY", "key");
        jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__API_SECRET", "secret");
        jail.set_env("BOOKHUB_SUPPLIERS__JSONREST__WEBHOOK_SECRETS", r#"["whsec_c2VjcmV0", "whsec_b2xk"]"#);
        let s = Settings::load().map_err(|e| e.to_string())?;
        let SupplierSettings::Jsonrest(table) = &s.suppliers[&"jsonrest".parse().unwrap()] else {
            panic!("a jsonrest table")
        };
        let secrets: Vec<_> = table.protocol.webhook_secrets.iter().map(Secret::expose).collect();
        assert_eq!(secrets, ["whsec_c2VjcmV0", "whsec_b2xk"]);
        assert_eq!(table.protocol.base_url, "http://127.0.0.1:9001");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn the_keys_of_the_last_release_are_read_with_a_deprecation() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "bookhub.toml",
            "[jobs]\npoll_interval_ms = 20\nheartbeat_secs = 7\n[idempotency]\nttl_hours = 48\n\
             [webhooks]\nretention_days = 3\n[suppliers.sandbox]\nconfirm_delay_ms = 0\n",
        )?;
        jail.set_env("BOOKHUB_SUPPLIERS__SANDBOX__TIMEOUT_MS", "1500");
        // The new key wins over the old one in the same layer.
        jail.set_env("BOOKHUB_JOBS__RETRY_BASE_MS", "5");
        jail.set_env("BOOKHUB_JOBS__RETRY_BASE", "2s");
        let s = Settings::load().map_err(|e| e.to_string())?;
        assert_eq!(s.jobs.poll_interval, Duration::from_millis(20));
        assert_eq!(s.jobs.heartbeat, Duration::from_secs(7));
        assert_eq!(s.jobs.retry_base, Duration::from_secs(2));
        assert_eq!(s.idempotency.ttl, Duration::from_secs(48 * 3600));
        assert_eq!(s.webhooks.retention, Duration::from_secs(3 * 86_400));
        let SupplierSettings::Sandbox(sandbox) = &s.suppliers[&"sandbox".parse().unwrap()] else { panic!() };
        assert_eq!(sandbox.confirm_delay, Duration::ZERO);
        assert_eq!(sandbox.resilience.timeout, Duration::from_millis(1500));
        assert_eq!(s.deprecations.len(), 7, "{:?}", s.deprecations);
        assert!(s.deprecations.iter().any(|d| d.contains("`jobs.poll_interval = \"20ms\"`")), "{:?}", s.deprecations);
        assert!(s.deprecations.iter().any(|d| d.contains("`jobs.retry_base_ms` is ignored")), "{:?}", s.deprecations);
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn the_test_suites_variables_are_not_settings() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("BOOKHUB_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1/postgres");
        jail.set_env("BOOKHUB_TEST_ANYTHING_NEW", "1");
        Settings::load().map_err(|e| e.to_string())?;
        jail.set_env("BOOKHUB_TESTING", "1");
        let err = Settings::load().unwrap_err();
        assert!(err.message.contains("testing"), "{err}");
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
    assert_eq!(with("idempotency", serde_json::json!({"ttl": "400days"})).unwrap_err().path, "idempotency.ttl");
    assert_eq!(with("intake", serde_json::json!({"max_batch": 5000})).unwrap_err().path, "intake.max_batch");
    assert_eq!(with("database_max_connections", 1).unwrap_err().path, "database_max_connections");
}

#[test]
fn unknown_keys_and_zero_intervals_are_refused() {
    let err = with("idempotency", serde_json::json!({"ttl_hour": 4})).unwrap_err();
    assert_eq!(err.path, "idempotency.ttl_hour", "{err}");
    let err = with("idempotency", serde_json::json!({"purge_interval": "0s"})).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_IDEMPOTENCY__PURGE_INTERVAL");
}

#[test]
fn settings_print_no_secret() {
    let mut s = with("suppliers", serde_json::json!({"jsonrest": jsonrest(serde_json::json!({}))})).unwrap();
    s.database_url = "postgres://bookhub:db-password@db/bookhub".parse().unwrap();
    let printed = format!("{s:?}");
    for secret in ["db-password", "whsec_c2VjcmV0", "api_secret: \"s\"", "api_key: \"k\""] {
        assert!(!printed.contains(secret), "{secret} is printed: {printed}");
    }
}

#[test]
fn the_key_cache_cannot_outlast_the_revocation_delay_and_the_auth_limiter_needs_a_rate() {
    let settings = with("rate_limit", serde_json::json!({"key_cache_ttl": "2s"})).unwrap();
    assert_eq!(settings.rate_limit.key_cache_ttl, Duration::from_secs(2));
    let err = with("rate_limit", serde_json::json!({"key_cache_ttl": "30s"})).unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.env.as_str()),
        ("rate_limit.key_cache_ttl", "BOOKHUB_RATE_LIMIT__KEY_CACHE_TTL")
    );
    for key in ["failed_auth_per_minute", "failed_auth_burst"] {
        let err = with("rate_limit", serde_json::json!({ key: 0 })).unwrap_err();
        assert_eq!(err.path, format!("rate_limit.{key}"));
    }
}

#[test]
fn the_sandbox_is_on_for_sqlite_off_for_postgres_and_needs_a_shared_secret_when_switched_on_there() {
    let sqlite = with("log", "info").unwrap();
    assert!(sqlite.enabled_suppliers().contains_key(&"sandbox".parse().unwrap()));
    let postgres = with("database_url", "postgres://bookhub@db/bookhub").unwrap();
    assert!(postgres.enabled_suppliers().is_empty(), "off on Postgres unless set");

    let figment = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Serialized::global("database_url", "postgres://bookhub@db/bookhub"))
        .merge(Serialized::global("suppliers", serde_json::json!({"sandbox": {"enabled": true}})));
    let err = Settings::from_figment(figment.clone()).unwrap_err();
    assert_eq!(err.env, "BOOKHUB_SUPPLIERS__SANDBOX__WEBHOOK_SECRETS");
    let shared = figment.merge(Serialized::global(
        "suppliers",
        serde_json::json!({"sandbox": {"webhook_secrets": ["whsec_c2VjcmV0"]}}),
    ));
    let on = Settings::from_figment(shared).unwrap();
    assert!(on.enabled_suppliers().contains_key(&"sandbox".parse().unwrap()));
}

#[test]
fn webhook_refusal_limits_must_be_positive() {
    for key in ["refused_per_minute", "refused_burst", "refused_per_supplier_per_minute", "refused_per_supplier_burst"]
    {
        let err = with("webhooks", serde_json::json!({ key: 0 })).unwrap_err();
        assert_eq!(err.path, format!("webhooks.{key}"), "{err}");
    }
    let limits = with("webhooks", serde_json::json!({"refused_per_minute": 5, "refused_burst": 2})).unwrap().webhooks;
    assert_eq!((limits.refused_per_minute, limits.refused_burst), (5, 2));
}

#[test]
fn a_refused_value_is_not_repeated_in_the_error() {
    let err =
        with("suppliers", serde_json::json!({"sandbox": {"webhook_secrets": "whsec_TOPSECRETVALUE"}})).unwrap_err();
    assert!(!err.to_string().contains("TOPSECRET"), "{err}");
    let err = with("database_max_connections", "hunter2").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(err.env, "BOOKHUB_DATABASE_MAX_CONNECTIONS");
}

#[test]
fn reconciliation_schedules_must_run_and_their_window_span_the_slots() {
    let bad = |value: serde_json::Value| with("reconciliation", value).unwrap_err().path;
    assert_eq!(bad(serde_json::json!({"schedule": "every 6 hours"})), "reconciliation.schedule");
    assert_eq!(bad(serde_json::json!({"schedule": "0 0 0 30 2 *"})), "reconciliation.schedule", "February 30th");
    assert_eq!(bad(serde_json::json!({"schedule": "0 0 0 * * *", "window": "6h"})), "reconciliation.schedule");
    assert_eq!(bad(serde_json::json!({"schedules": {"nope": "0 0 * * * *"}})), "reconciliation.schedules.nope");
    assert_eq!(bad(serde_json::json!({"tick": "0s"})), "reconciliation.tick");
    let daily = with("reconciliation", serde_json::json!({"schedule": "0 0 0 * * *", "window": "25h"})).unwrap();
    assert_eq!(daily.reconciliation.window, Duration::from_secs(25 * 3600));
}

#[test]
fn finance_recipients_are_addresses_and_need_email_on() {
    let err = with("finance", serde_json::json!({"report_recipients": ["finance@example.com"]})).unwrap_err();
    assert_eq!(err.path, "finance.report_recipients", "email is off by default");
    let err = with("finance", serde_json::json!({"payment_terms_days": 400})).unwrap_err();
    assert_eq!(err.path, "finance.payment_terms_days");
}
