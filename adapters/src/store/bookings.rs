//! Bookings, always read through a [`Scope`] so a handler cannot forget the tenant.

use domain::booking::{Room, TransitionError};
use domain::{AgencyId, Booking, BookingEvent, BookingId, BookingStatus, Currency, Money, NewBooking, Transition};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::entities::booking;
use super::queue::{self, EnqueuedJob};
use super::{Database, Pool, StoreError, with_pool};

/// Whose bookings a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One agency's own bookings.
    Agency(AgencyId),
    /// Every agency's (staff).
    All,
}

/// The scope of one agency's bookings.
pub fn for_agency(agency_id: &AgencyId) -> Scope {
    Scope::Agency(agency_id.clone())
}

impl Scope {
    fn select(&self) -> Select<booking::Entity> {
        match self {
            Scope::Agency(agency) => booking::Entity::find().filter(booking::Column::AgencyId.eq(agency.as_str())),
            Scope::All => booking::Entity::find(),
        }
    }
}

pub async fn find(db: &Database, scope: &Scope, id: &BookingId) -> Result<Option<Booking>, StoreError> {
    scope.select().filter(booking::Column::Id.eq(id.as_str())).one(db.orm()).await?.map(from_model).transpose()
}

/// One page of bookings, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Booking>,
    /// The last id of this page when there is a next one.
    pub next_after: Option<BookingId>,
}

/// Keyset pagination on the id (ids sort by creation time): a booking created while a client
/// pages sorts before its first page and never shifts the pages it has yet to read.
pub async fn page(
    db: &Database,
    scope: &Scope,
    status: Option<BookingStatus>,
    after: Option<&BookingId>,
    limit: u64,
) -> Result<Page, StoreError> {
    let mut query = scope.select();
    if let Some(status) = status {
        query = query.filter(booking::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(booking::Column::Id.lt(after.as_str()));
    }
    let mut items = query
        .order_by_desc(booking::Column::Id)
        .limit(limit + 1)
        .all(db.orm())
        .await?
        .into_iter()
        .map(from_model)
        .collect::<Result<Vec<_>, _>>()?;
    let next_after = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|b| b.id.clone())
    } else {
        None
    };
    Ok(Page { items, next_after })
}

/// What asking to cancel did.
#[derive(Debug)]
pub enum CancelOutcome {
    NotFound,
    /// The booking's status does not allow it (rejected, failed).
    Refused(TransitionError),
    /// Already cancelling or cancelled: nothing new happened.
    Unchanged(Booking),
    /// Now `cancellation_pending`, with the job that cancels it at the supplier queued.
    Requested(Booking),
}

/// Moves the booking to `cancellation_pending` and queues `job` in the same transaction.
/// Safe to call again: a repeat finds it already cancelling.
pub async fn request_cancellation(
    db: &Database,
    scope: &Scope,
    id: &BookingId,
    job: impl Fn(&Booking) -> EnqueuedJob,
) -> Result<CancelOutcome, StoreError> {
    // A concurrent change to the same booking makes the guarded update miss; read and try again.
    for _ in 0..3 {
        let found = scope.select().filter(booking::Column::Id.eq(id.as_str())).one(db.orm()).await?;
        let Some(model) = found else {
            return Ok(CancelOutcome::NotFound);
        };
        let expected_version = model.version;
        let mut booking = from_model(model)?;
        let next = match booking.status.apply(&BookingEvent::CancellationRequested) {
            Err(refused) => return Ok(CancelOutcome::Refused(refused)),
            Ok(Transition::Unchanged) => return Ok(CancelOutcome::Unchanged(booking)),
            Ok(Transition::Changed(next)) => next,
        };
        booking.status = next;
        booking.updated_at = super::now();
        if update_status_with_job(db.pool(), &booking, expected_version, &job(&booking)).await? {
            return Ok(CancelOutcome::Requested(booking));
        }
    }
    Err(StoreError::Conflict)
}

/// Writes the new status if the row is still at `expected_version`, and queues `job`, in one
/// transaction. `false` when someone else changed the booking first.
async fn update_status_with_job(
    pool: &Pool,
    booking: &Booking,
    expected_version: i32,
    job: &EnqueuedJob,
) -> Result<bool, StoreError> {
    with_pool!(pool, p => {
        let mut tx = p.begin().await?;
        let mut qb = sqlx::QueryBuilder::new("UPDATE bookings SET status = ");
        qb.push_bind(booking.status.as_str())
            .push(", version = version + 1, updated_at = ")
            .push_bind(booking.updated_at)
            .push(" WHERE id = ")
            .push_bind(booking.id.as_str())
            .push(" AND version = ")
            .push_bind(expected_version);
        if qb.build().execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        PushJobs::push(&mut *tx, std::slice::from_ref(job)).await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Queues jobs on whichever backend the transaction belongs to.
trait PushJobs {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError>;
}

impl PushJobs for sqlx::PgConnection {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
        queue::push_postgres(self, jobs).await
    }
}

impl PushJobs for sqlx::SqliteConnection {
    async fn push(&mut self, jobs: &[EnqueuedJob]) -> Result<(), StoreError> {
        queue::push_sqlite(self, jobs).await
    }
}

/// The row's JSON form of the rooms (bookhub's codes; guests' names and emails).
pub(crate) fn rooms_json(rooms: &[Room]) -> serde_json::Value {
    serde_json::to_value(rooms).expect("rooms serialise to JSON")
}

fn from_model(m: booking::Model) -> Result<Booking, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("bookings/{}", m.id), e.to_string());
    let currency: Currency = m.currency.parse().map_err(|e| corrupt(&e))?;
    Ok(Booking {
        id: m.id.parse().map_err(|e| corrupt(&e))?,
        agency_id: m.agency_id.parse().map_err(|e| corrupt(&e))?,
        status: m.status.parse().map_err(|e| corrupt(&e))?,
        details: NewBooking {
            supplier: m.supplier.parse().map_err(|e| corrupt(&e))?,
            hotel_code: m.hotel_code.clone(),
            check_in: m.check_in,
            check_out: m.check_out,
            rooms: serde_json::from_value(m.rooms.clone()).map_err(|e| corrupt(&e))?,
            total: Money::from_minor_units(m.total_minor, currency).map_err(|e| corrupt(&e))?,
            client_reference: m.client_reference.clone(),
        },
        supplier_reference: m.supplier_reference.clone(),
        status_reason: m.status_reason.clone(),
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
