//! A reconciliation run: one supplier, one window. Its bookings are fetched through the
//! supplier's adapter (`list_modified`), translated through the mapping tables, paired with
//! bookhub's ([`domain::reconciliation`]); what the supplier owns is healed through the state
//! machine — the booking's change fans out as a webhook's would — and every other difference
//! is recorded as a mismatch ([`adapters::store::reconciliation`]), as is every difference with
//! what the supplier's statements bill.

use std::collections::{BTreeMap, HashSet};

use adapters::store::bookings::{self, Applied, Scope};
use adapters::store::queue::EnqueuedJob;
use adapters::store::reconciliation::{self, Run, RunStatus};
use adapters::store::{Database, StoreError};
use chrono::{DateTime, Utc};
use domain::reconciliation::{Billed, Finding, Mismatch, Reported, compare_statement, reconcile};
use domain::{Booking, BookingEvent, BookingId, ReconciliationRunId, SupplierCode};
use serde::{Deserialize, Serialize};

use crate::supplier::{JobError, SupplierJobs};

/// What a run did: its counts per reason code, `healed`, and `unmapped` (supplier bookings
/// whose codes no mapping translates: fix the table and run again).
pub type Counts = BTreeMap<String, u64>;

/// A step of a run, told to its [`Progress`] once the step is done. They come in this order,
/// each once, except [`Step::Healing`] (once per booking to heal, none when there is none); a
/// run that fails stops telling at the step that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The run is recorded, `running`.
    Started { run: ReconciliationRunId },
    /// The supplier listed `listed` bookings changed in the window; `unmapped` of them carry
    /// codes no mapping translates (they are counted, not compared).
    Fetched { listed: usize, unmapped: usize },
    /// bookhub's bookings (`ours`: those of the window and those the supplier names) were
    /// compared with the supplier's `theirs` and its statements' `billed` lines: `to_heal`
    /// bookings take the supplier's status, `mismatches` differences are to be recorded.
    Compared { ours: usize, theirs: usize, billed: usize, to_heal: usize, mismatches: usize },
    /// `done` of the `of` bookings to heal went through the state machine.
    Healing { done: usize, of: usize },
    /// Healing is over: `healed` bookings changed; `not_healed` did not (a repeat, or a change
    /// that raced the run).
    Healed { healed: usize, not_healed: usize },
    /// The run's `mismatches` are recorded (new ones opened, those gone closed); the run is
    /// finished next.
    Recorded { mismatches: usize },
}

/// Told each [`Step`] of a run as it is done, inline between the run's own awaits. The run
/// does no IO for it; an implementation keeps to quick work (a line, a bar's tick).
pub trait Progress: Sync {
    fn step(&self, step: &Step);
}

/// Nobody is told.
impl Progress for () {
    fn step(&self, _: &Step) {}
}

impl<F: Fn(&Step) + Sync> Progress for F {
    fn step(&self, step: &Step) {
        self(step)
    }
}

