use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_mismatches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub supplier: String,
    pub subject: String,
    pub reason: String,
    pub booking_id: Option<String>,
    pub supplier_reference: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    pub status: String,
    pub first_run: String,
    pub last_run: String,
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
