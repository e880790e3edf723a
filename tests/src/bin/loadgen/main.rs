//! Load generator: bookhub against the same writes done straight through sqlx, in one run, on
//! one Postgres database; and the whole pipeline, from a supplier's confirmation to the CRM,
//! the agency's endpoint and its email.
//!
//! `cargo run --release -p bookhub-tests --bin loadgen -- bookings --concurrency 32 --duration 20s`
//! `cargo run --release -p bookhub-tests --bin loadgen -- webhooks --concurrency 32 --duration 20s`
//! `cargo run --release -p bookhub-tests --bin loadgen -- pipeline --rates 50,100,150,200 --duration 10s`
//! `cargo run --release -p bookhub-tests --bin loadgen -- reconcile --bookings 5000 --backend sqlite`
//!
//! Needs `BOOKHUB_TEST_POSTGRES_URL` (or `--database-url`): a fresh database is made for the
//! run. Rounds alternate baseline and bookhub; the summary quotes medians over the rounds. The
//! pipeline mode has no baseline: see [`pipeline`]. The reconcile mode runs the `bookhub`
//! binary beside this one, on SQLite without a Postgres server: see [`reconcile`].

mod mappings;
mod pipeline;
mod reconcile;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapters::suppliers::signing::StandardKey;
use anyhow::{Context, bail};
use api::config::SupplierSettings;
use bookhub_tests::{POSTGRES_URL_VAR, TestApp, TestDatabase, booking_body};
use chrono::Utc;
use clap::{Parser, ValueEnum};
use domain::{AgencyId, BookingId, WebhookEventId};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Parser)]
#[command(about = "Drives bookhub and a raw-sqlx baseline on one Postgres database")]
struct Args {
    /// What to load.
    mode: Mode,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long each measured round runs, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Rounds of (baseline, bookhub), or pipeline rounds per rate; medians are taken over them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// bookhub's `intake.writers` (default: as bookhub's own default).
    #[arg(long)]
    writers: Option<usize>,
    /// bookhub's `http_workers` (default 2).
    #[arg(long, default_value_t = 2)]
    http_workers: usize,
    /// Postgres server to make the run's database on (default: $BOOKHUB_TEST_POSTGRES_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// pipeline: the confirmation rates to try, per second, lowest first; each runs for
    /// `--duration`, `--rounds` times.
    #[arg(long, value_delimiter = ',', default_value = "50,100,150,200")]
    rates: Vec<u32>,
    /// pipeline: how long to wait, after the last confirmation is sent, for every fan-out.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    settle: Duration,
    /// bookhub's `jobs.concurrency` (default: as bookhub's own default).
    #[arg(long)]
    job_concurrency: Option<usize>,
    /// bookhub's `database_max_connections` (default: as bookhub's own default).
    #[arg(long)]
    db_connections: Option<u32>,
    /// bookhub's `jobs.poll_interval`, e.g. `50ms` (default: as bookhub's own default).
    #[arg(long, value_parser = parse_duration)]
    poll_interval: Option<Duration>,
    /// reconcile: the bookings bookhub and the supplier both hold.
    #[arg(long, default_value_t = 5000)]
    bookings: usize,
    /// reconcile: the database the run is on.
    #[arg(long, value_enum, default_value_t = BackendArg::Postgres)]
    backend: BackendArg,
    /// reconcile: the `bookhub` binary to run (default: the one beside this loadgen).
    #[arg(long)]
    bookhub: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// `POST /v1/bookings` with a fresh Idempotency-Key each; baseline: the idempotency row and
    /// the booking row inserted in one transaction.
    Bookings,
    /// `POST /v1/webhooks/suppliers/jsonrest`, a signed event with a fresh id each, job workers
    /// off; baseline: the event's log row inserted alone (autocommit).
    Webhooks,
    /// Bookings confirmed by signed sandbox webhooks at steady rates, job workers on, with a
    /// CRM, an agency endpoint and an SMTP server on loopback: the time from the webhook to all
    /// three fan-outs done. No baseline.
    Pipeline,
    /// A cached mapping lookup (floor: a `HashMap`) and a 10,000-row CSV import (floor: pgbench
    /// running the same writes).
    Mappings,
    /// `bookhub reconcile` (the binary, not on a terminal) over `--bookings` bookings both
    /// bookhub and the simulator hold: its wall time and each step's. No baseline.
    Reconcile,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = number.parse().map_err(|_| format!("not a duration: {s}"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit in {s}; use ms, s or m")),
    }
}

/// One side's figures for one round.
#[derive(Debug, Clone)]
struct Run {
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<8} {:>9.0} ops/s  p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} errors)",
            self.throughput(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.95)),
            ms(self.percentile(0.99)),
            self.ops,
            self.errors
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `op` from `concurrency` tasks until `duration` is up; `op` gets a fresh number each call.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    // Every operation gets a key never used before in this run.
                    if op(SEQUENCE.fetch_add(1, Ordering::Relaxed)).await {
                        latencies.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run { ops: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for task in tasks {
        let (latencies, errors) = task.await.expect("a load task");
        run.latencies.extend(latencies);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run.ops = run.latencies.len();
    run.latencies.sort_unstable();
    run
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = args.database_url.clone().or_else(|| std::env::var(POSTGRES_URL_VAR).ok());
    if let (Mode::Reconcile, BackendArg::Sqlite) = (args.mode, args.backend) {
        return reconcile::run(&args, None).await;
    }
    let Some(server) = server else {
        bail!(
            "set {POSTGRES_URL_VAR} (or --database-url) to a Postgres server, e.g. postgres://postgres@127.0.0.1:5432/postgres"
        );
    };
    match args.mode {
        Mode::Bookings => bookings(&args, &server).await,
        Mode::Webhooks => webhooks(&args, &server).await,
        Mode::Pipeline => pipeline::run(&args, &server).await,
        Mode::Mappings => mappings::run(&args, &server).await,
        Mode::Reconcile => reconcile::run(&args, Some(&server)).await,
    }
}

/// bookhub on a fresh database on `server`, as `args` asks, after `configure`.
async fn spawn(args: &Args, server: &str, configure: impl FnOnce(&mut api::Settings)) -> TestApp {
    TestApp::spawn_on(TestDatabase::create_postgres(server).await, |s| {
        s.http_workers = args.http_workers;
        // One key drives the whole load: lift its limit out of the way.
        s.rate_limit.per_minute = 1_000_000_000;
        s.rate_limit.burst = 1_000_000_000;
        if let Some(writers) = args.writers {
            s.intake.writers = writers;
        }
        if let Some(concurrency) = args.job_concurrency {
            s.jobs.concurrency = concurrency;
        }
        if let Some(connections) = args.db_connections {
            s.database_max_connections = connections;
        }
        if let Some(poll_interval) = args.poll_interval {
            s.jobs.poll_interval = poll_interval;
        }
        configure(s);
    })
    .await
}

/// The baseline's own pool (one connection per client) and the run's header line.
async fn baseline_pool(args: &Args, app: &TestApp, header: &str) -> anyhow::Result<sqlx::PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(args.concurrency as u32)
        .connect(&app.database_url)
        .await
        .context("connecting the baseline pool")?;
    println!(
        "{header}: {} clients, {} s per round, {} rounds; postgres {}",
        args.concurrency,
        args.duration.as_secs_f64(),
        args.rounds,
        postgres_settings(&pool).await?
    );
    Ok(pool)
}

/// The Postgres settings that decide what a commit costs, as `name=value` pairs.
async fn postgres_settings(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    let settings: Vec<String> = sqlx::query_scalar("SELECT name || '=' || setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method') ORDER BY name")
        .fetch_all(pool)
        .await?;
    Ok(settings.join(" "))
}

async fn bookings(args: &Args, server: &str) -> anyhow::Result<()> {
    let app = spawn(args, server, |_| {}).await;
    let (agency, key) = app.agency("Load Agency").await;
    let pool = baseline_pool(args, &app, "loadgen bookings").await?;

    let body = Arc::new(booking_body());
    let bookhub_op = {
        let (client, url, key, body) = (app.client.clone(), app.url("/v1/bookings"), key.clone(), body.clone());
        move |n: usize| {
            let request = client
                .post(&url)
                .bearer_auth(&key)
                .header("Idempotency-Key", format!("load-{}-{n}", std::process::id()))
                .json(&*body);
            async move { request.send().await.is_ok_and(|r| r.status() == 202) }
        }
    };
    let raw_op = {
        let (pool, agency) = (pool.clone(), agency.clone());
        move |n: usize| raw_insert(pool.clone(), agency.clone(), n)
    };
    let result = compare(args, raw_op, bookhub_op).await;
    app.stop().await;
    result
}

/// The webhook secret of the measured supplier.
const WEBHOOK_SECRET: &str = "whsec_bG9hZGdlbi13ZWJob29rLXNlY3JldA==";

async fn webhooks(args: &Args, server: &str) -> anyhow::Result<()> {
    let app = spawn(args, server, |s| {
        // Only the intake is measured: nothing processes the queued jobs meanwhile.
        s.jobs.enabled = false;
        s.suppliers.insert(
            "jsonrest".parse().unwrap(),
            // Never called: only its webhooks are used.
            SupplierSettings::Jsonrest(bookhub_tests::jsonrest_table(
                "http://127.0.0.1:9",
                "load",
                "load",
                WEBHOOK_SECRET,
            )),
        );
    })
    .await;
    let pool = baseline_pool(args, &app, "loadgen webhooks").await?;
    println!("job workers off (jobs.enabled = false): only the intake is measured");

    let signing = StandardKey::parse(WEBHOOK_SECRET).expect("a valid secret");
    let bookhub_op = {
        let (client, url, signing) = (app.client.clone(), app.url("/v1/webhooks/suppliers/jsonrest"), signing.clone());
        move |n: usize| {
            let request =
                SignedEvent::new(&signing, format!("evt_load_{}_{n}", std::process::id())).post(&client, &url);
            async move { request.send().await.is_ok_and(|r| r.status() == 200) }
        }
    };
    let raw_op = {
        let (pool, host) = (pool.clone(), app.address.trim_start_matches("http://").to_owned());
        move |n: usize| {
            let event = SignedEvent::new(&signing, format!("evt_raw_{}_{n}", std::process::id()));
            raw_webhook_insert(pool.clone(), event, host.clone())
        }
    };
    let result = compare(args, raw_op, bookhub_op).await;
    app.stop().await;
    result
}

/// Warms both paths, runs the rounds (baseline, then bookhub) and prints each and the medians.
async fn compare<R, RFut, H, HFut>(args: &Args, raw_op: R, bookhub_op: H) -> anyhow::Result<()>
where
    R: Fn(usize) -> RFut + Clone + Send + Sync + 'static,
    RFut: std::future::Future<Output = bool> + Send,
    H: Fn(usize) -> HFut + Clone + Send + Sync + 'static,
    HFut: std::future::Future<Output = bool> + Send,
{
    // Warm both paths (connections, caches) before measuring.
    drive(args.concurrency, Duration::from_secs(2), raw_op.clone()).await;
    drive(args.concurrency, Duration::from_secs(2), bookhub_op.clone()).await;

    let (mut raws, mut hubs) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let raw = drive(args.concurrency, args.duration, raw_op.clone()).await;
        let hub = drive(args.concurrency, args.duration, bookhub_op.clone()).await;
        println!("round {round}: {}", raw.line("raw"));
        println!("round {round}: {}", hub.line("bookhub"));
        println!("round {round}: ratio bookhub/raw = {:.2}", hub.throughput() / raw.throughput());
        raws.push(raw);
        hubs.push(hub);
    }
    let raw_tput = median(raws.iter().map(Run::throughput).collect());
    let hub_tput = median(hubs.iter().map(Run::throughput).collect());
    let p = |runs: &[Run], q: f64| median(runs.iter().map(|r| ms(r.percentile(q))).collect());
    println!(
        "median: raw {raw_tput:.0} ops/s (p50 {:.2} p95 {:.2} p99 {:.2} ms); bookhub {hub_tput:.0} req/s (p50 {:.2} p95 {:.2} p99 {:.2} ms); ratio bookhub/raw = {:.2}",
        p(&raws, 0.5),
        p(&raws, 0.95),
        p(&raws, 0.99),
        p(&hubs, 0.5),
        p(&hubs, 0.95),
        p(&hubs, 0.99),
        hub_tput / raw_tput
    );
    let errors: usize = hubs.iter().chain(&raws).map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} operations failed");
    }
    Ok(())
}

