//! Reconciliation runs and the mismatches they find. A run records every difference it found
//! for its supplier; one found again is the same open row (its values and `last_run`
//! refreshed), never a second; an open one the run examined and no longer found is closed; one
//! staff resolved is not raised again while both values stay as they were.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::reconciliation::{Billed, Mismatch, Reason};
use domain::{ReconciliationRunId, StatementId, SupplierCode};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::entities::{
    reconciliation_mismatch as mismatch, reconciliation_run as run, statement_file, statement_line as statement,
};
use super::queue::{EnqueuedJob, PushJobs};
use super::{Database, StoreError, Stored, with_pool};

domain::code_enum! {
    /// Where a run stands.
    pub enum RunStatus ("reconciliation run status") {
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

domain::code_enum! {
    /// Where a mismatch stands.
    pub enum MismatchStatus ("mismatch status") {
        /// Found by the last run that looked at its booking.
        Open = "open",
        /// Closed by staff with a note.
        Resolved = "resolved",
        /// No longer found by a later run.
        Closed = "closed",
    }
}

/// A run: its window, where it stands and, once done, its counts per reason (and `healed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: ReconciliationRunId,
    pub supplier: SupplierCode,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub status: RunStatus,
    pub counts: BTreeMap<String, u64>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn run_from(m: run::Model) -> Result<Run, StoreError> {
    let row = || format!("reconciliation_runs/{}", m.id);
    Ok(Run {
        id: m.id.parse().stored(&row)?,
        supplier: m.supplier.parse().stored(&row)?,
        window_from: m.window_from,
        window_to: m.window_to,
        status: m.status.parse().stored(&row)?,
        counts: m.counts.clone().map(serde_json::from_value).transpose().stored(&row)?.unwrap_or_default(),
        error: m.error,
        started_at: m.started_at,
        finished_at: m.finished_at,
    })
}

/// Starts a run of `supplier` over `[from, to]`.
pub async fn start(
    db: &Database,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Run, StoreError> {
    let row = run::ActiveModel {
        id: Set(ReconciliationRunId::generate().to_string()),
        supplier: Set(supplier.to_string()),
        window_from: Set(from),
        window_to: Set(to),
        status: Set(RunStatus::Running.as_str().to_owned()),
        counts: Set(None),
        error: Set(None),
        started_at: Set(super::now()),
        finished_at: Set(None),
    };
    run_from(row.insert(db.orm()).await?)
}

/// Starts a run of `supplier` over `[from, to]` with the job that works it (`job` makes it
/// from the run's id), in one transaction: a run is never left without its job. With `claim`,
/// `to` is a scheduled slot and the claim on `(claim, supplier, slot)` commits with them, so a
/// slot is never claimed without its run; `None` when the slot was claimed before, here or by
/// another process.
pub async fn start_with_job(
    db: &Database,
    supplier: &SupplierCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    claim: Option<&str>,
    job: impl FnOnce(&ReconciliationRunId) -> EnqueuedJob,
) -> Result<Option<Run>, StoreError> {
    // Slots fall on whole seconds; the key must not depend on how a clock rounds.
    let to = if claim.is_some() { chrono::SubsecRound::trunc_subsecs(to, 0) } else { to };
    let now = super::now();
    let run = Run {
        id: ReconciliationRunId::generate(),
        supplier: supplier.clone(),
        window_from: from,
        window_to: to,
        status: RunStatus::Running,
        counts: BTreeMap::new(),
        error: None,
        started_at: now,
        finished_at: None,
    };
    let jobs = [job(&run.id)];
    with_pool!(db.pool(), p => {
        let mut tx = p.begin().await?;
        if let Some(claim) = claim {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO schedule_claims (job, supplier, slot, claimed_at) VALUES (");
            let mut values = insert.separated(", ");
            values.push_bind(claim).push_bind(supplier.as_str()).push_bind(to).push_bind(now);
            insert.push(") ON CONFLICT DO NOTHING");
            if insert.build().execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(None);
            }
        }
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO reconciliation_runs (id, supplier, window_from, window_to, status, started_at) VALUES (",
        );
        let mut values = insert.separated(", ");
        values.push_bind(run.id.as_str()).push_bind(supplier.as_str()).push_bind(from).push_bind(to);
        values.push_bind(RunStatus::Running.as_str()).push_bind(now);
        insert.push(")").build().execute(&mut *tx).await?;
        PushJobs::push(&mut *tx, &jobs).await?;
        tx.commit().await?;
    });
    Ok(Some(run))
}

pub async fn find(db: &Database, id: &ReconciliationRunId) -> Result<Option<Run>, StoreError> {
    run::Entity::find_by_id(id.as_str()).one(db.orm()).await?.map(run_from).transpose()
}

/// The last `limit` runs of `supplier`, newest first.
pub async fn runs(db: &Database, supplier: &SupplierCode, limit: u64) -> Result<Vec<Run>, StoreError> {
    run::Entity::find()
        .filter(run::Column::Supplier.eq(supplier.as_str()))
        .order_by_desc(run::Column::StartedAt)
        .order_by_desc(run::Column::Id)
        .limit(limit)
        .all(db.orm())
        .await?
        .into_iter()
        .map(run_from)
        .collect()
}

/// The runs whose window ends at `slot` (a scheduled slot's runs, one per supplier).
pub async fn runs_ending_at(db: &Database, slot: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
    run::Entity::find()
        .filter(run::Column::WindowTo.eq(slot))
        .order_by_asc(run::Column::Supplier)
        .all(db.orm())
        .await?
        .into_iter()
        .map(run_from)
        .collect()
}

/// Ends a run: `done` with its counts, or `failed` with why.
pub async fn finish(
    db: &Database,
    id: &ReconciliationRunId,
    outcome: Result<&BTreeMap<String, u64>, &str>,
) -> Result<(), StoreError> {
    let (status, counts, error) = match outcome {
        Ok(counts) => (RunStatus::Done, Some(serde_json::to_value(counts).expect("counts serialise")), None),
        Err(why) => (RunStatus::Failed, None, Some(why.to_owned())),
    };
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(status.as_str()))
        .col_expr(run::Column::Counts, Expr::value(counts))
        .col_expr(run::Column::Error, Expr::value(error))
        .col_expr(run::Column::FinishedAt, Expr::value(super::now()))
        .filter(run::Column::Id.eq(id.as_str()))
        .exec(db.orm())
        .await?;
    Ok(())
}

/// A mismatch as staff list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MismatchRecord {
    pub id: i64,
    pub supplier: String,
    pub reason: Reason,
    pub booking_id: Option<String>,
    pub supplier_reference: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    pub status: MismatchStatus,
    pub first_run: String,
    pub last_run: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn mismatch_from(m: mismatch::Model) -> Result<MismatchRecord, StoreError> {
    let row = || format!("reconciliation_mismatches/{}", m.id);
    Ok(MismatchRecord {
        id: m.id,
        reason: m.reason.parse().stored(&row)?,
        status: m.status.parse().stored(&row)?,
        supplier: m.supplier,
        booking_id: m.booking_id,
        supplier_reference: m.supplier_reference,
        ours: m.ours,
        theirs: m.theirs,
        first_run: m.first_run,
        last_run: m.last_run,
        note: m.note,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// What a mismatch is about: its booking, or the supplier's reference when bookhub has none.
pub fn subject(m: &Mismatch) -> String {
    match (&m.booking, &m.supplier_reference) {
        (Some(booking), _) => booking.to_string(),
        (None, Some(reference)) => format!("ref:{reference}"),
        (None, None) => String::new(),
    }
}

/// Codes one statement names (one bind each; SQLite takes 32,766).
const CHUNK: usize = 10_000;

/// Records what run `run` found for `supplier`, in one transaction: each mismatch found again
/// refreshes its open row, a new one opens a row, and an open one whose subject is in
/// `examined` but was not found again is closed. Returns how many were new.
pub async fn record(
    db: &Database,
    run: &ReconciliationRunId,
    supplier: &SupplierCode,
    found: &[Mismatch],
    examined: &[String],
) -> Result<u64, StoreError> {
    let txn = db.orm().begin().await?;
    let now = super::now();
    let mut opened = 0;
    for m in found {
        let subject = subject(m);
        let refreshed = mismatch::Entity::update_many()
            .col_expr(mismatch::Column::Ours, Expr::value(m.ours.clone()))
            .col_expr(mismatch::Column::Theirs, Expr::value(m.theirs.clone()))
            .col_expr(mismatch::Column::LastRun, Expr::value(run.as_str()))
            .col_expr(mismatch::Column::UpdatedAt, Expr::value(now))
            .filter(mismatch::Column::Supplier.eq(supplier.as_str()))
            .filter(mismatch::Column::Subject.eq(subject.as_str()))
            .filter(mismatch::Column::Reason.eq(m.reason.as_str()))
            .filter(mismatch::Column::Status.eq(MismatchStatus::Open.as_str()))
            .exec(&txn)
            .await?;
        if refreshed.rows_affected > 0 {
            continue;
        }
        // Staff resolved this very difference: it stays resolved while the values stand.
        let accepted = mismatch::Entity::find()
            .filter(mismatch::Column::Supplier.eq(supplier.as_str()))
            .filter(mismatch::Column::Subject.eq(subject.as_str()))
            .filter(mismatch::Column::Reason.eq(m.reason.as_str()))
            .filter(mismatch::Column::Status.eq(MismatchStatus::Resolved.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .any(|r| r.ours == m.ours && r.theirs == m.theirs);
        if accepted {
            continue;
        }
        let row = mismatch::ActiveModel {
            supplier: Set(supplier.to_string()),
            subject: Set(subject),
            reason: Set(m.reason.as_str().to_owned()),
            booking_id: Set(m.booking.as_ref().map(ToString::to_string)),
            supplier_reference: Set(m.supplier_reference.clone()),
            ours: Set(m.ours.clone()),
            theirs: Set(m.theirs.clone()),
            status: Set(MismatchStatus::Open.as_str().to_owned()),
            first_run: Set(run.to_string()),
            last_run: Set(run.to_string()),
            note: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        mismatch::Entity::insert(row).exec_without_returning(&txn).await?;
        opened += 1;
    }
    for subjects in examined.chunks(CHUNK) {
        mismatch::Entity::update_many()
            .col_expr(mismatch::Column::Status, Expr::value(MismatchStatus::Closed.as_str()))
            .col_expr(mismatch::Column::UpdatedAt, Expr::value(now))
            .filter(mismatch::Column::Supplier.eq(supplier.as_str()))
            .filter(mismatch::Column::Status.eq(MismatchStatus::Open.as_str()))
            .filter(mismatch::Column::LastRun.ne(run.as_str()))
            .filter(mismatch::Column::Subject.is_in(subjects.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(opened)
}

/// What resolving a mismatch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Done(MismatchRecord),
    /// It was not open (resolved already, or closed by a run): as it stands.
    NotOpen(MismatchRecord),
    NotFound,
}

/// Resolves the open mismatch `id` with `note`.
pub async fn resolve(db: &Database, id: i64, note: &str) -> Result<Resolved, StoreError> {
    let done = mismatch::Entity::update_many()
        .col_expr(mismatch::Column::Status, Expr::value(MismatchStatus::Resolved.as_str()))
        .col_expr(mismatch::Column::Note, Expr::value(note))
        .col_expr(mismatch::Column::UpdatedAt, Expr::value(super::now()))
        .filter(mismatch::Column::Id.eq(id))
        .filter(mismatch::Column::Status.eq(MismatchStatus::Open.as_str()))
        .exec(db.orm())
        .await?;
    let Some(row) = mismatch::Entity::find_by_id(id).one(db.orm()).await? else { return Ok(Resolved::NotFound) };
    let record = mismatch_from(row)?;
    Ok(if done.rows_affected == 1 { Resolved::Done(record) } else { Resolved::NotOpen(record) })
}

/// Mismatches, newest first, before the id `before`, in `status` and of `supplier` when given.
pub async fn mismatches(
    db: &Database,
    status: Option<MismatchStatus>,
    supplier: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<MismatchRecord>, StoreError> {
    let mut query = mismatch::Entity::find();
    if let Some(before) = before {
        query = query.filter(mismatch::Column::Id.lt(before));
    }
    if let Some(status) = status {
        query = query.filter(mismatch::Column::Status.eq(status.as_str()));
    }
    if let Some(supplier) = supplier {
        query = query.filter(mismatch::Column::Supplier.eq(supplier));
    }
    let rows = query.order_by_desc(mismatch::Column::Id).limit(limit).all(db.orm()).await?;
    rows.into_iter().map(mismatch_from).collect()
}

/// One line of a supplier's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub supplier_reference: String,
    pub client_reference: Option<String>,
    pub amount: domain::Money,
    /// `billed`, or another word the supplier uses (`credited`, …): only `billed` lines bill.
    pub status: String,
    pub billed_at: chrono::NaiveDate,
}

/// Stores an uploaded statement of `supplier` whole, in one transaction; its id.
pub async fn store_statement(
    db: &Database,
    supplier: &SupplierCode,
    digest: &str,
    lines: &[StatementLine],
) -> Result<(StatementId, Upload), StoreError> {
    let existing = || async {
        let found = statement_file::Entity::find()
            .filter(statement_file::Column::Supplier.eq(supplier.as_str()))
            .filter(statement_file::Column::Digest.eq(digest))
            .one(db.orm())
            .await?;
        found.map(|m| m.id.parse::<StatementId>().stored(&|| format!("statements/{}", m.id))).transpose()
    };
    if let Some(id) = existing().await? {
        return Ok((id, Upload::Again));
    }
    let id = StatementId::generate();
    let now = super::now();
    let txn = db.orm().begin().await?;
    let file = statement_file::ActiveModel {
        id: Set(id.to_string()),
        supplier: Set(supplier.to_string()),
        digest: Set(digest.to_owned()),
        lines: Set(i32::try_from(lines.len()).unwrap_or(i32::MAX)),
        uploaded_at: Set(now),
    };
    let inserted = statement_file::Entity::insert(file).on_conflict_do_nothing().exec_without_returning(&txn).await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        // The same file, uploaded at the same moment by someone else.
        drop(txn);
        return Ok((existing().await?.ok_or(StoreError::NoOutcome)?, Upload::Again));
    }
    for chunk in lines.chunks(500) {
        let rows = chunk.iter().map(|l| statement::ActiveModel {
            supplier: Set(supplier.to_string()),
            statement_id: Set(id.to_string()),
            supplier_reference: Set(l.supplier_reference.clone()),
            client_reference: Set(l.client_reference.clone()),
            amount: Set(l.amount.amount().to_string()),
            currency: Set(l.amount.currency().to_string()),
            status: Set(l.status.clone()),
            billed_at: Set(l.billed_at),
            uploaded_at: Set(now),
            ..Default::default()
        });
        statement::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    Ok((id, Upload::New))
}

/// Whether an uploaded statement was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    New,
    /// The same file was uploaded before: nothing more was stored.
    Again,
}

/// What `supplier`'s statements bill: their `billed` lines, every upload.
pub async fn billed(db: &Database, supplier: &SupplierCode) -> Result<Vec<Billed>, StoreError> {
    let rows = statement::Entity::find()
        .filter(statement::Column::Supplier.eq(supplier.as_str()))
        .filter(statement::Column::Status.eq("billed"))
        .order_by_asc(statement::Column::Id)
        .all(db.orm())
        .await?;
    rows.into_iter()
        .map(|m| {
            let row = || format!("statement_lines/{}", m.id);
            Ok(Billed {
                amount: domain::Money::parse(&m.amount, &m.currency).stored(&row)?,
                supplier_reference: m.supplier_reference,
                client_reference: m.client_reference,
            })
        })
        .collect()
}
