use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Serialisable: an agency event keeps the row as it stood after its change.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub agency_id: String,
    pub supplier: String,
    pub hotel_code: String,
    pub check_in: Date,
    pub check_out: Date,
    pub status: String,
    pub total_minor: i64,
    pub currency: String,
    pub client_reference: Option<String>,
    pub rooms: Json,
    pub supplier_reference: Option<String>,
    pub status_reason: Option<String>,
    /// `{"role", "key_id"}` of a staff or admin cancel.
    pub cancelled_by: Option<Json>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
