//! The harness for bookhub's end-to-end tests: [`TestApp`] runs the real server on a free port
//! against a fresh database — a SQLite file in a temporary folder, or a new Postgres database
//! when `BOOKHUB_TEST_POSTGRES_URL` is set — and talks to it over HTTP.

pub mod sim;

use std::time::Duration;

use adapters::store::Database;
use adapters::store::api_keys::Role;
use api::{Application, Settings};
use domain::AgencyId;
use jobs::supplier::SupplierJobs;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
pub use test_support::{
    Backend, POSTGRES_URL_VAR, TestDatabase, eventually, free_port, init_test_logging, postgres_available_or_skip,
};

/// A running bookhub on a free port with its own database.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub db: Database,
    pub backend: Backend,
    /// The test database's URL, for a second server or a raw connection.
    pub database_url: String,
    handle: api::app::ServerHandle,
    /// The app's own job handlers, for [`TestApp::run_due_jobs`].
    jobs: SupplierJobs,
    _database: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Backend::from_env(), |_| {}).await
    }

    /// Spawns on `backend` after `configure` adjusts the settings.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_on(TestDatabase::create(backend).await, configure).await
    }

    /// Spawns on a database the caller made (see [`TestDatabase`]); the app keeps it until dropped.
    pub async fn spawn_on((database, url): (TestDatabase, String), configure: impl FnOnce(&mut Settings)) -> TestApp {
        init_test_logging();
        let backend = database.backend();
        let mut settings = test_settings(&url);
        configure(&mut settings);
        let app = Application::build(settings.clone()).await.expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let jobs = app.jobs().clone();
        tokio::spawn(app.run_until_stopped());
        let db = Database::connect(settings.database_url.as_str(), 4).await.expect("a test connection");
        TestApp {
            address,
            client: Client::new(),
            db,
            backend,
            database_url: settings.database_url.as_str().to_owned(),
            handle,
            jobs,
            _database: database,
        }
    }

    /// Runs every job that is due now, in this task, with the app's real handlers, until none
    /// is left; how many ran. A job that fails is not due again for a second (see
    /// `jobs::drain`). Spawn with [`no_workers`] so the background workers do not race it.
    pub async fn run_due_jobs(&self) -> usize {
        jobs::drain::run_due_jobs(&self.jobs).await.expect("the queue can be worked")
    }

    /// The app's job handlers (its store, suppliers, mappings and fan-out peers).
    pub fn jobs(&self) -> &SupplierJobs {
        &self.jobs
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new agency and its API key.
    pub async fn agency(&self, name: &str) -> (AgencyId, String) {
        let agency =
            adapters::store::agencies::create(&self.db, name, Some("ops@agency.example")).await.expect("agency");
        let key = api::auth::issue_key(&self.db, Role::Agency, Some(&agency.id)).await.expect("key");
        (agency.id, key)
    }

    pub async fn key(&self, role: Role) -> String {
        api::auth::issue_key(&self.db, role, None).await.expect("key")
    }

    pub fn get(&self, key: &str, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(key)
    }

    /// `GET path` as `key`, answered 200 with JSON.
    pub async fn get_json(&self, key: &str, path: &str) -> Value {
        let response = self.get(key, path).send().await.expect("the request is answered");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    pub fn post(&self, key: &str, path: &str) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(key)
    }

    /// `PUT /v1/mappings/{supplier}/{kind}/{code}` to `bookhub_code` with a staff `key`; the answer.
    pub async fn put_mapping(&self, key: &str, mapping: &str, bookhub_code: &str) -> Value {
        let answer = self
            .client
            .put(self.url(&format!("/v1/mappings/{mapping}")))
            .bearer_auth(key)
            .json(&json!({"bookhub_code": bookhub_code}))
            .send()
            .await
            .unwrap();
        assert!([200, 201].contains(&answer.status().as_u16()), "PUT /v1/mappings/{mapping}: {}", answer.status());
        answer.json().await.unwrap()
    }

    /// `POST /v1/bookings` with the given idempotency key (none when `None`).
    pub async fn create_booking(&self, key: &str, idempotency_key: Option<&str>, body: &Value) -> Response {
        let mut request = self.post(key, "/v1/bookings").json(body);
        if let Some(k) = idempotency_key {
            request = request.header("Idempotency-Key", k);
        }
        request.send().await.expect("the request is answered")
    }

    /// Creates a booking that must succeed; returns its JSON.
    pub async fn booked(&self, key: &str, body: &Value) -> Value {
        let response = self.create_booking(key, Some(&uuid::Uuid::new_v4().to_string()), body).await;
        assert_eq!(response.status(), 202, "booking should be accepted");
        response.json().await.expect("a booking")
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The sandbox's webhook secret in tests: one for every process on a test database.
pub const SANDBOX_SECRET: &str = "whsec_dGVzdC1zYW5kYm94LXNlY3JldC0zMi1ieXRlcw==";

/// Settings for a bookhub on the test database `url`: a free port, two HTTP workers, no
/// scheduled reconciliation, and the sandbox on (with a shared secret) whatever the backend, as
/// most tests book with it.
pub fn test_settings(url: &str) -> Settings {
    let mut settings = Settings {
        database_url: url.parse().expect("a test database URL"),
        listen: ([127, 0, 0, 1], 0).into(),
        http_workers: 2,
        ..Settings::default()
    };
    // Runs start when a test asks; the schedule's own test runs it.
    settings.reconciliation.enabled = false;
    if let Some(api::config::SupplierSettings::Sandbox(sandbox)) =
        settings.suppliers.get_mut(&"sandbox".parse().expect("a valid code"))
    {
        sandbox.enabled = Some(true);
        sandbox.webhook_secrets = vec![SANDBOX_SECRET.into()];
    }
    settings
}

/// No background workers: jobs wait in the queue until [`TestApp::run_due_jobs`] runs them.
pub fn no_workers(settings: &mut Settings) {
    settings.jobs.enabled = false;
}

/// A valid booking request, as the README shows it.
pub fn booking_body() -> Value {
    json!({
        "supplier": "sandbox",
        "hotel_code": "PMI-00042",
        "check_in": "2027-03-15",
        "check_out": "2027-03-18",
        "rooms": [{"room_type": "DBL", "board": "BB", "guests": [
            {"first_name": "Ana", "last_name": "Pérez", "email": "ana@example.com"},
            {"first_name": "Luis", "last_name": "Gómez"}
        ]}],
        "total": {"amount": "450.00", "currency": "EUR"},
        "client_reference": "AG-123"
    })
}

/// Reads a problem+json answer, checking its media type and status.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(content_type, "application/problem+json", "problem media type");
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().is_some_and(|t| t.starts_with("urn:bookhub:problem:")));
    body
}

