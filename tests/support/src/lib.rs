//! What bookhub's test suites share — the end-to-end harness (`bookhub-tests`), the api
//! crate's own process tests and the adapters' tests: a database per test, the rule for tests
//! that need Postgres, an SMTP sink, free ports, log output, and waiting on a condition. It
//! depends on no bookhub crate, so the api and adapters crates can dev-depend on it without a
//! cycle.

mod database;
mod logs;
mod smtp;
mod wait;

pub use database::{Backend, POSTGRES_URL_VAR, TestDatabase, postgres_available_or_skip, postgres_url};
pub use logs::{init_test_logging, tail};
pub use smtp::{ReceivedMail, SinkOptions, SmtpSink};
pub use wait::eventually;

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
