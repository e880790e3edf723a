//! The webhook log: every supplier webhook request as received, valid or not, with what became
//! of it. A verified message is deduplicated on (supplier, message id) by a unique index, and
//! its processing job is queued in the same transaction as its row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::supplier::InboundWebhook;
use domain::{BookingId, SupplierCode, WebhookEventId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::webhook_event;
use super::queue::{EnqueuedJob, PushJobs};
use super::{Database, Pool, StoreError, Stored, with_pool};

domain::code_enum! {
    /// How a request's signature check ended.
    pub enum Verification ("verification") {
        Verified = "verified",
        /// Rows of earlier releases only: requests for unknown codes are no longer logged.
        UnknownSupplier = "unknown_supplier",
        MissingHeader = "missing_header",
        StaleTimestamp = "stale_timestamp",
        BadSignature = "bad_signature",
        Malformed = "malformed",
    }
}

domain::code_enum! {
    /// Where a logged request stands.
    pub enum EventStatus ("webhook event status") {
        /// Refused at the door (unknown supplier, bad signature, malformed); nothing processed.
        Rejected = "rejected",
        /// A repeat of a message already taken; not processed again.
        Duplicate = "duplicate",
        /// Taken; its processing job is queued.
        Queued = "queued",
        /// Applied to its booking (which may have changed nothing: a repeat or a late event).
        Applied = "applied",
        /// Its booking is unknown, or its supplier not configured where it ran; kept for a
        /// replay.
        Parked = "parked",
        /// A supplier code has no mapping; processed again when staff add it.
        NeedsMapping = "needs_mapping",
        /// Does not apply to its booking's status (e.g. a rejection after confirmation).
        Ignored = "ignored",
    }
}

/// A request as it is logged.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub id: WebhookEventId,
    pub supplier: String,
    /// Headers (names lower-cased; only [`LOGGED_HEADERS`] are logged) and the raw body.
    pub request: InboundWebhook,
    pub received_at: DateTime<Utc>,
}

/// The only header names written to the log, most useful first: what each supplier's scheme
/// signs and names its message with (its partner documentation), the body's type and the
/// sender's software. Everything else (credentials, cookies, people's addresses, whatever a
/// proxy or an attacker adds) is dropped: an allowlist, so that a header nobody thought of is
/// not stored and shown to staff. A signature is kept: it proves nothing without the secret.
pub const LOGGED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "x-ota-timestamp",
    "content-type",
    "webhook-signature",
    "x-ota-signature",
    "user-agent",
];

/// The most header bytes (names and values) one log row keeps; a header that does not fit in
/// what is left is dropped whole (a cut value would be a lie, and could not be parsed again).
pub const LOGGED_HEADER_BYTES: usize = 2048;

pub(crate) fn headers_json(headers: &BTreeMap<String, String>) -> serde_json::Value {
    let mut left = LOGGED_HEADER_BYTES;
    let mut kept = serde_json::Map::new();
    for name in LOGGED_HEADERS {
        let Some(value) = headers.get(*name) else { continue };
        let size = name.len() + value.len();
        if size <= left {
            left -= size;
            kept.insert((*name).to_owned(), serde_json::Value::String(value.clone()));
        }
    }
    serde_json::Value::Object(kept)
}

/// An outcome an event had before it was replayed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PastOutcome {
    pub status: EventStatus,
    pub detail: Option<String>,
    pub booking_id: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// A logged request. `Debug` leaves out the body and the header values (guests' data).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: WebhookEventId,
    pub supplier: String,
    pub event_id: Option<String>,
    pub verification: Verification,
    pub status: EventStatus,
    pub detail: Option<String>,
    pub missing_codes: Option<serde_json::Value>,
    pub booking_id: Option<String>,
    pub replays: i32,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
    /// The outcomes before each replay, oldest first (the current one is `status`/`detail`).
    pub previous_outcomes: Vec<PastOutcome>,
}

impl std::fmt::Debug for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEvent")
            .field("id", &self.id)
            .field("supplier", &self.supplier)
            .field("event_id", &self.event_id)
            .field("verification", &self.verification)
            .field("status", &self.status)
            .field("replays", &self.replays)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl WebhookEvent {
    /// The request as logged (headers minus credentials, the raw body), to parse again.
    pub fn request(&self) -> InboundWebhook {
        let headers = self
            .headers
            .as_object()
            .map(|o| o.iter().filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned()))).collect());
        InboundWebhook { headers: headers.unwrap_or_default(), body: self.body.clone() }
    }
}

