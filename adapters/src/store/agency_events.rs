//! Agency events: one per booking change, written in the change's own transaction (see
//! [`super::bookings::apply_event`]), so the feed misses no change and holds none twice. Each
//! keeps the booking as it stood right after its change. Every read goes through an
//! [`EventScope`], so an agency sees only its own.

use chrono::{DateTime, Utc};
use domain::{AgencyEventId, AgencyEventType, AgencyId, Booking, BookingId, Delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use super::entities::{agency_event, booking, webhook_attempt};
use super::{Database, StoreError, Stored, with_pool};

/// Whose events a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    Agency(AgencyId),
    /// Every agency's (staff).
    All,
    /// No one's.
    None,
}

impl EventScope {
    fn select(&self) -> Select<agency_event::Entity> {
        match self {
            EventScope::Agency(agency) => {
                agency_event::Entity::find().filter(agency_event::Column::AgencyId.eq(agency.as_str()))
            }
            EventScope::All => agency_event::Entity::find(),
            EventScope::None => agency_event::Entity::find().filter(agency_event::Column::Seq.lt(0)),
        }
    }
}

/// A booking change as its agency is told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgencyEvent {
    /// The feed's cursor: later events have larger ones.
    pub seq: i64,
    pub id: AgencyEventId,
    pub agency_id: AgencyId,
    pub event_type: AgencyEventType,
    /// The booking right after the change, at `booking_version`.
    pub booking: Booking,
    pub booking_version: i32,
    pub created_at: DateTime<Utc>,
    pub delivery: Delivery,
    /// Webhook attempts so far.
    pub attempts: i32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub emailed_at: Option<DateTime<Utc>>,
}

/// The row of the event a change makes, bound in the change's transaction.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub id: AgencyEventId,
    pub event_type: AgencyEventType,
    pub snapshot: serde_json::Value,
}

/// The columns [`NewEvent`] fills, in the order `update_with_jobs` binds them.
pub(crate) const NEW_EVENT_COLUMNS: &str =
    "id, agency_id, booking_id, booking_version, event_type, booking, created_at, delivery, attempts";

/// Keeps an agency's feed in commit order. A Postgres sequence hands out `seq` at insert, not at
/// commit: two changes committing in the other order would let a poller read past the
/// smaller `seq` before it commits, and miss it for good. Each change of an agency's booking
/// therefore takes the agency's feed lock (held until its transaction ends) before it numbers
/// its event. SQLite has one writer at a time: its order is commit order already.
pub(crate) trait FeedOrder {
    async fn hold(&mut self, agency: &AgencyId) -> Result<(), StoreError>;
}

/// The advisory lock class of agency feeds ("feed" in ASCII); the agency id is the second key.
const FEED_LOCK: i32 = 0x6665_6564;

impl FeedOrder for sqlx::PgConnection {
    async fn hold(&mut self, agency: &AgencyId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(FEED_LOCK)
            .bind(agency.as_str())
            .execute(self)
            .await?;
        Ok(())
    }
}

