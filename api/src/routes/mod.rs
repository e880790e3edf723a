pub mod bookings;
pub mod health;
pub mod jobs;
pub mod mappings;
pub mod suppliers;
pub mod webhook_events;
pub mod webhooks;
