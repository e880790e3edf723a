use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A finished event can be replayed: the outcomes it had before each replay, oldest
        // first, as `[{"status", "detail", "booking_id", "processed_at"}]`; the current one
        // stays in `status` / `detail`.
        m.alter_table(Table::alter().table("webhook_events").add_column(json_binary_null("outcomes")).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("webhook_events").drop_column("outcomes").to_owned()).await
    }
}
