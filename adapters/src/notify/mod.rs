//! Telling agencies that a booking changed. Each change is one agency event; the fan-out jobs
//! deliver it by the channels an agency has: [`email`] (a summary over SMTP, the voucher
//! attached on confirmation).

pub mod email;