fn from_model(m: webhook_event::Model) -> Result<WebhookEvent, StoreError> {
    let row = || format!("webhook_events/{}", m.id);
    let previous_outcomes = match m.outcomes {
        Some(outcomes) => serde_json::from_value(outcomes).stored(&row)?,
        None => Vec::new(),
    };
    Ok(WebhookEvent {
        previous_outcomes,
        id: m.id.parse().stored(&row)?,
        verification: m.verification.parse().stored(&row)?,
        status: m.status.parse().stored(&row)?,
        supplier: m.supplier,
        event_id: m.event_id,
        detail: m.detail,
        missing_codes: m.missing_codes,
        booking_id: m.booking_id,
        replays: m.replays,
        received_at: m.received_at,
        processed_at: m.processed_at,
        headers: m.headers,
        body: m.body,
    })
}

/// How much of a refused request's body is kept: enough to see what it was, not a way for
/// anyone to fill the disk through an unauthenticated endpoint.
const REJECTED_BODY_KEPT: usize = 4096;

/// Logs a request that was refused at the door, its body cut to 4 KiB. (Unknown supplier codes
/// are not logged at all; `unknown_supplier` rows are from earlier releases.)
pub async fn record_rejected(
    db: &Database,
    request: &ReceivedWebhook,
    verification: Verification,
    detail: &str,
) -> Result<(), StoreError> {
    let mut request = request.clone();
    request.request.body.truncate(REJECTED_BODY_KEPT);
    insert_rejected(db.pool(), &request, verification, detail).await
}

/// What logging a verified message did (see [`super::webhook_intake::WebhookIntake`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First delivery: logged as queued, its processing job committed with it.
    Queued,
    /// A repeat: logged as a duplicate, nothing queued.
    Duplicate,
}

/// Inserts a refused request's row: no message id (it is not deduplicated) and no job.
async fn insert_rejected(
    pool: &Pool,
    r: &ReceivedWebhook,
    verification: Verification,
    detail: &str,
) -> Result<(), StoreError> {
    with_pool!(pool, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO webhook_events (id, supplier, headers, body, verification, status, detail, replays, received_at) VALUES (",
        );
        qb.separated(", ")
            .push_bind(r.id.as_str())
            .push_bind(&r.supplier)
            .push_bind(sqlx::types::Json(headers_json(&r.request.headers)))
            .push_bind(&r.request.body)
            .push_bind(verification.as_str())
            .push_bind(EventStatus::Rejected.as_str())
            .push_bind(detail)
            .push_bind(0)
            .push_bind(r.received_at);
        qb.push(")");
        qb.build().execute(p).await?;
        Ok(())
    })
}

pub async fn find(db: &Database, id: &WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
    webhook_event::Entity::find_by_id(id.as_str()).one(db.orm()).await?.map(from_model).transpose()
}

/// The newest `limit` messages that touched `booking`, oldest first.
pub async fn for_booking(db: &Database, booking: &BookingId, limit: u64) -> Result<Vec<WebhookEvent>, StoreError> {
    let rows = webhook_event::Entity::find()
        .filter(webhook_event::Column::BookingId.eq(booking.as_str()))
        .order_by_desc(webhook_event::Column::ReceivedAt)
        .limit(limit)
        .all(db.orm())
        .await?;
    rows.into_iter().rev().map(from_model).collect()
}

/// What processing made of a message.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: EventStatus,
    pub detail: Option<String>,
    pub booking_id: Option<BookingId>,
    /// (kind, supplier code) pairs with no mapping.
    pub missing_codes: Vec<(String, String)>,
}

/// Records what processing made of a queued message.
pub async fn set_outcome(db: &Database, id: &WebhookEventId, outcome: &Outcome) -> Result<(), StoreError> {
    let missing = (!outcome.missing_codes.is_empty()).then(|| {
        serde_json::Value::Array(
            outcome.missing_codes.iter().map(|(kind, code)| serde_json::json!({"kind": kind, "code": code})).collect(),
        )
    });
    with_pool!(db.pool(), p => {
        let mut qb = sqlx::QueryBuilder::new("UPDATE webhook_events SET status = ");
        qb.push_bind(outcome.status.as_str())
            .push(", detail = ")
            .push_bind(outcome.detail.as_deref())
            .push(", booking_id = ")
            .push_bind(outcome.booking_id.as_ref().map(|b| b.as_str().to_owned()))
            .push(", missing_codes = ")
            .push_bind(missing.map(sqlx::types::Json))
            .push(", processed_at = ")
            .push_bind(super::now())
            .push(" WHERE id = ")
            .push_bind(id.as_str())
            // Only a queued message takes an outcome: a job that runs again after finishing (its
            // worker killed before it could say so) keeps the first run's outcome and time.
            .push(" AND status = ")
            .push_bind(EventStatus::Queued.as_str());
        qb.build().execute(p).await?;
        Ok(())
    })
}

