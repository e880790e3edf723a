//! Agency webhooks, outbound.

pub mod ssrf;
