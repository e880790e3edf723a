//! Where everything goes: the voucher laid out as pages of drawing operations, in points on an
//! A4 page with the origin at the top left (krilla's coordinates). Kept apart from the PDF
//! writing so that the layout can be checked (nothing off the page) without reading a PDF.
//!
//! Page one: title, the header rows beside the QR code, the verify address under it, the stay,
//! the rooms table, the total. A room is never split; when the next one does not fit, the table
//! goes on on a new page under its header again. Every page has a footer "Page i of n".

use super::fonts::{Fonts, Weight};
use super::qr::{QUIET_ZONE, QrMatrix};
use super::{VoucherDocument, board_words, room_type_words};

pub(super) const PAGE_WIDTH: f32 = 595.28;
pub(super) const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 48.0;
pub(super) const LEFT: f32 = MARGIN;
pub(super) const RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// The lowest baseline of the body; the footer sits below it.
const BOTTOM: f32 = PAGE_HEIGHT - 64.0;
const FOOTER: f32 = PAGE_HEIGHT - 32.0;

const QR_BOX: f32 = 118.0;
const LABEL_WIDTH: f32 = 112.0;
const LABEL: f32 = 8.5;
const VALUE: f32 = 10.0;
const HEADING: f32 = 12.0;
const TABLE: f32 = 9.0;
const TABLE_LINE: f32 = 13.0;
const URL: f32 = 7.5;

/// The rooms table's columns (left edges).
const COL_ROOM: f32 = LEFT;
const COL_TYPE: f32 = LEFT + 34.0;
const COL_BOARD: f32 = LEFT + 138.0;
const COL_GUESTS: f32 = LEFT + 252.0;
const LEAD_MARK: &str = "(lead guest)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ink {
    Text,
    Muted,
    Accent,
    Line,
    Code,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Area {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Op {
    /// One line of text; `(x, y)` is the start of its baseline, `width` its measured advance.
    Text { x: f32, y: f32, width: f32, size: f32, weight: Weight, ink: Ink, text: String },
    /// Filled rectangles, drawn as one path.
    Fill { areas: Vec<Area>, ink: Ink },
}

pub(super) type Page = Vec<Op>;

pub(super) fn lay_out(doc: &VoucherDocument<'_>, fonts: &Fonts, qr: &QrMatrix) -> Vec<Page> {
    let mut sheet = Sheet { fonts, pages: vec![Vec::new()], y: MARGIN, number: doc.number };
    sheet.header(doc, qr);
    sheet.stay(doc);
    sheet.rooms(doc);
    sheet.total(doc);
    sheet.footers()
}

struct Sheet<'a> {
    fonts: &'a Fonts,
    pages: Vec<Page>,
    /// The top of what comes next on the current page.
    y: f32,
    number: &'a str,
}

