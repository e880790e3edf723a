//! bookhub's HTTP API: routes, auth, idempotency, problem+json errors, OpenAPI, and the
//! [`Application`] that runs them.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli_reconcile;
pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod routes;

pub use app::Application;
pub use config::Settings;