/// A Standard Webhooks event as its supplier signs it.
struct SignedEvent {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

impl SignedEvent {
    /// A jsonrest event about a booking that need not exist.
    fn new(key: &StandardKey, id: String) -> Self {
        let body = json!({
            "id": id,
            "type": "booking.confirmed",
            "occurred_at": Utc::now().to_rfc3339(),
            "data": {"reference": "JR-000123", "client_reference": BookingId::generate(), "status": "CNF",
                     "hotel_code": "PMI-00042", "check_in": "2027-03-15", "check_out": "2027-03-18",
                     "rooms": [{"room_type_code": "DBL.ST", "board_code": "BB"}],
                     "total": {"amount": "450.00", "currency": "EUR"}}
        });
        SignedEvent::sign(key, id, &body)
    }

    /// `body`, whose `id` is `id`, signed now.
    fn sign(key: &StandardKey, id: String, body: &Value) -> Self {
        let body = body.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = key.sign(&id, timestamp, body.as_bytes());
        SignedEvent { id, timestamp, signature, body }
    }

    /// POSTs the event to `url` with its Standard Webhooks headers.
    fn post(self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", self.timestamp.to_string())
            .header("webhook-signature", &self.signature)
            .body(self.body)
    }
}

/// The webhook baseline: the log row bookhub writes for a first delivery (headers as bookhub
/// keeps them, the raw body, `queued`, the dedupe key), one autocommit INSERT, no HTTP, no
/// signature check, no job.
async fn raw_webhook_insert(pool: sqlx::PgPool, event: SignedEvent, host: String) -> bool {
    let headers = json!({
        "host": host,
        "accept": "*/*",
        "content-type": "application/json",
        "content-length": event.body.len().to_string(),
        "webhook-id": event.id,
        "webhook-timestamp": event.timestamp.to_string(),
        "webhook-signature": event.signature,
    });
    sqlx::query(
        "INSERT INTO webhook_events (id, supplier, event_id, dedupe_key, headers, body, verification, status, detail, \
         replays, received_at) VALUES ($1, 'jsonrest', $2, $2, $3, $4, 'verified', 'queued', NULL, 0, $5) \
         ON CONFLICT (supplier, dedupe_key) DO NOTHING",
    )
    .bind(WebhookEventId::generate().as_str())
    .bind(&event.id)
    .bind(sqlx::types::Json(headers))
    .bind(event.body.as_bytes())
    .bind(Utc::now())
    .execute(&pool)
    .await
    .is_ok_and(|done| done.rows_affected() == 1)
}

/// The baseline: what one booking writes, by hand — its idempotency row and its booking row,
/// in one transaction, with no HTTP, no validation and no queue.
async fn raw_insert(pool: sqlx::PgPool, agency: AgencyId, n: usize) -> bool {
    let now = Utc::now();
    let id = BookingId::generate();
    let rooms: Value = booking_body()["rooms"].clone();
    let response = json!({"id": id, "status": "pending", "rooms": rooms}).to_string();
    let result: Result<(), sqlx::Error> = async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            r#"INSERT INTO idempotency_keys (agency_id, "key", request_hash, response_status, response_body, created_at, expires_at)
               VALUES ($1, $2, $3, 202, $4, $5, $6)"#,
        )
        .bind(agency.as_str())
        .bind(format!("raw-{}-{n}", std::process::id()))
        .bind("0".repeat(64))
        .bind(&response)
        .bind(now)
        .bind(now + chrono::Duration::hours(24))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bookings (id, agency_id, supplier, hotel_code, check_in, check_out, status, total_minor, currency, \
             client_reference, rooms, supplier_reference, status_reason, version, created_at, updated_at) \
             VALUES ($1, $2, 'sandbox', 'PMI-00042', $3, $4, 'pending', 45000, 'EUR', 'AG-123', $5, NULL, NULL, 0, $6, $6)",
        )
        .bind(id.as_str())
        .bind(agency.as_str())
        .bind(chrono::NaiveDate::from_ymd_opt(2027, 3, 15))
        .bind(chrono::NaiveDate::from_ymd_opt(2027, 3, 18))
        .bind(sqlx::types::Json(rooms))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    result.is_ok()
}
