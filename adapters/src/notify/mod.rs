//! Telling agencies that a booking changed: signed webhooks to their callback URLs.

pub mod webhook;
