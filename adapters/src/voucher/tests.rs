use chrono::{NaiveDate, TimeZone, Utc};
use domain::booking::{Guest, Room};
use domain::validation::EmailAddress;
use domain::{AgencyId, Board, Booking, BookingId, BookingStatus, Money, NewBooking, RoomType};

use super::fonts::{Fonts, Weight};
use super::layout::{self, Ink, LEFT, Op, PAGE_HEIGHT, RIGHT};
use super::qr::QrMatrix;
use super::*;

const NUMBER: &str = "VCH-2027-000123";
const URL: &str = "https://bookhub.example.com/v1/vouchers/VCH-2027-000123/verify";

fn guest(first: &str, last: &str) -> Guest {
    Guest { first_name: first.into(), last_name: last.into(), email: None }
}

fn booking(rooms: Vec<Room>, hotel_code: &str) -> Booking {
    let mut rooms = rooms;
    rooms[0].guests[0].email = Some(EmailAddress::parse("ana@example.com").unwrap());
    let details = NewBooking {
        supplier: "jsonrest".parse().unwrap(),
        hotel_code: hotel_code.into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 10).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 14).unwrap(),
        rooms,
        total: Money::parse("1234.50", "EUR").unwrap(),
        client_reference: Some("AG-REF-77".into()),
    };
    let now = Utc.with_ymd_and_hms(2027, 3, 1, 9, 30, 0).unwrap();
    Booking {
        id: "bk_0195f2a4c3e07d5a8b1c2d3e4f506172".parse::<BookingId>().unwrap(),
        supplier_reference: Some("JR-558812".into()),
        status: BookingStatus::Confirmed,
        ..Booking::accept("ag_0195f2a4c3e07d5a8b1c2d3e4f506173".parse::<AgencyId>().unwrap(), details, now)
    }
}

fn sample() -> Booking {
    booking(
        vec![
            Room {
                room_type: RoomType::DoubleSuperior,
                board: Board::BedAndBreakfast,
                guests: vec![guest("Ana", "Pérez"), guest("Luis", "Gómez")],
            },
            Room {
                room_type: RoomType::Family,
                board: Board::HalfBoard,
                guests: vec![guest("Søren", "Øster"), guest("Jürgen", "Müller"), guest("Iñaki", "Ñuñez")],
            },
        ],
        "PMI-HOTEL-0042",
    )
}

fn document<'a>(booking: &'a Booking, agency: &'a str) -> VoucherDocument<'a> {
    VoucherDocument {
        number: NUMBER,
        agency_name: agency,
        booking,
        verify_url: URL,
        issued_on: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
    }
}

/// The text of every page, one line per text run, as lopdf extracts it.
fn extract_lines(pdf: &[u8]) -> (usize, Vec<String>) {
    let document = lopdf::Document::load_mem(pdf).unwrap();
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    let text = document.extract_text(&pages).unwrap();
    (pages.len(), text.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect())
}

#[test]
fn the_text_of_the_voucher_extracts_with_accents() {
    let booking = sample();
    let pdf = render(&document(&booking, "Viajes Pérez & Hijos")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    let (pages, lines) = extract_lines(&pdf);
    println!("{}", lines.join("\n"));
    assert_eq!(pages, 1);
    for expected in [
        "Hotel voucher",
        "Voucher number",
        NUMBER,
        "Issued on",
        "2027-03-01",
        "Agency",
        "Viajes Pérez & Hijos",
        "Booking id",
        "bk_0195f2a4c3e07d5a8b1c2d3e4f506172",
        "Supplier reference",
        "JR-558812",
        "Agency reference",
        "AG-REF-77",
        URL,
        "Hotel code",
        "PMI-HOTEL-0042",
        "Check-in",
        "2027-03-10",
        "Check-out",
        "2027-03-14",
        "Nights",
        "4",
        "Double superior",
        "Bed and breakfast",
        "Family",
        "Half board",
        "Ana Pérez",
        "(lead guest)",
        "Luis Gómez",
        "Søren Øster",
        "Jürgen Müller",
        "Iñaki Ñuñez",
        "Total",
        "1234.50 EUR",
        "Page 1 of 1",
    ] {
        assert!(lines.iter().any(|l| l == expected), "{expected:?} is not a line of {lines:#?}");
    }
    // The lead guest is the first guest of the first room, and only they are marked.
    let lead = lines.iter().position(|l| l == "Ana Pérez").unwrap();
    assert_eq!(lines[lead + 1], "(lead guest)");
    assert_eq!(lines.iter().filter(|l| *l == "(lead guest)").count(), 1);
}

#[test]
fn the_same_document_renders_to_the_same_bytes() {
    let booking = sample();
    let first = render(&document(&booking, "Agencia Norte")).unwrap();
    assert_eq!(first, render(&document(&booking, "Agencia Norte")).unwrap());
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("D:20270301000000"), "the PDF's dates are the issue date");
}

#[test]
fn the_font_is_embedded_and_subset() {
    let booking = sample();
    let pdf = render(&document(&booking, "Agencia Norte")).unwrap();
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    let embedded = document.objects.values().filter_map(|o| o.as_dict().ok()).filter(|d| d.has(b"FontFile2")).count();
    assert_eq!(embedded, 2, "regular and bold, each embedded once");
    // Two subset faces, not the 1.4 MB of the whole files.
    assert!(pdf.len() < 120_000, "the voucher is {} bytes", pdf.len());
}

