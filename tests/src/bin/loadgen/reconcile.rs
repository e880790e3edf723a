//! `loadgen reconcile`: the `bookhub reconcile` binary, not on a terminal, over `--bookings`
//! bookings that bookhub's database and the simulator's jsonrest both hold.
//!
//! Each round, on a fresh database (SQLite or Postgres, `--backend`) and a fresh simulator in
//! this process: the database is migrated and given jsonrest's code mappings, then seeded
//! directly — rows inserted 500 at a time, and the simulator's [`SupplierSim::seed`] — with
//! bookings made now. Every hundredth one the supplier bills 1.00 more (`amount_differs`), and
//! every hundredth, fifty on, the supplier confirmed while bookhub still holds it `pending` (to
//! heal: applied through the state machine, its fan-out jobs queued); the rest agree. Then the
//! binary reconciles the window around them: its wall time here (process start to exit:
//! connecting, the migration check and building the suppliers included) and the time of each
//! step as its lines say. The counts are checked against what was seeded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use adapters::store::{Database, Pool};
use anyhow::{Context, bail, ensure};
use bookhub_tests::sim::{Money, Protocol, SimConfig, SimSeed, SimStatus, SupplierSim};
use bookhub_tests::{Backend, TestDatabase, test_settings, use_simulator};
use chrono::{NaiveDate, Utc};
use domain::{AgencyId, BookingId};
use regex::Regex;
use rust_decimal::Decimal;
use sqlx::QueryBuilder;
use sqlx::types::Json;

use crate::{Args, median};

/// The steps `bookhub reconcile` prints a line for, in order.
const STEPS: [&str; 5] = ["started", "fetched", "compared", "healed", "recorded"];
/// One in this many bookings differs in amount, and one in this many is to heal.
const EVERY: usize = 100;
/// Rows per insert: 16 binds each, within SQLite's 32,766.
const CHUNK: usize = 500;

/// One round's figures, in seconds.
struct Timing {
    wall: f64,
    /// The run as the binary timed it, from just before it started to its summary.
    run: f64,
    /// Per step of [`STEPS`].
    steps: Vec<f64>,
}

/// The rounds on the Postgres `server`, or on SQLite without one; each round and the medians.
pub async fn run(args: &Args, server: Option<&str>) -> anyhow::Result<()> {
    let bookhub = bookhub_binary(args)?;
    let backend = if server.is_some() { "postgres" } else { "sqlite" };
    println!(
        "loadgen reconcile: {} bookings ({} amounts differ, {} to heal), {} rounds, {backend}, {}",
        args.bookings,
        args.bookings.div_ceil(EVERY),
        args.bookings.saturating_sub(EVERY / 2).div_ceil(EVERY),
        args.rounds,
        bookhub.display()
    );
    let mut timings = Vec::new();
    for round in 1..=args.rounds {
        let timing = round_on(args, server, &bookhub).await.with_context(|| format!("round {round}"))?;
        let steps: Vec<String> =
            STEPS.iter().zip(&timing.steps).map(|(step, secs)| format!("{step} {secs:.2}")).collect();
        println!("round {round}: wall {:.2} s, run {:.2} s ({} s)", timing.wall, timing.run, steps.join(", "));
        timings.push(timing);
    }
    let steps: Vec<String> = STEPS
        .iter()
        .enumerate()
        .map(|(i, step)| format!("{step} {:.2}", median(timings.iter().map(|t| t.steps[i]).collect())))
        .collect();
    println!(
        "median: wall {:.2} s, run {:.2} s ({} s)",
        median(timings.iter().map(|t| t.wall).collect()),
        median(timings.iter().map(|t| t.run).collect()),
        steps.join(", ")
    );
    Ok(())
}

/// `--bookhub`, or the `bookhub` binary beside this one.
fn bookhub_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let path = match &args.bookhub {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("bookhub"),
    };
    ensure!(
        path.is_file(),
        "no bookhub binary at {}: build it (cargo build --release -p bookhub-api -p bookhub-tests --bins) or pass --bookhub",
        path.display()
    );
    Ok(path)
}

