//! The booking intake: `POST /v1/bookings` through a [`GroupCommit`].
//!
//! A batch writes its idempotency records, bookings and submit jobs with one multi-row
//! statement per table: on Postgres a single statement (one round trip), on SQLite a short
//! transaction. A key already taken writes nothing.

use std::collections::HashSet;

use domain::Booking;
use sqlx::QueryBuilder;
use sqlx::types::Json;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::query_builder::Separated;
use sqlx::{Encode, PgPool, SqlitePool, Type};

use super::bookings::rooms_json;
use super::group_commit::{GroupCommit, GroupWrite, IntakeConfig};
use super::idempotency::IdempotencyRecord;
use super::queue::{self, EnqueuedJob, FRESH_JOB_COLUMNS, PushJobs, bind_fresh_job};
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
    let mut sql =
        QueryBuilder::new(format!("WITH input ({IDEMPOTENCY_COLUMNS}, {booking_as}, {FRESH_JOB_COLUMNS}) AS ("));
    sql.push_values(items, |mut row, item| {
        bind_idempotency(&mut row, &item.idempotency);
        bind_booking(&mut row, &item.booking);
        bind_fresh_job(&mut row, &item.submit_job);
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
        queue::postgres_insert_from_fresh()
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
        PushJobs::push(&mut *tx, &jobs).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
