use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub number: String,
    pub kind: String,
    pub booking_id: String,
    pub agency_id: String,
    pub supplier: String,
    pub amount: String,
    pub currency: String,
    pub issue_date: Date,
    pub due_date: Date,
    pub issued_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