/// One round on a fresh database and simulator.
async fn round_on(args: &Args, server: Option<&str>, bookhub: &Path) -> anyhow::Result<Timing> {
    let (_database, url) = match server {
        Some(server) => TestDatabase::create_postgres(server).await,
        None => TestDatabase::create(Backend::Sqlite).await,
    };
    let sim = SupplierSim::start(SimConfig::default()).await.context("starting the simulator")?;
    let from = Utc::now() - chrono::Duration::hours(1);
    let seeding = Instant::now();
    seed(&url, &sim, args.bookings).await.context("seeding")?;
    println!("  seeded {} bookings in {:.2} s", args.bookings, seeding.elapsed().as_secs_f64());
    let to = Utc::now() + chrono::Duration::minutes(1);
    let timing = reconcile(bookhub, &url, &sim, from, to, args.bookings).await;
    sim.stop().await;
    timing
}

/// Migrates the database at `url`, gives it jsonrest's code mappings, and seeds `n` bookings
/// into it and into the simulator.
async fn seed(url: &str, sim: &SupplierSim, n: usize) -> anyhow::Result<()> {
    let db = Database::connect(url, 4).await?;
    db.migrate().await?;
    let mut settings = test_settings(url);
    use_simulator(&mut settings, sim);
    api::app::seed_code_mappings(&settings, &db).await?;
    let agency = adapters::store::agencies::create(&db, "Load Agency", None).await?;
    let ids: Vec<BookingId> = (0..n).map(|_| BookingId::generate()).collect();
    let seeds = ids.iter().enumerate().map(|(i, id)| sim_booking(i, id));
    let references = sim.seed(Protocol::Jsonrest, seeds);
    let rows: Vec<Row> =
        ids.into_iter().zip(references).enumerate().map(|(i, (id, reference))| row(i, id, reference)).collect();
    for chunk in rows.chunks(CHUNK) {
        insert(&db, &agency.id, chunk).await?;
    }
    db.close().await;
    Ok(())
}

/// Whether the `i`th booking is one bookhub still holds `pending`.
fn to_heal(i: usize) -> bool {
    i % EVERY == EVERY / 2
}

/// The `i`th booking as the supplier holds it.
fn sim_booking(i: usize, id: &BookingId) -> SimSeed {
    let amount = if i.is_multiple_of(EVERY) { Decimal::new(45100, 2) } else { Decimal::new(45000, 2) };
    SimSeed {
        client_reference: id.to_string(),
        hotel_code: "PMI-00042".into(),
        check_in: stay().0,
        check_out: stay().1,
        room_type: "DBL.ST".into(),
        board: "BB".into(),
        total: Money { amount, currency: "EUR".into() },
        status: SimStatus::Confirmed,
    }
}

/// What differs between the seeded rows of bookhub's `bookings`.
struct Row {
    id: BookingId,
    client_reference: String,
    /// `None` for one still `pending`.
    supplier_reference: Option<String>,
}

/// The `i`th booking as bookhub holds it: confirmed with the supplier's `reference`, or
/// `pending` without one when it is to heal.
fn row(i: usize, id: BookingId, reference: String) -> Row {
    Row { id, client_reference: format!("LOAD-{i}"), supplier_reference: (!to_heal(i)).then_some(reference) }
}

/// Inserts `rows` of `agency` in one statement: one room (DBL, BB), 450.00 EUR, changed now.
async fn insert(db: &Database, agency: &AgencyId, rows: &[Row]) -> anyhow::Result<()> {
    let rooms = serde_json::json!([{"room_type": "DBL", "board": "BB",
        "guests": [{"first_name": "Ana", "last_name": "Pérez"}]}]);
    let now = adapters::store::now();
    let (check_in, check_out) = stay();
    // The same text for either pool; sqlx's builder writes each backend's placeholders.
    macro_rules! insert_into {
        ($pool:expr) => {{
            let mut sql = QueryBuilder::new(
                "INSERT INTO bookings (id, agency_id, supplier, hotel_code, check_in, check_out, status, total_minor, \
                 currency, client_reference, rooms, supplier_reference, status_reason, version, created_at, updated_at) ",
            );
            sql.push_values(rows, |mut b, row| {
                let status = if row.supplier_reference.is_some() { "confirmed" } else { "pending" };
                b.push_bind(row.id.to_string())
                    .push_bind(agency.to_string())
                    .push_bind("jsonrest")
                    .push_bind("PMI-00042")
                    .push_bind(check_in)
                    .push_bind(check_out)
                    .push_bind(status)
                    .push_bind(45000_i64)
                    .push_bind("EUR")
                    .push_bind(row.client_reference.clone())
                    .push_bind(Json(rooms.clone()))
                    .push_bind(row.supplier_reference.clone())
                    .push_bind(None::<String>)
                    .push_bind(1_i32)
                    .push_bind(now)
                    .push_bind(now);
            });
            sql.build().execute($pool).await?;
        }};
    }
    match db.pool() {
        Pool::Postgres(pool) => insert_into!(pool),
        Pool::Sqlite(pool) => insert_into!(pool),
    }
    Ok(())
}

