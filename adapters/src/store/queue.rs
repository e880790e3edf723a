//! The job queue lives in bookhub's own database (apalis-postgres / apalis-sqlite), so a job can
//! be written in the same transaction as the rows that call for it: nothing is lost between
//! a commit and the queue.

use apalis_core::task::builder::TaskBuilder;
use sqlx::query_builder::Separated;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgConnection, SqliteConnection};

use super::{Pool, QueueError, StoreError};

/// A job to enqueue: its queue, its JSON payload, and a key unique per queue so that the same
/// logical job can never be queued twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueuedJob {
    pub queue: &'static str,
    pub payload: Vec<u8>,
    pub idempotency_key: String,
    /// Due this long after it is queued; due at once when `None`.
    pub delay: Option<std::time::Duration>,
}

impl EnqueuedJob {
    pub fn new(queue: &'static str, payload: Vec<u8>, idempotency_key: String) -> Self {
        EnqueuedJob { queue, payload, idempotency_key, delay: None }
    }

    /// The same job, due `delay` from when it is queued.
    pub fn after(self, delay: std::time::Duration) -> Self {
        EnqueuedJob { delay: Some(delay), ..self }
    }
}

fn task(job: &EnqueuedJob) -> apalis_core::task::Task<Vec<u8>> {
    let builder = TaskBuilder::new(job.payload.clone()).idempotency_key(&job.idempotency_key);
    match job.delay {
        Some(delay) => builder.run_after(delay).build(),
        None => builder.build(),
    }
}

/// Runs of a job before it is given up (apalis's default for tasks built with defaults).
pub const MAX_ATTEMPTS: usize = 25;

/// The columns a batch statement's `input` rows carry for their job, in the order
/// [`bind_fresh_job`] binds them; [`postgres_insert_from_fresh`] reads them back.
pub(crate) const FRESH_JOB_COLUMNS: &str = "job_id, job_type, job, job_key";

/// Binds `job` as the [`FRESH_JOB_COLUMNS`] of one `input` row.
pub(crate) fn bind_fresh_job(row: &mut Separated<'_, sqlx::Postgres, &'static str>, job: &EnqueuedJob) {
    row.push_bind(ulid::Ulid::new().to_string())
        .push_bind(job.queue)
        .push_bind(job.payload.clone())
        .push_bind(job.idempotency_key.clone());
}

/// A statement that queues one apalis job per row of a CTE named `fresh`, whose
/// [`FRESH_JOB_COLUMNS`] carry the task. It writes what `apalis_postgres::queries::push_tasks`
/// writes for a task built with defaults (pending, [`MAX_ATTEMPTS`] attempts, priority 0, no
/// metadata, due now); a test holds the two side by side.
pub(crate) fn postgres_insert_from_fresh() -> String {
    format!(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata, idempotency_key) \
         SELECT job_id, job_type, job, 'Pending', 0, {MAX_ATTEMPTS}, now(), 0, ''::hstore, job_key FROM fresh"
    )
}

/// Queues jobs on whichever backend the transaction belongs to, in that transaction.
pub(crate) trait PushJobs {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError>;
}

impl PushJobs for PgConnection {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
        push_postgres(self, jobs).await
    }
}

impl PushJobs for SqliteConnection {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
        push_sqlite(self, jobs).await
    }
}

/// Creates or upgrades the queue's tables.
pub(crate) async fn setup(pool: &Pool) -> Result<(), StoreError> {
    match pool {
        Pool::Postgres(p) => Ok(apalis_postgres::PostgresStorage::setup(p).await.map_err(QueueError::from)?),
        Pool::Sqlite(p) => {
            // apalis's setup turns `synchronous` off on the connection it runs on; give it a
            // connection of its own so bookhub's connections keep fully synchronous commits.
            let own = SqlitePoolOptions::new().max_connections(1).connect_with((*p.connect_options()).clone()).await?;
            let result = apalis_sqlite::SqliteStorage::setup(&own).await;
            own.close().await;
            Ok(result.map_err(QueueError::from)?)
        }
    }
}

async fn push_postgres(conn: &mut PgConnection, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
    for queue in distinct_queues(jobs) {
        let tasks = jobs.iter().filter(|j| j.queue == queue).map(task).collect();
        apalis_postgres::queries::push_tasks(conn, queue, tasks).await.map_err(QueueError::from)?;
    }
    Ok(())
}

async fn push_sqlite(conn: &mut SqliteConnection, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
    for queue in distinct_queues(jobs) {
        let tasks: Vec<_> = jobs.iter().filter(|j| j.queue == queue).map(task).collect();
        apalis_sqlite::queries::push_tasks(conn, queue, &tasks).await.map_err(QueueError::from)?;
    }
    Ok(())
}

/// Queues jobs outside any other write, through apalis's own insert.
pub async fn push(pool: &Pool, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
    match pool {
        Pool::Postgres(p) => push_postgres(&mut *p.acquire().await?, jobs).await,
        Pool::Sqlite(p) => push_sqlite(&mut *p.acquire().await?, jobs).await,
    }
}

