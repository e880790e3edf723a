//! Supplier-code translation: the tables that turn each supplier's room, board and status codes
//! into bookhub's own and back. No adapter ever translates a code itself; a job takes a
//! [`Translator`] for the supplier and uses it on the way out and on the way in.
//!
//! - [`table`]: a table as values, and the [`Plan`] an edit makes (pure, with the outbound rules);
//! - [`csv`]: a table as CSV, import all or nothing with a report per row;
//! - [`Mappings`] ([`store`]): reads, edits with their audit, the cache every process keeps
//!   fresh by polling one version row per supplier;
//! - [`seeds`]: the rows a newly configured supplier starts with (`mappings/seeds/*.csv`).

pub mod csv;
pub mod entity;
pub mod seeds;
pub mod store;
pub mod table;
mod translator;

pub use store::{Actor, AuditEntry, EditError, MappingRow, Mappings, Via};
pub use table::{Conflict, Edit, Entry, Mapping, Plan, Table};
pub use translator::Translator;

use domain::SupplierCode;

domain::code_enum! {
    /// What a code is.
    pub enum CodeKind ("code kind") {
        RoomType = "room_type",
        Board = "board",
        Status = "status",
    }
}

/// Codes with no mapping row, each with its kind: the message staff act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unmapped codes for {supplier}: {}", missing.iter().map(|(k, c)| format!("{}:{c}", k.as_str())).collect::<Vec<_>>().join(", "))]
pub struct Unmapped {
    pub supplier: SupplierCode,
    pub missing: Vec<(CodeKind, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// A stored row bookhub wrote no longer parses (a hand edit).
    #[error("stored mapping row {row} does not parse")]
    Corrupt { row: String },
}
