pub mod bookings;
pub mod health;
