//! A supplier's rows as lookups, both ways: what the submit job sends and what a webhook means.

use std::collections::HashMap;

use domain::booking::Booking;
use domain::reconciliation::Reported;
use domain::supplier::{SupplierBooking, SupplierBookingRequest, SupplierGuest, SupplierRoom};
use domain::{Board, BookingStatus, RoomType, SupplierCode};

use crate::table::Mapping;
use crate::{CodeKind, Unmapped};

/// One supplier's mapping rows, both ways.
#[derive(Debug, Clone)]
pub struct Translator {
    supplier: SupplierCode,
    inbound: HashMap<(CodeKind, String), String>,
    outbound: HashMap<(CodeKind, String), String>,
}

impl Translator {
    /// From a supplier's rows: active ones translate inbound, the outbound ones (one per
    /// bookhub code, see [`crate::table`]) outbound.
    pub fn from_rows(supplier: SupplierCode, rows: impl IntoIterator<Item = (CodeKind, String, Mapping)>) -> Self {
        let mut t = Translator { supplier, inbound: HashMap::new(), outbound: HashMap::new() };
        for (kind, supplier_code, mapping) in rows.into_iter().filter(|(_, _, m)| m.active) {
            if mapping.outbound {
                t.outbound.insert((kind, mapping.bookhub_code.clone()), supplier_code.clone());
            }
            t.inbound.insert((kind, supplier_code), mapping.bookhub_code);
        }
        t
    }

    fn unmapped(&self, missing: Vec<(CodeKind, String)>) -> Unmapped {
        Unmapped { supplier: self.supplier.clone(), missing }
    }

    fn out(&self, kind: CodeKind, bookhub_code: &str, missing: &mut Vec<(CodeKind, String)>) -> String {
        self.outbound.get(&(kind, bookhub_code.to_owned())).cloned().unwrap_or_else(|| {
            missing.push((kind, bookhub_code.to_owned()));
            String::new()
        })
    }

