//! Implementations of bookhub's ports. `store` is the database: sea-orm for reads and plain
//! updates, sqlx transactions where rows and queued jobs must commit together.

pub mod crm;
pub mod notify;
pub mod settings;
pub mod store;
pub mod suppliers;
