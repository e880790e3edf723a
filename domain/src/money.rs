//! Money: an exact decimal amount in an ISO 4217 currency. Never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// ISO 4217 active codes with their minor units (fund codes included, metals and test codes not).
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

impl Currency {
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not an ISO 4217 currency code")]
    UnknownCurrency,
    #[error("not a decimal number")]
    NotANumber,
    #[error("has more decimals than {currency} allows ({minor_units})")]
    TooManyDecimals { currency: &'static str, minor_units: u32 },
    #[error("must not be negative")]
    Negative,
    #[error("is too large")]
    TooLarge,
}

impl MoneyError {
    /// Which part of `{amount, currency}` is wrong.
    pub fn field(&self) -> &'static str {
        if matches!(self, MoneyError::UnknownCurrency) { "currency" } else { "amount" }
    }

    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency => "unknown_currency",
            MoneyError::TooManyDecimals { .. } => "minor_units",
            MoneyError::NotANumber | MoneyError::Negative | MoneyError::TooLarge => "invalid_amount",
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        ISO_4217
            .binary_search_by(|(c, _)| (*c).cmp(code))
            .map(|i| Currency { code: ISO_4217[i].0, minor_units: ISO_4217[i].1 })
            .map_err(|_| MoneyError::UnknownCurrency)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code.to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// A non-negative amount of a currency, exact to the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Checks the amount against the currency: not negative, no more decimals than it has.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        if amount.normalize().scale() > currency.minor_units {
            return Err(MoneyError::TooManyDecimals { currency: currency.code, minor_units: currency.minor_units });
        }
        let mut amount = amount;
        amount.rescale(currency.minor_units);
        let money = Money { amount, currency };
        money.checked_minor_units().ok_or(MoneyError::TooLarge)?;
        Ok(money)
    }

    /// Parses the wire form: a decimal string and a currency code.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency: Currency = currency.parse()?;
        let amount = Decimal::from_str_exact(amount.trim()).map_err(|_| MoneyError::NotANumber)?;
        Money::new(amount, currency)
    }

    /// As [`Money::parse`], but checks the amount and the currency each on its own, so that an
    /// unknown currency and a negative amount are both reported.
    pub fn parse_each(amount: &str, currency: &str) -> Result<Self, Vec<MoneyError>> {
        let currency = currency.parse::<Currency>();
        let amount = Decimal::from_str_exact(amount.trim())
            .map_err(|_| MoneyError::NotANumber)
            .and_then(|a| if a.is_sign_negative() && !a.is_zero() { Err(MoneyError::Negative) } else { Ok(a) });
        match (amount, currency) {
            (Ok(amount), Ok(currency)) => Money::new(amount, currency).map_err(|e| vec![e]),
            (amount, currency) => Err([currency.err(), amount.err()].into_iter().flatten().collect()),
        }
    }

    /// From an integer count of minor units (how it is stored).
    pub fn from_minor_units(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        Money::new(Decimal::new(minor, currency.minor_units), currency)
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// The amount as an integer count of minor units: 450.00 EUR is 45000.
    pub fn minor_units(&self) -> i64 {
        self.checked_minor_units().expect("checked when the value was built")
    }

    fn checked_minor_units(&self) -> Option<i64> {
        let mut scaled = self.amount;
        scaled.set_scale(0).ok()?;
        i64::try_from(scaled.mantissa()).ok()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn parses_amounts_to_the_currency_precision() {
        let m = Money::parse("450.0", "EUR").unwrap();
        assert_eq!(m.amount().to_string(), "450.00");
        assert_eq!(m.minor_units(), 45_000);
        assert_eq!(Money::parse("1000", "JPY").unwrap().minor_units(), 1000);
        assert_eq!(Money::parse("1.234", "KWD").unwrap().minor_units(), 1234);
    }

    #[test]
    fn refuses_what_the_currency_cannot_hold() {
        assert_eq!(Money::parse("10.5", "JPY"), Err(MoneyError::TooManyDecimals { currency: "JPY", minor_units: 0 }));
        assert!(matches!(Money::parse("1.001", "EUR"), Err(MoneyError::TooManyDecimals { .. })));
        assert_eq!(Money::parse("1", "EURO"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Money::parse("1", "XXX"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Money::parse("abc", "EUR"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse("-1", "EUR"), Err(MoneyError::Negative));
    }

    #[test]
    fn minor_units_round_trip() {
        let eur: Currency = "EUR".parse().unwrap();
        let m = Money::from_minor_units(45_099, eur).unwrap();
        assert_eq!(m.amount().to_string(), "450.99");
        assert_eq!(Money::from_minor_units(m.minor_units(), eur), Ok(m));
    }
}
