//! Collecting every rule a value breaks, each with the path of the field that broke it.

use serde::Serialize;

/// One broken rule: where (`rooms[0].guests[1].email`), a stable code, and words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// Every [`FieldError`] found while parsing one value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), code, message: message.into() });
    }

    /// Keeps `Ok` values; records an `Err` under `field` with `code` and returns `None`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.add(field, code, e.to_string())).ok()
    }

    /// The trimmed value; records `required` when it is blank and `invalid_text` when it holds
    /// control characters (NUL and the like, which no name or code contains).
    pub fn required<'a>(&mut self, field: impl Into<String>, value: &'a str) -> Option<&'a str> {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "required", "is required");
            None
        } else {
            self.text(field, value)
        }
    }

    /// `value`, or `None` after recording `invalid_text` when it holds control characters.
    pub fn text<'a>(&mut self, field: impl Into<String>, value: &'a str) -> Option<&'a str> {
        if value.chars().any(char::is_control) {
            self.add(field, "invalid_text", "must not contain control characters");
            None
        } else {
            Some(value)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded, else every violation.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() { Ok(value()) } else { Err(self.0) }
    }
}

/// An email address, checked for the shape `local@domain.tld` (delivery proves the rest).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid email address")]
pub struct InvalidEmail;

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(InvalidEmail)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@');
        if domain_ok && local_ok && s.len() <= 254 { Ok(Self(s.to_owned())) } else { Err(InvalidEmail) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidEmail;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(EmailAddress::parse("ana@example.com").is_ok());
        assert!(EmailAddress::parse("ana.perez+trip@mail.example.es").is_ok());
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "ana @example.com", "ana@.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn violations_collect_every_failure() {
        let mut v = Violations::default();
        assert_eq!(v.required("a", " x "), Some("x"));
        assert_eq!(v.required("b", "  "), None);
        assert_eq!(v.check("c", "invalid", "x".parse::<i32>()), None);
        let errs = v.finish(|| ()).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    }
}
