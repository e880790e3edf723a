//! The harness for bookhub's end-to-end tests: [`TestApp`] runs the real server on a free port
//! against a fresh database — a SQLite file in a temporary folder, or a new Postgres database
//! when `BOOKHUB_TEST_POSTGRES_URL` is set — and talks to it over HTTP.

pub mod sim;

use std::str::FromStr;
use std::time::Duration;

use adapters::store::Database;
use adapters::store::api_keys::Role;
use api::{Application, Settings};
use domain::AgencyId;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

pub const POSTGRES_URL_VAR: &str = "BOOKHUB_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Postgres when `BOOKHUB_TEST_POSTGRES_URL` is set (unless `BOOKHUB_TEST_BACKEND=sqlite`),
    /// else SQLite.
    pub fn from_env() -> Backend {
        let forced_sqlite = std::env::var("BOOKHUB_TEST_BACKEND").is_ok_and(|b| b == "sqlite");
        if !forced_sqlite && postgres_url().is_some() { Backend::Postgres } else { Backend::Sqlite }
    }
}

fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty())
}

/// For tests that need Postgres whatever the suite's backend: `true` when it is configured.
/// Without it the test is skipped with a printed reason — except in CI, where it fails.
pub fn postgres_available_or_skip(test: &str) -> bool {
    if postgres_url().is_some() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: CI must set {POSTGRES_URL_VAR}");
    eprintln!("skipping {test}: set {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres to run it");
    false
}

/// A database made for one test and removed after it.
#[derive(Debug)]
pub enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin: Box<PgConnectOptions>, name: String },
}

impl TestDatabase {
    /// An empty database (no migrations applied) and its URL; removed when dropped.
    pub async fn create(backend: Backend) -> (TestDatabase, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("bookhub.db").display());
                (TestDatabase::Sqlite { _dir: dir }, url)
            }
            Backend::Postgres => {
                let url = postgres_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
                Self::create_postgres(&url).await
            }
        }
    }

    /// A new, empty database on the Postgres server at `server_url`, and its URL.
    pub async fn create_postgres(server_url: &str) -> (TestDatabase, String) {
        let admin = PgConnectOptions::from_str(server_url).expect("a valid Postgres URL");
        let name = format!("bookhub_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap_or_else(|e| panic!("Postgres at {server_url} is unreachable: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        let db_url = admin.clone().database(&name).to_url_lossy().to_string();
        (TestDatabase::Postgres { admin: Box::new(admin), name }, db_url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin, name } = self {
            let (admin, name) = ((**admin).clone(), name.clone());
            // Drop runs outside async; a small runtime of its own removes the database.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                rt.block_on(async {
                    if let Ok(mut conn) = admin.connect().await {
                        let _ =
                            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running bookhub on a free port with its own database.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub db: Database,
    pub backend: Backend,
    /// The test database's URL, for a second server or a raw connection.
    pub database_url: String,
    handle: api::app::ServerHandle,
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
        let backend = if matches!(database, TestDatabase::Sqlite { .. }) { Backend::Sqlite } else { Backend::Postgres };
        let mut settings = Settings {
            database_url: url.parse().expect("a test database URL"),
            listen: ([127, 0, 0, 1], 0).into(),
            http_workers: 2,
            ..Settings::default()
        };
        configure(&mut settings);
        let app = Application::build(settings.clone()).await.expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let db = Database::connect(settings.database_url.as_str(), 4).await.expect("a test connection");
        TestApp {
            address,
            client: Client::new(),
            db,
            backend,
            database_url: settings.database_url.as_str().to_owned(),
            handle,
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new agency and its API key.
    pub async fn agency(&self, name: &str) -> (AgencyId, String) {
        let agency =
            adapters::store::agencies::create(&self.db, name, Some("ops@agency.example"), None).await.expect("agency");
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

/// Configures `jsonrest` and `ota` suppliers on the simulator, with its credentials and
/// webhook secrets, and quick retries (10 ms base, 1 s timeout).
pub fn use_simulator(settings: &mut Settings, sim: &sim::SupplierSim) {
    use adapters::suppliers::jsonrest::JsonrestSettings;
    use adapters::suppliers::ota::OtaSettings;
    use api::config::{JsonrestTable, OtaTable, SupplierSettings};
    let partners = sim::SimConfig::default();
    settings.suppliers.insert(
        "jsonrest".parse().unwrap(),
        SupplierSettings::Jsonrest(JsonrestTable {
            protocol: JsonrestSettings {
                base_url: sim.jsonrest_url(),
                api_key: partners.jsonrest.api_key.into(),
                api_secret: partners.jsonrest.api_secret.into(),
                webhook_secrets: vec![partners.jsonrest.webhook_secret.into()],
                allow_http: true,
            },
            resilience: quick_resilience(),
            unknown: Default::default(),
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

/// Checks every 20 ms until `check` answers `Ok`; panics after `timeout` with what the last
/// `Err` said (the state it was waiting to change).
pub async fn eventually<T, Fut>(timeout: std::time::Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(state) => assert!(tokio::time::Instant::now() < deadline, "gave up after {timeout:?}: {state}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