/// What asking to replay a logged message did.
#[derive(Debug)]
pub enum Replay {
    NotFound,
    /// Never taken (rejected, duplicate), or not in the statuses asked for.
    NotReplayable(WebhookEvent),
    /// Queued again, with the job `job` returned for the replay's number.
    Queued(WebhookEvent),
}

/// Statuses a replay takes: every message that was taken and is not queued already. A finished
/// one (applied, ignored) runs again through the state machine, which is idempotent and
/// order-tolerant. A queued one has its job coming (a dead job is retried at `/v1/jobs`):
/// replaying it would only stack a second job.
pub const REPLAYABLE: [EventStatus; 4] =
    [EventStatus::Parked, EventStatus::NeedsMapping, EventStatus::Applied, EventStatus::Ignored];

/// Queues `job` to process a message in one of the statuses `from` (a subset of
/// [`REPLAYABLE`]) again, counting the replay; its outcome so far goes to
/// `previous_outcomes`. The update checks the status and replay count it
/// read, so a job finishing meanwhile or a concurrent replay makes it a
/// [`StoreError::Conflict`] instead of a second queued job.
pub async fn replay(
    db: &Database,
    id: &WebhookEventId,
    from: &[EventStatus],
    job: impl Fn(i32) -> EnqueuedJob,
) -> Result<Replay, StoreError> {
    let Some(mut event) = find(db, id).await? else { return Ok(Replay::NotFound) };
    if !REPLAYABLE.contains(&event.status) || !from.contains(&event.status) {
        return Ok(Replay::NotReplayable(event));
    }
    let replays = event.replays + 1;
    let mut outcomes = event.previous_outcomes.clone();
    outcomes.push(PastOutcome {
        status: event.status,
        detail: event.detail.clone(),
        booking_id: event.booking_id.clone(),
        processed_at: event.processed_at,
    });
    let outcomes_json = serde_json::to_value(&outcomes).stored(&|| format!("webhook_events/{id}"))?;
    with_pool!(db.pool(), p => {
        let mut tx = p.begin().await?;
        let mut qb = sqlx::QueryBuilder::new("UPDATE webhook_events SET status = ");
        qb.push_bind(EventStatus::Queued.as_str())
            .push(", replays = ")
            .push_bind(replays)
            .push(", outcomes = ")
            .push_bind(sqlx::types::Json(outcomes_json.clone()))
            .push(" WHERE id = ")
            .push_bind(id.as_str())
            .push(" AND status = ")
            .push_bind(event.status.as_str())
            .push(" AND replays = ")
            .push_bind(event.replays);
        if qb.build().execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(StoreError::Conflict { resource: "webhook event" });
        }
        PushJobs::push(&mut *tx, &[job(replays)]).await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    })?;
    event.status = EventStatus::Queued;
    event.replays = replays;
    event.previous_outcomes = outcomes;
    Ok(Replay::Queued(event))
}

/// Ids of up to `limit` of a supplier's messages waiting for a mapping, oldest first, after
/// `after`: ids only, never the bodies.
pub async fn needing_mapping(
    db: &Database,
    supplier: &SupplierCode,
    after: Option<&WebhookEventId>,
    limit: u64,
) -> Result<Vec<WebhookEventId>, StoreError> {
    use webhook_event::Column as C;
    let mut query = webhook_event::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::Supplier.eq(supplier.as_str()))
        .filter(C::Status.eq(EventStatus::NeedsMapping.as_str()));
    if let Some(after) = after {
        query = query.filter(C::Id.gt(after.as_str()));
    }
    let ids: Vec<String> = query.order_by_asc(C::Id).limit(limit).into_tuple().all(db.orm()).await?;
    ids.into_iter().map(|id| id.parse().stored(&|| format!("webhook_events/{id}"))).collect()
}

