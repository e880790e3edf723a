//! The database: one pool per process, shared by sea-orm, the intake and the apalis queue.

use std::str::FromStr;
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub mod admin_sessions;
pub mod agencies;
pub mod agency_events;
pub mod agency_webhooks;
pub mod api_keys;
pub mod booking_intake;
pub mod bookings;
pub mod entities;
pub mod group_commit;
pub mod idempotency;
pub mod invoices;
pub mod operator_events;
pub mod queue;
pub mod reconciliation;
pub mod schedule;
pub mod vouchers;
pub mod webhook_intake;
pub mod webhooks;

/// What can go wrong in the store. Every variant keeps its cause as a value, so the caller
/// that handles it can log the whole chain; callers map these to their own errors and none is
/// shown raw to an API client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Orm(#[from] sea_orm::DbErr),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("job queue error: {0}")]
    Queue(#[from] QueueError),
    /// A stored row that bookhub wrote no longer parses: a bug or a hand edit, never retried.
    #[error("stored row {row} does not parse: {cause}")]
    Corrupt { row: String, cause: Box<dyn std::error::Error + Send + Sync> },
    /// Someone else changed the row between our read and our write; trying again is safe.
    #[error("the {resource} changed meanwhile; try again")]
    Conflict { resource: &'static str },
    /// A group-commit batch failed as a whole; every item in it carries the same cause.
    #[error("batched write failed: {0}")]
    Batch(#[source] std::sync::Arc<StoreError>),
    #[error("the batched write returned no outcome for an item")]
    NoOutcome,
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("unsupported database url (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
}

impl StoreError {
    /// The row `table/id` does not parse as what bookhub wrote.
    pub fn corrupt(row: String, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Corrupt { row, cause: cause.into() }
    }

    /// The database could not be reached or is overloaded, rather than refusing the data:
    /// worth a 503 and a retry, not a 500.
    pub fn is_unavailable(&self) -> bool {
        let sqlx = match self {
            StoreError::Sqlx(e) => Some(e),
            StoreError::Orm(sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))
            | StoreError::Orm(sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)))
            | StoreError::Orm(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))) => Some(&**e),
            StoreError::Batch(inner) => return inner.is_unavailable(),
            StoreError::WriterGone => return true,
            _ => None,
        };
        matches!(
            sqlx,
            Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_))
        ) || matches!(self, StoreError::Orm(sea_orm::DbErr::ConnectionAcquire(_)))
    }
}

/// Reading back a value bookhub stored: one that does not parse is [`StoreError::Corrupt`],
/// naming its row (`table/id`) and keeping the parse error.
pub(crate) trait Stored<T> {
    fn stored(self, row: &impl Fn() -> String) -> Result<T, StoreError>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> Stored<T> for Result<T, E> {
    fn stored(self, row: &impl Fn() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::corrupt(row(), e))
    }
}

/// The job queue (apalis) refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Postgres(#[from] apalis_postgres::Error),
    #[error(transparent)]
    Sqlite(#[from] apalis_sqlite::Error),
}

/// The raw pool behind sea-orm, for statements that must share a transaction with the queue.
#[derive(Debug, Clone)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete sqlx pool, once per backend: the same SQL
/// text (written with sqlx's `QueryBuilder`, which knows each backend's placeholders) type-checks
/// against each driver.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Postgres($p) => $body,
            $crate::store::Pool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The current time at the precision both databases keep (microseconds), so what an answer
/// shows is exactly what a later read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)
}

/// Cuts a keyset page fetched with `limit + 1` rows down to `limit`, and names the last row's
/// key when there is a next page.
pub fn next_page<T, K>(items: &mut Vec<T>, limit: u64, key: impl Fn(&T) -> K) -> Option<K> {
    if items.len() as u64 <= limit {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(key)
}

/// The advisory lock key that serialises migrations on Postgres ("bookhub" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6f6f_6b68_7562;

#[derive(Debug, Clone)]
pub struct Database {
    orm: DatabaseConnection,
    pool: Pool,
}

impl Database {
    /// Connects to `sqlite://…` (created if missing, WAL, fully synchronous commits) or
    /// `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(
                SqlitePoolOptions::new().max_connections(max_connections).connect_with(sqlite_options(url)?).await?,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(PgConnectOptions::from_str(url)?)
                    .await?,
            )
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let orm = match &pool {
            Pool::Postgres(p) => SqlxPostgresConnector::from_sqlx_postgres_pool(p.clone()),
            Pool::Sqlite(p) => SqlxSqliteConnector::from_sqlx_sqlite_pool(p.clone()),
        };
        Ok(Database { orm, pool })
    }

    pub fn orm(&self) -> &DatabaseConnection {
        &self.orm
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Applies bookhub's migrations and the queue's own. On Postgres, processes starting
    /// together take turns (an advisory lock): the first migrates, the others find it done.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return self.migrate_unlocked().await;
        };
        let mut lock = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *lock).await?;
        let result = self.migrate_unlocked().await;
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *lock).await?;
        result
    }

    async fn migrate_unlocked(&self) -> Result<(), StoreError> {
        Migrator::up(&self.orm, None).await?;
        queue::setup(&self.pool).await?;
        tracing::debug!("schema and job queue are up to date");
        Ok(())
    }

    /// How many of bookhub's migrations are not applied yet (0 when ready).
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        Ok(Migrator::get_pending_migrations(&self.orm).await?.len())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.orm.ping().await?)
    }

    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await)
    }
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Durability before acknowledgement: every commit reaches the disk.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true))
}
