//! Sessions of the web admin UI: a signed-in staff key, found by the SHA-256 of the cookie's
//! random token (the token itself is never stored), with the session's CSRF token and expiry.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("admin_sessions")
                .col(string("token_hash").primary_key())
                .col(string("key_id"))
                .col(string("csrf_token"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_admin_sessions_expiry").table("admin_sessions").col("expires_at").to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("admin_sessions").to_owned()).await
    }
}
