use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agency_webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub agency_id: String,
    pub url: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTimeUtc>,
    pub disabled_at: Option<DateTimeUtc>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

/// Names the agency only: the row holds signing secrets.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("agency_webhook::Model").field("agency_id", &self.agency_id).finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
