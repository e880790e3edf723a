//! Writes a sample voucher PDF, the one pictured in `docs/voucher.png`. To redraw the picture
//! (pdftoppm is in Debian's `poppler-utils`):
//!
//! ```sh
//! cargo run -p bookhub-adapters --example voucher_sample -- target/voucher-sample.pdf
//! pdftoppm -png -r 80 -singlefile target/voucher-sample.pdf docs/voucher
//! ```

use anyhow::Context;
use bookhub_adapters::voucher::{VoucherDocument, render};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::booking::{Guest, Room};
use domain::validation::EmailAddress;
use domain::{AgencyId, Board, Booking, BookingStatus, Money, NewBooking, RoomType};

fn guest(first: &str, last: &str) -> Guest {
    Guest { first_name: first.into(), last_name: last.into(), email: None }
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "voucher-sample.pdf".into());
    let mut lead = guest("Ana", "Pérez");
    lead.email = Some(EmailAddress::parse("ana.perez@example.com").context("email")?);
    let details = NewBooking {
        supplier: "jsonrest".parse().context("supplier")?,
        hotel_code: "PMI-HOTEL-0042".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 10).context("date")?,
        check_out: NaiveDate::from_ymd_opt(2027, 3, 14).context("date")?,
        rooms: vec![
            Room {
                room_type: RoomType::DoubleSuperior,
                board: Board::BedAndBreakfast,
                guests: vec![lead, guest("Luis", "Gómez")],
            },
            Room {
                room_type: RoomType::Family,
                board: Board::HalfBoard,
                guests: vec![guest("Søren", "Øster"), guest("Jürgen", "Müller"), guest("Iñaki", "Ñuñez")],
            },
        ],
        total: Money::parse("1234.50", "EUR").context("money")?,
        client_reference: Some("AG-REF-77".into()),
    };
    let created = Utc.with_ymd_and_hms(2027, 3, 1, 9, 30, 0).single().context("time")?;
    let agency: AgencyId = "ag_0195f2a4c3e07d5a8b1c2d3e4f506173".parse().context("agency id")?;
    let booking = Booking {
        id: "bk_0195f2a4c3e07d5a8b1c2d3e4f506172".parse().context("booking id")?,
        status: BookingStatus::Confirmed,
        supplier_reference: Some("JR-558812".into()),
        ..Booking::accept(agency, details, created)
    };
    let pdf = render(&VoucherDocument {
        number: "VCH-2027-000123",
        agency_name: "Viajes Pérez & Hijos",
        booking: &booking,
        verify_url: "https://bookhub.example.com/v1/vouchers/VCH-2027-000123/verify",
        issued_on: NaiveDate::from_ymd_opt(2027, 3, 1).context("date")?,
    })?;
    std::fs::write(&out, pdf).with_context(|| format!("writing {out}"))?;
    println!("{out}");
    Ok(())
}