impl FeedOrder for sqlx::SqliteConnection {
    async fn hold(&mut self, _agency: &AgencyId) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The booking row as an event keeps it.
pub(crate) fn snapshot(row: &booking::Model) -> serde_json::Value {
    serde_json::to_value(row).expect("a booking row serialises to JSON")
}

fn from_model(m: agency_event::Model) -> Result<AgencyEvent, StoreError> {
    let row = || format!("agency_events/{}", m.id);
    let booking_row: booking::Model = serde_json::from_value(m.booking.clone()).stored(&row)?;
    Ok(AgencyEvent {
        seq: m.seq,
        id: m.id.parse().stored(&row)?,
        agency_id: m.agency_id.parse().stored(&row)?,
        event_type: m.event_type.parse().stored(&row)?,
        booking: super::bookings::from_model(booking_row)?,
        booking_version: m.booking_version,
        created_at: m.created_at,
        delivery: m.delivery.parse().stored(&row)?,
        attempts: m.attempts,
        delivered_at: m.delivered_at,
        emailed_at: m.emailed_at,
    })
}

pub async fn find(db: &Database, scope: &EventScope, id: &AgencyEventId) -> Result<Option<AgencyEvent>, StoreError> {
    scope.select().filter(agency_event::Column::Id.eq(id.as_str())).one(db.orm()).await?.map(from_model).transpose()
}

/// One page of the feed, oldest first, after the cursor `after`; the next cursor is the last
/// event's `seq`.
pub async fn feed(
    db: &Database,
    scope: &EventScope,
    after: Option<i64>,
    limit: u64,
) -> Result<(Vec<AgencyEvent>, Option<i64>), StoreError> {
    let mut query = scope.select();
    if let Some(after) = after {
        query = query.filter(agency_event::Column::Seq.gt(after));
    }
    let mut items = query
        .order_by_asc(agency_event::Column::Seq)
        .limit(limit + 1)
        .all(db.orm())
        .await?
        .into_iter()
        .map(from_model)
        .collect::<Result<Vec<_>, _>>()?;
    let next = super::next_page(&mut items, limit, |e| e.seq);
    Ok((items, next))
}

/// The newest events (at most `limit`), only those in `delivery` when given: the deliveries
/// staff look after.
pub async fn recent(db: &Database, delivery: Option<Delivery>, limit: u64) -> Result<Vec<AgencyEvent>, StoreError> {
    let mut query = agency_event::Entity::find();
    if let Some(delivery) = delivery {
        query = query.filter(agency_event::Column::Delivery.eq(delivery.as_str()));
    }
    let rows = query.order_by_desc(agency_event::Column::Seq).limit(limit).all(db.orm()).await?;
    rows.into_iter().map(from_model).collect()
}

/// A booking's newest `limit` events, oldest first.
pub async fn for_booking(db: &Database, booking: &BookingId, limit: u64) -> Result<Vec<AgencyEvent>, StoreError> {
    let rows = agency_event::Entity::find()
        .filter(agency_event::Column::BookingId.eq(booking.as_str()))
        .order_by_desc(agency_event::Column::Seq)
        .limit(limit)
        .all(db.orm())
        .await?;
    rows.into_iter().rev().map(from_model).collect()
}

/// Whether `booking`'s history holds an event of `event_type` (its confirmation, say).
pub async fn has_happened(db: &Database, booking: &BookingId, event_type: AgencyEventType) -> Result<bool, StoreError> {
    let found = agency_event::Entity::find()
        .filter(agency_event::Column::BookingId.eq(booking.as_str()))
        .filter(agency_event::Column::EventType.eq(event_type.as_str()))
        .count(db.orm())
        .await?;
    Ok(found > 0)
}

/// Whether a later change of the same booking made an event after `event`.
pub async fn is_superseded(db: &Database, event: &AgencyEvent) -> Result<bool, StoreError> {
    let newer = agency_event::Entity::find()
        .filter(agency_event::Column::BookingId.eq(event.booking.id.as_str()))
        .filter(agency_event::Column::BookingVersion.gt(event.booking_version))
        .count(db.orm())
        .await?;
    Ok(newer > 0)
}

/// Records where the event's delivery stands after an attempt (or the decision not to make one).
pub async fn set_delivery(
    db: &Database,
    id: &AgencyEventId,
    delivery: Delivery,
    attempts: i32,
) -> Result<(), StoreError> {
    let delivered_at = (delivery == Delivery::Delivered).then(super::now);
    agency_event::Entity::update_many()
        .col_expr(agency_event::Column::Delivery, Expr::value(delivery.as_str()))
        .col_expr(agency_event::Column::Attempts, Expr::value(attempts))
        .col_expr(agency_event::Column::DeliveredAt, Expr::value(delivered_at))
        .filter(agency_event::Column::Id.eq(id.as_str()))
        .exec(db.orm())
        .await?;
    Ok(())
}

/// Marks the event's email as sent; `false` when it already was (by an earlier run).
pub async fn mark_emailed(db: &Database, id: &AgencyEventId) -> Result<bool, StoreError> {
    let updated = agency_event::Entity::update_many()
        .col_expr(agency_event::Column::EmailedAt, Expr::value(super::now()))
        .filter(agency_event::Column::Id.eq(id.as_str()))
        .filter(agency_event::Column::EmailedAt.is_null())
        .exec(db.orm())
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Events a recover sends again, at most this many per call.
pub const RECOVER_BATCH: u64 = 500;

/// The agency's events since `since` that were never delivered (`failed`, `no_endpoint`) and
/// are still the newest of their booking — an overtaken one would tell an older status after
/// a newer one — after `after_seq`, oldest first, at most [`RECOVER_BATCH`]: `(seq, id,
/// attempts)`.
pub async fn undelivered(
    db: &Database,
    agency: &AgencyId,
    since: DateTime<Utc>,
    after_seq: i64,
) -> Result<Vec<(i64, AgencyEventId, i32)>, StoreError> {
    let rows: Vec<(i64, String, i32)> = with_pool!(db.pool(), p => {
        sqlx::QueryBuilder::new("SELECT e.seq, e.id, e.attempts FROM agency_events e WHERE e.agency_id = ")
            .push_bind(agency.as_str())
            .push(" AND e.created_at >= ")
            .push_bind(since)
            .push(" AND e.seq > ")
            .push_bind(after_seq)
            .push(" AND e.delivery IN ('failed', 'no_endpoint') AND NOT EXISTS (SELECT 1 FROM agency_events n \
                   WHERE n.booking_id = e.booking_id AND n.booking_version > e.booking_version) ORDER BY e.seq LIMIT ")
            .push_bind(RECOVER_BATCH as i64)
            .build_query_as()
            .fetch_all(p)
            .await?
    });
    rows.into_iter()
        .map(|(seq, id, attempts)| Ok((seq, id.parse().stored(&|| format!("agency_events/{id}"))?, attempts)))
        .collect()
}

/// Marks recovered events `pending` again (those still undelivered: one delivered meanwhile
/// keeps its state).
pub async fn reopen(db: &Database, ids: &[AgencyEventId]) -> Result<(), StoreError> {
    agency_event::Entity::update_many()
        .col_expr(agency_event::Column::Delivery, Expr::value(Delivery::Pending.as_str()))
        .filter(agency_event::Column::Id.is_in(ids.iter().map(AgencyEventId::as_str)))
        .filter(agency_event::Column::Delivery.is_in([Delivery::Failed.as_str(), Delivery::NoEndpoint.as_str()]))
        .exec(db.orm())
        .await?;
    Ok(())
}

/// The booking's newest event.
pub async fn latest_for_booking(db: &Database, booking: &BookingId) -> Result<Option<AgencyEvent>, StoreError> {
    agency_event::Entity::find()
        .filter(agency_event::Column::BookingId.eq(booking.as_str()))
        .order_by_desc(agency_event::Column::Seq)
        .one(db.orm())
        .await?
        .map(from_model)
        .transpose()
}

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The first try or a retry on the schedule.
    Scheduled,
    /// A resend or a recover asked by the agency or staff.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
        }
    }
}

