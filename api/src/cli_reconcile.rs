//! `bookhub reconcile`: one reconciliation run of one supplier's window, in this process, as
//! the `bookhub.reconcile` job would do it. Its progress goes to stderr — a bar when stderr is a
//! terminal, one plain line per step when it is not — and its summary to stdout: the run's id,
//! its outcome and its counts per reason.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use adapters::store::Database;
use adapters::store::reconciliation::Run;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use domain::{ReconciliationRunId, SupplierCode};
use indicatif::{ProgressBar, ProgressStyle};
use jobs::reconcile::{Progress, Step};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::Settings;

/// `bookhub reconcile --supplier S --from T --to T`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// A configured supplier's code.
    #[arg(long)]
    pub supplier: SupplierCode,
    /// Bookings modified from (RFC 3339, e.g. `2026-11-01T00:00:00Z`).
    #[arg(long, value_parser = parse_instant)]
    pub from: DateTime<Utc>,
    /// … to (RFC 3339); after `--from`, at most 31 days after it.
    #[arg(long, value_parser = parse_instant)]
    pub to: DateTime<Utc>,
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).map_err(|e| format!("not an RFC 3339 timestamp: {e}"))
}

impl ReconcileArgs {
    /// The supplier is configured here, and the window is one the API would take.
    fn validate(&self, settings: &Settings) -> anyhow::Result<()> {
        if !settings.enabled_suppliers().contains_key(&self.supplier) {
            bail!("no supplier {} is configured", self.supplier);
        }
        if !jobs::reconcile::is_window(self.from, self.to) {
            bail!("--to must be after --from, at most 31 days after it");
        }
        Ok(())
    }
}

/// Checks `args`, connects to and migrates the database, runs the reconciliation `args` asks
/// for, showing its progress on `display`, and prints its summary. A run that fails is
/// recorded as failed and returned as the error.
pub async fn run(settings: &Settings, args: ReconcileArgs, display: &Display) -> anyhow::Result<()> {
    let outcome = connect_and_reconcile(settings, &args, display).await;
    // The bar goes before anything else is written: the summary, or the error.
    display.finish();
    let (run, elapsed) = outcome?;
    print!("{}", summary(&run, elapsed));
    std::io::stdout().flush().context("writing the summary")
}

/// The finished run and how long it took.
async fn connect_and_reconcile(
    settings: &Settings,
    args: &ReconcileArgs,
    display: &Display,
) -> anyhow::Result<(Run, Duration)> {
    args.validate(settings)?;
    let db = Database::connect(settings.database_url.as_str(), 2).await.context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    let outcome = reconcile(settings, &db, args, display).await;
    db.close().await;
    outcome
}

/// The run itself, on a migrated `db`; the finished run and how long it took.
async fn reconcile(
    settings: &Settings,
    db: &Database,
    args: &ReconcileArgs,
    display: &Display,
) -> anyhow::Result<(Run, Duration)> {
    crate::app::seed_code_mappings(settings, db).await?;
    let public_url = crate::app::public_url(settings, settings.listen);
    let (jobs, _mapping_watch) = crate::app::supplier_jobs(settings, db, public_url)?;
    let reporter = Reporter::new(display, &args.supplier);
    display.working("starting the run…".to_owned());
    let outcome = jobs::reconcile::run_with_progress(&jobs, &args.supplier, args.from, args.to, &reporter).await;
    let run = outcome.with_context(|| match reporter.run() {
        Some(id) => format!("reconciliation run {id} failed"),
        None => "the reconciliation run could not be started".to_owned(),
    })?;
    Ok((run, reporter.elapsed()))
}

