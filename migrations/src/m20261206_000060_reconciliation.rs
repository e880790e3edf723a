//! Reconciliation with suppliers: each run over a supplier and a window, the mismatches runs
//! find, and the lines of the statements suppliers bill by. A mismatch is open until staff resolve it or a later run no longer finds it; one
//! open row per (supplier, subject, reason), enforced by a partial unique index, so a mismatch
//! found again is the same row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("reconciliation_runs")
                .col(string("id").primary_key())
                .col(string("supplier"))
                .col(timestamp_with_time_zone("window_from"))
                .col(timestamp_with_time_zone("window_to"))
                // running | done | failed
                .col(string("status"))
                // {"<reason>": n, …, "healed": n}
                .col(json_binary_null("counts"))
                .col(text_null("error"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("reconciliation_mismatches")
                .col(big_integer("id").auto_increment().primary_key())
                .col(string("supplier"))
                // The booking's id, or `ref:` and the supplier's reference when bookhub has none.
                .col(string("subject"))
                .col(string("reason"))
                .col(string_null("booking_id"))
                .col(string_null("supplier_reference"))
                .col(text_null("ours"))
                .col(text_null("theirs"))
                // open | resolved | closed
                .col(string("status"))
                .col(string("first_run"))
                .col(string("last_run"))
                .col(text_null("note"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("statement_lines")
                .col(big_integer("id").auto_increment().primary_key())
                .col(string("supplier"))
                // The upload the line came in.
                .col(string("statement_id"))
                .col(string("supplier_reference"))
                .col(string_null("client_reference"))
                // Exact decimal, as text: never a float.
                .col(string("amount"))
                .col(string("currency"))
                .col(string("status"))
                .col(date("billed_at"))
                .col(timestamp_with_time_zone("uploaded_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_statement_lines_supplier").table("statement_lines").col("supplier").to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_mismatches_open ON reconciliation_mismatches (supplier, subject, reason) \
                 WHERE status = 'open'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("statement_lines").to_owned()).await?;
        m.drop_table(Table::drop().table("reconciliation_mismatches").to_owned()).await?;
        m.drop_table(Table::drop().table("reconciliation_runs").to_owned()).await
    }
}
