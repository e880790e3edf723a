//! The PDF voucher an agency gets when a booking is confirmed: one A4 page (more when the rooms
//! need them) with the voucher number, the agency, bookhub's booking id and the supplier's
//! reference, the stay, every room with its type and board in words and its guests (the lead
//! guest marked), the total, and a QR code of the address that tells whether the voucher is
//! still valid, printed under it as text too.
//!
//! Only the rendering lives here: numbering, storage and the endpoints are elsewhere. The PDF is
//! written by krilla with an embedded, subset DejaVu Sans (no system fonts, so Pérez, Øster and
//! Ñuñez render on any machine), and every string is drawn as real text with a ToUnicode map:
//! the voucher can be searched, copied and read by a text extractor. The same document always
//! renders to the same bytes: the PDF's dates come from `issued_on`, nothing from the clock.
//!
//! Text that is wider than its place (a 200-character name) is cut with "…" rather than drawn
//! off the page; the verify address is wrapped after its `/`s when it is wider than the page.

mod draw;
mod fonts;
mod layout;
mod qr;

use chrono::NaiveDate;
use domain::{Board, Booking, RoomType};

/// What one voucher shows: the booking and the facts that belong to the voucher itself.
#[derive(Debug, Clone, Copy)]
pub struct VoucherDocument<'a> {
    /// The voucher's number, such as `VCH-2027-000123`.
    pub number: &'a str,
    /// The booking agency's name as it should appear on the voucher.
    pub agency_name: &'a str,
    pub booking: &'a Booking,
    /// Where the voucher is verified: `{public_base_url}/v1/vouchers/{number}/verify`. It is
    /// encoded in the QR code and printed under it.
    pub verify_url: &'a str,
    pub issued_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    /// The address is too long for a QR code (more than about 2,300 bytes).
    #[error("the verify URL cannot be a QR code: {0}")]
    VerifyUrl(String),
    /// The compiled-in font could not be read: a broken build, never the input's fault.
    #[error("the embedded voucher font cannot be read")]
    Font,
    #[error("the voucher PDF could not be written: {0}")]
    Pdf(String),
}

/// Renders the voucher as a PDF.
pub fn render(doc: &VoucherDocument<'_>) -> Result<Vec<u8>, VoucherError> {
    let fonts = fonts::Fonts::load()?;
    let qr = qr::QrMatrix::encode(doc.verify_url)?;
    let pages = layout::lay_out(doc, &fonts, &qr);
    draw::write_pdf(doc, &fonts, &pages)
}

/// A room type in words, as the voucher prints it.
pub fn room_type_words(room_type: RoomType) -> &'static str {
    match room_type {
        RoomType::Single => "Single",
        RoomType::Double => "Double",
        RoomType::Twin => "Twin",
        RoomType::DoubleSuperior => "Double superior",
        RoomType::Triple => "Triple",
        RoomType::Family => "Family",
        RoomType::JuniorSuite => "Junior suite",
    }
}

/// A board in words, as the voucher prints it.
pub fn board_words(board: Board) -> &'static str {
    match board {
        Board::RoomOnly => "Room only",
        Board::BedAndBreakfast => "Bed and breakfast",
        Board::HalfBoard => "Half board",
        Board::FullBoard => "Full board",
        Board::AllInclusive => "All inclusive",
    }
}

#[cfg(test)]
mod tests;
