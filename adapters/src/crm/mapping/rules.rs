//! The words of the mapping file — where a value comes from ([`Source`]), how it is written
//! ([`Rule`]), what to do when a booking lacks it ([`IfAbsent`]) — and the two steps of mapping
//! one field: reading the value off the booking, then writing it as the CRM wants it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::format::Item;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::{Board, BookingStatus, Currency, Money, RoomType};
use rust_decimal::RoundingStrategy;

use super::CrmInput;

domain::code_enum! {
    /// What of a booking a CRM field shows.
    pub enum Source ("CRM mapping source") {
        LeadGuestEmail = "lead_guest_email",
        CreatedAt = "created_at",
        TotalAmount = "total_amount",
        TotalCurrency = "total_currency",
        /// Of the first room.
        RoomType = "room_type",
        /// Of the first room.
        Board = "board",
        Status = "status",
        SupplierReference = "supplier_reference",
        AgencyName = "agency_name",
        CheckIn = "check_in",
        CheckOut = "check_out",
        BookingId = "booking_id",
        ClientReference = "client_reference",
        HotelCode = "hotel_code",
    }
}

domain::code_enum! {
    /// How a CRM field's value is written.
    pub enum Rule ("CRM mapping rule") {
        Copy = "copy",
        Email = "email",
        Date = "date",
        Decimal2 = "decimal2",
        Lookup = "lookup",
        Status = "status",
    }
}

domain::code_enum! {
    /// What a field does when the booking has no value for an optional source.
    pub enum IfAbsent ("if_absent choice") {
        /// The field is left out of the record.
        Omit = "omit",
        /// The field is sent as `""`.
        Empty = "empty",
        /// The record is not sent.
        Refuse = "refuse",
    }
}

/// What kind of value a source gives, which decides the rules that fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    /// One of a closed set of codes, which a lookup table's keys must belong to.
    Code(CodeSet),
    Email,
    /// A UTC instant, converted to a time zone before it is written as a date.
    Instant,
    /// A calendar date, written as it is.
    Date,
    Amount,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeSet {
    RoomType,
    Board,
    Currency,
}

impl CodeSet {
    /// `Err` with the reason when `key` is not one of the set's codes.
    pub(super) fn check(self, key: &str) -> Result<(), String> {
        let known = match self {
            CodeSet::RoomType => key.parse::<RoomType>().map(drop).map_err(|e| e.to_string()),
            CodeSet::Board => key.parse::<Board>().map(drop).map_err(|e| e.to_string()),
            CodeSet::Currency => key.parse::<Currency>().map(drop).map_err(|e| e.to_string()),
        };
        known.map_err(|reason| format!("key {key:?}: {reason}"))
    }
}

impl Source {
    pub(super) fn kind(self) -> Kind {
        match self {
            Source::LeadGuestEmail => Kind::Email,
            Source::CreatedAt => Kind::Instant,
            Source::TotalAmount => Kind::Amount,
            Source::TotalCurrency => Kind::Code(CodeSet::Currency),
            Source::RoomType => Kind::Code(CodeSet::RoomType),
            Source::Board => Kind::Code(CodeSet::Board),
            Source::Status => Kind::Status,
            Source::CheckIn | Source::CheckOut => Kind::Date,
            Source::SupplierReference
            | Source::AgencyName
            | Source::BookingId
            | Source::ClientReference
            | Source::HotelCode => Kind::Text,
        }
    }

    /// Whether a booking may lack this value (and `if_absent` applies).
    pub(super) fn is_optional(self) -> bool {
        matches!(self, Source::SupplierReference | Source::ClientReference)
    }

    /// The source in words, for the reasons staff read.
    pub(super) fn words(self) -> &'static str {
        match self {
            Source::LeadGuestEmail => "lead guest email",
            Source::CreatedAt => "booking date",
            Source::TotalAmount => "total",
            Source::TotalCurrency => "currency",
            Source::RoomType => "room type",
            Source::Board => "board",
            Source::Status => "status",
            Source::SupplierReference => "supplier reference",
            Source::AgencyName => "agency name",
            Source::CheckIn => "check-in date",
            Source::CheckOut => "check-out date",
            Source::BookingId => "booking id",
            Source::ClientReference => "client reference",
            Source::HotelCode => "hotel code",
        }
    }

    /// The booking's value: `Ok(None)` when an optional source has none, `Err` (a reason) when a
    /// value every booking has is missing — a booking not built by intake.
    pub(super) fn value<'a>(self, input: &CrmInput<'a>) -> Result<Option<Value<'a>>, String> {
        let booking = input.booking;
        let details = &booking.details;
        let first_room = || details.rooms.first().ok_or_else(|| "the booking has no room".to_owned());
        let value = match self {
            Source::LeadGuestEmail => {
                let lead = first_room()?.guests.first();
                let email = lead.and_then(|guest| guest.email.as_ref());
                Value::Text(email.ok_or_else(|| "the booking has no lead guest email".to_owned())?.as_str())
            }
            Source::CreatedAt => Value::Instant(booking.created_at),
            Source::TotalAmount => Value::Amount(details.total),
            Source::TotalCurrency => Value::Text(details.total.currency().code()),
            Source::RoomType => Value::Text(first_room()?.room_type.as_str()),
            Source::Board => Value::Text(first_room()?.board.as_str()),
            Source::Status => Value::Status(booking.status),
            Source::SupplierReference => match booking.supplier_reference.as_deref() {
                Some(reference) => Value::Text(reference),
                None => return Ok(None),
            },
            Source::AgencyName => Value::Text(input.agency_name),
            Source::CheckIn => Value::Date(details.check_in),
            Source::CheckOut => Value::Date(details.check_out),
            Source::BookingId => Value::Text(booking.id.as_str()),
            Source::ClientReference => match details.client_reference.as_deref() {
                Some(reference) => Value::Text(reference),
                None => return Ok(None),
            },
            Source::HotelCode => Value::Text(&details.hotel_code),
        };
        Ok(Some(value))
    }
}

