//! Reconciliation: where bookhub and a supplier disagree about the same bookings, as data. The
//! caller fetches the supplier's bookings for a window, translates their codes through the
//! mapping tables into [`Reported`], and loads bookhub's bookings of that supplier for the same
//! window; [`reconcile`] pairs them and names every difference. No IO here.
//!
//! - Pairs are matched by the supplier's reference, then by the client reference (bookhub's
//!   booking id, which suppliers echo).
//! - Where the supplier owns the truth — a confirmation, rejection or cancellation whose webhook
//!   never came, a `pending` booking the supplier confirmed — the finding is a [`Finding::Heal`]:
//!   the event to apply through the normal state machine, so the fan-out runs.
//! - Everything else is a [`Mismatch`] with its [`Reason`] and both sides' values. Amounts are
//!   compared as exact decimals, and a currency difference is its own reason, never an amount.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::booking::{Booking, BookingEvent, BookingStatus, Transition};
use crate::codes::{Board, RoomType};
use crate::ids::BookingId;
use crate::money::Money;

crate::code_enum! {
    /// Why a booking is a mismatch.
    pub enum Reason ("mismatch reason") {
        /// bookhub holds it as booked with the supplier; the supplier does not list it.
        MissingAtSupplier = "missing_at_supplier",
        /// The supplier lists a booking bookhub does not know.
        MissingInBookhub = "missing_in_bookhub",
        /// The statuses differ and the state machine cannot take the supplier's.
        StatusDiffers = "status_differs",
        AmountDiffers = "amount_differs",
        CurrencyDiffers = "currency_differs",
        DatesDiffers = "dates_differs",
        RoomsDiffers = "rooms_differs",
        /// The statement bills a booking bookhub holds as cancelled (or never booked).
        BilledButCancelled = "billed_but_cancelled",
        /// The statement bills one booking more than once.
        BilledTwice = "billed_twice",
        /// The statement bills another amount (or currency) than bookhub's total.
        BilledOtherAmount = "billed_other_amount",
        /// The statement bills a booking bookhub does not know.
        BilledUnknown = "billed_unknown",
        /// Confirmed, the stay has ended, and no statement bills it.
        NotBilled = "not_billed",
    }
}

/// A booking as the supplier reports it, in bookhub's codes. `None` where the supplier's answer
/// does not say (nothing is compared then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub reference: String,
    pub client_reference: Option<String>,
    pub status: BookingStatus,
    pub total: Option<Money>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    pub rooms: Option<Vec<(RoomType, Board)>>,
}

/// A difference that stays open until staff resolve it or a later run no longer finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub reason: Reason,
    /// bookhub's booking (absent for `missing_in_bookhub`).
    pub booking: Option<BookingId>,
    /// The supplier's reference (absent for `missing_at_supplier` with none recorded).
    pub supplier_reference: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

/// What a run found about one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The supplier's status, taken through the state machine.
    Heal {
        booking: BookingId,
        event: BookingEvent,
    },
    Mismatch(Mismatch),
}

/// Every difference between `ours` and `theirs` (one supplier, one window), ours in their
/// order, then the supplier's bookings bookhub does not know.
pub fn reconcile(ours: &[Booking], theirs: &[Reported]) -> Vec<Finding> {
    let by_reference: HashMap<&str, usize> =
        theirs.iter().enumerate().map(|(i, r)| (r.reference.as_str(), i)).collect();
    let by_client: HashMap<&str, usize> =
        theirs.iter().enumerate().filter_map(|(i, r)| Some((r.client_reference.as_deref()?, i))).collect();
    let mut paired = vec![false; theirs.len()];
    let mut findings = Vec::new();
    for booking in ours {
        let found = booking
            .supplier_reference
            .as_deref()
            .and_then(|reference| by_reference.get(reference))
            .or_else(|| by_client.get(booking.id.as_str()))
            .copied();
        match found {
            Some(i) => {
                paired[i] = true;
                findings.extend(compare(booking, &theirs[i]));
            }
            None if expected_at_supplier(booking) => findings.push(Finding::Mismatch(Mismatch {
                reason: Reason::MissingAtSupplier,
                booking: Some(booking.id.clone()),
                supplier_reference: booking.supplier_reference.clone(),
                ours: Some(booking.status.to_string()),
                theirs: None,
            })),
            None => {}
        }
    }
    let unknown = theirs.iter().zip(&paired).filter(|(_, paired)| !**paired);
    findings.extend(unknown.map(|(reported, _)| {
        Finding::Mismatch(Mismatch {
            reason: Reason::MissingInBookhub,
            booking: None,
            supplier_reference: Some(reported.reference.clone()),
            ours: None,
            theirs: Some(reported.status.to_string()),
        })
    }));
    findings
}

