//! The message as a receiver parses it (mail-parser): structure, headers, both parts, escaping
//! and header injection.

use chrono::{NaiveDate, Utc};
use domain::booking::{Guest, Room};
use domain::{AgencyId, Board, Booking, BookingStatus, Money, NewBooking, RoomType};
use mail_parser::{MessageParser, MimeHeaders};

use super::*;
use crate::notify::email::Attachment;

fn guest(first: &str, last: &str) -> Guest {
    Guest { first_name: first.into(), last_name: last.into(), email: None }
}

fn booking(status: BookingStatus) -> Booking {
    let details = NewBooking {
        supplier: "jsonrest".parse().unwrap(),
        hotel_code: "HTL-LIS-001".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 10).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 13).unwrap(),
        rooms: vec![
            Room {
                room_type: RoomType::Double,
                board: Board::BedAndBreakfast,
                guests: vec![guest("Ana", "Pérez"), guest("Luis", "Pérez")],
            },
            Room { room_type: RoomType::Single, board: Board::RoomOnly, guests: vec![guest("Zoë", "Ångström")] },
        ],
        total: Money::parse("450.00", "USD").unwrap(),
        client_reference: Some("AG-77".into()),
    };
    let mut booking = Booking::accept(AgencyId::generate(), details, Utc::now());
    booking.status = status;
    booking.supplier_reference = Some("SUP-98765".into());
    booking
}

fn email<'a>(booking: &'a Booking, voucher: Option<Attachment<'a>>) -> AgencyEmail<'a> {
    AgencyEmail {
        to: "bookings@agency.example",
        agency_name: "Viajes Olé",
        event_id: "ev_0190f7a1b2c3",
        event_type: "booking.confirmed",
        booking,
        voucher,
    }
}

fn from() -> Mailbox {
    "bookhub <bookings@bookhub.example>".parse().unwrap()
}

const PDF: &[u8] = b"%PDF-1.7\n\x00\x01\xff binary voucher\n%%EOF";

#[test]
fn a_confirmation_is_mixed_with_two_alternatives_and_the_pdf() {
    let booking = booking(BookingStatus::Confirmed);
    let voucher = Attachment { filename: "VCH-2027-000123.pdf", pdf: PDF };
    let raw = compose(&email(&booking, Some(voucher)), &from()).unwrap().formatted();
    let message = MessageParser::default().parse(&raw).unwrap();

    assert_eq!(message.content_type().map(|c| (c.ctype(), c.subtype())), Some(("multipart", Some("mixed"))));
    assert_eq!(
        message.subject(),
        Some(format!("Booking {} confirmed — HTL-LIS-001, 2027-03-10 → 2027-03-13", booking.id).as_str())
    );
    assert_eq!(message.message_id(), Some("ev_0190f7a1b2c3@bookhub"));
    assert_eq!(message.to().and_then(|t| t.first()).and_then(|a| a.name()), Some("Viajes Olé"));
    assert_eq!(message.from().and_then(|t| t.first()).and_then(|a| a.address()), Some("bookings@bookhub.example"));
    assert!(message.date().is_some());

    let text = message.body_text(0).unwrap();
    for needle in ["HTL-LIS-001", "2027-03-10", "2027-03-13 (3 nights)", "Ana Pérez (lead guest)", "Luis Pérez"] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    for needle in ["Zoë Ångström", "SUP-98765", "450.00 USD", "AG-77", "confirmed", "VCH-2027-000123.pdf"] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let html = message.body_html(0).unwrap();
    for needle in ["HTL-LIS-001", "Ana Pérez", "SUP-98765", "450.00 USD", "<td>confirmed</td>"] {
        assert!(html.contains(needle), "{needle:?} missing from\n{html}");
    }

    assert_eq!(message.attachment_count(), 1);
    let pdf = message.attachment(0).unwrap();
    assert_eq!(pdf.content_type().map(|c| (c.ctype(), c.subtype())), Some(("application", Some("pdf"))));
    assert_eq!(pdf.attachment_name(), Some("VCH-2027-000123.pdf"));
    assert_eq!(pdf.contents(), PDF);
}