impl Rule {
    /// Whether the rule can write a value of `kind`.
    pub(super) fn fits(self, kind: Kind) -> bool {
        match self {
            Rule::Copy => matches!(kind, Kind::Text | Kind::Code(_) | Kind::Email | Kind::Status),
            Rule::Email => kind == Kind::Email,
            Rule::Date => matches!(kind, Kind::Instant | Kind::Date),
            Rule::Decimal2 => kind == Kind::Amount,
            Rule::Lookup => matches!(kind, Kind::Text | Kind::Code(_)),
            Rule::Status => kind == Kind::Status,
        }
    }
}

/// One value read off a booking.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Text(&'a str),
    Instant(DateTime<Utc>),
    Date(NaiveDate),
    Amount(Money),
    Status(BookingStatus),
}

/// A rule with what it needs, checked when the file was read.
#[derive(Debug, Clone)]
pub(super) enum Writer {
    Copy,
    Email,
    Date { items: Vec<Item<'static>>, time_zone: Tz },
    Decimal2,
    Lookup(BTreeMap<String, String>),
    Status(BTreeMap<BookingStatus, String>),
}

impl Writer {
    /// `value` as the CRM wants it, or the reason it cannot be written. A reason never quotes an
    /// email address; codes, which are not personal data, are named.
    pub(super) fn write(&self, source: Source, value: Value<'_>) -> Result<String, String> {
        match (self, value) {
            (Writer::Copy, Value::Text(text)) => Ok(text.to_owned()),
            (Writer::Copy, Value::Status(status)) => Ok(status.as_str().to_owned()),
            (Writer::Email, Value::Text(address)) if is_plain_address(address) => Ok(address.to_owned()),
            (Writer::Email, Value::Text(_)) => Err("not a valid email address".into()),
            (Writer::Date { items, time_zone }, Value::Instant(at)) => format_date(&at.with_timezone(time_zone), items),
            (Writer::Date { items, .. }, Value::Date(date)) => format_date(&date, items),
            (Writer::Decimal2, Value::Amount(money)) => Ok(decimal2(money)),
            (Writer::Lookup(table), Value::Text(key)) => {
                table.get(key).cloned().ok_or_else(|| format!("no entry for {} {key}", source.words()))
            }
            (Writer::Status(table), Value::Status(status)) => {
                table.get(&status).cloned().ok_or_else(|| format!("no entry for status {status}"))
            }
            // Ruled out when the file was read (`Rule::fits`); said plainly should it ever happen.
            _ => Err(format!("the rule does not fit the {}", source.words())),
        }
    }
}

/// Formats with items parsed at load; a failure (a time item for a calendar date) is a reason,
/// never a panic.
pub(super) fn format_date(date: &impl FormatWithItems, items: &[Item<'static>]) -> Result<String, String> {
    let mut out = String::new();
    date.write_with(&mut out, items).map_err(|_| "the date format does not fit this date".to_owned())?;
    Ok(out)
}

/// The dates a `date` rule writes.
pub(super) trait FormatWithItems {
    fn write_with(&self, out: &mut String, items: &[Item<'static>]) -> std::fmt::Result;
}

impl FormatWithItems for NaiveDate {
    fn write_with(&self, out: &mut String, items: &[Item<'static>]) -> std::fmt::Result {
        write!(out, "{}", self.format_with_items(items.iter()))
    }
}

impl FormatWithItems for DateTime<Tz> {
    fn write_with(&self, out: &mut String, items: &[Item<'static>]) -> std::fmt::Result {
        write!(out, "{}", self.format_with_items(items.iter()))
    }
}

/// Exactly two decimals: 450 → `450.00`. Amounts carry their currency's minor units, so only a
/// currency with more than two (KWD's three) is rounded, half to even.
fn decimal2(money: Money) -> String {
    let mut amount = money.amount().round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    amount.rescale(2);
    amount.to_string()
}

/// The CRM's notion of a valid address, stricter than intake's (which takes any non-space
/// characters before the `@` and Unicode letters after it): ASCII only; the name a dot-atom of
/// RFC 5322's atom characters (no leading, trailing or doubled dot); the domain at least two
/// labels of letters, digits and inner hyphens, each at most 63 characters, the last not all
/// digits.
pub(super) fn is_plain_address(address: &str) -> bool {
    const ATOM_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    let Some((name, domain)) = address.rsplit_once('@') else { return false };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|atom| {
            !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || ATOM_SPECIALS.contains(c))
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels.last().is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    name_ok && domain_ok && address.len() <= 254
}
