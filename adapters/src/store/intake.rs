//! The booking intake: a group commit for `POST /v1/bookings`.
//!
//! Each request hands its rows to a writer and waits. A writer takes every request that is
//! waiting (up to `max_batch`), writes their idempotency records, bookings and submit jobs with
//! one multi-row statement per table in one transaction, and only after the commit answers
//! each request. Under load many requests share one commit; alone, a request waits for nobody.
//! On Postgres the batch is a single statement (one round trip); on SQLite a short transaction.
//!
//! The writers themselves ([`GroupCommit`]) know nothing of bookings: the webhook intake
//! (`super::webhook_intake`) runs its own batches through them.

use std::collections::HashSet;
use std::sync::Arc;

use domain::Booking;
use sqlx::QueryBuilder;
use sqlx::types::Json;
use tokio::sync::{Mutex, mpsc, oneshot};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::query_builder::Separated;
use sqlx::{Encode, PgPool, SqlitePool, Type};

use super::bookings::rooms_json;
use super::idempotency::IdempotencyRecord;
use super::queue::{self, EnqueuedJob};
use super::{Database, Pool, StoreError};

/// Everything one accepted booking writes.
#[derive(Debug, Clone)]
pub struct IntakeItem {
    pub booking: Booking,
    pub idempotency: IdempotencyRecord,
    pub submit_job: EnqueuedJob,
}

/// What the intake did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Booking, idempotency record and job are committed.
    Created,
    /// The agency already used this idempotency key: nothing was written.
    KeyTaken,
}

#[derive(Debug, Clone, Copy)]
pub struct IntakeConfig {
    /// Most requests written in one transaction.
    pub max_batch: usize,
    /// Writers working at once: one can commit while the next gathers its batch.
    pub writers: usize,
}

#[derive(Debug, Clone)]
pub struct BookingIntake {
    commit: GroupCommit<BookingWrite>,
}

impl BookingIntake {
    /// Starts the writers; they stop when every handle to the intake is dropped.
    pub fn start(db: Database, config: IntakeConfig) -> Self {
        BookingIntake { commit: GroupCommit::start(db, config) }
    }

    /// Writes the item durably (or finds its key taken); returns after the commit.
    pub async fn submit(&self, item: IntakeItem) -> Result<IntakeOutcome, StoreError> {
        self.commit.submit(item).await
    }
}

/// The bookings' batch: idempotency records, bookings and submit jobs.
struct BookingWrite;

impl GroupWrite for BookingWrite {
    type Item = IntakeItem;
    type Outcome = IntakeOutcome;
    const NAME: &'static str = "booking";

    async fn write_batch(pool: &Pool, items: &[IntakeItem]) -> Result<Vec<IntakeOutcome>, StoreError> {
        write_batch(pool, items).await
    }
}

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

/// A kind of write that concurrent requests can share a commit for: each request is one item,
/// and a batch of items is written durably by one call.
pub(crate) trait GroupWrite: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Outcome: Send + 'static;
    /// Names the intake in logs.
    const NAME: &'static str;

    /// Writes `items` in one commit and returns one outcome per item, in order; an error fails
    /// the whole batch (nothing of it is committed).
    fn write_batch(
        pool: &Pool,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>, StoreError>> + Send;
}

/// A group commit: each request hands its item to a writer and waits. A writer takes every
/// item that is waiting (up to `max_batch`), writes them with [`GroupWrite::write_batch`], and
/// only after the commit answers each request. Under load many requests share one commit;
/// alone, a request waits for nobody.
pub(crate) struct GroupCommit<W: GroupWrite> {
    queue: mpsc::Sender<(W::Item, Reply<W::Outcome>)>,
}

impl<W: GroupWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        GroupCommit { queue: self.queue.clone() }
    }
}

impl<W: GroupWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("intake", &W::NAME).finish_non_exhaustive()
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Starts the writers; they stop when every handle to the intake is dropped.
    pub(crate) fn start(db: Database, config: IntakeConfig) -> Self {
        let (queue, rx) = mpsc::channel(config.max_batch.max(1) * config.writers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.writers.max(1) {
            tokio::spawn(run_writer::<W>(db.clone(), rx.clone(), config.max_batch.max(1)));
        }
        GroupCommit { queue }
    }

    /// Writes the item durably; returns after the commit.
    pub(crate) async fn submit(&self, item: W::Item) -> Result<W::Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((item, reply)).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

type Inbox<W> = Arc<Mutex<mpsc::Receiver<(<W as GroupWrite>::Item, Reply<<W as GroupWrite>::Outcome>)>>>;

async fn run_writer<W: GroupWrite>(db: Database, rx: Inbox<W>, max_batch: usize) {
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        for (reply, outcome) in replies.into_iter().zip(write::<W>(db.pool(), &items).await) {
            // The requester may have gone (client hung up); the rows are committed regardless.
            let _ = reply.send(outcome);
        }
    }
}

