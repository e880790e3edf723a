//! Building blocks of bookhub's settings that more than one section uses: a [`Secret`] that
//! never prints, a [`DatabaseUrl`] whose password never prints, and [`SettingError`], which a
//! section's `validate` returns naming its own key (the caller prefixes the section's path).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A credential from configuration: written and read as a plain string, printed as `…`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that uses it (a header, a signing key).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `sqlite://FILE?…` or `postgres://USER:PASSWORD@HOST/DB`, checked when read; its password is
/// never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres:") || self.0.starts_with("postgresql:")
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;

    fn try_from(url: String) -> Result<Self, Self::Error> {
        if url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(DatabaseUrl(url))
        } else {
            Err("must start with sqlite: or postgres:".into())
        }
    }
}

impl From<DatabaseUrl> for String {
    fn from(url: DatabaseUrl) -> Self {
        url.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatabaseUrl::try_from(s.to_owned())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // scheme://user:password@host → scheme://user:…@host
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.0[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                let password = if userinfo.contains(':') { ":…" } else { "" };
                write!(f, "{}{user}{password}{}", &self.0[..scheme + 3], &self.0[at..])
            }
            _ => f.write_str(&self.0),
        }
    }
}

/// Keys a table does not know, collected so that a table with `#[serde(flatten)]` blocks (where
/// serde cannot deny unknown fields) still refuses a typo: `validate` reports the first one.
/// Serialises as nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownKeys(std::collections::BTreeSet<String>);

impl<'de> Deserialize<'de> for UnknownKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, serde::de::IgnoredAny>::deserialize(deserializer)?;
        Ok(UnknownKeys(map.into_keys().collect()))
    }
}

impl UnknownKeys {
    pub fn check(&self) -> Result<(), SettingError> {
        match self.0.iter().next() {
            Some(key) => Err(SettingError::new(key.clone(), "is not a known key here")),
            None => Ok(()),
        }
    }
}

impl Serialize for UnknownKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(std::iter::empty::<(&str, &str)>())
    }
}

/// A value a section cannot use: its key within the section, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    pub key: String,
    pub message: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingError { key: key.into(), message: message.into() }
    }
}

/// An outbound service's `base_url`: https, or http when the table sets `allow_http = true`
/// (tests and demos on loopback), so credentials and guests' data never cross in the clear by
/// mistake.
pub fn check_base_url(url: &str, allow_http: bool) -> Result<(), SettingError> {
    if url.starts_with("https://") || (allow_http && url.starts_with("http://")) {
        Ok(())
    } else if url.starts_with("http://") {
        Err(SettingError::new("base_url", "must be an https:// URL (set allow_http = true to allow http://)"))
    } else {
        Err(SettingError::new("base_url", "must be an https:// URL"))
    }
}

/// `Ok` when `value` is within `range`, else a [`SettingError`] for `key` saying so.
pub fn in_range<T: PartialOrd + fmt::Display>(
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), SettingError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(SettingError::new(key, format!("must be from {} to {}", range.start(), range.end())))
    }
}

/// As [`in_range`], for durations, written as humantime (`1h`, `30days`).
pub fn in_duration_range(
    key: &str,
    value: std::time::Duration,
    range: std::ops::RangeInclusive<std::time::Duration>,
) -> Result<(), SettingError> {
    use humantime_serde::re::humantime::format_duration;
    if range.contains(&value) {
        Ok(())
    } else {
        let (from, to) = (format_duration(*range.start()), format_duration(*range.end()));
        Err(SettingError::new(key, format!("must be from {from} to {to}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_database_passwords_never_print() {
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "Secret(…)");
        let url: DatabaseUrl = "postgres://bookhub:hunter2@db.internal/bookhub".parse().unwrap();
        assert_eq!(format!("{url:?}"), "postgres://bookhub:…@db.internal/bookhub");
        assert_eq!(url.as_str(), "postgres://bookhub:hunter2@db.internal/bookhub");
        let sqlite: DatabaseUrl = "sqlite://bookhub.db?mode=rwc".parse().unwrap();
        assert_eq!(format!("{sqlite:?}"), "sqlite://bookhub.db?mode=rwc");
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn secrets_serialise_as_their_value_so_config_round_trips() {
        let json = serde_json::to_string(&Secret::from("k")).unwrap();
        assert_eq!(json, "\"k\"");
        assert_eq!(serde_json::from_str::<Secret>(&json).unwrap().expose(), "k");
    }
}
