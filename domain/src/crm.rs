//! The CRM port: bookhub keeps one record per booking in the wholesaler's CRM, keyed by the
//! booking id, so writing a record again (a retried job, a later change) replaces it and never
//! makes a second one.
//!
//! A record speaks the **CRM's** field names (`ContactEmail`, `FechaReserva`, …) with values
//! already mapped to the CRM's formats: every rule of the mapping yields a string (dates as
//! `dd/mm/yyyy`, amounts as `"450.00"`, codes as words). The mapping itself lives outside this
//! port; a client only carries the record.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::ids::BookingId;

/// One booking's record as the CRM stores it: CRM field name → mapped value. `Debug` names the
/// fields only, since values carry personal data (the guest's email).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CrmRecord {
    fields: BTreeMap<String, String>,
}

impl CrmRecord {
    pub fn new(fields: BTreeMap<String, String>) -> Self {
        CrmRecord { fields }
    }

    /// Sets `field` to `value`, replacing an earlier value.
    pub fn set(&mut self, field: impl Into<String>, value: impl Into<String>) {
        self.fields.insert(field.into(), value.into());
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }
}

impl FromIterator<(String, String)> for CrmRecord {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        CrmRecord { fields: iter.into_iter().collect() }
    }
}

impl fmt::Debug for CrmRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmRecord").field("fields", &self.fields.keys().collect::<Vec<_>>()).finish()
    }
}

/// Why a record did not reach the CRM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmError {
    /// The CRM refused the record for good (401, a 4xx such as a 422 naming a field, or an
    /// answer bookhub does not follow such as a redirect): sending it again changes nothing.
    #[error("the CRM rejected the record (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// Worth trying again later: a 429, a 5xx, a timeout, a connect error. `retry_after` is the
    /// CRM's own hint, when it gave one.
    #[error("the CRM is unavailable: {reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
}

impl CrmError {
    pub fn transient(reason: impl Into<String>) -> Self {
        CrmError::Transient { reason: reason.into(), retry_after: None }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, CrmError::Transient { .. })
    }
}

/// The CRM, whatever its API: create or replace the record kept for `booking`.
#[async_trait::async_trait]
pub trait Crm: Send + Sync + fmt::Debug {
    /// Creates or replaces `booking`'s record. Idempotent: the same call twice leaves one record
    /// with the same fields.
    async fn upsert(&self, booking: &BookingId, record: &CrmRecord) -> Result<(), CrmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_prints_its_field_names_but_never_their_values() {
        let mut record = CrmRecord::default();
        record.set("ContactEmail", "ana.perez@example.com");
        record.set("MontoTotalUSD", "450.00");
        let printed = format!("{record:?}");
        assert!(printed.contains("ContactEmail") && printed.contains("MontoTotalUSD"), "{printed}");
        assert!(!printed.contains("ana.perez") && !printed.contains("450.00"), "{printed}");
        assert_eq!(record.get("MontoTotalUSD"), Some("450.00"));
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(CrmError::transient("HTTP 503").is_retryable());
        let rejected = CrmError::Rejected { status: 422, detail: "ContactEmail: invalid".into() };
        assert!(!rejected.is_retryable());
        assert_eq!(rejected.to_string(), "the CRM rejected the record (HTTP 422): ContactEmail: invalid");
    }
}
