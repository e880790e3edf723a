//! API key lifecycle: a label, when a key was last used, when it expires and when it was
//! revoked, and whether it was rotated; and who cancelled a booking when it was not its agency. One column per `ALTER`,
//! as SQLite takes no more.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let key_columns = [
            string_null("label"),
            timestamp_with_time_zone_null("last_used_at"),
            timestamp_with_time_zone_null("expires_at"),
            timestamp_with_time_zone_null("revoked_at"),
            // Set once the key has a successor: a key is rotated at most once.
            timestamp_with_time_zone_null("rotated_at"),
        ];
        for mut column in key_columns {
            m.alter_table(Table::alter().table("api_keys").add_column(&mut column).to_owned()).await?;
        }
        // `{"role": "staff", "key_id": "key_…"}` when staff or an admin cancelled the booking.
        m.alter_table(Table::alter().table("bookings").add_column(json_binary_null("cancelled_by")).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("bookings").drop_column("cancelled_by").to_owned()).await?;
        for column in ["label", "last_used_at", "expires_at", "revoked_at", "rotated_at"] {
            m.alter_table(Table::alter().table("api_keys").drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
