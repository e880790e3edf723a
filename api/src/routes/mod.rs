pub mod bookings;
pub mod health;
pub mod suppliers;
pub mod webhooks;
