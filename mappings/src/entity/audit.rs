//! The `mapping_audit` table: every change to a mapping row, oldest first by `id`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mapping_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub supplier: String,
    pub kind: String,
    pub supplier_code: String,
    pub action: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub actor_key: Option<String>,
    pub actor_label: Option<String>,
    pub via: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
