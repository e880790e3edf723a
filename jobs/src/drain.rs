//! Runs every job that is due now, in the calling task, until none is left — for tests that
//! want a job's effect at a known point instead of polling for the background workers'.
//!
//! It works the queue the way an apalis worker does, through apalis's own queries: a worker
//! row of its own, `fetch_next` (which locks what it returns), the same handlers as
//! [`crate::workers`], and the same acknowledgement. A job that fails is rescheduled at least
//! [`RETRY_DELAY`] later, so it is not due again within the same drain; a job that cannot
//! succeed is killed, as the workers do.

use std::time::Duration;

use adapters::store::{Pool, queue};
use apalis_core::backend::TaskResult;
use apalis_core::task::Task;
use apalis_core::task::status::Status;
use apalis_core::worker::context::WorkerContext;

use crate::supplier::SupplierJobs;
use crate::workers::queue_names;
/// Jobs fetched at once from one queue.
const BATCH: usize = 10;
/// The least a failed job waits before it is due again (SQLite keeps whole seconds).
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Why the queue could not be worked (a job's own failure is recorded on the job, not here).
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("queue: {0}")]
    Queue(String),
    #[error("store: {0}")]
    Store(#[from] adapters::store::StoreError),
}

fn queue_error(e: impl std::fmt::Display) -> DrainError {
    DrainError::Queue(e.to_string())
}

/// Runs the due jobs of every handled queue, and those they make due, until none is left;
/// how many ran.
pub async fn run_due_jobs(jobs: &SupplierJobs) -> Result<usize, DrainError> {
    let pool = jobs.db.pool();
    let worker = WorkerContext::new(&format!("drain-{}-{}", std::process::id(), ulid::Ulid::new()));
    register(pool, &worker).await?;
    let mut ran = 0;
    loop {
        let before = ran;
        for name in queue_names() {
            for task in fetch(pool, name, &worker).await? {
                let outcome = run_one(jobs, name, &task).await;
                acknowledge(pool, &task, outcome, &worker).await?;
                ran += 1;
            }
        }
        if ran == before {
            return Ok(ran);
        }
    }
}

/// What became of one run.
struct Outcome {
    status: Status,
    error: Option<String>,
    retry_in: Option<Duration>,
}

async fn run_one(jobs: &SupplierJobs, name: &str, task: &Task<Vec<u8>>) -> Outcome {
    // The workers count the run before it starts.
    let attempt = task.ctx().attempt() + 1;
    let result = match jobs.run_job(name, &task.args, attempt).await {
        Ok(result) => result,
        Err(unparsable) => {
            tracing::error!(queue = name, error = %unparsable, "job given up");
            return Outcome { status: Status::Killed, error: Some(unparsable.to_string()), retry_in: None };
        }
    };
    match result {
        Ok(()) => Outcome { status: Status::Done, error: None, retry_in: None },
        Err(error) if error.gives_up(attempt) => {
            tracing::error!(queue = name, attempt, error = %crate::supplier::chain(&error), "job given up");
            Outcome { status: Status::Killed, error: Some(crate::supplier::chain(&error)), retry_in: None }
        }
        Err(error) => {
            tracing::warn!(queue = name, attempt, error = %crate::supplier::chain(&error), "job failed; retrying later");
            let retry_in = error.retry_after().unwrap_or_default().max(RETRY_DELAY);
            Outcome { status: Status::Failed, error: Some(crate::supplier::chain(&error)), retry_in: Some(retry_in) }
        }
    }
}

/// Adds the drain's worker row (jobs are locked by a registered worker).
async fn register(pool: &Pool, worker: &WorkerContext) -> Result<(), DrainError> {
    match pool {
        Pool::Postgres(p) => {
            sqlx::query(
                "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen) \
                 VALUES ($1, $2, 'PgStorage', '', now())",
            )
            .bind(worker.name())
            .bind(queue_names().collect::<Vec<_>>().join(","))
            .execute(p)
            .await
            .map_err(queue_error)?;
        }
        Pool::Sqlite(p) => {
            let config = apalis_sqlite::Config::default().queue(queue_names().collect::<Vec<_>>().join(","));
            apalis_sqlite::queries::register_worker(p, &config, worker, "SqliteStorage").await.map_err(queue_error)?;
        }
    }
    Ok(())
}

async fn fetch(pool: &Pool, name: &str, worker: &WorkerContext) -> Result<Vec<Task<Vec<u8>>>, DrainError> {
    match pool {
        Pool::Postgres(p) => {
            let config = apalis_postgres::Config::default().queue(name).batch_size(BATCH);
            let mut conn = p.acquire().await.map_err(queue_error)?;
            apalis_postgres::queries::fetch_next(&mut *conn, &config, worker).await.map_err(queue_error)
        }
        Pool::Sqlite(p) => {
            let config = apalis_sqlite::Config::default().queue(name).batch_size(BATCH);
            apalis_sqlite::queries::fetch_next(p, &config, worker).await.map_err(queue_error)
        }
    }
}

/// Records the run as a worker would, then moves a failed job's next run out.
async fn acknowledge(
    pool: &Pool,
    task: &Task<Vec<u8>>,
    outcome: Outcome,
    worker: &WorkerContext,
) -> Result<(), DrainError> {
    let task_id = task.ctx().task_id().cloned().ok_or_else(|| queue_error("a fetched job without an id"))?;
    let id = task_id.to_string();
    let result = TaskResult {
        task_id,
        attempt: task.ctx().attempt() + 1,
        status: outcome.status,
        result: outcome.error.map_or(Ok(serde_json::Value::Null), Err),
    };
    match pool {
        Pool::Postgres(p) => {
            let mut conn = p.acquire().await.map_err(queue_error)?;
            apalis_postgres::queries::handle_results(&mut *conn, &[&result], worker.name())
                .await
                .map_err(queue_error)?;
        }
        Pool::Sqlite(p) => {
            apalis_sqlite::queries::ack_tasks(p, &[&result], worker.name()).await.map_err(queue_error)?;
        }
    }
    if let Some(delay) = outcome.retry_in {
        queue::retry_later(pool, &id, delay).await?;
    }
    Ok(())
}