    /// The booking as the supplier's request, in the supplier's codes.
    pub fn request(&self, booking: &Booking) -> Result<SupplierBookingRequest, Unmapped> {
        let d = &booking.details;
        let mut missing = Vec::new();
        let guest = |g: &domain::booking::Guest| SupplierGuest {
            first_name: g.first_name.clone(),
            last_name: g.last_name.clone(),
            email: g.email.as_ref().map(|e| e.as_str().to_owned()),
        };
        let rooms = d
            .rooms
            .iter()
            .map(|r| SupplierRoom {
                room_type_code: self.out(CodeKind::RoomType, r.room_type.as_str(), &mut missing),
                board_code: self.out(CodeKind::Board, r.board.as_str(), &mut missing),
                guests: r.guests.iter().map(guest).collect(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(self.unmapped(missing));
        }
        Ok(SupplierBookingRequest {
            client_reference: booking.id.to_string(),
            hotel_code: d.hotel_code.clone(),
            check_in: d.check_in,
            check_out: d.check_out,
            holder: guest(d.lead_guest()),
            rooms,
            expected_total: d.total,
        })
    }

    /// The bookhub status a supplier status code means.
    pub fn status(&self, supplier_code: &str) -> Result<BookingStatus, Unmapped> {
        let status = self.inbound.get(&(CodeKind::Status, supplier_code.to_owned())).and_then(|code| code.parse().ok());
        status.ok_or_else(|| self.unmapped(vec![(CodeKind::Status, supplier_code.to_owned())]))
    }

    /// A supplier's (room type, board) pair in bookhub's codes.
    pub fn room(&self, room_type: &str, board: &str) -> Result<(RoomType, Board), Unmapped> {
        let room = self.inbound.get(&(CodeKind::RoomType, room_type.to_owned())).and_then(|c| c.parse().ok());
        let meal = self.inbound.get(&(CodeKind::Board, board.to_owned())).and_then(|c| c.parse().ok());
        match (room, meal) {
            (Some(r), Some(b)) => Ok((r, b)),
            (r, b) => {
                let mut missing = Vec::new();
                if r.is_none() {
                    missing.push((CodeKind::RoomType, room_type.to_owned()));
                }
                if b.is_none() {
                    missing.push((CodeKind::Board, board.to_owned()));
                }
                Err(self.unmapped(missing))
            }
        }
    }

    /// A supplier's report in bookhub's codes, for reconciliation: its status and rooms
    /// translated (every code this table lacks is named), the rest as reported.
    pub fn reported(&self, booking: &SupplierBooking) -> Result<Reported, Unmapped> {
        let status = self.status(&booking.status_code);
        let rooms: Vec<_> = booking.rooms.iter().map(|(room_type, board)| self.room(room_type, board)).collect();
        let mut missing: Vec<(CodeKind, String)> = Vec::new();
        let unmapped = status.as_ref().err().into_iter().chain(rooms.iter().filter_map(|r| r.as_ref().err()));
        for code in unmapped.flat_map(|u| &u.missing) {
            if !missing.contains(code) {
                missing.push(code.clone());
            }
        }
        let (Ok(status), true) = (status, missing.is_empty()) else {
            return Err(self.unmapped(missing));
        };
        Ok(Reported {
            reference: booking.reference.clone(),
            client_reference: booking.client_reference.clone(),
            status,
            total: booking.total,
            check_in: booking.check_in,
            check_out: booking.check_out,
            // A supplier that lists no rooms says nothing about them.
            rooms: (!rooms.is_empty()).then(|| rooms.into_iter().flatten().collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: CodeKind, code: &str, bookhub: &str, active: bool, outbound: bool) -> (CodeKind, String, Mapping) {
        let mapping = Mapping { bookhub_code: bookhub.into(), description: String::new(), active, outbound };
        (kind, code.into(), mapping)
    }

    #[test]
    fn inactive_rows_translate_nothing_and_only_the_outbound_row_is_sent() {
        let t = Translator::from_rows(
            "jsonrest".parse().unwrap(),
            [
                row(CodeKind::RoomType, "DBL.ST", "DBL", true, false),
                row(CodeKind::RoomType, "DBL.NEW", "DBL", true, true),
                row(CodeKind::Board, "BB", "BB", true, true),
                row(CodeKind::Board, "OLD", "BB", false, false),
                row(CodeKind::Status, "CNF", "confirmed", true, false),
            ],
        );
        assert_eq!(t.room("DBL.ST", "BB"), Ok((RoomType::Double, Board::BedAndBreakfast)));
        assert!(t.room("DBL.ST", "OLD").unwrap_err().missing == [(CodeKind::Board, "OLD".to_owned())]);
        let mut missing = Vec::new();
        assert_eq!(t.out(CodeKind::RoomType, "DBL", &mut missing), "DBL.NEW");
        assert_eq!(t.status("CNF"), Ok(BookingStatus::Confirmed));
        assert!(missing.is_empty());
    }

    #[test]
    fn a_report_is_translated_for_reconciliation_naming_every_code_it_lacks() {
        let t = Translator::from_rows(
            "jsonrest".parse().unwrap(),
            [
                row(CodeKind::RoomType, "DBL.ST", "DBL", true, true),
                row(CodeKind::Board, "BB", "BB", true, true),
                row(CodeKind::Status, "CNF", "confirmed", true, false),
            ],
        );
        let report = SupplierBooking {
            reference: "JR-1".into(),
            client_reference: Some("bk_1".into()),
            status_code: "CNF".into(),
            hotel_code: None,
            check_in: None,
            check_out: None,
            rooms: vec![("DBL.ST".into(), "BB".into())],
            total: None,
            modified_at: None,
        };
        let reported = t.reported(&report).unwrap();
        assert_eq!(
            (reported.status, reported.rooms),
            (BookingStatus::Confirmed, Some(vec![(RoomType::Double, Board::BedAndBreakfast)]))
        );
        let odd = SupplierBooking {
            status_code: "HOLD".into(),
            rooms: vec![("DBL.ST".into(), "XX".into()), ("DBL.ST".into(), "XX".into())],
            ..report
        };
        let missing = t.reported(&odd).unwrap_err().missing;
        assert_eq!(missing, [(CodeKind::Status, "HOLD".to_owned()), (CodeKind::Board, "XX".to_owned())]);
    }
}
