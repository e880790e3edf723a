//! Mapping tables staff edit: each row gains a description, an active flag, whether it is the
//! outbound choice for its bookhub code, and who changed it last; every change is kept in
//! `mapping_audit`; `mapping_versions` numbers each supplier's changes so that every process
//! sharing the database notices one by polling a single small table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            string("description").default("").to_owned(),
            boolean("active").default(true).to_owned(),
            // The row a request uses when several supplier codes mean one bookhub code.
            boolean("outbound").default(false).to_owned(),
            string_null("updated_by_key"),
            string_null("updated_by_label"),
        ];
        // One column per `ALTER`, as SQLite takes no more.
        for mut column in columns {
            m.alter_table(Table::alter().table("code_mappings").add_column(&mut column).to_owned()).await?;
        }
        let db = m.get_connection();
        // Until now a request used the first supplier code in code order: keep that choice.
        db.execute_unprepared(
            "UPDATE code_mappings SET outbound = TRUE WHERE kind <> 'status' AND supplier_code = \
             (SELECT MIN(o.supplier_code) FROM code_mappings o WHERE o.supplier = code_mappings.supplier \
              AND o.kind = code_mappings.kind AND o.bookhub_code = code_mappings.bookhub_code)",
        )
        .await?;
        // The outbound direction is unambiguous: at most one outbound row per bookhub code.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX idx_code_mappings_outbound ON code_mappings (supplier, kind, bookhub_code) \
             WHERE outbound",
        )
        .await?;

        m.create_table(
            Table::create()
                .table("mapping_audit")
                .col(big_integer("id").auto_increment().primary_key())
                .col(string("supplier"))
                .col(string("kind"))
                .col(string("supplier_code"))
                // created | updated | deleted
                .col(string("action"))
                // The row's {bookhub_code, description, active, outbound} before and after.
                .col(json_binary_null("before"))
                .col(json_binary_null("after"))
                .col(string_null("actor_key"))
                .col(string_null("actor_label"))
                // api | csv | ui | cli | seed
                .col(string("via"))
                .col(timestamp_with_time_zone("at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_mapping_audit_table")
                .table("mapping_audit")
                .col("supplier")
                .col("kind")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("mapping_versions")
                .col(string("supplier").primary_key())
                .col(big_integer("version"))
                .col(timestamp_with_time_zone("changed_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("mapping_versions").to_owned()).await?;
        m.drop_table(Table::drop().table("mapping_audit").to_owned()).await?;
        m.get_connection().execute_unprepared("DROP INDEX idx_code_mappings_outbound").await?;
        for column in ["updated_by_label", "updated_by_key", "outbound", "active", "description"] {
            m.alter_table(Table::alter().table("code_mappings").drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
