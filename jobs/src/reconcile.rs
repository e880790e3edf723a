//! A reconciliation run: one supplier, one window. Its bookings are fetched through the
//! supplier's adapter (`list_modified`), translated through the mapping tables, paired with
//! bookhub's ([`domain::reconciliation`]); what the supplier owns is healed through the state
//! machine — the booking's change fans out as a webhook's would — and every other difference
//! is recorded as a mismatch ([`adapters::store::reconciliation`]), as is every difference with
//! what the supplier's statements bill.

use std::collections::{BTreeMap, HashSet};

use adapters::store::bookings::{self, Applied, Scope};
use adapters::store::queue::{self, EnqueuedJob};
use adapters::store::reconciliation::{self, Run, RunStatus};
use adapters::store::{Database, StoreError};
use chrono::{DateTime, Utc};
use domain::reconciliation::{Finding, Mismatch, Reported, compare_statement, reconcile};
use domain::{ReconciliationRunId, SupplierCode};
use serde::{Deserialize, Serialize};

use crate::supplier::{JobError, SupplierJobs};

/// What a run did: its counts per reason code, `healed`, and `unmapped` (supplier bookings
/// whose codes no mapping translates: fix the table and run again).
pub type Counts = BTreeMap<String, u64>;

/// Runs a reconciliation of `supplier` over `[from, to]` now and records it; the finished run.
/// A failure (the supplier unreachable, say) is recorded on the run and returned.
pub async fn run(
    jobs: &SupplierJobs,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Run, JobError> {
    let started = reconciliation::start(&jobs.db, supplier, from, to).await?;
    execute(jobs, &started).await?;
    Ok(reconciliation::find(&jobs.db, &started.id).await?.expect("the run was just written"))
}

/// Runs the started `run` and records its outcome on it (counts, or the failure).
async fn execute(jobs: &SupplierJobs, run: &Run) -> Result<(), JobError> {
    let outcome = reconcile_window(jobs, run, &run.supplier, run.window_from, run.window_to).await;
    match &outcome {
        Ok(counts) => reconciliation::finish(&jobs.db, &run.id, Ok(counts)).await?,
        Err(e) => reconciliation::finish(&jobs.db, &run.id, Err(&crate::supplier::chain(e))).await?,
    }
    outcome.map(|_| ())
}

/// Starts a run of `supplier` over `[from, to]` and queues it (the `bookhub.reconcile` job);
/// the started run. A run that cannot be queued is recorded as failed. `scheduled` runs send
/// the finance report when they are done.
pub async fn start_queued(
    db: &Database,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scheduled: bool,
) -> Result<Run, StoreError> {
    let run = reconciliation::start(db, supplier, from, to).await?;
    let job = Reconcile { run: run.id.clone(), scheduled };
    if let Err(e) = queue::push(db.pool(), &[job.enqueued()]).await {
        reconciliation::finish(db, &run.id, Err("the run could not be queued")).await?;
        return Err(e);
    }
    Ok(run)
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
        match execute(self, &run).await {
            Err(JobError::Store(e)) => Err(JobError::Store(e)),
            _ => Ok(()),
        }
    }
}

async fn reconcile_window(
    jobs: &SupplierJobs,
    run: &Run,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Counts, JobError> {
    let adapter = jobs.suppliers.get(supplier).ok_or_else(|| JobError::SupplierNotConfigured(supplier.clone()))?;
    let listed =
        domain::SupplierAdapter::list_modified(&*adapter, from, to).await.map_err(JobError::SupplierUnavailable)?;
    let translator = jobs.mappings.fresh_translator(supplier).await?;
    let mut counts = Counts::new();
    let mut theirs: Vec<Reported> = Vec::with_capacity(listed.len());
    for booking in &listed {
        match translator.reported(booking) {
            Ok(reported) => theirs.push(reported),
            Err(_) => *counts.entry("unmapped".into()).or_default() += 1,
        }
    }
    let billed = reconciliation::billed(&jobs.db, supplier).await?;
    // What the supplier's list names (its references and the client references it echoes),
    // then what its statements name as well.
    let listed_names: HashSet<&str> = theirs
        .iter()
        .flat_map(|r| std::iter::once(r.reference.as_str()).chain(r.client_reference.as_deref()))
        .collect();
    let billed_names =
        billed.iter().flat_map(|b| std::iter::once(b.supplier_reference.as_str()).chain(b.client_reference.as_deref()));
    let named: Vec<&str> = listed_names.iter().copied().chain(billed_names).collect();
    let ours = bookings::for_reconciliation(&jobs.db, supplier, from, to, &named).await?;
    let mut examined: Vec<String> = ours.iter().map(|b| b.id.to_string()).collect();
    examined.extend(theirs.iter().map(|r| format!("ref:{}", r.reference)));
    examined.extend(billed.iter().map(|b| format!("ref:{}", b.supplier_reference)));
    let mut mismatches: Vec<Mismatch> = Vec::new();
    // Once the supplier has sent a statement, what it bills is compared too.
    if !billed.is_empty() {
        for m in compare_statement(&ours, &billed, Utc::now().date_naive()) {
            *counts.entry(m.reason.as_str().into()).or_default() += 1;
            mismatches.push(m);
        }
    }
    // The supplier's list is compared with the bookings of the window and those it names, not
    // with those only a statement names (the list need not hold them).
    let in_scope = |b: &&domain::Booking| {
        (from..=to).contains(&b.updated_at)
            || listed_names.contains(b.id.as_str())
            || b.supplier_reference.as_deref().is_some_and(|r| listed_names.contains(r))
    };
    let listed_ours: Vec<domain::Booking> = ours.iter().filter(in_scope).cloned().collect();
    for finding in reconcile(&listed_ours, &theirs) {
        match finding {
            Finding::Heal { booking, event } => {
                // The supplier owns this outcome: applied as its webhook would have been, so
                // the change fans out (CRM, agency, voucher).
                let applied =
                    bookings::apply_event(&jobs.db, &Scope::All, &booking, &event, crate::fanout::for_outcome).await?;
                let healed = matches!(applied, Applied::Changed(_));
                *counts.entry(if healed { "healed" } else { "not_healed" }.into()).or_default() += 1;
            }
            Finding::Mismatch(m) => {
                *counts.entry(m.reason.as_str().into()).or_default() += 1;
                mismatches.push(m);
            }
        }
    }
    reconciliation::record(&jobs.db, &run.id, supplier, &mismatches, &examined).await?;
    tracing::info!(supplier = %supplier, run = %run.id, ?counts, "reconciliation run done");
    Ok(counts)
}