/// Whether the supplier should list `booking`: it took it (a reference was recorded) or bookhub
/// holds it as booked there.
fn expected_at_supplier(booking: &Booking) -> bool {
    booking.supplier_reference.is_some()
        || matches!(booking.status, BookingStatus::Confirmed | BookingStatus::CancellationPending)
}

/// The event a supplier's status means, as its webhook would bring it.
fn event_for(reported: &Reported) -> Option<BookingEvent> {
    let supplier_reference = reported.reference.clone();
    match reported.status {
        BookingStatus::Confirmed => Some(BookingEvent::SupplierConfirmed { supplier_reference }),
        BookingStatus::Cancelled => Some(BookingEvent::SupplierCancelled),
        BookingStatus::Rejected => Some(BookingEvent::SupplierRejected { reason: "rejected_by_supplier".into() }),
        _ => None,
    }
}

/// The findings about one pair.
fn compare(booking: &Booking, reported: &Reported) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mismatch = |reason, ours: String, theirs: String| {
        Finding::Mismatch(Mismatch {
            reason,
            booking: Some(booking.id.clone()),
            supplier_reference: Some(reported.reference.clone()),
            ours: Some(ours),
            theirs: Some(theirs),
        })
    };
    if booking.status != reported.status {
        let heal = event_for(reported).filter(|event| {
            booking.take(event).is_ok_and(|taken| taken.transition == Transition::Changed(reported.status))
        });
        findings.push(match heal {
            Some(event) => Finding::Heal { booking: booking.id.clone(), event },
            None => mismatch(Reason::StatusDiffers, booking.status.to_string(), reported.status.to_string()),
        });
    }
    let d = &booking.details;
    if let Some(total) = reported.total {
        if total.currency() != d.total.currency() {
            findings.push(mismatch(Reason::CurrencyDiffers, d.total.to_string(), total.to_string()));
        } else if total.amount() != d.total.amount() {
            findings.push(mismatch(Reason::AmountDiffers, d.total.to_string(), total.to_string()));
        }
    }
    let (check_in, check_out) = (reported.check_in.unwrap_or(d.check_in), reported.check_out.unwrap_or(d.check_out));
    if (check_in, check_out) != (d.check_in, d.check_out) {
        let stay = |a: NaiveDate, b: NaiveDate| format!("{a}/{b}");
        findings.push(mismatch(Reason::DatesDiffers, stay(d.check_in, d.check_out), stay(check_in, check_out)));
    }
    if let Some(rooms) = &reported.rooms {
        let mut ours: Vec<(RoomType, Board)> = d.rooms.iter().map(|r| (r.room_type, r.board)).collect();
        let mut theirs = rooms.clone();
        ours.sort();
        theirs.sort();
        if ours != theirs {
            let show = |rooms: &[(RoomType, Board)]| {
                rooms.iter().map(|(room, board)| format!("{room}+{board}")).collect::<Vec<_>>().join(",")
            };
            findings.push(mismatch(Reason::RoomsDiffers, show(&ours), show(&theirs)));
        }
    }
    findings
}

/// One line of a supplier's statement: a booking it bills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    pub supplier_reference: String,
    pub client_reference: Option<String>,
    pub amount: Money,
}

