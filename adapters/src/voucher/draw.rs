//! The laid-out pages written as a PDF with krilla: text as shaped glyphs of the embedded fonts
//! (subset, with ToUnicode maps, so the text extracts), rectangles as filled paths. The
//! document's dates are the issue date at midnight UTC, so the output depends on nothing else.

use chrono::Datelike;
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::TextDirection;

use super::fonts::Fonts;
use super::layout::{Ink, Op, PAGE_HEIGHT, PAGE_WIDTH, Page};
use super::{VoucherDocument, VoucherError};

pub(super) fn write_pdf(doc: &VoucherDocument<'_>, fonts: &Fonts, pages: &[Page]) -> Result<Vec<u8>, VoucherError> {
    let mut document = Document::new();
    let issued = doc.issued_on;
    let date = DateTime::new(u16::try_from(issued.year()).unwrap_or(0))
        .month(issued.month() as u8)
        .day(issued.day() as u8)
        .hour(0)
        .minute(0)
        .second(0)
        .utc_offset_hour(0)
        .utc_offset_minute(0);
    document.set_metadata(
        Metadata::new()
            .title(format!("Hotel voucher {}", doc.number))
            .creator("bookhub".to_owned())
            .language("en".to_owned())
            .creation_date(date),
    );
    let settings =
        PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or_else(|| VoucherError::Pdf("page size".into()))?;
    for ops in pages {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, fonts, op);
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| VoucherError::Pdf(e.to_string()))
}

fn draw(surface: &mut Surface<'_>, fonts: &Fonts, op: &Op) {
    match op {
        Op::Text { x, y, size, weight, ink, text, .. } => {
            surface.set_fill(Some(fill(*ink)));
            surface.draw_text(Point::from_xy(*x, *y), fonts.pdf_font(*weight), *size, text, false, TextDirection::Auto);
        }
        Op::Fill { areas, ink } => {
            let mut path = PathBuilder::new();
            for area in areas {
                if let Some(rect) = Rect::from_xywh(area.x, area.y, area.w, area.h) {
                    path.push_rect(rect);
                }
            }
            if let Some(path) = path.finish() {
                surface.set_fill(Some(fill(*ink)));
                surface.draw_path(&path);
            }
        }
    }
}

fn fill(ink: Ink) -> Fill {
    let (r, g, b) = match ink {
        Ink::Text => (25, 25, 25),
        Ink::Muted => (95, 99, 104),
        Ink::Accent => (20, 60, 110),
        Ink::Line => (200, 204, 208),
        Ink::Code => (0, 0, 0),
    };
    Fill { paint: rgb::Color::new(r, g, b).into(), opacity: NormalizedF32::ONE, rule: Default::default() }
}
