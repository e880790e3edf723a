//! Agencies: the tenants.

use domain::AgencyId;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use super::entities::agency;
use super::{Database, StoreError, Stored};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    /// Where its booking emails go.
    pub email: Option<String>,
}

pub async fn create(db: &Database, name: &str, email: Option<&str>) -> Result<Agency, StoreError> {
    let id = AgencyId::generate();
    agency::ActiveModel {
        id: Set(id.to_string()),
        name: Set(name.to_owned()),
        email: Set(email.map(str::to_owned)),
        created_at: Set(super::now()),
    }
    .insert(db.orm())
    .await?;
    Ok(Agency { id, name: name.to_owned(), email: email.map(str::to_owned) })
}

/// Every agency's name, by id.
pub async fn names(db: &Database) -> Result<std::collections::HashMap<AgencyId, String>, StoreError> {
    let rows = agency::Entity::find().all(db.orm()).await?;
    rows.into_iter().map(|m| Ok((m.id.parse().stored(&|| format!("agencies/{}", m.id))?, m.name))).collect()
}

pub async fn find(db: &Database, id: &AgencyId) -> Result<Option<Agency>, StoreError> {
    let Some(m) = agency::Entity::find_by_id(id.to_string()).one(db.orm()).await? else {
        return Ok(None);
    };
    Ok(Some(Agency { id: id.clone(), name: m.name, email: m.email }))
}
