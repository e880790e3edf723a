//! Bookings, always read through a [`Scope`] so a handler cannot forget the tenant.

use domain::booking::{CancelledBy, LATE_CONFIRMATION_REASON, Room, Taken, TransitionError};
use domain::{
    AgencyEventId, AgencyEventType, AgencyId, Booking, BookingEvent, BookingId, BookingStatus, Currency, Money,
    NewBooking, SupplierCode, Transition,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::agency_events::{FeedOrder, NEW_EVENT_COLUMNS, NewEvent, snapshot};
use super::entities::booking;
use super::queue::{EnqueuedJob, PushJobs};
use super::{Database, Pool, StoreError, Stored, with_pool};

/// Whose bookings a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One agency's own bookings.
    Agency(AgencyId),
    /// Every agency's (staff).
    All,
    /// The bookings made with one supplier: what that supplier's events may touch.
    Supplier(SupplierCode),
}

/// The bookings a supplier's events may change.
pub fn for_supplier(code: &SupplierCode) -> Scope {
    Scope::Supplier(code.clone())
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
            Scope::Supplier(code) => booking::Entity::find().filter(booking::Column::Supplier.eq(code.as_str())),
        }
    }
}

pub async fn find(db: &Database, scope: &Scope, id: &BookingId) -> Result<Option<Booking>, StoreError> {
    Ok(find_versioned(db, scope, id).await?.map(|(booking, _)| booking))
}

/// The booking and its version (which every change increments): what a job that names a
/// version compares with.
pub async fn find_versioned(
    db: &Database,
    scope: &Scope,
    id: &BookingId,
) -> Result<Option<(Booking, i32)>, StoreError> {
    let Some(model) = scope.select().filter(booking::Column::Id.eq(id.as_str())).one(db.orm()).await? else {
        return Ok(None);
    };
    let version = model.version;
    Ok(Some((from_model(model)?, version)))
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
    let next_after = super::next_page(&mut items, limit, |b| b.id.clone());
    Ok(Page { items, next_after })
}

/// The bookings (newest first, at most `limit`) whose id, client reference or supplier
/// reference is exactly `term`: what staff search by.
pub async fn search(db: &Database, scope: &Scope, term: &str, limit: u64) -> Result<Vec<Booking>, StoreError> {
    let matches = sea_orm::Condition::any()
        .add(booking::Column::Id.eq(term))
        .add(booking::Column::ClientReference.eq(term))
        .add(booking::Column::SupplierReference.eq(term));
    let rows = scope.select().filter(matches).order_by_desc(booking::Column::Id).limit(limit).all(db.orm()).await?;
    rows.into_iter().map(from_model).collect()
}

