//! Reconciliation and billing: each run over a supplier and a window, the mismatches runs find,
//! the lines of the statements suppliers bill by, the claims on scheduled slots, the invoice
//! lines and credit notes issued to agencies, and the events bookhub's own systems receive.
//! A mismatch is open until staff resolve it or a later run no longer finds it; one open row
//! per (supplier, subject, reason), enforced by a partial unique index, so a mismatch found
//! again is the same row.

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
        // Each uploaded statement once: the same file again (by its SHA-256) is the same statement.
        m.create_table(
            Table::create()
                .table("statements")
                .col(string("id").primary_key())
                .col(string("supplier"))
                .col(string("digest"))
                .col(integer("lines"))
                .col(timestamp_with_time_zone("uploaded_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_statements_digest")
                .table("statements")
                .col("supplier")
                .col("digest")
                .unique()
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
        // A scheduled slot, claimed once across every process sharing the database: the
        // process whose insert lands runs it, the others see the row and skip it.
        m.create_table(
            Table::create()
                .table("schedule_claims")
                .col(string("job"))
                .col(string("supplier"))
                .col(timestamp_with_time_zone("slot"))
                .col(timestamp_with_time_zone("claimed_at"))
                .primary_key(Index::create().col("job").col("supplier").col("slot"))
                .to_owned(),
        )
        .await?;
        // Invoice lines and credit notes: one of each kind per booking at most, numbered from
        // the row's own sequence.
        m.create_table(
            Table::create()
                .table("invoices")
                .col(big_integer("seq").auto_increment().primary_key())
                .col(string("number").unique_key())
                // invoice | credit_note
                .col(string("kind"))
                .col(string("booking_id"))
                .col(string("agency_id"))
                .col(string("supplier"))
                // Exact decimal, as text: never a float.
                .col(string("amount"))
                .col(string("currency"))
                .col(date("issue_date"))
                .col(date("due_date"))
                .col(timestamp_with_time_zone("issued_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_invoices_booking_kind")
                .table("invoices")
                .col("booking_id")
                .col("kind")
                .unique()
                .to_owned(),
        )
        .await?;
        // The documents' numbering, one counter row per series: taken in the transaction that
        // issues the document, so numbers have no gaps (a sequence skips on conflicts and
        // rollbacks).
        m.create_table(
            Table::create()
                .table("document_series")
                .col(string("series").primary_key())
                .col(big_integer("last"))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("INSERT INTO document_series (series, last) VALUES ('billing', 0)")
            .await?;
        m.create_index(Index::create().name("idx_invoices_issue_date").table("invoices").col("issue_date").to_owned())
            .await?;
        // Events for bookhub's own systems (accounting, automations), written in the same
        // transaction as what they tell; the operational webhooks deliver them.
        m.create_table(
            Table::create()
                .table("operator_events")
                .col(big_integer("seq").auto_increment().primary_key())
                .col(string("id").unique_key())
                .col(string("event_type"))
                .col(json_binary("payload"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in
            ["operator_events", "document_series", "invoices", "schedule_claims", "statements", "statement_lines"]
        {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.drop_table(Table::drop().table("reconciliation_mismatches").to_owned()).await?;
        m.drop_table(Table::drop().table("reconciliation_runs").to_owned()).await
    }
}
