//! The `code_mappings` table: one row per supplier code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "code_mappings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub supplier: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub supplier_code: String,
    pub bookhub_code: String,
    pub description: String,
    pub active: bool,
    pub outbound: bool,
    pub updated_at: DateTimeUtc,
    pub updated_by_key: Option<String>,
    pub updated_by_label: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
