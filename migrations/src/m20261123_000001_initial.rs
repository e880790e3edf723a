use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("agencies")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(string_null("email"))
                .col(string_null("callback_url"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;

        // Only a hash of each key is kept: keys carry 256 random bits, so SHA-256 is enough.
        m.create_table(
            Table::create()
                .table("api_keys")
                .col(string("id").primary_key())
                .col(string_uniq("key_hash"))
                .col(string("role"))
                .col(string_null("agency_id"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(ForeignKey::create().from("api_keys", "agency_id").to("agencies", "id"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("bookings")
                .col(string("id").primary_key())
                .col(string("agency_id"))
                .col(string("supplier"))
                .col(string("hotel_code"))
                .col(date("check_in"))
                .col(date("check_out"))
                .col(string("status"))
                // Money as an integer count of the currency's minor units: exact and summable.
                .col(big_integer("total_minor"))
                .col(string_len("currency", 3))
                .col(string_null("client_reference"))
                .col(json_binary("rooms"))
                .col(string_null("supplier_reference"))
                .col(string_null("status_reason"))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(ForeignKey::create().from("bookings", "agency_id").to("agencies", "id"))
                .to_owned(),
        )
        .await?;
        // Keyset pages are newest first by id (ids sort by creation time), per agency or for staff.
        for (name, cols) in [
            ("idx_bookings_agency_id", &["agency_id", "id"][..]),
            ("idx_bookings_agency_status_id", &["agency_id", "status", "id"][..]),
            ("idx_bookings_status_id", &["status", "id"][..]),
        ] {
            let mut index = Index::create().name(name).table("bookings").to_owned();
            for col in cols {
                index.col(*col);
            }
            m.create_index(index).await?;
        }

        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(string("agency_id"))
                .col(string("key"))
                .col(string("request_hash"))
                .col(small_integer("response_status"))
                .col(text("response_body"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .primary_key(Index::create().col("agency_id").col("key"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_idempotency_keys_expires_at")
                .table("idempotency_keys")
                .col("expires_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["idempotency_keys", "bookings", "api_keys", "agencies"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
