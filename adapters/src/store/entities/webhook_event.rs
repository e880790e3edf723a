use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub supplier: String,
    pub event_id: Option<String>,
    pub dedupe_key: Option<String>,
    pub headers: Json,
    pub body: Vec<u8>,
    pub verification: String,
    pub status: String,
    pub detail: Option<String>,
    pub missing_codes: Option<Json>,
    pub booking_id: Option<String>,
    pub replays: i32,
    pub received_at: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
    pub outcomes: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
