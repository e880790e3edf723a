//! Idempotency records: the first response to a request with an `Idempotency-Key`, kept so a
//! retry gets the same answer. Scoped per agency; purged after they expire.

use chrono::{DateTime, Utc};
use domain::AgencyId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::idempotency_key;
use super::{Database, StoreError};

/// The first answer to a request with an `Idempotency-Key`. `Debug` leaves the answer's body
/// out: it holds the booking's guests.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub agency_id: AgencyId,
    pub key: String,
    /// SHA-256 of the request's canonical JSON: a retry must carry the same payload.
    pub request_hash: String,
    pub response_status: u16,
    pub response_body: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("agency_id", &self.agency_id)
            .field("key", &self.key)
            .field("response_status", &self.response_status)
            .field("response_body_bytes", &self.response_body.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

pub async fn find(db: &Database, agency_id: &AgencyId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
    let found = idempotency_key::Entity::find_by_id((agency_id.to_string(), key.to_owned())).one(db.orm()).await?;
    Ok(found.map(|m| IdempotencyRecord {
        agency_id: agency_id.clone(),
        key: m.key,
        request_hash: m.request_hash,
        response_status: u16::try_from(m.response_status).unwrap_or(500),
        response_body: m.response_body,
        created_at: m.created_at,
        expires_at: m.expires_at,
    }))
}

/// Deletes records that expired before `now`; returns how many.
pub async fn purge_expired(db: &Database, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let result = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::ExpiresAt.lt(now))
        .exec(db.orm())
        .await?;
    Ok(result.rows_affected)
}