fn distinct_queues(jobs: &[EnqueuedJob]) -> Vec<&'static str> {
    let mut queues: Vec<_> = jobs.iter().map(|j| j.queue).collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

/// Queues jobs that may be queued already under the same key: a repeat is a no-op on both
/// databases (apalis-sqlite's insert skips it; apalis-postgres's fails on the unique key, so
/// Postgres gets the same row written here with `ON CONFLICT DO NOTHING`).
pub async fn push_once(pool: &Pool, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
    let Pool::Postgres(p) = pool else {
        return push(pool, jobs).await;
    };
    for job in jobs {
        sqlx::QueryBuilder::new(
            "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata, \
             idempotency_key) VALUES (",
        )
        .push_bind(ulid::Ulid::new().to_string())
        .push(", ")
        .push_bind(job.queue)
        .push(", ")
        .push_bind(&job.payload)
        .push(format!(", 'Pending', 0, {MAX_ATTEMPTS}, now() + make_interval(secs => "))
        .push_bind(job.delay.unwrap_or_default().as_secs_f64())
        .push("), 0, ''::hstore, ")
        .push_bind(&job.idempotency_key)
        .push(") ON CONFLICT (job_type, idempotency_key) DO NOTHING")
        .build()
        .execute(p)
        .await?;
    }
    Ok(())
}

/// How many jobs a queue holds, by status — for operations and tests.
pub async fn count(pool: &Pool, queue: &str, idempotency_key: Option<&str>) -> Result<i64, StoreError> {
    let n = match pool {
        Pool::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND ($2::text IS NULL OR idempotency_key = $2)",
            )
            .bind(queue)
            .bind(idempotency_key)
            .fetch_one(p)
            .await?
        }
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE job_type = ?1 AND (?2 IS NULL OR idempotency_key = ?2)")
                .bind(queue)
                .bind(idempotency_key)
                .fetch_one(p)
                .await?
        }
    };
    Ok(n)
}

/// Makes a job that is failing now wait `delay` before it is fetched again (apalis refetches a
/// failed job at once otherwise). SQLite keeps whole seconds, so its delays round up.
pub async fn retry_later(pool: &Pool, task_id: &str, delay: std::time::Duration) -> Result<(), StoreError> {
    match pool {
        Pool::Postgres(p) => {
            sqlx::query("UPDATE apalis.jobs SET run_at = now() + make_interval(secs => $2) WHERE id = $1")
                .bind(task_id)
                .bind(delay.as_secs_f64())
                .execute(p)
                .await?;
        }
        Pool::Sqlite(p) => {
            sqlx::query("UPDATE Jobs SET run_at = strftime('%s', 'now') + ?2 WHERE id = ?1")
                .bind(task_id)
                .bind(delay.as_secs_f64().ceil() as i64)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

/// A job as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The last run's result as apalis records it (an error message for a dead job).
    pub last_result: Option<String>,
}

/// Dead jobs: given up (killed), or failed with no attempt left. Newest first, after `after`.
pub async fn dead(pool: &Pool, after: Option<&str>, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    let rows = match pool {
        Pool::Postgres(p) => sqlx::query_as(
            "SELECT id, job_type AS queue, status, attempts::bigint AS attempts, max_attempts::bigint AS max_attempts, \
                 last_result::text AS last_result FROM apalis.jobs \
                 WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) \
                 AND ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?,
        Pool::Sqlite(p) => {
            sqlx::query_as(
                "SELECT id, job_type AS queue, status, attempts, max_attempts, last_result FROM Jobs \
                 WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) \
                 AND (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?
        }
    };
    Ok(rows)
}

/// How many dead jobs each queue holds, by queue name.
pub async fn dead_counts(pool: &Pool) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = match pool {
        Pool::Postgres(p) => {
            sqlx::query_as(
                "SELECT job_type, count(*) FROM apalis.jobs \
                 WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) \
                 GROUP BY job_type ORDER BY job_type",
            )
            .fetch_all(p)
            .await?
        }
        Pool::Sqlite(p) => {
            sqlx::query_as(
                "SELECT job_type, count(*) FROM Jobs \
                 WHERE (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) \
                 GROUP BY job_type ORDER BY job_type",
            )
            .fetch_all(p)
            .await?
        }
    };
    Ok(rows)
}

/// Gives a dead job a fresh set of attempts, due now. `false` when `id` is not a dead job.
pub async fn retry_dead(pool: &Pool, id: &str) -> Result<bool, StoreError> {
    let affected = match pool {
        Pool::Postgres(p) => sqlx::query(
            "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL, \
             done_at = NULL WHERE id = $1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))",
        )
        .bind(id)
        .execute(p)
        .await?
        .rows_affected(),
        Pool::Sqlite(p) => sqlx::query(
            "UPDATE Jobs SET status = 'Pending', attempts = 0, run_at = strftime('%s', 'now'), lock_by = NULL, \
             lock_at = NULL, done_at = NULL WHERE id = ?1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))",
        )
        .bind(id)
        .execute(p)
        .await?
        .rows_affected(),
    };
    Ok(affected == 1)
}