/// Writes the batch. If the database refused the data, writes each item alone so that one bad
/// item fails only itself; if it could not be reached, the whole batch fails at once rather than
/// waiting out the outage item by item.
async fn write<W: GroupWrite>(pool: &Pool, items: &[W::Item]) -> Vec<Result<W::Outcome, StoreError>> {
    match W::write_batch(pool, items).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if items.len() == 1 || !matches!(e, StoreError::Sqlx(sqlx::Error::Database(_))) => {
            tracing::error!(intake = W::NAME, error = %e, batch.size = items.len(), "intake write failed");
            let cause = std::sync::Arc::new(e);
            items.iter().map(|_| Err(StoreError::Batch(cause.clone()))).collect()
        }
        Err(e) => {
            tracing::warn!(intake = W::NAME, error = %e, batch.size = items.len(), "batched write failed; writing items one by one");
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.push(match W::write_batch(pool, std::slice::from_ref(item)).await {
                    Ok(mut one) => one.pop().ok_or(StoreError::NoOutcome),
                    Err(e) => {
                        tracing::error!(intake = W::NAME, error = %e, batch.size = 1, "intake write failed");
                        Err(StoreError::Batch(std::sync::Arc::new(e)))
                    }
                });
            }
            outcomes
        }
    }
}

type Key = (String, String);

fn key_of(item: &IntakeItem) -> Key {
    (item.idempotency.agency_id.to_string(), item.idempotency.key.clone())
}

async fn write_batch(pool: &Pool, items: &[IntakeItem]) -> Result<Vec<IntakeOutcome>, StoreError> {
    // The first item carrying a key owns it; a later one in the same batch finds it taken.
    let mut seen = HashSet::new();
    let owns: Vec<bool> = items.iter().map(|item| seen.insert(key_of(item))).collect();
    let owners: Vec<&IntakeItem> = items.iter().zip(&owns).filter(|(_, owns)| **owns).map(|(item, _)| item).collect();
    let inserted = match pool {
        Pool::Postgres(p) => insert_postgres(p, &owners).await?,
        Pool::Sqlite(p) => insert_sqlite(p, &owners).await?,
    };
    Ok(items
        .iter()
        .zip(owns)
        .map(
            |(item, owns)| {
                if owns && inserted.contains(&key_of(item)) { IntakeOutcome::Created } else { IntakeOutcome::KeyTaken }
            },
        )
        .collect())
}

/// Columns of an idempotency record, in the order [`bind_idempotency`] binds them.
const IDEMPOTENCY_COLUMNS: &str =
    r#"agency_id, "key", request_hash, response_status, response_body, created_at, expires_at"#;
/// Columns of a booking, in the order [`bind_booking`] binds them.
const BOOKING_COLUMNS: &str = "id, agency_id, supplier, hotel_code, check_in, check_out, status, total_minor, currency, \
     client_reference, rooms, supplier_reference, status_reason, version, created_at, updated_at";

fn bind_idempotency<DB>(row: &mut Separated<'_, DB, &'static str>, r: &IdempotencyRecord)
where
    DB: sqlx::Database,
    String: Encode<'static, DB> + Type<DB>,
    i16: Encode<'static, DB> + Type<DB>,
    DateTime<Utc>: Encode<'static, DB> + Type<DB>,
{
    row.push_bind(r.agency_id.to_string())
        .push_bind(r.key.clone())
        .push_bind(r.request_hash.clone())
        .push_bind(r.response_status as i16)
        .push_bind(r.response_body.clone())
        .push_bind(r.created_at)
        .push_bind(r.expires_at);
}