/// Where the supplier's statement and bookhub disagree about what is billed: each booking of
/// `ours` against the lines that name it (by the supplier's reference, then the client
/// reference), and every confirmed booking whose stay ended before `today` that no line bills.
pub fn compare_statement(ours: &[Booking], lines: &[Billed], today: NaiveDate) -> Vec<Mismatch> {
    let by_reference: HashMap<&str, &Booking> =
        ours.iter().filter_map(|b| Some((b.supplier_reference.as_deref()?, b))).collect();
    let by_id: HashMap<&str, &Booking> = ours.iter().map(|b| (b.id.as_str(), b)).collect();
    let mut billed: HashMap<&BookingId, Vec<&Billed>> = HashMap::new();
    let mut found = Vec::new();
    for line in lines {
        let booking = by_reference
            .get(line.supplier_reference.as_str())
            .or_else(|| line.client_reference.as_deref().and_then(|c| by_id.get(c)));
        match booking {
            Some(booking) => billed.entry(&booking.id).or_default().push(line),
            None => found.push(Mismatch {
                reason: Reason::BilledUnknown,
                booking: None,
                supplier_reference: Some(line.supplier_reference.clone()),
                ours: None,
                theirs: Some(line.amount.to_string()),
            }),
        }
    }
    for booking in ours {
        let mismatch = |reason, ours: String, theirs: String| Mismatch {
            reason,
            booking: Some(booking.id.clone()),
            supplier_reference: booking.supplier_reference.clone(),
            ours: Some(ours),
            theirs: Some(theirs),
        };
        let total = booking.details.total;
        let Some(lines) = billed.get(&booking.id) else {
            if booking.status == BookingStatus::Confirmed && booking.details.check_out < today {
                found.push(mismatch(Reason::NotBilled, total.to_string(), "not on the statement".into()));
            }
            continue;
        };
        let amounts = lines.iter().map(|l| l.amount.to_string()).collect::<Vec<_>>().join(", ");
        if !matches!(booking.status, BookingStatus::Confirmed | BookingStatus::CancellationPending) {
            found.push(mismatch(Reason::BilledButCancelled, booking.status.to_string(), amounts.clone()));
        }
        if lines.len() > 1 {
            found.push(mismatch(Reason::BilledTwice, total.to_string(), amounts));
        } else if lines[0].amount != total {
            found.push(mismatch(Reason::BilledOtherAmount, total.to_string(), lines[0].amount.to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::tests::booking_in;

    fn booking(status: BookingStatus, reference: Option<&str>) -> Booking {
        let mut booking = booking_in(status);
        booking.supplier_reference = reference.map(str::to_owned);
        booking
    }

    /// The supplier's report that agrees with `booking` in every way.
    fn agreeing(booking: &Booking, reference: &str) -> Reported {
        let d = &booking.details;
        Reported {
            reference: reference.into(),
            client_reference: Some(booking.id.to_string()),
            status: booking.status,
            total: Some(d.total),
            check_in: Some(d.check_in),
            check_out: Some(d.check_out),
            rooms: Some(d.rooms.iter().map(|r| (r.room_type, r.board)).collect()),
        }
    }

    fn reasons(findings: &[Finding]) -> Vec<Reason> {
        findings
            .iter()
            .filter_map(|f| match f {
                Finding::Mismatch(m) => Some(m.reason),
                Finding::Heal { .. } => None,
            })
            .collect()
    }

    #[test]
    fn bookings_that_agree_give_nothing_matched_by_reference_or_by_client_reference() {
        let by_reference = booking(BookingStatus::Confirmed, Some("JR-1"));
        let mut report = agreeing(&by_reference, "JR-1");
        report.client_reference = None;
        let by_client = booking(BookingStatus::Confirmed, None);
        let findings = reconcile(&[by_reference.clone(), by_client.clone()], &[agreeing(&by_client, "JR-2"), report]);
        assert_eq!(findings, vec![]);
    }

    #[test]
    fn each_difference_has_its_reason_and_both_values() {
        let ours = booking(BookingStatus::Confirmed, Some("JR-1"));
        let mut theirs = agreeing(&ours, "JR-1");
        theirs.total = Some(Money::parse("450.01", "EUR").unwrap());
        theirs.check_out = Some(NaiveDate::from_ymd_opt(2027, 3, 19).unwrap());
        theirs.rooms = Some(vec![(RoomType::Twin, Board::BedAndBreakfast)]);
        let findings = reconcile(std::slice::from_ref(&ours), &[theirs]);
        assert_eq!(reasons(&findings), [Reason::AmountDiffers, Reason::DatesDiffers, Reason::RoomsDiffers]);
        let Finding::Mismatch(amount) = &findings[0] else { panic!() };
        assert_eq!((amount.ours.as_deref(), amount.theirs.as_deref()), (Some("450.00 EUR"), Some("450.01 EUR")));
        let Finding::Mismatch(dates) = &findings[1] else { panic!() };
        assert_eq!(dates.theirs.as_deref(), Some("2027-03-15/2027-03-19"));
    }

    #[test]
    fn amounts_compare_as_exact_decimals_and_a_currency_is_never_an_amount() {
        let ours = booking(BookingStatus::Confirmed, Some("JR-1"));
        let mut same = agreeing(&ours, "JR-1");
        same.total = Some(Money::parse("450.0", "EUR").unwrap());
        assert_eq!(reconcile(std::slice::from_ref(&ours), &[same]), vec![], "450.0 is 450.00");
        let mut other = agreeing(&ours, "JR-1");
        other.total = Some(Money::parse("450.00", "USD").unwrap());
        assert_eq!(reasons(&reconcile(std::slice::from_ref(&ours), &[other])), [Reason::CurrencyDiffers]);
    }

    #[test]
    fn the_suppliers_outcome_heals_a_booking_whose_webhook_never_came() {
        for (ours, theirs, event) in [
            (
                BookingStatus::Pending,
                BookingStatus::Confirmed,
                BookingEvent::SupplierConfirmed { supplier_reference: "JR-1".into() },
            ),
            (
                BookingStatus::Pending,
                BookingStatus::Rejected,
                BookingEvent::SupplierRejected { reason: "rejected_by_supplier".into() },
            ),
            (BookingStatus::Confirmed, BookingStatus::Cancelled, BookingEvent::SupplierCancelled),
            (BookingStatus::CancellationPending, BookingStatus::Cancelled, BookingEvent::SupplierCancelled),
        ] {
            let booking = booking(ours, Some("JR-1"));
            let mut report = agreeing(&booking, "JR-1");
            report.status = theirs;
            let findings = reconcile(std::slice::from_ref(&booking), &[report]);
            assert_eq!(findings, vec![Finding::Heal { booking: booking.id.clone(), event }], "{ours} → {theirs}");
        }
    }

    #[test]
    fn a_status_the_state_machine_cannot_take_is_a_mismatch() {
        for (ours, theirs) in [
            (BookingStatus::Confirmed, BookingStatus::Pending),
            (BookingStatus::Cancelled, BookingStatus::Confirmed),
            (BookingStatus::Rejected, BookingStatus::Confirmed),
        ] {
            let booking = booking(ours, Some("JR-1"));
            let mut report = agreeing(&booking, "JR-1");
            report.status = theirs;
            let findings = reconcile(std::slice::from_ref(&booking), &[report]);
            assert_eq!(reasons(&findings), [Reason::StatusDiffers], "{ours} vs {theirs}");
        }
    }

    #[test]
    fn a_booking_on_one_side_only_is_missing_on_the_other() {
        let held = booking(BookingStatus::Confirmed, Some("JR-1"));
        let never_sent = booking(BookingStatus::Failed, None);
        let stranger = agreeing(&booking(BookingStatus::Confirmed, None), "JR-9");
        let findings = reconcile(&[held.clone(), never_sent], &[stranger]);
        assert_eq!(reasons(&findings), [Reason::MissingAtSupplier, Reason::MissingInBookhub]);
        let Finding::Mismatch(missing) = &findings[0] else { panic!() };
        assert_eq!(missing.booking.as_ref(), Some(&held.id));
    }

    fn line(booking: &Booking, amount: &str) -> Billed {
        Billed {
            supplier_reference: booking.supplier_reference.clone().unwrap_or_else(|| "JR-X".into()),
            client_reference: Some(booking.id.to_string()),
            amount: Money::parse(amount, "EUR").unwrap(),
        }
    }

    #[test]
    fn a_statement_is_compared_line_by_line_and_what_it_misses_is_not_billed() {
        let day_after = NaiveDate::from_ymd_opt(2027, 3, 19).unwrap();
        let right = booking(BookingStatus::Confirmed, Some("JR-1"));
        let cancelled = booking(BookingStatus::Cancelled, Some("JR-2"));
        let twice = booking(BookingStatus::Confirmed, Some("JR-3"));
        let other = booking(BookingStatus::Confirmed, Some("JR-4"));
        let forgotten = booking(BookingStatus::Confirmed, Some("JR-5"));
        let unknown = Billed {
            supplier_reference: "JR-9".into(),
            client_reference: None,
            amount: Money::parse("10.00", "EUR").unwrap(),
        };
        let ours = [right.clone(), cancelled.clone(), twice.clone(), other.clone(), forgotten.clone()];
        let lines = [
            line(&right, "450.00"),
            line(&cancelled, "450.00"),
            line(&twice, "450.00"),
            line(&twice, "450.00"),
            line(&other, "460.00"),
            unknown,
        ];
        let found = compare_statement(&ours, &lines, day_after);
        let by_reason: Vec<(Reason, Option<BookingId>)> = found.iter().map(|m| (m.reason, m.booking.clone())).collect();
        assert_eq!(
            by_reason,
            [
                (Reason::BilledUnknown, None),
                (Reason::BilledButCancelled, Some(cancelled.id.clone())),
                (Reason::BilledTwice, Some(twice.id.clone())),
                (Reason::BilledOtherAmount, Some(other.id.clone())),
                (Reason::NotBilled, Some(forgotten.id.clone())),
            ]
        );
        let stay_not_over =
            compare_statement(std::slice::from_ref(&forgotten), &[], NaiveDate::from_ymd_opt(2027, 3, 18).unwrap());
        assert_eq!(stay_not_over, vec![], "billed once the stay has ended");
    }
}
