//! The verify URL as a QR code (error correction M, the smallest version that holds it), kept
//! as the dark runs of each row: one rectangle per run draws the code with few path segments.

use qrcode::{Color, QrCode};

use super::VoucherError;

/// Light modules a reader needs around the code (ISO/IEC 18004 asks for four).
pub(super) const QUIET_ZONE: usize = 4;

/// Adjacent dark modules of one row: `len` modules from column `col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub row: usize,
    pub col: usize,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub(super) struct QrMatrix {
    /// Modules per side, without the quiet zone.
    pub modules: usize,
    pub runs: Vec<Run>,
}

impl QrMatrix {
    pub(super) fn encode(payload: &str) -> Result<Self, VoucherError> {
        let code = QrCode::new(payload.as_bytes()).map_err(|e| VoucherError::VerifyUrl(e.to_string()))?;
        let modules = code.width();
        let colors = code.to_colors();
        let mut runs = Vec::new();
        for (row, line) in colors.chunks(modules).enumerate() {
            let mut col = 0;
            while col < modules {
                if line[col] == Color::Dark {
                    let len = line[col..].iter().take_while(|c| **c == Color::Dark).count();
                    runs.push(Run { row, col, len });
                    col += len;
                } else {
                    col += 1;
                }
            }
        }
        Ok(QrMatrix { modules, runs })
    }

    /// Modules per side with the quiet zone on both sides.
    pub(super) fn modules_with_quiet_zone(&self) -> usize {
        self.modules + 2 * QUIET_ZONE
    }
}