fn stay() -> (NaiveDate, NaiveDate) {
    (NaiveDate::from_ymd_opt(2027, 3, 15).expect("a date"), NaiveDate::from_ymd_opt(2027, 3, 18).expect("a date"))
}

/// Runs `bookhub reconcile` on jsonrest over `[from, to]`; its timing, once its counts are
/// checked against the `n` seeded bookings.
async fn reconcile(
    bookhub: &Path,
    url: &str,
    sim: &SupplierSim,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
    n: usize,
) -> anyhow::Result<Timing> {
    let partner = SimConfig::default().jsonrest;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let out = tokio::process::Command::new(bookhub)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .env("BOOKHUB_DATABASE_URL", url)
        .env("BOOKHUB_LOG", "warn")
        .env("BOOKHUB_SUPPLIERS__JSONREST__BASE_URL", sim.jsonrest_url())
        .env("BOOKHUB_SUPPLIERS__JSONREST__ALLOW_HTTP", "true")
        .env("BOOKHUB_SUPPLIERS__JSONREST__API_KEY", &partner.api_key)
        .env("BOOKHUB_SUPPLIERS__JSONREST__API_SECRET", &partner.api_secret)
        .env("BOOKHUB_SUPPLIERS__JSONREST__WEBHOOK_SECRETS", format!("[\"{}\"]", partner.webhook_secret))
        .args(["reconcile", "--supplier", "jsonrest", "--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running bookhub reconcile")?;
    let wall = started.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("bookhub reconcile exited {}:\n{stderr}", out.status);
    }
    let differ = n.div_ceil(EVERY);
    let healed = n.saturating_sub(EVERY / 2).div_ceil(EVERY);
    for (reason, count) in [("amount_differs", differ), ("healed", healed)].into_iter().filter(|(_, n)| *n > 0) {
        let line = format!("{reason} {count}");
        ensure!(
            stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line),
            "expected {line}:\n{stdout}"
        );
    }
    Ok(Timing { wall: wall.as_secs_f64(), run: run_seconds(&stdout)?, steps: step_seconds(&stderr)? })
}

/// The seconds each of [`STEPS`] took, from their lines (`fetched … in 1.23 s …`).
fn step_seconds(stderr: &str) -> anyhow::Result<Vec<f64>> {
    let line = Regex::new(r"^(\w+) .* in (\d+\.\d+) s").expect("a valid pattern");
    let found: Vec<(String, f64)> = stderr
        .lines()
        .filter_map(|l| line.captures(l))
        .filter(|c| STEPS.contains(&&c[1]))
        .map(|c| (c[1].to_owned(), c[2].parse().unwrap_or_default()))
        .collect();
    let names: Vec<&str> = found.iter().map(|(step, _)| step.as_str()).collect();
    ensure!(names == STEPS, "one line per step expected, got {names:?}:\n{stderr}");
    Ok(found.into_iter().map(|(_, secs)| secs).collect())
}

/// The run's own time, from the summary's first line (`run rcn_… of jsonrest: done in 2.10 s`).
fn run_seconds(stdout: &str) -> anyhow::Result<f64> {
    let first = Regex::new(r"^run \S+ of \S+: done in (\d+\.\d+) s$").expect("a valid pattern");
    let seconds = stdout.lines().next().and_then(|l| first.captures(l)).map(|c| c[1].parse::<f64>());
    seconds.context(format!("no summary line in:\n{stdout}"))?.context("seconds")
}
