//! The CRM field mapping as configuration: which CRM field shows what of a booking, and how
//! each value is written. The wholesaler's staff own it (`crm-mapping.toml`, described in its
//! own comments; the defaults are those of the CRM's contract), so it is data, not code.
//!
//! [`CrmMapping::parse`] reads a file and checks everything that can be checked without a
//! booking — names, sources, rules and the rules' fit, date formats (by formatting a sample),
//! time zones, tables and their keys, duplicate field names — and lists every problem, each
//! naming its `[[field]]` and key. [`CrmMapping::record`] then maps a booking to a complete
//! [`CrmRecord`] or to every reason it cannot: a record is never sent half-filled.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::format::StrftimeItems;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use domain::{Booking, BookingStatus, CrmRecord, Currency};
use serde::{Deserialize, Serialize};

mod rules;

pub use rules::{IfAbsent, Rule, Source};
use rules::{Kind, Writer, format_date};

/// Where the mapping file is looked for unless configured otherwise.
pub const DEFAULT_FILE: &str = "crm-mapping.toml";

/// The shipped `crm-mapping.toml`, used when the configured file does not exist.
const BUILTIN: &str = include_str!("../../../crm-mapping.toml");

const DEFAULT_TIME_ZONE: &str = "America/Caracas";
const DEFAULT_DATE_FORMAT: &str = "%d/%m/%Y";

/// A checked mapping: every field's source, rule, table and condition known to fit.
#[derive(Debug, Clone)]
pub struct CrmMapping {
    fields: Vec<Field>,
    description: MappingDescription,
}

#[derive(Debug, Clone)]
struct Field {
    /// 1-based, as staff count the file's `[[field]]`s.
    index: usize,
    name: String,
    source: Source,
    condition: Condition,
    writer: Writer,
    if_absent: IfAbsent,
}

/// When a field is written, by the booking's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    When(Currency),
    Unless(Currency),
}

impl Condition {
    fn holds(self, currency: Currency) -> bool {
        match self {
            Condition::Always => true,
            Condition::When(c) => currency == c,
            Condition::Unless(c) => currency != c,
        }
    }

    /// Whether no booking can meet both.
    fn excludes(self, other: Condition) -> bool {
        use Condition::{Unless, When};
        match (self, other) {
            (When(a), When(b)) => a != b,
            (When(a), Unless(b)) | (Unless(b), When(a)) => a == b,
            _ => false,
        }
    }
}

/// What a booking is mapped from: the booking and the name of the agency that made it.
#[derive(Debug, Clone, Copy)]
pub struct CrmInput<'a> {
    pub booking: &'a Booking,
    pub agency_name: &'a str,
}

/// A booking the mapping cannot turn into a whole record: every field that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Unmappable {
    pub problems: Vec<FieldProblem>,
}

/// One CRM field that could not be written. The reason names codes but never quotes personal
/// data (an email address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Unmappable {
    /// `ContactEmail: not a valid email address; TipoHabitacion: no entry for room type JSU`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            write!(f, "{separator}{}: {}", problem.field, problem.reason)?;
        }
        Ok(())
    }
}

/// A mapping file bookhub cannot use.
#[derive(Debug, thiserror::Error)]
pub enum MappingFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Not TOML, or not the file's shape (an unknown key, a missing `name`).
    #[error("{}", match line { Some(line) => format!("line {line}: {message}"), None => message.clone() })]
    Syntax { line: Option<usize>, message: String },
    /// Every problem found, in the order of the file.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid { problems: Vec<FileProblem> },
}

