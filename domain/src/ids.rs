//! Typed identities. Ids are opaque, prefixed strings (`bk_…`) built on UUIDv7, so they sort by
//! creation time — which is what makes keyset pagination stable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An id string that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let valid = s
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
                if valid {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId { kind: stringify!($name) })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A booking, `bk_…`.
    BookingId,
    "bk"
);
prefixed_id!(
    /// A travel agency (a tenant), `ag_…`.
    AgencyId,
    "ag"
);
prefixed_id!(
    /// A supplier webhook as received and logged, `whe_…`.
    WebhookEventId,
    "whe"
);
prefixed_id!(
    /// A booking change as its agency is told of it, `evt_…`: the Standard Webhooks
    /// `webhook-id` of its deliveries.
    AgencyEventId,
    "evt"
);
prefixed_id!(
    /// An API key's public id, `key_…` (the secret itself is never stored).
    ApiKeyId,
    "key"
);
prefixed_id!(
    /// A reconciliation run with one supplier over one window, `rcn_…`.
    ReconciliationRunId,
    "rcn"
);
prefixed_id!(
    /// An uploaded supplier statement, `stm_…`.
    StatementId,
    "stm"
);

prefixed_id!(
    /// An event for bookhub's own systems (accounting, automations), `oev_…`.
    OperatorEventId,
    "oev"
);

/// A configured supplier's code, such as `jsonrest`: lower-case letters, digits, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SupplierCode(String);

impl SupplierCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SupplierCode {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid { Ok(Self(s.to_owned())) } else { Err(InvalidId { kind: "SupplierCode" }) }
    }
}

impl TryFrom<String> for SupplierCode {
    type Error = InvalidId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SupplierCode> for String {
    fn from(code: SupplierCode) -> String {
        code.0
    }
}

impl fmt::Display for SupplierCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort_by_creation() {
        let first = BookingId::generate();
        let second = BookingId::generate();
        assert_eq!(first.as_str().parse::<BookingId>(), Ok(first.clone()));
        assert!(first < second, "UUIDv7 ids must sort by creation time");
    }

    #[test]
    fn ids_with_the_wrong_prefix_or_shape_are_refused() {
        let agency = AgencyId::generate();
        assert!(agency.as_str().parse::<BookingId>().is_err());
        assert!("bk_123".parse::<BookingId>().is_err());
        assert!("Sandbox".parse::<SupplierCode>().is_err());
        assert!("jsonrest".parse::<SupplierCode>().is_ok());
    }
}
