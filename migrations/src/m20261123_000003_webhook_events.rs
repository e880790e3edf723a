use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Every webhook request, valid or not, as received (headers without credentials, the raw
        // body), with its verification result and what processing made of it.
        m.create_table(
            Table::create()
                .table("webhook_events")
                .col(string("id").primary_key())
                .col(string("supplier"))
                // The supplier's message id, once the request verified and parsed.
                .col(string_null("event_id"))
                // Set on the first verified delivery of a message only: the unique index below
                // makes a repeat a duplicate, in the database, whatever process takes it.
                .col(string_null("dedupe_key"))
                .col(json_binary("headers"))
                .col(blob("body"))
                .col(string("verification"))
                .col(string("status"))
                .col(text_null("detail"))
                .col(json_binary_null("missing_codes"))
                .col(string_null("booking_id"))
                .col(integer("replays").default(0))
                .col(timestamp_with_time_zone("received_at"))
                .col(timestamp_with_time_zone_null("processed_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_events_dedupe")
                .table("webhook_events")
                .col("supplier")
                .col("dedupe_key")
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("idx_webhook_events_received", &["received_at"][..]),
            ("idx_webhook_events_supplier_status", &["supplier", "status", "id"][..]),
            ("idx_webhook_events_status", &["status", "id"][..]),
        ] {
            let mut index = Index::create().name(name).table("webhook_events").to_owned();
            for col in cols {
                index.col(*col);
            }
            m.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("webhook_events").to_owned()).await
    }
}
