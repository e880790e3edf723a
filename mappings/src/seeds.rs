//! The rows a newly configured supplier starts with: each protocol's published codes (from its
//! partner document) and what they mean in bookhub's codes, as CSV files under
//! `mappings/seeds/<protocol>/<kind>.csv`, built into the binary. Staff own the rows after; the
//! same files load with `bookhub mappings import`.

use crate::CodeKind;
use crate::table::Entry;

/// The seed CSV of a protocol's table, if it ships one.
pub fn csv(protocol: &str, kind: CodeKind) -> Option<&'static str> {
    let file = match (protocol, kind) {
        ("jsonrest", CodeKind::RoomType) => include_str!("../seeds/jsonrest/room_type.csv"),
        ("jsonrest", CodeKind::Board) => include_str!("../seeds/jsonrest/board.csv"),
        ("jsonrest", CodeKind::Status) => include_str!("../seeds/jsonrest/status.csv"),
        ("ota", CodeKind::RoomType) => include_str!("../seeds/ota/room_type.csv"),
        ("ota", CodeKind::Board) => include_str!("../seeds/ota/board.csv"),
        ("ota", CodeKind::Status) => include_str!("../seeds/ota/status.csv"),
        // The sandbox uses bookhub's own room and board codes and jsonrest's status codes.
        ("sandbox", CodeKind::RoomType) => include_str!("../seeds/sandbox/room_type.csv"),
        ("sandbox", CodeKind::Board) => include_str!("../seeds/sandbox/board.csv"),
        ("sandbox", CodeKind::Status) => include_str!("../seeds/sandbox/status.csv"),
        _ => return None,
    };
    Some(file)
}

/// A protocol's seed tables (`jsonrest`, `ota`, `sandbox`); none for an unknown one.
pub fn for_protocol(protocol: &str) -> Vec<(CodeKind, Vec<Entry>)> {
    CodeKind::ALL
        .iter()
        .filter_map(|&kind| {
            let file = csv(protocol, kind)?;
            let entries = crate::csv::parse(kind, file.as_bytes()).expect("the seed files parse (tested)");
            Some((kind, entries))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_parses_and_covers_every_bookhub_code() {
        for protocol in ["jsonrest", "ota", "sandbox"] {
            let tables = for_protocol(protocol);
            assert_eq!(tables.len(), 3, "{protocol}");
            let codes = |kind: CodeKind| -> Vec<String> {
                tables
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .flat_map(|(_, e)| e.iter().map(|e| e.bookhub_code.clone()))
                    .collect()
            };
            for room in domain::RoomType::ALL {
                assert!(codes(CodeKind::RoomType).contains(&room.as_str().to_owned()), "{protocol}: {room}");
            }
            for board in domain::Board::ALL {
                assert!(codes(CodeKind::Board).contains(&board.as_str().to_owned()), "{protocol}: {board}");
            }
            for status in ["pending", "confirmed", "cancelled", "rejected"] {
                assert!(codes(CodeKind::Status).contains(&status.to_owned()), "{protocol}: {status}");
            }
        }
        assert!(for_protocol("carrier-pigeon").is_empty());
    }
}