/// One delivery attempt, as the attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub event_id: AgencyEventId,
    pub attempt: i32,
    pub trigger: Trigger,
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// The first 4 KiB of the response body.
    pub response_head: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Text as both databases store it: Postgres `text` takes no NUL, which an agency's answer may
/// hold.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

pub async fn record_attempt(db: &Database, a: &AttemptRecord) -> Result<(), StoreError> {
    webhook_attempt::ActiveModel {
        event_id: Set(a.event_id.to_string()),
        attempt: Set(a.attempt),
        trigger: Set(a.trigger.as_str().to_owned()),
        url: Set(a.url.clone()),
        status: Set(a.status.map(i32::from)),
        duration_ms: Set(a.duration_ms),
        response_head: Set(storable(&a.response_head)),
        error: Set(a.error.as_deref().map(storable)),
        created_at: Set(a.created_at),
        ..Default::default()
    }
    .insert(db.orm())
    .await?;
    Ok(())
}

/// The event's attempts, oldest first.
pub async fn attempts(db: &Database, event: &AgencyEventId) -> Result<Vec<AttemptRecord>, StoreError> {
    let rows = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::EventId.eq(event.as_str()))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db.orm())
        .await?;
    rows.into_iter()
        .map(|m| {
            let row = || format!("webhook_attempts/{}", m.id);
            Ok(AttemptRecord {
                event_id: m.event_id.parse().stored(&row)?,
                attempt: m.attempt,
                trigger: if m.trigger == "manual" { Trigger::Manual } else { Trigger::Scheduled },
                url: m.url,
                status: m.status.map(u16::try_from).transpose().stored(&row)?,
                duration_ms: m.duration_ms,
                response_head: m.response_head,
                error: m.error,
                created_at: m.created_at,
            })
        })
        .collect()
}
