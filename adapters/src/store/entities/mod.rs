//! sea-orm entities, one per table. Their `Model`s stay inside the store: repositories turn them
//! into domain types.

pub mod agency;
pub mod api_key;
pub mod booking;
pub mod idempotency_key;
pub mod webhook_event;
