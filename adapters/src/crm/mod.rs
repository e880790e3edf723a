//! The wholesaler's CRM: the HTTP client of its records API ([`HttpCrm`], in `client`), the
//! field mapping that turns a booking into a record ([`mapping`]), and the mapping file kept
//! current while bookhub runs ([`live`]).

mod client;
pub mod live;
pub mod mapping;

pub use client::{CrmSettings, HttpCrm};
pub use live::{LiveMapping, MappingStatus, WatchHandle};
pub use mapping::{CrmInput, CrmMapping, FieldProblem, MappingFileError, Unmappable};