fn bind_booking<DB>(row: &mut Separated<'_, DB, &'static str>, b: &Booking)
where
    DB: sqlx::Database,
    String: Encode<'static, DB> + Type<DB>,
    Option<String>: Encode<'static, DB> + Type<DB>,
    &'static str: Encode<'static, DB> + Type<DB>,
    i64: Encode<'static, DB> + Type<DB>,
    i32: Encode<'static, DB> + Type<DB>,
    NaiveDate: Encode<'static, DB> + Type<DB>,
    DateTime<Utc>: Encode<'static, DB> + Type<DB>,
    Json<serde_json::Value>: Encode<'static, DB> + Type<DB>,
{
    let d = &b.details;
    row.push_bind(b.id.to_string())
        .push_bind(b.agency_id.to_string())
        .push_bind(d.supplier.to_string())
        .push_bind(d.hotel_code.clone())
        .push_bind(d.check_in)
        .push_bind(d.check_out)
        .push_bind(b.status.as_str())
        .push_bind(d.total.minor_units())
        .push_bind(d.total.currency().code())
        .push_bind(d.client_reference.clone())
        .push_bind(Json(rooms_json(&d.rooms)))
        .push_bind(b.supplier_reference.clone())
        .push_bind(b.status_reason.clone())
        .push_bind(0_i32)
        .push_bind(b.created_at)
        .push_bind(b.updated_at);
}

/// Postgres: the whole batch is one statement — keys, bookings and jobs in data-modifying
/// CTEs, atomic without BEGIN/COMMIT — so one round trip. Under load every round trip is a
/// chance to wait for a CPU.
async fn insert_postgres(pool: &PgPool, items: &[&IntakeItem]) -> Result<HashSet<Key>, StoreError> {
    // `input` carries each item's idempotency record, its booking (as b_*) and its job.
    let booking_as = BOOKING_COLUMNS.split(", ").map(|c| format!("b_{}", c.trim())).collect::<Vec<_>>().join(", ");
    let mut sql = QueryBuilder::new(format!(
        "WITH input ({IDEMPOTENCY_COLUMNS}, {booking_as}, job_id, job_type, job, job_key) AS ("
    ));
    sql.push_values(items, |mut row, item| {
        bind_idempotency(&mut row, &item.idempotency);
        bind_booking(&mut row, &item.booking);
        let job = &item.submit_job;
        row.push_bind(ulid::Ulid::new().to_string())
            .push_bind(job.queue)
            .push_bind(job.payload.clone())
            .push_bind(job.idempotency_key.clone());
    });
    sql.push(format!(
        r#"),
        keys AS (
            INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS}) SELECT {IDEMPOTENCY_COLUMNS} FROM input
            ON CONFLICT (agency_id, "key") DO NOTHING
            RETURNING agency_id, "key"),
        fresh AS (SELECT input.* FROM input JOIN keys ON keys.agency_id = input.agency_id AND keys."key" = input."key"),
        booked AS (INSERT INTO bookings ({BOOKING_COLUMNS}) SELECT {booking_as} FROM fresh),
        queued AS ({})
        SELECT agency_id, "key" FROM keys"#,
        queue::POSTGRES_INSERT_FROM_FRESH
    ));
    Ok(sql.build_query_as().fetch_all(pool).await?.into_iter().collect())
}

/// SQLite: one transaction of a few statements; round trips here are function calls.
async fn insert_sqlite(pool: &SqlitePool, items: &[&IntakeItem]) -> Result<HashSet<Key>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut keys = QueryBuilder::new(format!("INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS}) "));
    keys.push_values(items, |mut row, item| bind_idempotency(&mut row, &item.idempotency));
    keys.push(r#" ON CONFLICT (agency_id, "key") DO NOTHING RETURNING agency_id, "key""#);
    let inserted: HashSet<Key> = keys.build_query_as().fetch_all(&mut *tx).await?.into_iter().collect();

    let fresh: Vec<&&IntakeItem> = items.iter().filter(|item| inserted.contains(&key_of(item))).collect();
    if !fresh.is_empty() {
        let mut bookings = QueryBuilder::new(format!("INSERT INTO bookings ({BOOKING_COLUMNS}) "));
        bookings.push_values(&fresh, |mut row, item| bind_booking(&mut row, &item.booking));
        bookings.build().execute(&mut *tx).await?;
        let jobs: Vec<EnqueuedJob> = fresh.iter().map(|item| item.submit_job.clone()).collect();
        queue::push_sqlite(&mut tx, &jobs).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