/// Nine rooms of eight guests, every name and code at its 200-character limit.
fn maximal() -> Booking {
    let long = |c: char| c.to_string().repeat(200);
    let rooms = (0..9)
        .map(|r| Room {
            room_type: RoomType::ALL[r % RoomType::ALL.len()],
            board: Board::ALL[r % Board::ALL.len()],
            guests: (0..8).map(|g| guest(&format!("G{r}{g}{}", long('é')), &long('W'))).collect(),
        })
        .collect();
    booking(rooms, &long('H'))
}

#[test]
fn the_largest_booking_stays_on_its_pages() {
    let booking = maximal();
    let agency = "Ñ".repeat(200);
    let doc = document(&booking, &agency);
    let fonts = Fonts::load().unwrap();
    let pages = layout::lay_out(&doc, &fonts, &QrMatrix::encode(URL).unwrap());

    assert!(pages.len() >= 2, "72 guests do not fit one page");
    let mut guests = 0;
    for op in pages.iter().flatten() {
        if let Op::Text { x, y, width, text, .. } = op {
            assert!(*x >= LEFT - 0.01 && x + width <= RIGHT + 0.01, "{text:?} runs off the page sideways");
            assert!(*y > 0.0 && *y < PAGE_HEIGHT - 24.0, "{text:?} runs off the page at {y}");
            if text.starts_with('G') && text.contains('é') {
                assert!(text.ends_with('…'), "a 400-character name is cut: {text:?}");
                guests += 1;
            }
        }
    }
    assert_eq!(guests, 72, "every guest has a line");

    let pdf = render(&doc).unwrap();
    let (page_count, lines) = extract_lines(&pdf);
    assert_eq!(page_count, pages.len());
    assert!(lines.iter().any(|l| *l == format!("Page {0} of {0}", page_count)));
    assert!(lines.iter().any(|l| l == "Total"));
}

#[test]
fn the_qr_code_on_the_page_decodes_to_the_verify_url() {
    let booking = sample();
    let fonts = Fonts::load().unwrap();
    let pages = layout::lay_out(&document(&booking, "Agencia Norte"), &fonts, &QrMatrix::encode(URL).unwrap());
    let modules: Vec<_> = pages[0]
        .iter()
        .filter_map(|op| match op {
            Op::Fill { areas, ink: Ink::Code } => Some(areas.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    // Rasterise the drawn rectangles at 4 pixels per point, sampling pixel centres.
    let (left, top) = (RIGHT - 118.0, 48.0);
    let scale = 4.0;
    let side = (118.0 * scale) as usize;
    let mut image = rqrr::PreparedImage::prepare_from_bitmap(side, side, |px, py| {
        let (x, y) = (left + (px as f32 + 0.5) / scale, top + (py as f32 + 0.5) / scale);
        modules.iter().any(|a| x >= a.x && x < a.x + a.w && y >= a.y && y < a.y + a.h)
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, payload) = grids[0].decode().unwrap();
    assert_eq!(payload, URL);
}

#[test]
fn a_verify_url_too_long_for_a_qr_code_is_an_error() {
    let booking = sample();
    let url = format!("https://bookhub.example.com/{}", "x".repeat(3000));
    let doc = VoucherDocument { verify_url: &url, ..document(&booking, "Agencia Norte") };
    assert!(matches!(render(&doc), Err(VoucherError::VerifyUrl(_))));
}

#[test]
fn a_wide_text_is_cut_and_a_long_address_wrapped_after_slashes() {
    let fonts = Fonts::load().unwrap();
    let name = "Maximiliana Wolfeschlegelsteinhausenbergerdorff";
    let cut = fonts.fit(Weight::Regular, 10.0, name, 100.0);
    assert!(cut.ends_with('…') && name.starts_with(cut.trim_end_matches('…')), "{cut:?}");
    assert!(fonts.width(Weight::Regular, 10.0, &cut) <= 100.0);
    assert_eq!(fonts.fit(Weight::Regular, 10.0, "Ana", 100.0), "Ana");

    let url = "https://vouchers.example.com/a-rather-long-prefix/v1/vouchers/VCH-2027-000123/verify";
    let lines = fonts.wrap(Weight::Regular, 10.0, url, 200.0, 4);
    assert!(lines.len() > 1);
    assert_eq!(lines.concat(), url, "nothing lost between the lines");
    assert!(lines.iter().all(|l| fonts.width(Weight::Regular, 10.0, l) <= 200.0));
    assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with('/')), "{lines:?}");
    let capped = fonts.wrap(Weight::Regular, 10.0, &"a/".repeat(500), 100.0, 3);
    assert_eq!(capped.len(), 3);
    assert!(capped[2].ends_with('…'));
}

#[test]
fn every_code_has_its_own_words() {
    let types: std::collections::HashSet<_> = RoomType::ALL.iter().map(|t| room_type_words(*t)).collect();
    assert_eq!(types.len(), RoomType::ALL.len());
    let boards: std::collections::HashSet<_> = Board::ALL.iter().map(|b| board_words(*b)).collect();
    assert_eq!(boards.len(), Board::ALL.len());
}
