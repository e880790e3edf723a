//! Telling agencies that a booking changed. Each change is one agency event; the fan-out jobs
//! deliver it by the channels an agency has: [`webhook`] (signed with the agency's secret, to
//! its callback URL, behind an SSRF guard) and [`email`] (a summary over SMTP, the voucher
//! attached on confirmation).

pub mod email;
pub mod webhook;