/// The bookings made with `supplier` that changed in `[from, to]`, and those the supplier
/// names (by bookhub id or its own reference) whenever they changed: what a reconciliation
/// compares with the supplier's list.
pub async fn for_reconciliation(
    db: &Database,
    supplier: &SupplierCode,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    named: &[&str],
) -> Result<Vec<Booking>, StoreError> {
    let scope = for_supplier(supplier);
    let mut rows = scope
        .select()
        .filter(booking::Column::UpdatedAt.between(from, to))
        .order_by_asc(booking::Column::Id)
        .all(db.orm())
        .await?;
    // One bind per code, twice: well within SQLite's 32,766.
    for chunk in named.chunks(10_000) {
        let either = sea_orm::Condition::any()
            .add(booking::Column::Id.is_in(chunk.iter().copied()))
            .add(booking::Column::SupplierReference.is_in(chunk.iter().copied()));
        rows.extend(scope.select().filter(either).all(db.orm()).await?);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows.into_iter().map(from_model).collect()
}

/// Every agency's bookings made in `[from, to)`, oldest first: a finance report's period.
pub async fn made_between(
    db: &Database,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Booking>, StoreError> {
    let rows = Scope::All
        .select()
        .filter(booking::Column::CreatedAt.gte(from))
        .filter(booking::Column::CreatedAt.lt(to))
        .order_by_asc(booking::Column::Id)
        .all(db.orm())
        .await?;
    rows.into_iter().map(from_model).collect()
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

/// Moves the booking to `cancellation_pending` and queues `job` in the same transaction,
/// recording `by` (staff or an admin; `None` for the booking's agency) with the change.
/// Safe to call again: a repeat finds it already cancelling, and keeps who asked first.
pub async fn request_cancellation(
    db: &Database,
    scope: &Scope,
    id: &BookingId,
    by: Option<&CancelledBy>,
    jobs: impl Fn(&Change<'_>) -> Vec<EnqueuedJob>,
) -> Result<CancelOutcome, StoreError> {
    let event = &BookingEvent::CancellationRequested;
    Ok(match apply_event_by(db, scope, id, event, by, jobs).await? {
        Applied::NotFound => CancelOutcome::NotFound,
        Applied::Refused(refused, _) => CancelOutcome::Refused(refused),
        Applied::Unchanged(b) | Applied::CancelQueued(b) => CancelOutcome::Unchanged(b),
        Applied::Changed(b) => CancelOutcome::Requested(b),
    })
}

/// What applying an event to a booking did.
#[derive(Debug)]
pub enum Applied {
    NotFound,
    /// The booking's status cannot take the event; the booking as it stands.
    Refused(TransitionError, Booking),
    /// Nothing changed (a repeat, or overtaken by a later state) — except perhaps the supplier's
    /// reference, which is recorded whenever an event brings a new one.
    Unchanged(Booking),
    /// The status changed, and the jobs `follow_up` asked for are queued in the same transaction.
    Changed(Booking),
    /// Still `cancelled`, but the supplier reported holding it under a reference bookhub did not
    /// know: the reference and the reason are recorded, and the jobs `follow_up` asked for (the
    /// cancel at the supplier) are queued in the same transaction.
    CancelQueued(Booking),
}

/// A change as the jobs that follow it see it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The booking after the change.
    pub booking: &'a Booking,
    pub transition: Transition,
    /// The booking's version after the change.
    pub version: i32,
    /// The agency event a status change makes (none for [`Transition::CancelAtSupplier`]).
    pub event: Option<&'a AgencyEventId>,
}

/// Applies `event` to the booking through its state machine. A status change (or a
/// [`Transition::CancelAtSupplier`] with a new reference), the agency event a status change
/// makes, and the jobs `follow_up` returns for the change commit together; a concurrent change
/// to the same booking is detected by its version and the event is applied again to the fresh
/// row.
pub async fn apply_event(
    db: &Database,
    scope: &Scope,
    id: &BookingId,
    event: &BookingEvent,
    follow_up: impl Fn(&Change<'_>) -> Vec<EnqueuedJob>,
) -> Result<Applied, StoreError> {
    apply_event_by(db, scope, id, event, None, follow_up).await
}

/// [`apply_event`], recording `by` as the booking's canceller when the status changes.
async fn apply_event_by(
    db: &Database,
    scope: &Scope,
    id: &BookingId,
    event: &BookingEvent,
    by: Option<&CancelledBy>,
    follow_up: impl Fn(&Change<'_>) -> Vec<EnqueuedJob>,
) -> Result<Applied, StoreError> {
    for _ in 0..5 {
        let found = scope.select().filter(booking::Column::Id.eq(id.as_str())).one(db.orm()).await?;
        let Some(model) = found else {
            return Ok(Applied::NotFound);
        };
        let expected_version = model.version;
        let mut booking = from_model(model)?;
        let Taken { transition, new_reference, other_reference } = match booking.take(event) {
            Err(refused) => return Ok(Applied::Refused(refused, booking)),
            Ok(taken) => taken,
        };
        if other_reference {
            tracing::warn!(booking.id = %booking.id, "an event carries a different supplier reference; kept the first");
        }
        if matches!(transition, Transition::Unchanged) && new_reference.is_none() {
            return Ok(Applied::Unchanged(booking));
        }
        booking.updated_at = super::now();
        if new_reference.is_some() {
            booking.supplier_reference = new_reference;
        }
        let version = expected_version + 1;
        let (jobs, agency_event) = match transition {
            Transition::Unchanged => (Vec::new(), None),
            Transition::Changed(next) => {
                booking.status = next;
                booking.status_reason = event.reason().map(str::to_owned);
                if let Some(by) = by {
                    booking.cancelled_by = Some(by.clone());
                }
                let made = NewEvent {
                    id: AgencyEventId::generate(),
                    event_type: AgencyEventType::for_status(next),
                    snapshot: snapshot(&to_model(&booking, version)),
                };
                let change = Change { booking: &booking, transition, version, event: Some(&made.id) };
                (follow_up(&change), Some(made))
            }
            Transition::CancelAtSupplier => {
                tracing::warn!(booking.id = %booking.id, "the supplier took a cancelled booking; cancelling it there");
                booking.status_reason = Some(LATE_CONFIRMATION_REASON.to_owned());
                (follow_up(&Change { booking: &booking, transition, version, event: None }), None)
            }
        };
        if update_with_jobs(db.pool(), &booking, expected_version, agency_event.as_ref(), &jobs).await? {
            return Ok(match transition {
                Transition::Changed(_) => Applied::Changed(booking),
                Transition::Unchanged => Applied::Unchanged(booking),
                Transition::CancelAtSupplier => Applied::CancelQueued(booking),
            });
        }
    }
    Err(StoreError::Conflict { resource: "booking" })
}

/// Writes the booking's status, reason and reference if the row is still at
/// `expected_version`, its agency event, and queues `jobs`, in one transaction. `false` when
/// someone else changed the booking first.
async fn update_with_jobs(
    pool: &Pool,
    booking: &Booking,
    expected_version: i32,
    agency_event: Option<&NewEvent>,
    jobs: &[EnqueuedJob],
) -> Result<bool, StoreError> {
    with_pool!(pool, p => {
        let mut tx = p.begin().await?;
        let mut qb = sqlx::QueryBuilder::new("UPDATE bookings SET status = ");
        qb.push_bind(booking.status.as_str())
            .push(", status_reason = ")
            .push_bind(booking.status_reason.as_deref())
            .push(", supplier_reference = ")
            .push_bind(booking.supplier_reference.as_deref())
            .push(", cancelled_by = ")
            .push_bind(cancelled_by_json(booking))
            .push(", version = version + 1, updated_at = ")
            .push_bind(booking.updated_at)
            .push(" WHERE id = ")
            .push_bind(booking.id.as_str())
            .push(" AND version = ")
            .push_bind(expected_version);
        if qb.build().execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(made) = agency_event {
            FeedOrder::hold(&mut *tx, &booking.agency_id).await?;
            let mut insert = sqlx::QueryBuilder::new(format!("INSERT INTO agency_events ({NEW_EVENT_COLUMNS}) "));
            insert.push_values([made], |mut row, made| {
                row.push_bind(made.id.as_str())
                    .push_bind(booking.agency_id.as_str())
                    .push_bind(booking.id.as_str())
                    .push_bind(expected_version + 1)
                    .push_bind(made.event_type.as_str())
                    .push_bind(sqlx::types::Json(&made.snapshot))
                    .push_bind(booking.updated_at)
                    .push_bind(domain::Delivery::Pending.as_str())
                    .push_bind(0_i32);
            });
            insert.build().execute(&mut *tx).await?;
        }
        if !jobs.is_empty() {
            PushJobs::push(&mut *tx, jobs).await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// The row's JSON form of who cancelled the booking.
fn cancelled_by_json(booking: &Booking) -> Option<sqlx::types::Json<serde_json::Value>> {
    let by = booking.cancelled_by.as_ref()?;
    Some(sqlx::types::Json(serde_json::json!({"role": by.role, "key_id": by.key_id})))
}

/// The row's JSON form of the rooms (bookhub's codes; guests' names and emails).
pub(crate) fn rooms_json(rooms: &[Room]) -> serde_json::Value {
    serde_json::to_value(rooms).expect("rooms serialise to JSON")
}

/// The row `booking` is stored as at `version`.
fn to_model(b: &Booking, version: i32) -> booking::Model {
    let d = &b.details;
    booking::Model {
        id: b.id.to_string(),
        agency_id: b.agency_id.to_string(),
        supplier: d.supplier.to_string(),
        hotel_code: d.hotel_code.clone(),
        check_in: d.check_in,
        check_out: d.check_out,
        status: b.status.as_str().to_owned(),
        total_minor: d.total.minor_units(),
        currency: d.total.currency().to_string(),
        client_reference: d.client_reference.clone(),
        rooms: rooms_json(&d.rooms),
        supplier_reference: b.supplier_reference.clone(),
        status_reason: b.status_reason.clone(),
        cancelled_by: cancelled_by_json(b).map(|j| j.0),
        version,
        created_at: b.created_at,
        updated_at: b.updated_at,
    }
}

pub(crate) fn from_model(m: booking::Model) -> Result<Booking, StoreError> {
    let row = || format!("bookings/{}", m.id);
    let currency: Currency = m.currency.parse().stored(&row)?;
    Ok(Booking {
        id: m.id.parse().stored(&row)?,
        agency_id: m.agency_id.parse().stored(&row)?,
        status: m.status.parse().stored(&row)?,
        details: NewBooking {
            supplier: m.supplier.parse().stored(&row)?,
            hotel_code: m.hotel_code.clone(),
            check_in: m.check_in,
            check_out: m.check_out,
            rooms: serde_json::from_value(m.rooms.clone()).stored(&row)?,
            total: Money::from_minor_units(m.total_minor, currency).stored(&row)?,
            client_reference: m.client_reference.clone(),
        },
        supplier_reference: m.supplier_reference.clone(),
        status_reason: m.status_reason.clone(),
        cancelled_by: m.cancelled_by.clone().map(serde_json::from_value).transpose().stored(&row)?,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