/// How many of a supplier's messages wait for a mapping.
pub async fn count_needing_mapping(db: &Database, supplier: &SupplierCode) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(webhook_event::Entity::find()
        .filter(webhook_event::Column::Supplier.eq(supplier.as_str()))
        .filter(webhook_event::Column::Status.eq(EventStatus::NeedsMapping.as_str()))
        .count(db.orm())
        .await?)
}

/// A code that messages wait for: how many and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedCode {
    pub supplier: String,
    pub kind: String,
    pub code: String,
    /// Messages waiting that name it.
    pub waiting: u64,
    pub oldest_received_at: DateTime<Utc>,
    pub oldest_event: WebhookEventId,
}

/// Every code that `needs_mapping` messages name, per supplier and kind, in that order. Reads
/// three small columns of the waiting rows, never their bodies.
pub async fn unmapped_codes(db: &Database) -> Result<Vec<UnmappedCode>, StoreError> {
    use webhook_event::Column as C;
    let rows: Vec<(String, String, Option<serde_json::Value>, DateTime<Utc>)> = webhook_event::Entity::find()
        .select_only()
        .columns([C::Id, C::Supplier, C::MissingCodes, C::ReceivedAt])
        .filter(C::Status.eq(EventStatus::NeedsMapping.as_str()))
        .into_tuple()
        .all(db.orm())
        .await?;
    let mut codes: BTreeMap<(String, String, String), UnmappedCode> = BTreeMap::new();
    for (id, supplier, missing, received_at) in rows {
        let event: WebhookEventId = id.parse().stored(&|| format!("webhook_events/{id}"))?;
        let missing = missing.as_ref().and_then(|m| m.as_array()).into_iter().flatten();
        for pair in missing {
            let field = |name: &str| pair.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let (kind, code) = (field("kind"), field("code"));
            let key = (supplier.clone(), kind.clone(), code.clone());
            let entry = codes.entry(key).or_insert_with(|| UnmappedCode {
                supplier: supplier.clone(),
                kind,
                code,
                waiting: 0,
                oldest_received_at: received_at,
                oldest_event: event.clone(),
            });
            entry.waiting += 1;
            if received_at < entry.oldest_received_at {
                entry.oldest_received_at = received_at;
                entry.oldest_event = event.clone();
            }
        }
    }
    Ok(codes.into_values().collect())
}

/// Filters for the staff listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub supplier: Option<String>,
    pub status: Option<EventStatus>,
    pub received_from: Option<DateTime<Utc>>,
    pub received_to: Option<DateTime<Utc>>,
}

/// One page, newest first (ids sort by time), after the cursor `after`.
pub async fn page(
    db: &Database,
    filter: &Filter,
    after: Option<&WebhookEventId>,
    limit: u64,
) -> Result<(Vec<WebhookEvent>, Option<WebhookEventId>), StoreError> {
    use webhook_event::Column as C;
    let mut query = webhook_event::Entity::find();
    if let Some(s) = &filter.supplier {
        query = query.filter(C::Supplier.eq(s.as_str()));
    }
    if let Some(st) = filter.status {
        query = query.filter(C::Status.eq(st.as_str()));
    }
    if let Some(from) = filter.received_from {
        query = query.filter(C::ReceivedAt.gte(from));
    }
    if let Some(to) = filter.received_to {
        query = query.filter(C::ReceivedAt.lt(to));
    }
    if let Some(after) = after {
        query = query.filter(C::Id.lt(after.as_str()));
    }
    let mut items = query
        .order_by_desc(C::Id)
        .limit(limit + 1)
        .all(db.orm())
        .await?
        .into_iter()
        .map(from_model)
        .collect::<Result<Vec<_>, _>>()?;
    let next = super::next_page(&mut items, limit, |e| e.id.clone());
    Ok((items, next))
}

/// Deletes finished log rows (rejected, duplicate, applied, ignored) received before `before`;
/// how many. Rows still waiting (queued, parked, needs_mapping) are kept whatever their age.
pub async fn purge_received_before(db: &Database, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let finished = [EventStatus::Rejected, EventStatus::Duplicate, EventStatus::Applied, EventStatus::Ignored];
    Ok(webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::ReceivedAt.lt(before))
        .filter(webhook_event::Column::Status.is_in(finished.iter().map(EventStatus::as_str)))
        .exec(db.orm())
        .await?
        .rows_affected)
}
