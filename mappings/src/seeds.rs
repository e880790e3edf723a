//! Each protocol's published codes (from its partner document) and what they mean in
//! bookhub's codes: the rows a newly configured supplier starts with. Staff own them after.

use crate::CodeKind::{self, Board, RoomType, Status};

type Row = (CodeKind, &'static str, &'static str);

const JSONREST: &[Row] = &[
    (RoomType, "SGL.ST", "SGL"),
    (RoomType, "DBL.ST", "DBL"),
    (RoomType, "TWN.ST", "TWN"),
    (RoomType, "DBL.SU", "DBL_SUP"),
    (RoomType, "TPL.ST", "TPL"),
    (RoomType, "FAM.ST", "FAM"),
    (RoomType, "JSU.ST", "JSU"),
    (Board, "RO", "RO"),
    (Board, "BB", "BB"),
    (Board, "HB", "HB"),
    (Board, "FB", "FB"),
    (Board, "AI", "AI"),
    (Status, "PND", "pending"),
    (Status, "CNF", "confirmed"),
    (Status, "CXL", "cancelled"),
    (Status, "REJ", "rejected"),
];

const OTA: &[Row] = &[
    (RoomType, "SNG", "SGL"),
    (RoomType, "DBS", "DBL"),
    (RoomType, "TWS", "TWN"),
    (RoomType, "DBX", "DBL_SUP"),
    (RoomType, "TRP", "TPL"),
    (RoomType, "FAM", "FAM"),
    (RoomType, "JRS", "JSU"),
    // OTA meal plan type list (MPT).
    (Board, "14", "RO"),
    (Board, "3", "BB"),
    (Board, "12", "HB"),
    (Board, "10", "FB"),
    (Board, "1", "AI"),
    (Status, "Pending", "pending"),
    (Status, "Reserved", "confirmed"),
    // A modified reservation is still a live, confirmed one.
    (Status, "Modified", "confirmed"),
    (Status, "Cancelled", "cancelled"),
    (Status, "Rejected", "rejected"),
];

/// The sandbox uses bookhub's own room and board codes and jsonrest's status codes.
const SANDBOX: &[Row] = &[
    (RoomType, "SGL", "SGL"),
    (RoomType, "DBL", "DBL"),
    (RoomType, "TWN", "TWN"),
    (RoomType, "DBL_SUP", "DBL_SUP"),
    (RoomType, "TPL", "TPL"),
    (RoomType, "FAM", "FAM"),
    (RoomType, "JSU", "JSU"),
    (Board, "RO", "RO"),
    (Board, "BB", "BB"),
    (Board, "HB", "HB"),
    (Board, "FB", "FB"),
    (Board, "AI", "AI"),
    (Status, "PND", "pending"),
    (Status, "CNF", "confirmed"),
    (Status, "CXL", "cancelled"),
    (Status, "REJ", "rejected"),
];

/// The starting rows for a protocol (`jsonrest`, `ota`, `sandbox`); none for an unknown one.
pub fn for_protocol(protocol: &str) -> &'static [Row] {
    match protocol {
        "jsonrest" => JSONREST,
        "ota" => OTA,
        "sandbox" => SANDBOX,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_names_a_bookhub_code_and_covers_every_one() {
        for protocol in ["jsonrest", "ota", "sandbox"] {
            let rows = for_protocol(protocol);
            for (kind, _, code) in rows {
                let valid = match kind {
                    RoomType => code.parse::<domain::RoomType>().is_ok(),
                    Board => code.parse::<domain::Board>().is_ok(),
                    Status => code.parse::<domain::BookingStatus>().is_ok(),
                };
                assert!(valid, "{protocol}: {code} is not a bookhub {kind:?} code");
            }
            for room in domain::RoomType::ALL {
                assert!(rows.iter().any(|(k, _, c)| *k == RoomType && *c == room.as_str()), "{protocol}: {room}");
            }
            for board in domain::Board::ALL {
                assert!(rows.iter().any(|(k, _, c)| *k == Board && *c == board.as_str()), "{protocol}: {board}");
            }
        }
    }
}
