//! Crash test on Postgres: supplier webhooks are applied exactly once, and no job is lost, when
//! the worker process is killed with SIGKILL again and again while it works through 1,000
//! events.
//!
//! It runs the real `bookhub` binary. An API-only process (`jobs.enabled = false`) takes 1,000
//! bookings on `jsonrest` (whose base URL is a closed port, so their submit jobs only ever fail
//! transiently) and then one signed `booking.confirmed` webhook per booking. A worker process
//! is started, SIGKILLed each time another [`KILL_EVERY`] webhooks have been applied, and
//! restarted, until the last one has processed everything. Then the database must show every
//! event applied once, every booking confirmed once (its version moved exactly once), exactly
//! one CRM, agency and voucher job per booking, and every processing job done.
//!
//! Needs `BOOKHUB_TEST_POSTGRES_URL` (a server on which it may create databases); without it
//! the test is skipped with a note, except in CI, where it fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapters::suppliers::signing::StandardKey;
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};
use test_support::{TestDatabase, free_port};

/// Bookings, and as many webhooks (one per booking).
const EVENTS: i64 = 1_000;
/// Requests in flight at once while bookings and webhooks are sent.
const CLIENT_CONCURRENCY: usize = 16;
/// The worker is killed each time this many more webhooks have been applied ...
const KILL_EVERY: i64 = 150;
/// ... at least this many times, and at most this many.
const MIN_KILLS: usize = 3;
const MAX_KILLS: usize = 5;
/// How often the database is polled while waiting on a condition.
const POLL: Duration = Duration::from_millis(50);
/// How long a process may take to answer `/healthz`, and the workers to finish everything.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

