//! API keys, stored only as hashes of the secret.

use std::fmt;
use std::str::FromStr;

use domain::{AgencyId, ApiKeyId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::api_key;
use super::{Database, StoreError};

/// What a key may do: an agency books for itself; staff, finance and admin work across agencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Agency,
    Staff,
    Finance,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Agency => "agency",
            Role::Staff => "staff",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agency" => Ok(Role::Agency),
            "staff" => Ok(Role::Staff),
            "finance" => Ok(Role::Finance),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}; expected agency, staff, finance or admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    let corrupt = |e: String| StoreError::Corrupt(format!("api_keys/{}", m.id), e);
    Ok(Some(ApiKeyRecord {
        id: m.id.parse().map_err(|e: domain::ids::InvalidId| corrupt(e.to_string()))?,
        role: m.role.parse().map_err(corrupt)?,
        agency_id: m
            .agency_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: domain::ids::InvalidId| corrupt(e.to_string()))?,
    }))
}
