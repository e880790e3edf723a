//! API keys, stored only as hashes of the secret, with their lifecycle: a label, when each was
//! created and last used, when it expires, and when it was revoked. Rows are never deleted, so
//! an audit can still name a revoked key.

use chrono::{DateTime, Utc};
use domain::{AgencyId, ApiKeyId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::entities::api_key;
use super::{Database, StoreError, Stored};

domain::code_enum! {
    /// What a key may do: an agency books for itself; staff, finance and admin work across agencies.
    pub enum Role ("role") {
        Agency = "agency",
        Staff = "staff",
        Finance = "finance",
        Admin = "admin",
    }
}

/// A key as found by its hash or id: who is calling, and where the key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub role: Role,
    /// Set exactly when `role` is [`Role::Agency`].
    pub agency_id: Option<AgencyId>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Updated at most once a minute (see [`touch`]).
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key got its successor; a key is rotated at most once.
    pub rotated_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Whether the key's expiry has passed at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A key to create; its secret's hash is passed beside it.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub role: Role,
    pub agency_id: Option<&'a AgencyId>,
    pub label: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl<'a> NewKey<'a> {
    /// A key for `role` (and its agency, for agency keys) without label or expiry.
    pub fn new(role: Role, agency_id: Option<&'a AgencyId>) -> Self {
        NewKey { role, agency_id, label: None, expires_at: None }
    }
}

pub async fn create(db: &Database, new: &NewKey<'_>, key_hash: &str) -> Result<ApiKeyRecord, StoreError> {
    let id = ApiKeyId::generate();
    let model = api_key::ActiveModel {
        id: Set(id.to_string()),
        key_hash: Set(key_hash.to_owned()),
        role: Set(new.role.as_str().to_owned()),
        agency_id: Set(new.agency_id.map(ToString::to_string)),
        created_at: Set(super::now()),
        label: Set(new.label.map(str::to_owned)),
        last_used_at: Set(None),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        rotated_at: Set(None),
    }
    .insert(db.orm())
    .await?;
    from_model(model)
}

pub async fn find_by_hash(db: &Database, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(key_hash))
        .one(db.orm())
        .await?
        .map(from_model)
        .transpose()
}

pub async fn find(db: &Database, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
    api_key::Entity::find_by_id(id.as_str()).one(db.orm()).await?.map(from_model).transpose()
}

/// Keys newest first (ids sort by creation time), `limit + 1` of them after `after`, so the
/// caller can tell whether a next page exists.
pub async fn list(db: &Database, after: Option<&ApiKeyId>, limit: u64) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let mut query = api_key::Entity::find();
    if let Some(after) = after {
        query = query.filter(api_key::Column::Id.lt(after.as_str()));
    }
    query.order_by_desc(api_key::Column::Id).limit(limit + 1).all(db.orm()).await?.into_iter().map(from_model).collect()
}

/// Revokes the key at `now` (a repeat keeps the first time); the key as it now stands.
pub async fn revoke(db: &Database, id: &ApiKeyId, now: DateTime<Utc>) -> Result<Option<ApiKeyRecord>, StoreError> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.orm())
        .await?;
    find(db, id).await
}

/// Marks a live, never-rotated key as rotated at `now`, expiring by `at` (its own expiry when
/// sooner). `false` when it was rotated or revoked meanwhile: only one rotation wins.
pub async fn retire(db: &Database, id: &ApiKeyId, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let expiry = Expr::case(
        Condition::any().add(api_key::Column::ExpiresAt.is_null()).add(api_key::Column::ExpiresAt.gt(at)),
        Expr::value(at),
    )
    .finally(Expr::col(api_key::Column::ExpiresAt));
    let retired = api_key::Entity::update_many()
        .col_expr(api_key::Column::ExpiresAt, expiry.into())
        .col_expr(api_key::Column::RotatedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(api_key::Column::RotatedAt.is_null())
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.orm())
        .await?;
    Ok(retired.rows_affected == 1)
}

/// Records a use at `now` unless one was recorded within the last minute: at most one write a
/// minute per key, whatever the traffic (and processes race harmlessly on the same minute).
pub async fn touch(db: &Database, id: &ApiKeyId, now: DateTime<Utc>) -> Result<(), StoreError> {
    let stale = now - chrono::Duration::minutes(1);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(Condition::any().add(api_key::Column::LastUsedAt.is_null()).add(api_key::Column::LastUsedAt.lt(stale)))
        .exec(db.orm())
        .await?;
    Ok(())
}

fn from_model(m: api_key::Model) -> Result<ApiKeyRecord, StoreError> {
    let row = || format!("api_keys/{}", m.id);
    Ok(ApiKeyRecord {
        id: m.id.parse().stored(&row)?,
        role: m.role.parse().stored(&row)?,
        agency_id: m.agency_id.as_deref().map(str::parse).transpose().stored(&row)?,
        label: m.label,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        rotated_at: m.rotated_at,
    })
}
