use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agency_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: String,
    pub agency_id: String,
    pub booking_id: String,
    pub booking_version: i32,
    pub event_type: String,
    pub booking: Json,
    pub created_at: DateTimeUtc,
    pub delivery: String,
    pub attempts: i32,
    pub delivered_at: Option<DateTimeUtc>,
    pub emailed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
