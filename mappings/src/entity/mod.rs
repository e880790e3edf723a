//! The mapping tables' entities.

pub mod audit;
pub mod mapping;
pub mod version;