/// Jobs picked up within milliseconds and retried quickly, so tests wait on conditions, not
/// on production back-off.
pub fn fast_jobs(settings: &mut Settings) {
    settings.jobs.poll_interval = Duration::from_millis(20);
    settings.jobs.retry_base = Duration::from_millis(50);
    settings.jobs.retry_cap = Duration::from_millis(400);
}

/// Supplier calls that give up quickly: a 1 s timeout, 2 retries from 10 ms, a breaker that
/// opens after 5 failures for 300 ms.
pub fn quick_resilience() -> adapters::suppliers::resilience::ResilienceSettings {
    adapters::suppliers::resilience::ResilienceSettings {
        timeout: Duration::from_secs(1),
        max_retries: 2,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(200),
        breaker_failure_threshold: 5,
        breaker_cooldown: Duration::from_millis(300),
    }
}

/// A `jsonrest` supplier's table on a loopback `base_url` (plain http allowed), with default
/// retries.
pub fn jsonrest_table(
    base_url: &str,
    api_key: &str,
    api_secret: &str,
    webhook_secret: &str,
) -> api::config::JsonrestTable {
    api::config::JsonrestTable {
        protocol: adapters::suppliers::jsonrest::JsonrestSettings {
            base_url: base_url.to_owned(),
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            webhook_secrets: vec![webhook_secret.into()],
            allow_http: true,
        },
        resilience: Default::default(),
        unknown: Default::default(),
    }
}

/// Configures `jsonrest` and `ota` suppliers on the simulator, with its credentials and
/// webhook secrets, and quick retries (10 ms base, 1 s timeout).
pub fn use_simulator(settings: &mut Settings, sim: &sim::SupplierSim) {
    use adapters::suppliers::ota::OtaSettings;
    use api::config::{JsonrestTable, OtaTable, SupplierSettings};
    let partners = sim::SimConfig::default();
    settings.suppliers.insert(
        "jsonrest".parse().unwrap(),
        SupplierSettings::Jsonrest(JsonrestTable {
            resilience: quick_resilience(),
            ..jsonrest_table(
                &sim.jsonrest_url(),
                &partners.jsonrest.api_key,
                &partners.jsonrest.api_secret,
                &partners.jsonrest.webhook_secret,
            )
        }),
    );
    settings.suppliers.insert(
        "ota".parse().unwrap(),
        SupplierSettings::Ota(OtaTable {
            protocol: OtaSettings {
                base_url: sim.ota_url(),
                username: partners.ota.username,
                password: partners.ota.password.into(),
                webhook_secrets: vec![partners.ota.webhook_secret.into()],
                allow_http: true,
            },
            resilience: quick_resilience(),
            unknown: Default::default(),
        }),
    );
    fast_jobs(settings);
}

/// A supplier simulator and a bookhub that books on it and takes its webhooks, on the suite's
/// database; `configure` adjusts bookhub's settings last.
pub async fn with_simulator(configure: impl FnOnce(&mut Settings)) -> (sim::SupplierSim, TestApp) {
    let sim = sim::SupplierSim::start(sim::SimConfig::default()).await.expect("the simulator starts");
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        use_simulator(s, &sim);
        configure(s);
    })
    .await;
    sim.set_hub_webhook_url(sim::Protocol::Jsonrest, &app.url("/v1/webhooks/suppliers/jsonrest"));
    sim.set_hub_webhook_url(sim::Protocol::Ota, &app.url("/v1/webhooks/suppliers/ota"));
    (sim, app)
}

impl TestApp {
    /// Waits until the booking `id` (read with `key`) reaches `status`; its JSON.
    pub async fn wait_for_status(&self, key: &str, id: &str, status: &str, timeout: std::time::Duration) -> Value {
        eventually(timeout, || async {
            let booking = self.get_json(key, &format!("/v1/bookings/{id}")).await;
            if booking["status"] == status {
                Ok(booking)
            } else {
                Err(format!("booking {id} is not {status}: {booking}"))
            }
        })
        .await
    }
}