impl Sheet<'_> {
    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("there is always a page")
    }

    /// Draws `text` at `(x, y)`, cut to `max` points; returns its width.
    fn text(&mut self, x: f32, y: f32, (size, weight, ink): (f32, Weight, Ink), text: &str, max: f32) -> f32 {
        let text = self.fonts.fit(weight, size, text, max);
        let width = self.fonts.width(weight, size, &text);
        self.page().push(Op::Text { x, y, width, size, weight, ink, text });
        width
    }

    /// Draws `text` ending at `right`, cut to `max` points.
    fn text_right(&mut self, right: f32, y: f32, style: (f32, Weight, Ink), text: &str, max: f32) {
        let text = self.fonts.fit(style.1, style.0, text, max);
        let width = self.fonts.width(style.1, style.0, &text);
        self.text(right - width, y, style, &text, max);
    }

    fn rule(&mut self, y: f32) {
        let area = Area { x: LEFT, y, w: RIGHT - LEFT, h: 0.6 };
        self.page().push(Op::Fill { areas: vec![area], ink: Ink::Line });
    }

    fn heading(&mut self, title: &str) {
        self.y += HEADING + 4.0;
        let y = self.y;
        self.text(LEFT, y, (HEADING, Weight::Bold, Ink::Accent), title, RIGHT - LEFT);
        self.y += 10.0;
    }

    fn fits(&self, height: f32) -> bool {
        self.y + height <= BOTTOM
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN + 12.0;
        let title = format!("Hotel voucher {} (continued)", self.number);
        let y = self.y;
        self.text(LEFT, y, (11.0, Weight::Bold, Ink::Accent), &title, RIGHT - LEFT);
        self.y += 8.0;
    }

    fn header(&mut self, doc: &VoucherDocument<'_>, qr: &QrMatrix) {
        let booking = doc.booking;
        self.text(LEFT, MARGIN + 18.0, (22.0, Weight::Bold, Ink::Accent), "Hotel voucher", RIGHT - LEFT - QR_BOX);

        let qr_left = RIGHT - QR_BOX;
        self.qr_code(qr, qr_left, MARGIN);

        let issued_on = doc.issued_on.format("%Y-%m-%d").to_string();
        let mut rows = vec![
            ("Voucher number", doc.number, Weight::Bold),
            ("Issued on", issued_on.as_str(), Weight::Regular),
            ("Agency", doc.agency_name, Weight::Regular),
            ("Booking id", booking.id.as_str(), Weight::Regular),
            ("Supplier reference", booking.supplier_reference.as_deref().unwrap_or("—"), Weight::Regular),
        ];
        if let Some(reference) = booking.details.client_reference.as_deref() {
            rows.push(("Agency reference", reference, Weight::Regular));
        }
        let value_width = qr_left - 14.0 - (LEFT + LABEL_WIDTH);
        let mut y = MARGIN + 50.0;
        for (label, value, weight) in rows {
            self.text(LEFT, y, (LABEL, Weight::Regular, Ink::Muted), label, LABEL_WIDTH - 6.0);
            self.text(LEFT + LABEL_WIDTH, y, (VALUE, weight, Ink::Text), value, value_width);
            y += 17.0;
        }

        // The verify address, right-aligned under the code, wrapped when wider than the page.
        let mut y = (y - 17.0).max(MARGIN + QR_BOX) + 12.0;
        for line in self.fonts.wrap(Weight::Regular, URL, doc.verify_url, RIGHT - LEFT, 4) {
            self.text_right(RIGHT, y, (URL, Weight::Regular, Ink::Muted), &line, RIGHT - LEFT);
            y += URL + 2.5;
        }
        self.y = y;
        self.rule(self.y);
    }

    fn qr_code(&mut self, qr: &QrMatrix, left: f32, top: f32) {
        let module = QR_BOX / qr.modules_with_quiet_zone() as f32;
        let origin = |i: usize| (i + QUIET_ZONE) as f32 * module;
        let areas = qr
            .runs
            .iter()
            .map(|run| Area {
                x: left + origin(run.col),
                y: top + origin(run.row),
                w: run.len as f32 * module,
                h: module,
            })
            .collect();
        self.page().push(Op::Fill { areas, ink: Ink::Code });
    }

    fn stay(&mut self, doc: &VoucherDocument<'_>) {
        let stay = &doc.booking.details;
        self.heading("Stay");
        let nights = (stay.check_out - stay.check_in).num_days().to_string();
        let columns = [
            (LEFT, 220.0, "Hotel code", stay.hotel_code.clone()),
            (LEFT + 232.0, 96.0, "Check-in", stay.check_in.format("%Y-%m-%d").to_string()),
            (LEFT + 332.0, 96.0, "Check-out", stay.check_out.format("%Y-%m-%d").to_string()),
            (LEFT + 432.0, RIGHT - LEFT - 432.0, "Nights", nights),
        ];
        let (label_y, value_y) = (self.y + LABEL + 4.0, self.y + LABEL + 20.0);
        for (x, width, label, value) in &columns {
            self.text(*x, label_y, (LABEL, Weight::Regular, Ink::Muted), label, *width);
            self.text(*x, value_y, (VALUE, Weight::Bold, Ink::Text), value, *width);
        }
        self.y = value_y + 12.0;
        self.rule(self.y);
    }

    fn rooms_header(&mut self) {
        let y = self.y + LABEL + 8.0;
        let style = (LABEL, Weight::Regular, Ink::Muted);
        self.text(COL_ROOM, y, style, "Room", COL_TYPE - COL_ROOM - 4.0);
        self.text(COL_TYPE, y, style, "Room type", COL_BOARD - COL_TYPE - 6.0);
        self.text(COL_BOARD, y, style, "Board", COL_GUESTS - COL_BOARD - 6.0);
        self.text(COL_GUESTS, y, style, "Guests", RIGHT - COL_GUESTS);
        self.y = y + 5.0;
        self.rule(self.y);
    }

    fn rooms(&mut self, doc: &VoucherDocument<'_>) {
        self.heading("Rooms");
        self.rooms_header();
        let style = (TABLE, Weight::Regular, Ink::Text);
        let lead_width = self.fonts.width(Weight::Regular, TABLE, LEAD_MARK) + 5.0;
        for (i, room) in doc.booking.details.rooms.iter().enumerate() {
            let height = room.guests.len().max(1) as f32 * TABLE_LINE + 6.0;
            if !self.fits(height) {
                self.new_page();
                self.rooms_header();
            }
            let mut y = self.y + TABLE_LINE;
            self.text(COL_ROOM, y, style, &(i + 1).to_string(), COL_TYPE - COL_ROOM - 4.0);
            self.text(COL_TYPE, y, style, room_type_words(room.room_type), COL_BOARD - COL_TYPE - 6.0);
            self.text(COL_BOARD, y, style, board_words(room.board), COL_GUESTS - COL_BOARD - 6.0);
            for (j, guest) in room.guests.iter().enumerate() {
                let name = format!("{} {}", guest.first_name, guest.last_name);
                if i == 0 && j == 0 {
                    let width = self.text(
                        COL_GUESTS,
                        y,
                        (TABLE, Weight::Bold, Ink::Text),
                        &name,
                        RIGHT - COL_GUESTS - lead_width,
                    );
                    self.text(COL_GUESTS + width + 5.0, y, (TABLE, Weight::Regular, Ink::Muted), LEAD_MARK, lead_width);
                } else {
                    self.text(COL_GUESTS, y, style, &name, RIGHT - COL_GUESTS);
                }
                y += TABLE_LINE;
            }
            self.y += height;
            self.rule(self.y);
        }
    }

    fn total(&mut self, doc: &VoucherDocument<'_>) {
        if !self.fits(48.0) {
            self.new_page();
        }
        let y = self.y + HEADING + 10.0;
        let style = (HEADING, Weight::Bold, Ink::Text);
        self.text(LEFT, y, style, "Total", 100.0);
        self.text_right(RIGHT, y, style, &doc.booking.details.total.to_string(), RIGHT - LEFT - 110.0);
        let note = "Present this voucher at check-in. The code, or the address under it, tells whether it is valid.";
        self.text(LEFT, y + 22.0, (8.0, Weight::Regular, Ink::Muted), note, RIGHT - LEFT);
        self.y = y + 22.0;
    }

    /// Every page's footer, now that the number of pages is known.
    fn footers(mut self) -> Vec<Page> {
        let count = self.pages.len();
        let style = (8.0, Weight::Regular, Ink::Muted);
        let number = format!("Voucher {}", self.number);
        let pages = std::mem::take(&mut self.pages);
        for (i, page) in pages.into_iter().enumerate() {
            self.pages.push(page);
            self.text(LEFT, FOOTER, style, &number, (RIGHT - LEFT) / 2.0);
            self.text_right(RIGHT, FOOTER, style, &format!("Page {} of {count}", i + 1), (RIGHT - LEFT) / 2.0);
        }
        self.pages
    }
}
