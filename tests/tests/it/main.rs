//! bookhub's end-to-end tests, one module per feature, in one test binary: linked once, and
//! run together (`cargo test -p bookhub-tests --test it bookings::` runs one module).

mod admin;
mod admin_ui;
mod bookings;
mod fanout;
mod finance;
mod hardening;
mod idempotency;
mod keys;
mod late_confirmation;
mod mappings;
mod migrations;
mod openapi_walk;
mod problems;
mod queue;
mod rate_limits;
mod reconcile_cli;
mod reconciliation;
mod schedule;
mod supplier_sim;
mod suppliers;
mod webhook_hardening;
mod webhook_intake;
mod webhooks;