/// Runs a reconciliation of `supplier` over `[from, to]` now and records it; the finished run.
/// A failure (the supplier unreachable, say) is recorded on the run and returned.
pub async fn run(
    jobs: &SupplierJobs,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Run, JobError> {
    run_with_progress(jobs, supplier, from, to, &()).await
}

/// As [`run`], telling `progress` each [`Step`] as it is done.
pub async fn run_with_progress(
    jobs: &SupplierJobs,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<Run, JobError> {
    let started = reconciliation::start(&jobs.db, supplier, from, to).await?;
    progress.step(&Step::Started { run: started.id.clone() });
    execute(jobs, &started, progress).await?;
    Ok(reconciliation::find(&jobs.db, &started.id).await?.expect("the run was just written"))
}

/// Runs the started `run` and records its outcome on it (counts, or the failure).
async fn execute(jobs: &SupplierJobs, run: &Run, progress: &dyn Progress) -> Result<(), JobError> {
    let outcome = reconcile_window(jobs, run, progress).await;
    match &outcome {
        Ok(counts) => reconciliation::finish(&jobs.db, &run.id, Ok(counts)).await?,
        Err(e) => reconciliation::finish(&jobs.db, &run.id, Err(&crate::supplier::chain(e))).await?,
    }
    outcome.map(|_| ())
}

/// The longest window one run covers (the API's and the command's limit).
pub const MAX_WINDOW: chrono::Duration = chrono::Duration::days(31);

/// Whether `[from, to]` is a window one run takes: not empty, at most [`MAX_WINDOW`].
pub fn is_window(from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    from < to && to - from <= MAX_WINDOW
}

/// Starts a run of `supplier` over `[from, to]` with its `bookhub.reconcile` job, in one
/// transaction; the started run.
pub async fn start_queued(
    db: &Database,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Run, StoreError> {
    let job = |run: &ReconciliationRunId| Reconcile { run: run.clone(), scheduled: false }.enqueued();
    let started = reconciliation::start_with_job(db, supplier, from, to, None, job).await?;
    Ok(started.expect("a run without a claim always starts"))
}

/// Starts the run of `supplier`'s scheduled `slot` over the `window` before it, if this caller
/// claims the slot (see [`reconciliation::start_with_job`]); `None` when it was claimed
/// before. Scheduled runs send the finance report when they are done.
pub async fn start_scheduled(
    db: &Database,
    supplier: &SupplierCode,
    slot: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Option<Run>, StoreError> {
    let job = |run: &ReconciliationRunId| Reconcile { run: run.clone(), scheduled: true }.enqueued();
    reconciliation::start_with_job(db, supplier, slot - window, slot, Some(crate::schedule::RECONCILE), job).await
}

/// Runs a started run in the background: one `POST /v1/reconciliations` asked for, or one
/// the schedule claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconcile {
    pub run: ReconciliationRunId,
    /// Claimed by the schedule: the finance report is emailed once the run is done.
    #[serde(default)]
    pub scheduled: bool,
}

impl Reconcile {
    pub const QUEUE: &'static str = "bookhub.reconcile";

    fn enqueued(&self) -> EnqueuedJob {
        crate::enqueued(Self::QUEUE, self, self.run.to_string())
    }
}

impl SupplierJobs {
    /// Runs a queued run once: a run already finished (a repeat of the job) is left as it is.
    /// A failure is the run's outcome (`failed`, with why), not the job's: staff start
    /// another. Only a store failure retries the job.
    pub async fn reconcile(&self, job: &Reconcile) -> Result<(), JobError> {
        let Some(run) = reconciliation::find(&self.db, &job.run).await? else { return Ok(()) };
        if run.status != RunStatus::Running {
            return Ok(());
        }
        match execute(self, &run, &()).await {
            Err(JobError::Store(e)) => Err(JobError::Store(e)),
            _ => Ok(()),
        }
    }
}

/// Fetches, compares, heals and records one run's window; its counts.
async fn reconcile_window(jobs: &SupplierJobs, run: &Run, progress: &dyn Progress) -> Result<Counts, JobError> {
    let (supplier, from, to) = (&run.supplier, run.window_from, run.window_to);
    let mut counts = Counts::new();
    let theirs = fetch(jobs, supplier, from, to, &mut counts).await?;
    let unmapped = counts.get("unmapped").copied().unwrap_or_default() as usize;
    progress.step(&Step::Fetched { listed: theirs.len() + unmapped, unmapped });
    let billed = reconciliation::billed(&jobs.db, supplier).await?;
    let ours = ours(jobs, supplier, from, to, &theirs, &billed).await?;
    let (to_heal, mismatches) = compare(&ours.all, &ours.listed, &theirs, &billed, &mut counts);
    progress.step(&Step::Compared {
        ours: ours.all.len(),
        theirs: theirs.len(),
        billed: billed.len(),
        to_heal: to_heal.len(),
        mismatches: mismatches.len(),
    });
    heal(jobs, &to_heal, &mut counts, progress).await?;
    reconciliation::record(&jobs.db, &run.id, supplier, &mismatches, &ours.examined).await?;
    progress.step(&Step::Recorded { mismatches: mismatches.len() });
    tracing::info!(supplier = %supplier, run = %run.id, ?counts, "reconciliation run done");
    Ok(counts)
}

/// bookhub's side of a run.
struct Ours {
    /// The supplier's bookings changed in the window, and those the supplier's list or
    /// statements name whenever they changed: what the statement is compared with.
    all: Vec<Booking>,
    /// Those of `all` the supplier's list is compared with: the window's and those it names,
    /// not those only a statement names (the list need not hold them).
    listed: Vec<Booking>,
    /// Every subject the run looked at (bookings, and `ref:` the supplier's references): a
    /// mismatch of one of them that was not found again is closed.
    examined: Vec<String>,
}

/// bookhub's side of the window `[from, to]` of `supplier`, given the supplier's list
/// (`theirs`) and its statements' lines (`billed`).
async fn ours(
    jobs: &SupplierJobs,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    theirs: &[Reported],
    billed: &[Billed],
) -> Result<Ours, JobError> {
    // What the supplier's list names (its references and the client references it echoes),
    // then what its statements name as well.
    let listed_names: HashSet<&str> = theirs
        .iter()
        .flat_map(|r| std::iter::once(r.reference.as_str()).chain(r.client_reference.as_deref()))
        .collect();
    let billed_names =
        billed.iter().flat_map(|b| std::iter::once(b.supplier_reference.as_str()).chain(b.client_reference.as_deref()));
    let named: Vec<&str> = listed_names.iter().copied().chain(billed_names).collect();
    let all = bookings::for_reconciliation(&jobs.db, supplier, from, to, &named).await?;
    let mut examined: Vec<String> = all.iter().map(|b| b.id.to_string()).collect();
    examined.extend(theirs.iter().map(|r| format!("ref:{}", r.reference)));
    examined.extend(billed.iter().map(|b| format!("ref:{}", b.supplier_reference)));
    let in_scope = |b: &&Booking| {
        (from..=to).contains(&b.updated_at)
            || listed_names.contains(b.id.as_str())
            || b.supplier_reference.as_deref().is_some_and(|r| listed_names.contains(r))
    };
    let listed = all.iter().filter(in_scope).cloned().collect();
    Ok(Ours { all, listed, examined })
}

/// The supplier's bookings changed in `[from, to]`, in bookhub's codes; those whose codes no
/// mapping translates are counted as `unmapped` and left out.
async fn fetch(
    jobs: &SupplierJobs,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<Vec<Reported>, JobError> {
    let adapter = jobs.suppliers.get(supplier).ok_or_else(|| JobError::SupplierNotConfigured(supplier.clone()))?;
    let listed =
        domain::SupplierAdapter::list_modified(&*adapter, from, to).await.map_err(JobError::SupplierUnavailable)?;
    let translator = jobs.mappings.fresh_translator(supplier).await?;
    let mut theirs: Vec<Reported> = Vec::with_capacity(listed.len());
    for booking in &listed {
        match translator.reported(booking) {
            Ok(reported) => theirs.push(reported),
            Err(_) => *counts.entry("unmapped".into()).or_default() += 1,
        }
    }
    Ok(theirs)
}

/// What the supplier owns (each booking with the event that heals it, in order) and every
/// mismatch, each counted by its reason: the statement's (once the supplier has sent one,
/// compared with all of `ours`), then the list's (compared with `listed_ours`).
fn compare(
    ours: &[Booking],
    listed_ours: &[Booking],
    theirs: &[Reported],
    billed: &[Billed],
    counts: &mut Counts,
) -> (Vec<(BookingId, BookingEvent)>, Vec<Mismatch>) {
    let mut mismatches =
        if billed.is_empty() { Vec::new() } else { compare_statement(ours, billed, Utc::now().date_naive()) };
    let mut to_heal = Vec::new();
    for finding in reconcile(listed_ours, theirs) {
        match finding {
            Finding::Heal { booking, event } => to_heal.push((booking, event)),
            Finding::Mismatch(m) => mismatches.push(m),
        }
    }
    for m in &mismatches {
        *counts.entry(m.reason.as_str().into()).or_default() += 1;
    }
    (to_heal, mismatches)
}

/// Applies each of `to_heal` as the supplier's webhook would have been, so the change fans
/// out (CRM, agency, voucher); counts `healed` and `not_healed`.
async fn heal(
    jobs: &SupplierJobs,
    to_heal: &[(BookingId, BookingEvent)],
    counts: &mut Counts,
    progress: &dyn Progress,
) -> Result<(), JobError> {
    let (mut healed, mut not_healed) = (0, 0);
    for (done, (booking, event)) in to_heal.iter().enumerate() {
        let applied = bookings::apply_event(&jobs.db, &Scope::All, booking, event, crate::fanout::for_outcome).await?;
        if matches!(applied, Applied::Changed(_)) {
            healed += 1;
        } else {
            not_healed += 1;
        }
        progress.step(&Step::Healing { done: done + 1, of: to_heal.len() });
    }
    for (key, n) in [("healed", healed), ("not_healed", not_healed)] {
        if n > 0 {
            *counts.entry(key.into()).or_default() += n as u64;
        }
    }
    progress.step(&Step::Healed { healed, not_healed });
    Ok(())
}
