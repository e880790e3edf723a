use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per supplier code: (supplier, kind, supplier_code) → bookhub_code. Kinds are
        // room_type, board and status. Rows are per supplier, not per protocol, so two
        // suppliers on one protocol can differ.
        m.create_table(
            Table::create()
                .table("code_mappings")
                .col(string("supplier"))
                .col(string("kind"))
                .col(string("supplier_code"))
                .col(string("bookhub_code"))
                .col(timestamp_with_time_zone("updated_at"))
                .primary_key(Index::create().col("supplier").col("kind").col("supplier_code"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("code_mappings").to_owned()).await
    }
}
