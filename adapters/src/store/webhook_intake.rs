//! The webhook intake: a group commit for `POST /v1/webhooks/suppliers/{code}`.
//!
//! A verified message is logged and, on its first delivery, its processing job queued, in one
//! commit shared with the other messages arriving meanwhile (the writers of
//! [`super::group_commit::GroupCommit`]); the supplier is answered only after that commit. On
//! Postgres a batch is one statement (data-modifying CTEs: the log rows, the repeats, the
//! jobs); on SQLite a short transaction.
//!
//! Deduplication stays with the database: the first delivery of (supplier, message id) takes
//! the unique `dedupe_key`; a repeat, whether already committed, in a concurrent batch or in the
//! same batch, is logged as a `duplicate` row with no `dedupe_key` and queues nothing.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::query_builder::Separated;
use sqlx::types::Json;
use sqlx::{Encode, PgPool, QueryBuilder, SqlitePool, Type};

use super::group_commit::{GroupCommit, GroupWrite, IntakeConfig};
use super::queue::{self, EnqueuedJob, FRESH_JOB_COLUMNS, PushJobs, bind_fresh_job};
use super::webhooks::{EventStatus, ReceivedWebhook, Recorded, Verification, headers_json};
use super::{Database, Pool, StoreError};

/// A verified message to log: the request, the supplier's message id (the dedupe key), and
/// the job that processes it when it is the first delivery.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    pub received: ReceivedWebhook,
    pub message_id: String,
    pub job: EnqueuedJob,
}

#[derive(Debug, Clone)]
pub struct WebhookIntake {
    commit: GroupCommit<WebhookWrite>,
}

impl WebhookIntake {
    /// Starts the writers; they stop when every handle to the intake is dropped.
    pub fn start(db: Database, config: IntakeConfig) -> Self {
        WebhookIntake { commit: GroupCommit::start(db, config) }
    }

    /// Logs a verified message; returns after the commit. The first delivery of its message id
    /// is logged `queued` with its processing job; a repeat is logged `duplicate`, nothing
    /// queued.
    pub async fn submit(&self, message: VerifiedWebhook) -> Result<Recorded, StoreError> {
        self.commit.submit(Row::from(message)).await
    }
}

/// A message as it is bound: what can be prepared before it reaches a writer is.
#[derive(Debug)]
struct Row {
    id: String,
    supplier: String,
    message_id: String,
    headers: Json<serde_json::Value>,
    body: Vec<u8>,
    received_at: DateTime<Utc>,
    /// The `detail` of its log row should it turn out to be a repeat.
    repeat_detail: String,
    job: EnqueuedJob,
}

impl From<VerifiedWebhook> for Row {
    fn from(m: VerifiedWebhook) -> Self {
        Row {
            id: m.received.id.to_string(),
            headers: Json(headers_json(&m.received.request.headers)),
            supplier: m.received.supplier,
            repeat_detail: format!("repeat of message {}", m.message_id),
            message_id: m.message_id,
            body: m.received.request.body,
            received_at: m.received.received_at,
            job: m.job,
        }
    }
}

struct WebhookWrite;

impl GroupWrite for WebhookWrite {
    type Item = Row;
    type Outcome = Recorded;
    const NAME: &'static str = "webhook";

    async fn write_batch(pool: &Pool, rows: &[Row]) -> Result<Vec<Recorded>, StoreError> {
        // The first row of a batch carrying a message id claims it; a later one is a repeat
        // whatever the database says.
        let mut seen = HashSet::new();
        let claims: Vec<bool> =
            rows.iter().map(|r| seen.insert((r.supplier.as_str(), r.message_id.as_str()))).collect();
        let inserted = match pool {
            Pool::Postgres(p) => insert_postgres(p, rows, &claims).await?,
            Pool::Sqlite(p) => insert_sqlite(p, rows, &claims).await?,
        };
        Ok(rows.iter().map(|r| if inserted.contains(&r.id) { Recorded::Queued } else { Recorded::Duplicate }).collect())
    }
}

/// The log's columns, in the order [`bind_event`] binds them.
const COLUMNS: &str =
    "id, supplier, event_id, dedupe_key, headers, body, verification, status, detail, replays, received_at";

