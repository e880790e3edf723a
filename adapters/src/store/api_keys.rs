//! API keys, stored only as hashes of the secret.

use domain::{AgencyId, ApiKeyId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

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

/// A key as found by its hash: who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub role: Role,
    /// Set exactly when `role` is [`Role::Agency`].
    pub agency_id: Option<AgencyId>,
}

pub async fn create(
    db: &Database,
    role: Role,
    agency_id: Option<&AgencyId>,
    key_hash: &str,
) -> Result<ApiKeyId, StoreError> {
    let id = ApiKeyId::generate();
    api_key::ActiveModel {
        id: Set(id.to_string()),
        key_hash: Set(key_hash.to_owned()),
        role: Set(role.as_str().to_owned()),
        agency_id: Set(agency_id.map(ToString::to_string)),
        created_at: Set(super::now()),
    }
    .insert(db.orm())
    .await?;
    Ok(id)
}

pub async fn find_by_hash(db: &Database, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    let Some(m) = api_key::Entity::find().filter(api_key::Column::KeyHash.eq(key_hash)).one(db.orm()).await? else {
        return Ok(None);
    };
    let row = || format!("api_keys/{}", m.id);
    Ok(Some(ApiKeyRecord {
        id: m.id.parse().stored(&row)?,
        role: m.role.parse().stored(&row)?,
        agency_id: m.agency_id.as_deref().map(str::parse).transpose().stored(&row)?,
    }))
}