/// The run's id, outcome and time, then one `reason count` line per count.
fn summary(run: &Run, elapsed: Duration) -> String {
    let mut text = format!("run {} of {}: {} in {:.2} s\n", run.id, run.supplier, run.status.as_str(), secs(elapsed));
    if run.counts.is_empty() {
        text += "  no differences\n";
    }
    let width = run.counts.keys().map(String::len).max().unwrap_or_default();
    for (reason, count) in &run.counts {
        text += &format!("  {reason:<width$}  {count}\n");
    }
    text
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Where the progress goes, on stderr: a bar (a spinner between counted steps) when stderr is
/// a terminal, or one plain line per step.
#[derive(Debug)]
pub enum Display {
    Bar(ProgressBar),
    Lines,
}

impl Display {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Display {
        if !std::io::stderr().is_terminal() {
            return Display::Lines;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(spinner_style());
        bar.set_message("connecting…");
        bar.enable_steady_tick(Duration::from_millis(100));
        Display::Bar(bar)
    }

    /// Where log lines go: above the bar, which is drawn again after them.
    pub fn log_writer(&self) -> BoxMakeWriter {
        match self {
            Display::Bar(bar) => {
                let bar = bar.clone();
                BoxMakeWriter::new(move || AboveBar(bar.clone()))
            }
            Display::Lines => BoxMakeWriter::new(std::io::stderr),
        }
    }

    /// A step done: its line, kept above the bar.
    fn line(&self, text: &str) {
        match self {
            Display::Bar(bar) => bar.println(text),
            Display::Lines => eprintln!("{text}"),
        }
    }

    /// What is being done now, until the next step.
    fn working(&self, message: String) {
        if let Display::Bar(bar) = self {
            bar.set_style(spinner_style());
            bar.set_message(message);
        }
    }

    /// `done` of `of` bookings healed.
    fn healing(&self, done: usize, of: usize) {
        if let Display::Bar(bar) = self {
            if bar.length() != Some(of as u64) {
                bar.set_style(bar_style());
                bar.set_length(of as u64);
                bar.set_message("healing");
            }
            bar.set_position(done as u64);
        }
    }

    /// Clears the bar, if there is one.
    fn finish(&self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} [{wide_bar}] {pos}/{len} {elapsed}").expect("a valid template")
}

/// A log line written while the bar is hidden.
struct AboveBar(ProgressBar);

impl Write for AboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Turns the run's steps into lines (with the time each took) and the bar's state.
struct Reporter<'a> {
    display: &'a Display,
    supplier: &'a SupplierCode,
    started: Instant,
    /// When the last step was done, and the run's id once it is known.
    state: Mutex<(Instant, Option<ReconciliationRunId>)>,
}

impl<'a> Reporter<'a> {
    fn new(display: &'a Display, supplier: &'a SupplierCode) -> Self {
        let now = Instant::now();
        Reporter { display, supplier, started: now, state: Mutex::new((now, None)) }
    }

    /// The run's id, once it was started.
    fn run(&self) -> Option<ReconciliationRunId> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1.clone()
    }

    /// Since the reporter was made, just before the run started.
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The seconds since the last step, now the end of this one (of the run `started`, when
    /// this one started it).
    fn lap(&self, started: Option<&ReconciliationRunId>) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let lap = now - state.0;
        state.0 = now;
        if let Some(run) = started {
            state.1 = Some(run.clone());
        }
        secs(lap)
    }
}

impl Progress for Reporter<'_> {
    fn step(&self, step: &Step) {
        let supplier = self.supplier;
        let (line, next) = match step {
            Step::Healing { done, of } => return self.display.healing(*done, *of),
            Step::Started { run } => {
                let lap = self.lap(Some(run));
                (format!("started run {run} in {lap:.2} s"), format!("fetching the bookings of {supplier}"))
            }
            Step::Fetched { listed, unmapped } => (
                format!(
                    "fetched {} from {supplier} in {:.2} s ({unmapped} unmapped)",
                    counted(*listed, "booking", "bookings"),
                    self.lap(None)
                ),
                "comparing".to_owned(),
            ),
            Step::Compared { ours, theirs, billed, to_heal, mismatches } => (
                format!(
                    "compared {} with {theirs} of {supplier}'s and {} in {:.2} s: {to_heal} to heal, {}",
                    counted(*ours, "booking", "bookings"),
                    counted(*billed, "statement line", "statement lines"),
                    self.lap(None),
                    counted(*mismatches, "mismatch", "mismatches"),
                ),
                "healing".to_owned(),
            ),
            Step::Healed { healed, not_healed } => (
                format!("healed {healed} of {} in {:.2} s", healed + not_healed, self.lap(None)),
                "recording the mismatches".to_owned(),
            ),
            Step::Recorded { mismatches } => (
                format!("recorded {} in {:.2} s", counted(*mismatches, "mismatch", "mismatches"), self.lap(None)),
                "finishing the run".to_owned(),
            ),
        };
        self.display.line(&line);
        self.display.working(format!("{next}…"));
    }
}

/// `1 booking`, `2 bookings`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_styles_parse() {
        let _ = (spinner_style(), bar_style());
    }

    #[test]
    fn the_summary_names_the_run_and_each_count_aligned() {
        let now = Utc::now();
        let mut run = Run {
            id: ReconciliationRunId::generate(),
            supplier: "jsonrest".parse().unwrap(),
            window_from: now,
            window_to: now,
            status: adapters::store::reconciliation::RunStatus::Done,
            counts: [("amount_differs".to_owned(), 2), ("healed".to_owned(), 1)].into(),
            error: None,
            started_at: now,
            finished_at: Some(now),
        };
        let text = summary(&run, Duration::from_millis(1234));
        assert_eq!(
            text,
            format!("run {} of jsonrest: done in 1.23 s\n  amount_differs  2\n  healed          1\n", run.id)
        );
        run.counts.clear();
        assert!(summary(&run, Duration::ZERO).ends_with(": done in 0.00 s\n  no differences\n"));
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(
            (counted(1, "mismatch", "mismatches"), counted(0, "mismatch", "mismatches")),
            ("1 mismatch".into(), "0 mismatches".into())
        );
    }
}