/// Binds a log row: the message id as `dedupe_key` when the row claims it, else none (a repeat).
fn bind_event<DB>(row: &mut Separated<'_, DB, &'static str>, r: &Row, claims: bool)
where
    DB: sqlx::Database,
    String: Encode<'static, DB> + Type<DB>,
    Option<String>: Encode<'static, DB> + Type<DB>,
    Vec<u8>: Encode<'static, DB> + Type<DB>,
    i32: Encode<'static, DB> + Type<DB>,
    DateTime<Utc>: Encode<'static, DB> + Type<DB>,
    Json<serde_json::Value>: Encode<'static, DB> + Type<DB>,
{
    let (status, detail) =
        if claims { (EventStatus::Queued, None) } else { (EventStatus::Duplicate, Some(&r.repeat_detail)) };
    row.push_bind(r.id.clone())
        .push_bind(r.supplier.clone())
        .push_bind(Some(r.message_id.clone()))
        .push_bind(claims.then(|| r.message_id.clone()))
        .push_bind(r.headers.clone())
        .push_bind(r.body.clone())
        .push(format_args!("'{}'", Verification::Verified.as_str()))
        .push(format_args!("'{}'", status.as_str()))
        .push_bind(detail.cloned())
        .push_bind(0_i32)
        .push_bind(r.received_at);
}

/// Postgres: one statement, atomic without BEGIN/COMMIT, so one round trip per batch. `input`
/// holds each row as a claim (`dedupe_key` set) or a known repeat; `inserted` are the claims the
/// unique index let in; every other row is logged as a repeat; `fresh` are the inserted rows'
/// jobs. Claims are inserted in key order so that two batches never wait on each other's keys
/// in opposite orders.
async fn insert_postgres(pool: &PgPool, rows: &[Row], claims: &[bool]) -> Result<HashSet<String>, StoreError> {
    let mut sql = QueryBuilder::new(format!("WITH input ({COLUMNS}, repeat_detail, {FRESH_JOB_COLUMNS}) AS ("));
    sql.push_values(rows.iter().zip(claims), |mut row, (r, &claims)| {
        bind_event(&mut row, r, claims);
        row.push_bind(r.repeat_detail.clone());
        bind_fresh_job(&mut row, &r.job);
    });
    sql.push(format!(
        r#"),
        inserted AS (
            INSERT INTO webhook_events ({COLUMNS}) SELECT {COLUMNS} FROM input
            WHERE dedupe_key IS NOT NULL ORDER BY supplier, dedupe_key
            ON CONFLICT (supplier, dedupe_key) DO NOTHING
            RETURNING id),
        repeats AS (
            INSERT INTO webhook_events ({COLUMNS})
            SELECT id, supplier, event_id, NULL, headers, body, verification, '{duplicate}', repeat_detail, replays, received_at
            FROM input WHERE dedupe_key IS NOT NULL AND id NOT IN (SELECT id FROM inserted)
            UNION ALL
            SELECT {COLUMNS} FROM input WHERE dedupe_key IS NULL),
        fresh AS (SELECT input.* FROM input JOIN inserted USING (id)),
        queued AS ({jobs})
        SELECT id FROM inserted"#,
        duplicate = EventStatus::Duplicate.as_str(),
        jobs = queue::postgres_insert_from_fresh(),
    ));
    Ok(sql.build_query_scalar::<String>().fetch_all(pool).await?.into_iter().collect())
}

/// SQLite: one short transaction; round trips here are function calls.
async fn insert_sqlite(pool: &SqlitePool, rows: &[Row], claims: &[bool]) -> Result<HashSet<String>, StoreError> {
    let mut tx = pool.begin().await?;
    let claiming: Vec<&Row> = rows.iter().zip(claims).filter(|(_, c)| **c).map(|(r, _)| r).collect();
    let mut insert = QueryBuilder::new(format!("INSERT INTO webhook_events ({COLUMNS}) "));
    insert.push_values(&claiming, |mut row, r| bind_event(&mut row, r, true));
    insert.push(" ON CONFLICT (supplier, dedupe_key) DO NOTHING RETURNING id");
    let inserted: HashSet<String> =
        insert.build_query_scalar::<String>().fetch_all(&mut *tx).await?.into_iter().collect();

    let repeats: Vec<&Row> = rows.iter().filter(|r| !inserted.contains(&r.id)).collect();
    if !repeats.is_empty() {
        let mut insert = QueryBuilder::new(format!("INSERT INTO webhook_events ({COLUMNS}) "));
        insert.push_values(&repeats, |mut row, r| bind_event(&mut row, r, false));
        insert.build().execute(&mut *tx).await?;
    }
    let jobs: Vec<EnqueuedJob> = rows.iter().filter(|r| inserted.contains(&r.id)).map(|r| r.job.clone()).collect();
    if !jobs.is_empty() {
        PushJobs::push(&mut *tx, &jobs).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
