//! The voucher's two faces, compiled into the binary (DejaVu Sans, regular and bold; licence
//! beside the files in `adapters/assets/fonts/`), and text measured the way krilla will draw it:
//! shaped by rustybuzz, the shaper krilla's `draw_text` uses, so a width computed here is the
//! width on the page. No system font is ever looked up; krilla embeds only the glyphs used.

use krilla::text::Font;

use super::VoucherError;

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Where a cut text shows that something is missing.
const ELLIPSIS: &str = "…";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Weight {
    Regular,
    Bold,
}

struct Face {
    pdf: Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
}

impl Face {
    fn load(data: &'static [u8]) -> Result<Self, VoucherError> {
        let pdf = Font::new(data.into(), 0).ok_or(VoucherError::Font)?;
        let shaper = rustybuzz::Face::from_slice(data, 0).ok_or(VoucherError::Font)?;
        Ok(Face { units_per_em: pdf.units_per_em(), pdf, shaper })
    }
}

pub(super) struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    pub(super) fn load() -> Result<Self, VoucherError> {
        Ok(Fonts { regular: Face::load(REGULAR)?, bold: Face::load(BOLD)? })
    }

    fn face(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// The krilla font to draw with (cheap to clone).
    pub(super) fn pdf_font(&self, weight: Weight) -> Font {
        self.face(weight).pdf.clone()
    }

    /// The advance width of `text` in points.
    pub(super) fn width(&self, weight: Weight, size: f32, text: &str) -> f32 {
        let face = self.face(weight);
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&face.shaper, &[], buffer);
        let units: i64 = shaped.glyph_positions().iter().map(|p| i64::from(p.x_advance)).sum();
        units as f32 / face.units_per_em * size
    }

    /// `text` as it fits in `max` points: whole, or cut at a character and ended with "…".
    pub(super) fn fit(&self, weight: Weight, size: f32, text: &str, max: f32) -> String {
        if self.width(weight, size, text) <= max {
            return text.to_owned();
        }
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let cut_at = |n: usize| format!("{}{ELLIPSIS}", text[..cuts[n]].trim_end());
        // The longest prefix (in characters) that fits with the ellipsis; widths grow with it.
        let (mut fits, mut too_long) = (0, cuts.len());
        while too_long - fits > 1 {
            let mid = (fits + too_long) / 2;
            if self.width(weight, size, &cut_at(mid)) <= max {
                fits = mid;
            } else {
                too_long = mid;
            }
        }
        cut_at(fits)
    }

    /// `text` broken into lines of at most `max` points, after a `/` or a space where it can,
    /// anywhere when one piece is wider than a line; at most `max_lines`, the last one cut.
    pub(super) fn wrap(&self, weight: Weight, size: f32, text: &str, max: f32, max_lines: usize) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for piece in text.split_inclusive(['/', ' ']) {
            let candidate = format!("{line}{piece}");
            if self.width(weight, size, candidate.trim_end()) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A piece wider than a whole line is broken at characters.
            let mut rest = piece;
            while self.width(weight, size, rest.trim_end()) > max {
                let cut = self.longest_prefix(weight, size, rest, max);
                lines.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
            line = rest.to_owned();
        }
        if !line.is_empty() {
            lines.push(line);
        }
        let keep = max_lines.max(1);
        if lines.len() > keep {
            let last = lines[keep - 1..].concat();
            lines.truncate(keep - 1);
            lines.push(self.fit(weight, size, last.trim_end(), max));
        }
        lines.into_iter().map(|l| l.trim_end().to_owned()).collect()
    }

    /// The byte length of the longest prefix of `text` (at least one character) within `max`.
    fn longest_prefix(&self, weight: Weight, size: f32, text: &str, max: f32) -> usize {
        let mut end = text.chars().next().map_or(0, char::len_utf8);
        for (i, c) in text.char_indices().skip(1) {
            if self.width(weight, size, &text[..i + c.len_utf8()]) > max {
                break;
            }
            end = i + c.len_utf8();
        }
        end
    }
}
