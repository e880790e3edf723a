//! What bookhub's test suites share — the end-to-end harness (`bookhub-tests`) and the api
//! crate's own process tests: a database per test, the rule for tests that need Postgres,
//! free ports, log output, and waiting on a condition. It depends on no bookhub crate, so the
//! api crate can dev-depend on it without a cycle.

mod database;
mod logs;
mod wait;

pub use database::{Backend, POSTGRES_URL_VAR, TestDatabase, postgres_available_or_skip, postgres_url};
pub use logs::{init_test_logging, tail};
pub use wait::eventually;

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
