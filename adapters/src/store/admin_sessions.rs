//! The admin UI's sessions. The browser holds a random token; the table holds its SHA-256, so a
//! leaked table opens no session. Signing out deletes the row; expired rows are purged.

use chrono::{DateTime, Utc};
use domain::ApiKeyId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::admin_session;
use super::{Database, StoreError, Stored};

/// A signed-in session: whose key, and the token every form must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSessionRecord {
    pub key_id: ApiKeyId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for `key_id`, found later by `token_hash`.
pub async fn create(
    db: &Database,
    token_hash: &str,
    session: &AdminSessionRecord,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = admin_session::ActiveModel {
        token_hash: Set(token_hash.to_owned()),
        key_id: Set(session.key_id.to_string()),
        csrf_token: Set(session.csrf_token.clone()),
        created_at: Set(now),
        expires_at: Set(session.expires_at),
    };
    admin_session::Entity::insert(row).exec_without_returning(db.orm()).await?;
    Ok(())
}

/// The live session behind `token_hash`, if it has not expired by `now`.
pub async fn find(
    db: &Database,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AdminSessionRecord>, StoreError> {
    let Some(row) = admin_session::Entity::find_by_id(token_hash).one(db.orm()).await? else {
        return Ok(None);
    };
    if row.expires_at <= now {
        return Ok(None);
    }
    let key_id = row.key_id.parse().stored(&|| format!("admin_sessions/{}", row.key_id))?;
    Ok(Some(AdminSessionRecord { key_id, csrf_token: row.csrf_token, expires_at: row.expires_at }))
}

/// Ends the session behind `token_hash` (signing out); nothing when there is none.
pub async fn delete(db: &Database, token_hash: &str) -> Result<(), StoreError> {
    admin_session::Entity::delete_by_id(token_hash).exec(db.orm()).await?;
    Ok(())
}

/// Deletes the sessions that expired before `now`; how many.
pub async fn purge_expired(db: &Database, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let done =
        admin_session::Entity::delete_many().filter(admin_session::Column::ExpiresAt.lte(now)).exec(db.orm()).await?;
    Ok(done.rows_affected)
}