#[test]
fn a_cancellation_has_no_attachment() {
    let mut booking = booking(BookingStatus::Cancelled);
    booking.status_reason = Some("cancelled by the agency".into());
    let raw = compose(&AgencyEmail { event_type: "booking.cancelled", ..email(&booking, None) }, &from())
        .unwrap()
        .formatted();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.attachment_count(), 0);
    assert!(message.subject().unwrap().starts_with(&format!("Booking {} cancelled — ", booking.id)));
    let text = message.body_text(0).unwrap();
    assert!(text.contains("cancelled by the agency") && text.contains("booking.cancelled"), "{text}");
    assert!(message.body_html(0).is_some());
}

#[test]
fn every_value_is_escaped_in_the_html() {
    let mut booking = booking(BookingStatus::Confirmed);
    booking.details.rooms[0].guests[0] = guest("<script>alert(1)</script>", "O'Brien & \"Sons\"");
    booking.details.hotel_code = "<b>HTL</b>".into();
    let raw =
        compose(&AgencyEmail { agency_name: "<i>Agency</i>", ..email(&booking, None) }, &from()).unwrap().formatted();
    let message = MessageParser::default().parse(&raw).unwrap();
    let html = message.body_html(0).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>HTL") && !html.contains("<i>Agency"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Brien &amp; &quot;Sons&quot;"), "{html}");
    assert!(html.contains("&lt;b&gt;HTL&lt;/b&gt;") && html.contains("&lt;i&gt;Agency&lt;/i&gt;"), "{html}");
    // The text part is plain text: the name as given.
    assert!(message.body_text(0).unwrap().contains("<script>alert(1)</script> O'Brien"));
}

#[test]
fn line_breaks_in_names_and_codes_cannot_add_headers() {
    let mut booking = booking(BookingStatus::Confirmed);
    booking.details.hotel_code = "HTL\r\nBcc: victim@evil.example".into();
    booking.details.rooms[0].guests[0] = guest("Ana\r\n\r\n--boundary", "Pérez");
    let voucher = Attachment { filename: "VCH.pdf\r\nX-Injected: 1", pdf: PDF };
    let agency = "Agency\r\nBcc: spy@evil.example";
    let raw =
        compose(&AgencyEmail { agency_name: agency, ..email(&booking, Some(voucher)) }, &from()).unwrap().formatted();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(message.bcc().is_none(), "{}", String::from_utf8_lossy(&raw));
    assert!(message.header("X-Injected").is_none());
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(
        !raw_text.lines().any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
        "an injected header line in\n{raw_text}"
    );
    assert_eq!(message.to().unwrap().first().unwrap().address(), Some("bookings@agency.example"));
    assert!(message.subject().unwrap().contains("HTL  Bcc: victim@evil.example"));
    assert_eq!(message.attachment_count(), 1);
    assert!(message.body_text(0).unwrap().contains("Ana    --boundary Pérez"));
}

#[test]
fn an_address_that_does_not_parse_is_a_permanent_error() {
    let booking = booking(BookingStatus::Confirmed);
    for to in ["", "agency", "a@b@c", "bookings@agency.example\r\nBcc: x@y.example"] {
        let error = compose(&AgencyEmail { to, ..email(&booking, None) }, &from()).unwrap_err();
        assert!(matches!(error, EmailError::Address { field: "to", .. }), "{to:?}: {error}");
        assert!(!error.is_retryable());
    }
}

#[test]
fn the_message_id_comes_from_the_event_and_nothing_else() {
    assert_eq!(message_id("ev_01j.x-y").unwrap(), "<ev_01j.x-y@bookhub>");
    for bad in ["", "a b", "a>b", "a@b", "a\r\nb", ".a", "é"] {
        assert!(message_id(bad).is_err(), "{bad:?}");
    }
    let booking = booking(BookingStatus::Confirmed);
    let error = compose(&AgencyEmail { event_id: "x>\r\nBcc: a@b.example", ..email(&booking, None) }, &from());
    assert!(matches!(error, Err(EmailError::Permanent(_))));
}

#[test]
fn a_pending_booking_says_it_has_no_supplier_reference_yet() {
    let mut booking = booking(BookingStatus::Pending);
    booking.supplier_reference = None;
    booking.details.client_reference = None;
    let raw = compose(&email(&booking, None), &from()).unwrap().formatted();
    let text = MessageParser::default().parse(&raw).unwrap().body_text(0).unwrap().into_owned();
    assert!(text.contains("Supplier reference: not yet given"), "{text}");
    assert!(!text.contains("Your reference"), "{text}");
}
