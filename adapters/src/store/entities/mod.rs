//! sea-orm entities, one per table. Their `Model`s stay inside the store: repositories turn them
//! into domain types.

pub mod admin_session;
pub mod agency;
pub mod agency_event;
pub mod agency_webhook;
pub mod api_key;
pub mod booking;
pub mod idempotency_key;
pub mod invoice;
pub mod operator_event;
pub mod reconciliation_mismatch;
pub mod reconciliation_run;
pub mod schedule_claim;
pub mod statement_file;
pub mod statement_line;
pub mod voucher;
pub mod webhook_attempt;
pub mod webhook_event;
