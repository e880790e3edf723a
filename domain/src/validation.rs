//! Collecting every rule a value breaks, each with the path of the field that broke it.

use serde::Serialize;

/// One broken rule: where (`rooms[0].guests[1].email`), a stable code, and words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// The most [`FieldError`]s one answer lists: enough to fix a request, never a way to make
/// the server build a huge answer.
pub const MAX_REPORTED: usize = 50;

/// The rules a value broke: the first [`MAX_REPORTED`], and whether there were more.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors {
    pub errors: Vec<FieldError>,
    pub truncated: bool,
}

impl From<FieldError> for FieldErrors {
    fn from(error: FieldError) -> Self {
        FieldErrors { errors: vec![error], truncated: false }
    }
}

/// Every [`FieldError`] found while parsing one value, up to [`MAX_REPORTED`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(FieldErrors);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        if self.0.errors.len() < MAX_REPORTED {
            self.0.errors.push(FieldError { field: field.into(), code, message: message.into() });
        } else {
            self.0.truncated = true;
        }
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

    /// `value` when it is at most `max` characters, else `None` after recording `too_long`.
    pub fn at_most<'a>(&mut self, field: impl Into<String>, max: usize, value: &'a str) -> Option<&'a str> {
        if value.chars().nth(max).is_some() {
            self.add(field, "too_long", format!("must be at most {max} characters"));
            None
        } else {
            Some(value)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else the violations.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.is_empty() { Ok(value()) } else { Err(self.0) }
    }
}

/// An email address, checked for the shape `local@domain.tld` (delivery proves the rest).
/// `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl std::fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailAddress(…)")
    }
}

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
        assert_eq!(errs.errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(!errs.truncated);
    }

    #[test]
    fn violations_stop_listing_at_the_cap_and_say_so() {
        let mut v = Violations::default();
        for i in 0..MAX_REPORTED * 3 {
            v.add(format!("f{i}"), "required", "is required");
        }
        let errs = v.finish(|| ()).unwrap_err();
        assert_eq!(errs.errors.len(), MAX_REPORTED);
        assert!(errs.truncated);
    }

    #[test]
    fn text_length_counts_characters() {
        let mut v = Violations::default();
        assert_eq!(v.at_most("a", 3, "ñññ"), Some("ñññ"));
        assert_eq!(v.at_most("b", 3, "ññññ"), None);
        assert_eq!(v.finish(|| ()).unwrap_err().errors[0].field, "b");
    }
}
