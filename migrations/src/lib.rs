//! bookhub's schema. Every migration runs on Postgres and on SQLite; `bookhub migrate` applies
//! them (and `serve` does so at start-up). The job queue's own tables belong to apalis and are
//! set up next to these by the store.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_code_mappings;
mod m20261123_000003_webhook_events;
mod m20261202_000010_webhook_hardening;
mod m20261202_000020_key_lifecycle;
mod m20261203_000030_fanout;
mod m20261204_000040_mapping_tables;
mod m20261205_000050_admin_sessions;
mod m20261206_000060_reconciliation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_code_mappings::Migration),
            Box::new(m20261123_000003_webhook_events::Migration),
            Box::new(m20261202_000010_webhook_hardening::Migration),
            Box::new(m20261202_000020_key_lifecycle::Migration),
            Box::new(m20261203_000030_fanout::Migration),
            Box::new(m20261204_000040_mapping_tables::Migration),
            Box::new(m20261205_000050_admin_sessions::Migration),
            Box::new(m20261206_000060_reconciliation::Migration),
        ]
    }
}
