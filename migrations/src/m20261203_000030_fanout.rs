//! The fan-out's records: one agency event per booking change (the feed agencies read and the
//! webhooks deliver), each delivery attempt, the agencies' webhook endpoints with their signing
//! secrets, and the vouchers. The unused `agencies.callback_url` is dropped: a URL without a
//! secret never received anything; the agency sets it through the API and gets its secret.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("agency_events")
                // The feed's order. Postgres numbers at insert, so a change holds its agency's
                // feed lock while it numbers (see the store's `FeedOrder`): commit order.
                .col(big_integer("seq").auto_increment().primary_key())
                .col(string("id").unique_key())
                .col(string("agency_id"))
                .col(string("booking_id"))
                // The booking's version after the change: one event per change.
                .col(integer("booking_version"))
                .col(string("event_type"))
                // The booking as it stood right after the change (its stored row).
                .col(json_binary("booking"))
                .col(timestamp_with_time_zone("created_at"))
                // pending | delivered | failed | superseded | no_endpoint
                .col(string("delivery").default("pending"))
                .col(integer("attempts").default(0))
                .col(timestamp_with_time_zone_null("delivered_at"))
                .col(timestamp_with_time_zone_null("emailed_at"))
                .to_owned(),
        )
        .await?;
        for (name, cols, unique) in [
            ("idx_agency_events_change", &["booking_id", "booking_version"][..], true),
            ("idx_agency_events_feed", &["agency_id", "seq"][..], false),
        ] {
            let mut index = Index::create().name(name).table("agency_events").to_owned();
            for col in cols {
                index.col(*col);
            }
            if unique {
                index.unique();
            }
            m.create_index(index).await?;
        }
        m.create_table(
            Table::create()
                .table("webhook_attempts")
                .col(big_integer("id").auto_increment().primary_key())
                .col(string("event_id"))
                .col(integer("attempt"))
                // scheduled | manual
                .col(string("trigger"))
                .col(text("url"))
                .col(integer_null("status"))
                .col(big_integer("duration_ms"))
                .col(text("response_head"))
                .col(text_null("error"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_webhook_attempts_event").table("webhook_attempts").col("event_id").to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("agency_webhooks")
                .col(string("agency_id").primary_key())
                .col(text_null("url"))
                .col(string("secret"))
                // The secret before the last rotation, still signing until `previous_until`.
                .col(string_null("previous_secret"))
                .col(timestamp_with_time_zone_null("previous_until"))
                .col(timestamp_with_time_zone_null("disabled_at"))
                .col(text_null("disabled_reason"))
                // The first failure since the last success: five days of it disables the URL.
                .col(timestamp_with_time_zone_null("failing_since"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("vouchers")
                .col(big_integer("seq").auto_increment().primary_key())
                .col(string("number").unique_key())
                .col(string("booking_id").unique_key())
                .col(timestamp_with_time_zone("issued_at"))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table("agencies").drop_column("callback_url").to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("agencies").add_column(string_null("callback_url")).to_owned()).await?;
        for table in ["vouchers", "agency_webhooks", "webhook_attempts", "agency_events"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
