//! The `mapping_versions` table: one counter per supplier, raised by every change to its rows.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mapping_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub supplier: String,
    pub version: i64,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