/// One problem of a mapping file: where (the 1-based `[[field]]` and its name, or none for a
/// top-level key), which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub field: Option<(usize, String)>,
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some((index, name)) => write!(f, "[[field]] #{index} ({name:?}), {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// The mapping as staff read it back (for `GET /v1/crm/mapping`): the file's content, with the
/// defaults it left out filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingDescription {
    pub time_zone: String,
    pub fields: Vec<FieldDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDescription {
    pub name: String,
    pub source: Source,
    pub rule: Rule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The zone a `created_at` date is written in (the field's own or the file's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unless_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<BTreeMap<String, String>>,
    /// For the optional sources only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_absent: Option<IfAbsent>,
}

/// The file as written. Sources and rules are read as text so that a wrong one is reported
/// with its field's index and name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    time_zone: Option<String>,
    #[serde(default)]
    field: Vec<FieldText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldText {
    name: String,
    source: String,
    rule: String,
    format: Option<String>,
    time_zone: Option<String>,
    when_currency: Option<String>,
    unless_currency: Option<String>,
    table: Option<BTreeMap<String, String>>,
    if_absent: Option<String>,
}

static BUILTIN_MAPPING: LazyLock<CrmMapping> =
    LazyLock::new(|| CrmMapping::parse(BUILTIN).expect("the shipped crm-mapping.toml is valid (a test reads it)"));

impl CrmMapping {
    /// Reads and checks a mapping file's text.
    pub fn parse(toml_text: &str) -> Result<CrmMapping, MappingFileError> {
        let file: FileText = toml::from_str(toml_text).map_err(|error| MappingFileError::Syntax {
            line: error
                .span()
                .and_then(|span| toml_text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1),
            message: error.message().to_owned(),
        })?;
        let mut problems = Vec::new();
        let zone_name = file.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE);
        let time_zone = match zone_name.parse::<Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                problems.push(FileProblem { field: None, key: "time_zone", message: unknown_zone(zone_name) });
                None
            }
        };
        if file.field.is_empty() {
            problems.push(FileProblem { field: None, key: "field", message: "the file maps no [[field]]".into() });
        }
        let mut fields = Vec::new();
        let mut described = Vec::new();
        for (i, text) in file.field.iter().enumerate() {
            let mut check = FieldCheck { at: (i + 1, text.name.clone()), problems: &mut problems };
            if let Some((field, description)) = check.field(text, time_zone.unwrap_or(Tz::UTC)) {
                fields.push(field);
                described.push(description);
            }
        }
        check_duplicates(&fields, &mut problems);
        if !problems.is_empty() {
            return Err(MappingFileError::Invalid { problems });
        }
        let description = MappingDescription { time_zone: zone_name.to_owned(), fields: described };
        Ok(CrmMapping { fields, description })
    }

    /// The shipped defaults (`crm-mapping.toml` at the repository's root), as the CRM's
    /// contract gives them.
    pub fn builtin() -> CrmMapping {
        BUILTIN_MAPPING.clone()
    }

    /// The booking's whole record, or every field that cannot be written.
    pub fn record(&self, input: &CrmInput<'_>) -> Result<CrmRecord, Unmappable> {
        let currency = input.booking.details.total.currency();
        let mut record = CrmRecord::default();
        let mut problems = Vec::new();
        for field in self.fields.iter().filter(|field| field.condition.holds(currency)) {
            let written = match field.source.value(input) {
                Ok(Some(value)) => field.writer.write(field.source, value).map(Some),
                Ok(None) => match field.if_absent {
                    IfAbsent::Omit => Ok(None),
                    IfAbsent::Empty => Ok(Some(String::new())),
                    IfAbsent::Refuse => Err(format!("the booking has no {}", field.source.words())),
                },
                Err(reason) => Err(reason),
            };
            match written {
                Ok(Some(value)) => record.set(field.name.clone(), value),
                Ok(None) => {}
                Err(reason) => problems.push(FieldProblem { field: field.name.clone(), reason }),
            }
        }
        if problems.is_empty() { Ok(record) } else { Err(Unmappable { problems }) }
    }

    /// Whether the CRM keeps `status` at all: every `status` field has a word for it. The
    /// contract's table has none for `failed` and `cancellation_pending` — states of bookhub's
    /// own, which leave the CRM's record as it was.
    pub fn records_status(&self, status: BookingStatus) -> bool {
        self.fields.iter().all(|field| match &field.writer {
            Writer::Status(words) => words.contains_key(&status),
            _ => true,
        })
    }

    /// The mapping as its file says, defaults filled in.
    pub fn describe(&self) -> &MappingDescription {
        &self.description
    }
}

