//! The finance report's arithmetic: per agency, supplier and currency, the bookings by status,
//! what was sold, what the supplier's statements bill for it, and the margin. Amounts are
//! exact decimals, summed only within one currency: a cost billed in another currency than
//! the booking's is left out of the margin (reconciliation flags it as `currency_differs`).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::{AgencyId, Booking, BookingStatus, Currency, Money, SupplierCode};

/// One booking of the period, with what its supplier's statements bill for it (the sum of its
/// billed lines, when they are all in one currency).
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub booking: &'a Booking,
    pub cost: Option<Money>,
}

impl Line<'_> {
    /// Whether the booking counts as sold: confirmed now.
    pub fn is_sold(&self) -> bool {
        self.booking.status == BookingStatus::Confirmed
    }

    /// The cost, when it is in the booking's currency and the booking is sold.
    pub fn comparable_cost(&self) -> Option<Decimal> {
        let sell = self.booking.details.total;
        self.cost.filter(|c| self.is_sold() && c.currency() == sell.currency()).map(|c| c.amount())
    }

    /// Sell minus cost, when both are known in one currency.
    pub fn margin(&self) -> Option<Decimal> {
        self.comparable_cost().map(|cost| self.booking.details.total.amount() - cost)
    }
}

/// A report row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub agency: AgencyId,
    pub supplier: SupplierCode,
    pub currency: Currency,
}

/// One row of the totals: an agency's bookings with one supplier in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bookings per status (every status present, zero or not).
    pub by_status: BTreeMap<BookingStatus, u64>,
    /// The sold bookings' totals ([`Line::is_sold`]).
    pub sell: Decimal,
    /// How many sold bookings a statement bills in their currency, what it bills for them,
    /// and what those bookings sold for.
    pub costed: u64,
    pub cost: Decimal,
    pub costed_sell: Decimal,
}

impl Totals {
    fn zero() -> Totals {
        Totals { by_status: BookingStatus::ALL.iter().map(|s| (*s, 0)).collect(), ..Totals::default() }
    }

    /// Sell minus cost over the bookings whose cost is known.
    pub fn margin(&self) -> Decimal {
        self.costed_sell - self.cost
    }

    fn add(&mut self, line: &Line<'_>) {
        *self.by_status.entry(line.booking.status).or_default() += 1;
        let sell = line.booking.details.total.amount();
        if line.is_sold() {
            self.sell += sell;
        }
        if let Some(cost) = line.comparable_cost() {
            self.costed += 1;
            self.cost += cost;
            self.costed_sell += sell;
        }
    }
}

/// The totals of `lines`, per agency, supplier and currency, in key order.
pub fn totals(lines: &[Line<'_>]) -> BTreeMap<GroupKey, Totals> {
    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    for line in lines {
        let b = line.booking;
        let key = GroupKey {
            agency: b.agency_id.clone(),
            supplier: b.details.supplier.clone(),
            currency: b.details.total.currency(),
        };
        groups.entry(key).or_insert_with(Totals::zero).add(line);
    }
    groups
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::booking::tests::booking_in;

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency).unwrap()
    }

    fn booking(status: BookingStatus, total: &str, currency: &str) -> Booking {
        let mut b = booking_in(status);
        b.details.total = money(total, currency);
        b
    }

    #[test]
    fn totals_are_per_currency_exact_and_count_every_status() {
        let agency = AgencyId::generate();
        let mut bookings = vec![
            booking(BookingStatus::Confirmed, "0.10", "EUR"),
            booking(BookingStatus::Confirmed, "0.20", "EUR"),
            booking(BookingStatus::Cancelled, "99.00", "EUR"),
            booking(BookingStatus::Confirmed, "1000", "JPY"),
            booking(BookingStatus::Confirmed, "12.345", "KWD"),
        ];
        for b in &mut bookings {
            b.agency_id = agency.clone();
        }
        let lines: Vec<Line> = bookings
            .iter()
            .zip([Some(money("0.05", "EUR")), None, Some(money("1.00", "EUR")), Some(money("9", "USD")), None])
            .map(|(booking, cost)| Line { booking, cost })
            .collect();
        let groups = totals(&lines);
        assert_eq!(groups.len(), 3, "one row per currency");
        let eur = groups.iter().find(|(k, _)| k.currency.code() == "EUR").unwrap().1;
        assert_eq!(eur.sell, Decimal::from_str("0.30").unwrap(), "0.1 + 0.2, exactly");
        assert_eq!(eur.by_status[&BookingStatus::Confirmed], 2);
        assert_eq!(eur.by_status[&BookingStatus::Cancelled], 1);
        assert_eq!(eur.by_status[&BookingStatus::Pending], 0);
        assert_eq!(
            (eur.costed, eur.cost),
            (1, Decimal::from_str("0.05").unwrap()),
            "a cancelled booking has no margin"
        );
        assert_eq!(eur.margin(), Decimal::from_str("0.05").unwrap());
        let jpy = groups.iter().find(|(k, _)| k.currency.code() == "JPY").unwrap().1;
        assert_eq!((jpy.costed, jpy.margin()), (0, Decimal::ZERO), "a cost in USD is not taken from yen");
        let kwd = groups.iter().find(|(k, _)| k.currency.code() == "KWD").unwrap().1;
        assert_eq!(kwd.sell, Decimal::from_str("12.345").unwrap());
    }
}
