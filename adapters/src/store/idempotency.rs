//! Idempotency records: the first response to a request with an `Idempotency-Key`, kept so a
//! retry gets the same answer. Scoped per agency; purged after they expire.

use chrono::{DateTime, Utc};
use domain::AgencyId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::idempotency_key;
use super::{Database, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
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