/// Checks one `[[field]]`, recording its problems.
struct FieldCheck<'p> {
    at: (usize, String),
    problems: &'p mut Vec<FileProblem>,
}

impl FieldCheck<'_> {
    fn problem(&mut self, key: &'static str, message: impl Into<String>) {
        self.problems.push(FileProblem { field: Some(self.at.clone()), key, message: message.into() });
    }

    fn field(&mut self, text: &FieldText, file_zone: Tz) -> Option<(Field, FieldDescription)> {
        let before = self.problems.len();
        let name = text.name.as_str();
        if name.trim().is_empty() || name.trim() != name || name.chars().any(char::is_control) {
            self.problem(
                "name",
                "must be the CRM's field name: not blank, no surrounding spaces or control characters",
            );
        }
        let source = text.source.parse::<Source>().map_err(|e| self.problem("source", e.to_string())).ok();
        let rule = text.rule.parse::<Rule>().map_err(|e| self.problem("rule", e.to_string())).ok();
        let condition = self.condition(text);
        let if_absent = self.if_absent(text, source);
        let (source, rule) = (source?, rule?);
        if !rule.fits(source.kind()) {
            let fitting: Vec<&str> = Rule::ALL.iter().filter(|r| r.fits(source.kind())).map(Rule::as_str).collect();
            self.problem("rule", format!("\"{rule}\" does not fit source {source}; it takes {}", fitting.join(", ")));
            return None;
        }
        self.only_for(text.format.is_some(), rule == Rule::Date, "format", "rule = \"date\"");
        self.only_for(
            text.table.is_some(),
            matches!(rule, Rule::Lookup | Rule::Status),
            "table",
            "rule = \"lookup\" or \"status\"",
        );
        if text.time_zone.is_some() && source != Source::CreatedAt {
            let why = if source.kind() == Kind::Date { ", which is a calendar date and never converted" } else { "" };
            self.problem("time_zone", format!("applies only to source created_at, not to {source}{why}"));
        }
        let field_zone = text.time_zone.as_deref().and_then(|name| match name.parse::<Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                self.problem("time_zone", unknown_zone(name));
                None
            }
        });
        let time_zone = field_zone.unwrap_or(file_zone);
        let format = text.format.clone().unwrap_or_else(|| DEFAULT_DATE_FORMAT.to_owned());
        let writer = match rule {
            Rule::Copy => Writer::Copy,
            Rule::Email => Writer::Email,
            Rule::Decimal2 => Writer::Decimal2,
            Rule::Date => self.date(&format, source, time_zone)?,
            Rule::Lookup => Writer::Lookup(self.table(text, source)?),
            Rule::Status => Writer::Status(self.status_table(text)?),
        };
        if self.problems.len() > before {
            return None;
        }
        let description = FieldDescription {
            name: name.to_owned(),
            source,
            rule,
            format: (rule == Rule::Date).then_some(format),
            time_zone: (rule == Rule::Date && source == Source::CreatedAt).then(|| time_zone.name().to_owned()),
            when_currency: text.when_currency.clone(),
            unless_currency: text.unless_currency.clone(),
            table: text.table.clone(),
            if_absent: source.is_optional().then_some(if_absent),
        };
        Some((Field { index: self.at.0, name: name.to_owned(), source, condition, writer, if_absent }, description))
    }

    fn only_for(&mut self, given: bool, fits: bool, key: &'static str, what: &str) {
        if given && !fits {
            self.problem(key, format!("applies only to {what}"));
        }
    }

    fn condition(&mut self, text: &FieldText) -> Condition {
        let mut currency = |key: &'static str, code: &str| {
            code.parse::<Currency>()
                .map_err(|_| self.problem(key, format!("{code:?} is not an ISO 4217 currency code")))
                .ok()
        };
        match (text.when_currency.as_deref(), text.unless_currency.as_deref()) {
            (Some(_), Some(_)) => {
                self.problem("unless_currency", "a field takes when_currency or unless_currency, not both");
                Condition::Always
            }
            (Some(code), None) => currency("when_currency", code).map_or(Condition::Always, Condition::When),
            (None, Some(code)) => currency("unless_currency", code).map_or(Condition::Always, Condition::Unless),
            (None, None) => Condition::Always,
        }
    }

    fn if_absent(&mut self, text: &FieldText, source: Option<Source>) -> IfAbsent {
        let Some(given) = text.if_absent.as_deref() else { return IfAbsent::Omit };
        if let Some(source) = source.filter(|s| !s.is_optional()) {
            self.problem("if_absent", format!("source {source} always has a value"));
        }
        given.parse::<IfAbsent>().map_err(|e| self.problem("if_absent", e.to_string())).unwrap_or(IfAbsent::Omit)
    }

    /// A date rule: the format must parse and format a sample of the source's kind.
    fn date(&mut self, format: &str, source: Source, time_zone: Tz) -> Option<Writer> {
        let Ok(items) = StrftimeItems::new(format).parse_to_owned() else {
            self.problem("format", format!("{format:?} is not a strftime format (such as \"%d/%m/%Y\")"));
            return None;
        };
        let sample = DateTime::<Utc>::UNIX_EPOCH;
        let written = match source.kind() {
            Kind::Instant => format_date(&sample.with_timezone(&time_zone), &items),
            _ => format_date(&sample.date_naive(), &items),
        };
        match written {
            Ok(text) if !text.trim().is_empty() => Some(Writer::Date { items, time_zone }),
            Ok(_) => {
                self.problem("format", "writes nothing");
                None
            }
            Err(_) => {
                self.problem(
                    "format",
                    format!("{format:?} asks for more than {source} has (a time of a calendar date?)"),
                );
                None
            }
        }
    }

    fn table(&mut self, text: &FieldText, source: Source) -> Option<BTreeMap<String, String>> {
        let table = self.nonempty_table(text)?;
        if let Kind::Code(codes) = source.kind() {
            for key in table.keys() {
                if let Err(reason) = codes.check(key) {
                    self.problem("table", reason);
                }
            }
        }
        Some(table.clone())
    }

    fn status_table(&mut self, text: &FieldText) -> Option<BTreeMap<BookingStatus, String>> {
        let table = self.nonempty_table(text)?;
        let mut words = BTreeMap::new();
        for (key, word) in table {
            match key.parse::<BookingStatus>() {
                Ok(status) => {
                    words.insert(status, word.clone());
                }
                Err(e) => self.problem("table", format!("key {key:?}: {e}")),
            }
        }
        Some(words)
    }

    fn nonempty_table<'t>(&mut self, text: &'t FieldText) -> Option<&'t BTreeMap<String, String>> {
        match &text.table {
            None => self.problem("table", "is required for this rule"),
            Some(table) if table.is_empty() => self.problem("table", "must not be empty"),
            Some(table) => return Some(table),
        }
        None
    }
}

fn unknown_zone(name: &str) -> String {
    format!("{name:?} is not an IANA time zone name (such as \"America/Caracas\")")
}

/// Two fields of one name are allowed only when their conditions keep them apart.
fn check_duplicates(fields: &[Field], problems: &mut Vec<FileProblem>) {
    let mut seen: BTreeMap<&str, Vec<&Field>> = BTreeMap::new();
    for field in fields {
        let earlier = seen.entry(&field.name).or_default();
        if let Some(other) = earlier.iter().find(|other| !other.condition.excludes(field.condition)) {
            let message = format!(
                "{:?} is also [[field]] #{}; fields of one name need when_currency/unless_currency that exclude each other",
                field.name, other.index
            );
            problems.push(FileProblem { field: Some((field.index, field.name.clone())), key: "name", message });
        }
        earlier.push(field);
    }
}

#[cfg(test)]
mod tests;