const PROCESS_QUEUE: &str = "bookhub.process_webhook";
const FANOUT_QUEUES: [&str; 3] = ["bookhub.update_crm", "bookhub.notify_agency", "bookhub.issue_voucher"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_applied_exactly_once_while_workers_are_killed() {
    if !test_support::postgres_available_or_skip("webhooks_are_applied_exactly_once_while_workers_are_killed") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let mut phase = Phase::start();

    // Declared first, so dropped last: the processes below are killed before it is removed.
    let (_database, database_url) = TestDatabase::create(test_support::Backend::Postgres).await;
    let hub = Hub::new(database_url.clone());
    let client = reqwest::Client::new();

    // Arrange: an API-only process, an agency, 1,000 bookings, 1,000 queued webhooks.
    let mut api = hub.spawn("api", &[("BOOKHUB_JOBS__ENABLED", "false")]);
    api.wait_ready(&client).await;
    let db = PgPoolOptions::new().max_connections(4).connect(&database_url).await.expect("a test connection");
    let api_key = hub.create_agency();
    phase.done("database, API process and agency");

    let bookings = create_bookings(&client, &api, &api_key).await;
    let versions_before = version_range(&db).await;
    phase.done(&format!("{EVENTS} bookings"));

    post_webhooks(&client, &api, &hub.webhook_secret, &bookings).await;
    assert_eq!(count(&db, "SELECT count(*) FROM webhook_events WHERE status = 'queued'").await, EVENTS);
    assert_eq!(jobs(&db, PROCESS_QUEUE, "status = 'Pending'").await, EVENTS, "one pending processing job per webhook");
    phase.done(&format!("{EVENTS} webhooks taken by the API-only process"));

    // Act: a worker, killed with SIGKILL every KILL_EVERY applied events and restarted.
    let mut generation = 1;
    let mut worker = hub.spawn_worker(generation);
    let mut kills: Vec<(i64, i64)> = Vec::new();
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        let applied = applied(&db).await;
        let unfinished = jobs(&db, PROCESS_QUEUE, "status <> 'Done'").await;
        if applied == EVENTS && unfinished == 0 {
            break;
        }
        if kills.len() < MAX_KILLS && applied >= KILL_EVERY * (kills.len() as i64 + 1) {
            // Killed only while it holds processing jobs, so that the kill lands mid-job.
            let in_flight = jobs(&db, PROCESS_QUEUE, &worker.holds_jobs()).await;
            if in_flight > 0 {
                worker.kill();
                kills.push((applied, in_flight));
                generation += 1;
                worker = hub.spawn_worker(generation);
            }
        }
        worker.assert_running();
        if Instant::now() > deadline {
            panic!(
                "not done after {PROCESS_TIMEOUT:?}: {applied} of {EVENTS} webhooks applied, {unfinished} processing \
                 jobs not done, after {} kills\n{}",
                kills.len(),
                queue_report(&db).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let worker_phase = phase.done(&format!("worker phase with {} SIGKILLs", kills.len()));
    for (n, (applied, in_flight)) in kills.iter().enumerate() {
        println!("  kill {}: at {applied} applied, holding {in_flight} processing jobs", n + 1);
    }
    worker.kill();
    api.kill();

    // Assert: each event applied once, each booking confirmed once, each fan-out job queued once.
    assert!(kills.len() >= MIN_KILLS, "only {} kills landed; the worker was too fast to catch", kills.len());
    assert_eq!(count(&db, "SELECT count(*) FROM webhook_events").await, EVENTS, "one log row per webhook");
    assert_eq!(applied(&db).await, EVENTS, "every webhook applied");
    let linked = count(
        &db,
        "SELECT count(DISTINCT w.booking_id) FROM webhook_events w JOIN bookings b ON b.id = w.booking_id \
         WHERE b.supplier_reference = 'JR-' || substr(w.event_id, 5)",
    )
    .await;
    assert_eq!(linked, EVENTS, "every webhook applied to its own booking, with its reference");
    assert_eq!(count(&db, "SELECT count(*) FROM bookings WHERE status = 'confirmed'").await, EVENTS);
    let (low, high) = versions_before;
    assert_eq!(low, high, "the bookings start at one version");
    let once = count(&db, &format!("SELECT count(*) FROM bookings WHERE version = {}", low + 1)).await;
    assert_eq!(once, EVENTS, "every booking changed exactly once (version {low} → {})", low + 1);
    // One agency event per change, and each fan-out job once per change (the agency's names its
    // event, the others their booking).
    assert_eq!(count(&db, "SELECT count(*) FROM agency_events").await, EVENTS, "one agency event per change");
    assert_eq!(count(&db, "SELECT count(DISTINCT booking_id) FROM agency_events").await, EVENTS);
    for queue in FANOUT_QUEUES {
        assert_eq!(jobs(&db, queue, "true").await, EVENTS, "{queue}: one job per booking");
        let key = if queue == "bookhub.notify_agency" { "event" } else { "booking_id" };
        let covered = count(
            &db,
            &format!(
                "SELECT count(DISTINCT convert_from(job, 'UTF8')::jsonb ->> '{key}') FROM apalis.jobs \
                 WHERE job_type = '{queue}'"
            ),
        )
        .await;
        assert_eq!(covered, EVENTS, "{queue}: every booking, none twice");
    }
    assert_eq!(jobs(&db, PROCESS_QUEUE, "true").await, EVENTS, "one processing job per webhook");
    assert_eq!(jobs(&db, PROCESS_QUEUE, "status = 'Done'").await, EVENTS, "{}", queue_report(&db).await);

    let reruns = jobs(&db, PROCESS_QUEUE, "attempts > 1").await;
    let rerun_after_apply = count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE status = 'applied' AND detail = 'booking stays confirmed'",
    )
    .await;
    assert!(reruns > 0, "no processing job was interrupted by a kill: the test proved nothing");
    phase.done("assertions");
    println!(
        "crash test: {EVENTS} webhooks applied exactly once across {} SIGKILLs; {reruns} processing jobs ran more \
         than once (attempts > 1), {rerun_after_apply} of them re-ran after their change had committed; worker phase \
         {:.1} s, total {:.1} s",
        kills.len(),
        worker_phase.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", queue_report(&db).await);
    db.close().await;
}

/// Creates the bookings through the API; their ids, in order.
async fn create_bookings(client: &reqwest::Client, api: &Bookhub, api_key: &str) -> Vec<String> {
    futures::stream::iter(0..EVENTS)
        .map(|i| async move {
            let body = json!({
                "supplier": "jsonrest",
                "hotel_code": "PMI-00042",
                "check_in": "2027-03-15",
                "check_out": "2027-03-18",
                "rooms": [{"room_type": "DBL", "board": "BB", "guests": [
                    {"first_name": "Ana", "last_name": "Pérez", "email": "ana@example.com"},
                    {"first_name": "Luis", "last_name": "Gómez"}
                ]}],
                "total": {"amount": "450.00", "currency": "EUR"},
                "client_reference": format!("CRASH-{i:04}")
            });
            let response = client
                .post(api.url("/v1/bookings"))
                .bearer_auth(api_key)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("booking {i}: {e}"))?;
            let status = response.status();
            let answer: Value = response.json().await.map_err(|e| format!("booking {i}: {e}"))?;
            match answer["id"].as_str() {
                Some(id) if status == 202 => Ok(id.to_owned()),
                _ => Err(format!("booking {i}: {status} {answer}")),
            }
        })
        .buffered(CLIENT_CONCURRENCY)
        .try_collect()
        .await
        .unwrap_or_else(|e: String| panic!("{e}"))
}

/// Posts one signed `booking.confirmed` webhook per booking; each must be answered 200.
async fn post_webhooks(client: &reqwest::Client, api: &Bookhub, secret: &str, bookings: &[String]) {
    let key = StandardKey::parse(secret).expect("a valid whsec_ secret");
    let url = api.url("/v1/webhooks/suppliers/jsonrest");
    let failures: Vec<String> = futures::stream::iter(bookings.iter().enumerate())
        .map(|(i, booking_id)| {
            let (key, url) = (&key, &url);
            async move {
                let id = format!("evt_{i:06}");
                let body = json!({"id": id, "type": "booking.confirmed", "occurred_at": "2027-01-10T12:00:00Z",
                    "data": {"reference": format!("JR-{i:06}"), "client_reference": booking_id, "status": "CNF"}})
                .to_string();
                let timestamp = chrono::Utc::now().timestamp();
                let signature = key.sign(&id, timestamp, body.as_bytes());
                let sent = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => None,
                    Ok(response) => {
                        Some(format!("{id}: {} {}", response.status(), response.text().await.unwrap_or_default()))
                    }
                    Err(e) => Some(format!("{id}: {e}")),
                }
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .filter_map(std::future::ready)
        .collect()
        .await;
    assert!(failures.is_empty(), "{} webhooks not answered 200, e.g. {:?}", failures.len(), &failures[..1]);
}

async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn applied(db: &PgPool) -> i64 {
    count(db, "SELECT count(*) FROM webhook_events WHERE status = 'applied'").await
}

/// Jobs of `queue` matching `condition`.
async fn jobs(db: &PgPool, queue: &str, condition: &str) -> i64 {
    count(db, &format!("SELECT count(*) FROM apalis.jobs WHERE job_type = '{queue}' AND ({condition})")).await
}

async fn version_range(db: &PgPool) -> (i32, i32) {
    sqlx::query_as::<_, (i32, i32)>("SELECT min(version), max(version) FROM bookings")
        .fetch_one(db)
        .await
        .expect("booking versions")
}

/// The queue by job type, status and attempts, and the webhook log by status.
async fn queue_report(db: &PgPool) -> String {
    let rows = sqlx::query_as::<_, (String, String, i32, i64)>(
        "SELECT job_type, status, attempts, count(*) FROM apalis.jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default();
    let mut report = String::from("apalis.jobs (type, status, attempts: count):");
    for (job_type, status, attempts, n) in rows {
        report.push_str(&format!("\n  {job_type:<24} {status:<8} {attempts:>3}: {n}"));
    }
    let events =
        sqlx::query_as::<_, (String, i64)>("SELECT status, count(*) FROM webhook_events GROUP BY 1 ORDER BY 1")
            .fetch_all(db)
            .await
            .unwrap_or_default();
    report.push_str(&format!("\nwebhook_events by status: {events:?}"));
    report
}

/// Prints how long each phase took.
struct Phase(Instant);

impl Phase {
    fn start() -> Self {
        Phase(Instant::now())
    }

    fn done(&mut self, what: &str) -> Duration {
        let took = self.0.elapsed();
        println!("crash test: {what}: {:.2} s", took.as_secs_f64());
        self.0 = Instant::now();
        took
    }
}

/// What every `bookhub` process of the test shares: the database, a `jsonrest` supplier on a
/// closed port, its webhook secret, and a folder for the processes' logs.
struct Hub {
    database_url: String,
    supplier_url: String,
    webhook_secret: String,
    dir: tempfile::TempDir,
}

impl Hub {
    fn new(database_url: String) -> Hub {
        let secret = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        Hub {
            database_url,
            // Nothing listens there: every submit job fails transiently (connection refused) and
            // backs off, so only the webhooks confirm bookings.
            supplier_url: format!("http://127.0.0.1:{}", free_port()),
            webhook_secret: format!("whsec_{secret}"),
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    /// `bookhub` with only this test's settings: no config file, no inherited `BOOKHUB_*`.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bookhub"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .env("BOOKHUB_DATABASE_URL", &self.database_url)
            .env("BOOKHUB_LOG", "warn,apalis_postgres=info")
            .env("BOOKHUB_SUPPLIERS__JSONREST__BASE_URL", &self.supplier_url)
            .env("BOOKHUB_SUPPLIERS__JSONREST__ALLOW_HTTP", "true")
            .env("BOOKHUB_SUPPLIERS__JSONREST__API_KEY", "crash-test-key")
            .env("BOOKHUB_SUPPLIERS__JSONREST__API_SECRET", "crash-test-secret")
            .env("BOOKHUB_SUPPLIERS__JSONREST__WEBHOOK_SECRETS", format!("[\"{}\"]", self.webhook_secret))
            .env("BOOKHUB_SUPPLIERS__JSONREST__MAX_RETRIES", "0")
            .env("BOOKHUB_SUPPLIERS__JSONREST__TIMEOUT", "1s")
            .env("BOOKHUB_RATE_LIMIT__PER_MINUTE", "1000000")
            .env("BOOKHUB_RATE_LIMIT__BURST", "100000")
            .env("BOOKHUB_HTTP_WORKERS", "2");
        command
    }

    /// Starts `bookhub serve` on a free port with `env` on top of the shared settings.
    fn spawn(&self, name: &str, env: &[(&str, &str)]) -> Bookhub {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let file = File::create(&log).expect("a log file");
        let mut command = self.command();
        command
            .arg("serve")
            .env("BOOKHUB_LISTEN", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file"))
            .stderr(file);
        let child = command.spawn().expect("bookhub starts");
        Bookhub { name: name.to_owned(), child, log, base_url: format!("http://127.0.0.1:{port}") }
    }

    /// A process that runs the job workers, with fast polling and a dead worker's jobs taken
    /// back after 2 s.
    fn spawn_worker(&self, generation: usize) -> Bookhub {
        self.spawn(
            &format!("worker-{generation}"),
            &[
                ("BOOKHUB_JOBS__ENABLED", "true"),
                ("BOOKHUB_JOBS__CONCURRENCY", "8"),
                ("BOOKHUB_JOBS__HEARTBEAT", "1s"),
                ("BOOKHUB_JOBS__MISSED_HEARTBEATS", "2"),
                ("BOOKHUB_JOBS__POLL_INTERVAL", "20ms"),
                ("BOOKHUB_JOBS__RETRY_BASE", "100ms"),
                ("BOOKHUB_JOBS__RETRY_CAP", "2s"),
            ],
        )
    }

    /// `bookhub agency create`; the new agency's API key.
    fn create_agency(&self) -> String {
        let out =
            self.command().args(["agency", "create", "--name", "Crash Test Travel"]).output().expect("bookhub runs");
        assert!(out.status.success(), "agency create: {}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).expect("agency create prints JSON");
        created["api_key"].as_str().expect("an api_key").to_owned()
    }
}

/// A running `bookhub serve`; killed (SIGKILL) when dropped, so a failing test leaves nothing
/// running. Its log is printed when it is dropped during a panic.
struct Bookhub {
    name: String,
    child: Child,
    log: PathBuf,
    base_url: String,
}

impl Bookhub {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Waits until it answers `/healthz` (it has migrated and bound its port).
    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if client.get(self.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            self.assert_running();
            assert!(Instant::now() < deadline, "{} did not answer /healthz within {START_TIMEOUT:?}", self.name);
            tokio::time::sleep(POLL).await;
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited on its own ({status}):\n{}", self.name, tail(&self.log, 40));
        }
    }

    /// The SQL condition on `apalis.jobs` for the jobs its workers hold (fetched or running).
    /// Worker names are `<queue>-<pid>-<ulid>` (jobs/src/workers.rs).
    fn holds_jobs(&self) -> String {
        format!("status IN ('Queued', 'Running') AND lock_by LIKE '%-{}-%'", self.child.id())
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bookhub {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- last lines of {} ({}):\n{}", self.name, self.log.display(), tail(&self.log, 30));
        }
    }
}

/// The last `lines` lines of a process's log, without the submit jobs' retries (they fail by
/// design here, against the closed port).
fn tail(path: &Path, lines: usize) -> String {
    test_support::tail(path, lines, &["queue=\"bookhub.submit_booking\""])
}
