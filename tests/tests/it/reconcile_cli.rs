//! `bookhub reconcile`, the real binary, against the suite's database and the simulator's
//! jsonrest: one booking that agrees, one whose amount the supplier changed, one it confirmed
//! without a webhook. Not on a terminal, it prints one line per step and a summary of the
//! counts; the run is recorded as a run the API started would be. A supplier it cannot reach
//! fails the run, recorded, and exits non-zero with why; a bad window is refused up front.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use adapters::store::reconciliation::{self, RunStatus};
use bookhub_tests::sim::{Confirmation, Money, Protocol, SimConfig, SimEdit, SimStatus};
use bookhub_tests::{TestApp, free_port, no_workers, with_simulator};
use chrono::{DateTime, SubsecRound, Utc};
use domain::{ReconciliationRunId, SupplierCode};
use regex::Regex;

use crate::reconciliation::{book, status};

/// `bookhub reconcile --supplier jsonrest --from … --to …` on the app's database, with only
/// this test's settings (jsonrest on `jsonrest_url`); what it printed and how it ended.
async fn reconcile(app: &TestApp, jsonrest_url: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Output {
    let partner = SimConfig::default().jsonrest;
    let dir = tempfile::tempdir().unwrap();
    tokio::process::Command::new(bookhub_binary())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .env("BOOKHUB_DATABASE_URL", &app.database_url)
        .env("BOOKHUB_LOG", "warn")
        .env("BOOKHUB_SUPPLIERS__JSONREST__BASE_URL", jsonrest_url)
        .env("BOOKHUB_SUPPLIERS__JSONREST__ALLOW_HTTP", "true")
        .env("BOOKHUB_SUPPLIERS__JSONREST__API_KEY", &partner.api_key)
        .env("BOOKHUB_SUPPLIERS__JSONREST__API_SECRET", &partner.api_secret)
        .env("BOOKHUB_SUPPLIERS__JSONREST__WEBHOOK_SECRETS", format!("[\"{}\"]", partner.webhook_secret))
        .env("BOOKHUB_SUPPLIERS__JSONREST__MAX_RETRIES", "0")
        .env("BOOKHUB_SUPPLIERS__JSONREST__TIMEOUT", "2s")
        .args(["reconcile", "--supplier", "jsonrest", "--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .output()
        .await
        .expect("bookhub runs")
}

/// The lines of one step each (log lines, if any, left out), in order.
fn step_lines(stderr: &str) -> Vec<&str> {
    const STEPS: [&str; 5] = ["started run ", "fetched ", "compared ", "healed ", "recorded "];
    stderr.lines().filter(|line| STEPS.iter().any(|step| line.starts_with(step))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookhub_reconcile_prints_each_step_and_the_counts_and_records_the_run() {
    let (sim, app) = with_simulator(no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let from = (Utc::now() - chrono::Duration::minutes(1)).trunc_subsecs(0);
    let agreeing = book(&app, &agency, "AG-ok").await;
    let amount = book(&app, &agency, "AG-amount").await;
    // Confirmed by a webhook that never comes.
    sim.set_confirmation(Protocol::Jsonrest, Confirmation::Later { delay: Duration::from_secs(3600) });
    let late = book(&app, &agency, "AG-late").await;
    let total = Money { amount: rust_decimal::Decimal::from_str("450.01").unwrap(), currency: "EUR".into() };
    sim.edit(Protocol::Jsonrest, &amount, SimEdit { total: Some(total), ..SimEdit::default() });
    sim.edit(Protocol::Jsonrest, &late, SimEdit { status: Some(SimStatus::Confirmed), ..SimEdit::default() });
    assert_eq!(status(&app, &agency, &late).await, "pending");
    let to = (Utc::now() + chrono::Duration::minutes(1)).trunc_subsecs(0);

    let out = reconcile(&app, &sim.jsonrest_url(), from, to).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);

    let secs = r"\d+\.\d\d s";
    let expected = [
        format!(r"^started run (rcn_[0-9a-f]+) in {secs}$"),
        format!(r"^fetched 3 bookings from jsonrest in {secs} \(0 unmapped\)$"),
        format!(r"^compared 3 bookings with 3 of jsonrest's and 0 statement lines in {secs}: 1 to heal, 1 mismatch$"),
        format!(r"^healed 1 of 1 in {secs}$"),
        format!(r"^recorded 1 mismatch in {secs}$"),
    ];
    let lines = step_lines(&stderr);
    assert_eq!(lines.len(), expected.len(), "one line per step:\n{stderr}");
    for (line, pattern) in lines.iter().zip(&expected) {
        assert!(Regex::new(pattern).unwrap().is_match(line), "{line:?} should match {pattern:?}\n{stderr}");
    }
    let id = Regex::new(&expected[0]).unwrap().captures(lines[0]).unwrap()[1].to_owned();
    let summary: Vec<&str> = stdout.lines().collect();
    assert!(Regex::new(&format!(r"^run {id} of jsonrest: done in {secs}$")).unwrap().is_match(summary[0]), "{stdout}");
    assert_eq!(summary[1..], ["  amount_differs  1", "  healed          1"], "{stdout}");

    // Recorded as any run: done, its counts, its mismatch open; the late booking healed.
    let run = reconciliation::find(&app.db, &ReconciliationRunId::from_str(&id).unwrap()).await.unwrap().unwrap();
    assert_eq!((run.status, run.window_from, run.window_to), (RunStatus::Done, from, to));
    assert_eq!(run.counts, [("amount_differs".to_owned(), 1), ("healed".to_owned(), 1)].into());
    let open = reconciliation::mismatches(&app.db, None, Some("jsonrest"), None, 10).await.unwrap();
    let found: Vec<_> = open.iter().map(|m| (m.booking_id.clone(), m.reason.to_string())).collect();
    assert_eq!(found, [(Some(amount), "amount_differs".to_owned())]);
    assert_eq!(status(&app, &agency, &late).await, "confirmed");
    assert_eq!(status(&app, &agency, &agreeing).await, "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_out_of_reach_fails_the_run_and_a_bad_window_is_refused() {
    let (_sim, app) = with_simulator(no_workers).await;
    let (from, to) = (Utc::now() - chrono::Duration::hours(1), Utc::now());
    let nowhere = format!("http://127.0.0.1:{}", free_port());

    let out = reconcile(&app, &nowhere, from, to).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let jsonrest = SupplierCode::from_str("jsonrest").unwrap();
    let [run] = reconciliation::runs(&app.db, &jsonrest, 10).await.unwrap().try_into().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let why = format!("bookhub: reconciliation run {} failed: the supplier is unavailable", run.id);
    assert!(stderr.lines().any(|l| l.starts_with(&why)), "{why:?} in:\n{stderr}");
    assert!(out.stdout.is_empty(), "no summary");

    for (from, to) in [(to, from), (to - chrono::Duration::days(32), to)] {
        let out = reconcile(&app, &nowhere, from, to).await;
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--to must be after --from, at most 31 days after it"), "{stderr}");
    }
    assert_eq!(reconciliation::runs(&app.db, &jsonrest, 10).await.unwrap().len(), 1, "no run for a bad window");
}

/// The `bookhub` binary of this build (`target/<profile>/bookhub`, beside the test binary's
/// `deps` folder), built first when it is missing or older than a source it was built from —
/// `cargo test --workspace` builds it, `cargo test -p bookhub-tests` does not.
fn bookhub_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/it-…");
        let binary = profile_dir.join("bookhub");
        if !fresh(&binary) {
            build(profile_dir);
        }
        binary
    })
}

/// Whether `binary` exists and is newer than every source its dep-info file (`bookhub.d`:
/// `target: source source …`, spaces in paths escaped) lists.
fn fresh(binary: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified());
    let (Ok(built), Ok(dep_info)) = (modified(binary), std::fs::read_to_string(binary.with_extension("d"))) else {
        return false;
    };
    let sources = dep_info.split_once(": ").map(|(_, sources)| sources).unwrap_or_default().replace("\\ ", "\0");
    // A source newer than the binary, or gone since (renamed, say), means a build is due.
    let older = |source: &str| modified(Path::new(&source.replace('\0', " "))).is_ok_and(|m| m <= built);
    sources.split_whitespace().all(older)
}

/// What cargo sets for a test's process (names, or how they start).
const SET_FOR_TESTS: [&str; 6] =
    ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"];

/// `cargo build -p bookhub-api --bin bookhub` into the target folder and profile of this test,
/// without the variables cargo set for this test's process: a build script that reads one
/// (ring's reads `CARGO_MANIFEST_DIR`) would otherwise run again, and its dependents be rebuilt,
/// at every build from a shell after this one.
fn build(profile_dir: &Path) {
    let mut cargo = std::process::Command::new(env!("CARGO"));
    let set_for_tests = |name: &String| SET_FOR_TESTS.iter().any(|prefix| name.starts_with(prefix));
    for name in std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()).filter(set_for_tests) {
        cargo.env_remove(name);
    }
    cargo.args(["build", "-p", "bookhub-api", "--bin", "bookhub", "--target-dir"]);
    cargo.arg(profile_dir.parent().expect("the target folder"));
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some(profile) => {
            cargo.args(["--profile", profile]);
        }
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building the bookhub binary failed");
}
