//! A mapping table as values: its rows, the rows staff ask for ([`Entry`], parsed at the edge),
//! and the [`Plan`] that turns the one into the other. Pure: the store reads the current rows,
//! asks for a plan, and writes exactly what the plan says.
//!
//! # The two directions
//! Inbound (a supplier's message → bookhub) reads a row by its supplier code, unique by the
//! table's key. Outbound (a booking → the supplier's request) reads it by bookhub code, so among
//! a table's active rows with one bookhub code exactly one is the **outbound** row:
//! - a row that is the only active one for its bookhub code is its outbound row;
//! - when several are, staff mark one (`outbound: true`); two marked is a conflict, none marked
//!   is one too, each naming the codes to choose from;
//! - an entry that does not say keeps its row's choice (while it still means the same code).
//!
//! Status rows are only ever read inbound: none is outbound.

use std::collections::{BTreeMap, HashSet};

use domain::{Board, BookingStatus, RoomType, SupplierCode, Violations};
use serde::{Deserialize, Serialize};

use crate::CodeKind;

/// Longest supplier code accepted.
pub const MAX_CODE_CHARS: usize = 100;
/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// One supplier's table of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Table {
    pub supplier: SupplierCode,
    pub kind: CodeKind,
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.supplier, self.kind)
    }
}

/// What a supplier code means: the values a row holds, and what the audit keeps before and
/// after each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub bookhub_code: String,
    pub description: String,
    pub active: bool,
    pub outbound: bool,
}

/// A row staff ask for, already checked: a supplier code and a valid bookhub code of the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub supplier_code: String,
    pub bookhub_code: String,
    pub description: String,
    pub active: bool,
    /// `None`: not said (see the module's rules).
    pub outbound: Option<bool>,
}

/// An entry's fields as received, before any check.
#[derive(Debug, Clone, Default)]
pub struct RawEntry<'a> {
    pub supplier_code: &'a str,
    pub bookhub_code: &'a str,
    pub description: &'a str,
    pub active: bool,
    pub outbound: Option<bool>,
}

impl Entry {
    /// Checks an entry of a `kind` table; every broken rule goes to `v` under its field name.
    pub fn parse(kind: CodeKind, raw: &RawEntry<'_>, v: &mut Violations) -> Option<Entry> {
        let supplier_code = parse_supplier_code(raw.supplier_code, v);
        let bookhub_code = v.required("bookhub_code", raw.bookhub_code).and_then(|code| {
            let known = match kind {
                CodeKind::RoomType => code.parse::<RoomType>().map(|_| ()),
                CodeKind::Board => code.parse::<Board>().map(|_| ()),
                CodeKind::Status => code.parse::<BookingStatus>().map(|_| ()),
            };
            v.check("bookhub_code", "unknown_code", known).map(|()| code)
        });
        let description = v
            .text("description", raw.description.trim())
            .and_then(|d| v.at_most("description", MAX_DESCRIPTION_CHARS, d));
        let outbound = match raw.outbound {
            Some(true) if kind == CodeKind::Status => {
                v.add("outbound", "not_outbound", "status codes are only read from suppliers, never sent");
                None
            }
            Some(true) if !raw.active => {
                v.add("outbound", "inactive_outbound", "an inactive row cannot be the outbound choice");
                None
            }
            other => Some(other),
        };
        Some(Entry {
            supplier_code: supplier_code?.to_owned(),
            bookhub_code: bookhub_code?.to_owned(),
            description: description?.to_owned(),
            active: raw.active,
            outbound: outbound?,
        })
    }
}

/// A supplier code: 1 to [`MAX_CODE_CHARS`] characters, no control characters, no space at
/// either end (a code is matched exactly).
pub fn parse_supplier_code<'a>(code: &'a str, v: &mut Violations) -> Option<&'a str> {
    if code.trim() != code {
        v.add("supplier_code", "invalid_code", "must not start or end with a space");
        return None;
    }
    v.required("supplier_code", code).and_then(|c| v.at_most("supplier_code", MAX_CODE_CHARS, c))
}

/// What staff ask of a table.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Create or change one row.
    Put(Entry),
    /// Remove one row.
    Delete(String),
    /// Make the table exactly these rows (a CSV import); codes are unique.
    Replace(Vec<Entry>),
}

/// Why an edit cannot be made: the outbound direction would be ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("{} are all marked outbound for {bookhub_code}; mark exactly one", codes.join(", "))]
    SeveralOutbound { bookhub_code: String, codes: Vec<String> },
    #[error("{} all mean {bookhub_code} and none is marked outbound; mark one", codes.join(", "))]
    NoOutbound { bookhub_code: String, codes: Vec<String> },
}

/// The rows an edit adds, changes and removes, by supplier code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub added: Vec<(String, Mapping)>,
    pub changed: Vec<Changed>,
    pub removed: Vec<(String, Mapping)>,
    pub unchanged: usize,
}

/// A row whose values change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub supplier_code: String,
    pub before: Mapping,
    pub after: Mapping,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Does it add a row, or make one active or mean another code: something a message waiting
    /// for a mapping may now find.
    pub fn maps_more(&self) -> bool {
        !self.added.is_empty()
            || self
                .changed
                .iter()
                .any(|c| c.after.active && (!c.before.active || c.after.bookhub_code != c.before.bookhub_code))
    }
}

/// The plan that turns the `current` rows of a `kind` table into what `edit` asks.
pub fn plan(kind: CodeKind, current: &BTreeMap<String, Mapping>, edit: Edit) -> Result<Plan, Vec<Conflict>> {
    let kept = |code: &str, entry: &Entry| {
        current.get(code).map(|m| Entry {
            outbound: Some(m.outbound && m.bookhub_code == entry.bookhub_code && entry.active),
            ..entry.clone()
        })
    };
    // The wanted table; an entry that does not say whether it is outbound keeps its row's choice.
    let mut wanted: BTreeMap<String, Entry> = current
        .iter()
        .map(|(code, m)| {
            let entry = Entry {
                supplier_code: code.clone(),
                bookhub_code: m.bookhub_code.clone(),
                description: m.description.clone(),
                active: m.active,
                outbound: Some(m.outbound),
            };
            (code.clone(), entry)
        })
        .collect();
    match edit {
        Edit::Put(entry) => {
            let entry = match entry.outbound {
                Some(_) => entry.clone(),
                None => kept(&entry.supplier_code, &entry).unwrap_or(entry),
            };
            wanted.insert(entry.supplier_code.clone(), entry);
        }
        Edit::Delete(code) => {
            wanted.remove(&code);
        }
        Edit::Replace(entries) => {
            wanted = entries
                .into_iter()
                .map(|e| {
                    let e = if e.outbound.is_none() { kept(&e.supplier_code, &e).unwrap_or(e) } else { e };
                    (e.supplier_code.clone(), e)
                })
                .collect();
        }
    }
    let resolved = resolve(kind, wanted)?;
    Ok(diff(current, resolved))
}

/// Each wanted row with its outbound flag settled by the module's rules.
fn resolve(kind: CodeKind, wanted: BTreeMap<String, Entry>) -> Result<BTreeMap<String, Mapping>, Vec<Conflict>> {
    let mut by_code: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    if kind != CodeKind::Status {
        for entry in wanted.values().filter(|e| e.active) {
            by_code.entry(&entry.bookhub_code).or_default().push(entry);
        }
    }
    let mut outbound = HashSet::new();
    let mut conflicts = Vec::new();
    for (bookhub_code, entries) in by_code {
        let codes = |list: &[&Entry]| list.iter().map(|e| e.supplier_code.clone()).collect::<Vec<_>>();
        let marked: Vec<&Entry> = entries.iter().copied().filter(|e| e.outbound == Some(true)).collect();
        match (marked.as_slice(), entries.as_slice()) {
            ([one], _) | ([], [one]) => {
                outbound.insert(one.supplier_code.clone());
            }
            ([], several) => {
                conflicts.push(Conflict::NoOutbound { bookhub_code: bookhub_code.to_owned(), codes: codes(several) })
            }
            (several, _) => conflicts
                .push(Conflict::SeveralOutbound { bookhub_code: bookhub_code.to_owned(), codes: codes(several) }),
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    Ok(wanted
        .into_iter()
        .map(|(code, e)| {
            let mapping = Mapping {
                outbound: outbound.contains(&code),
                bookhub_code: e.bookhub_code,
                description: e.description,
                active: e.active,
            };
            (code, mapping)
        })
        .collect())
}

fn diff(current: &BTreeMap<String, Mapping>, mut resolved: BTreeMap<String, Mapping>) -> Plan {
    let mut plan = Plan::default();
    for (code, before) in current {
        match resolved.remove(code) {
            None => plan.removed.push((code.clone(), before.clone())),
            Some(after) if after == *before => plan.unchanged += 1,
            Some(after) => plan.changed.push(Changed { supplier_code: code.clone(), before: before.clone(), after }),
        }
    }
    plan.added = resolved.into_iter().collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: &str, bookhub: &str, outbound: Option<bool>) -> Entry {
        Entry {
            supplier_code: code.into(),
            bookhub_code: bookhub.into(),
            description: String::new(),
            active: true,
            outbound,
        }
    }

    fn table(rows: &[(&str, &str, bool)]) -> BTreeMap<String, Mapping> {
        rows.iter()
            .map(|(code, bookhub, outbound)| {
                let m = Mapping {
                    bookhub_code: (*bookhub).into(),
                    description: String::new(),
                    active: true,
                    outbound: *outbound,
                };
                ((*code).to_owned(), m)
            })
            .collect()
    }

    #[test]
    fn the_only_row_for_a_code_is_its_outbound_row_and_a_second_one_is_not() {
        let first = plan(CodeKind::RoomType, &BTreeMap::new(), Edit::Put(entry("DBL.ST", "DBL", None))).unwrap();
        assert!(first.added[0].1.outbound);
        let current = table(&[("DBL.ST", "DBL", true)]);
        let second = plan(CodeKind::RoomType, &current, Edit::Put(entry("DBL.NEW", "DBL", None))).unwrap();
        assert_eq!(second.added, vec![("DBL.NEW".into(), table(&[("x", "DBL", false)])["x"].clone())]);
        assert_eq!(second.unchanged, 1);
    }

    #[test]
    fn marking_a_second_outbound_row_is_a_conflict_naming_both() {
        let current = table(&[("DBL.ST", "DBL", true)]);
        let conflicts = plan(CodeKind::RoomType, &current, Edit::Put(entry("DBL.NEW", "DBL", Some(true)))).unwrap_err();
        assert_eq!(
            conflicts,
            vec![Conflict::SeveralOutbound {
                bookhub_code: "DBL".into(),
                codes: vec!["DBL.NEW".into(), "DBL.ST".into()]
            }]
        );
    }

    #[test]
    fn deleting_the_outbound_row_promotes_a_sole_survivor_and_refuses_to_guess_between_two() {
        let two = table(&[("A", "DBL", true), ("B", "DBL", false)]);
        let promoted = plan(CodeKind::RoomType, &two, Edit::Delete("A".into())).unwrap();
        assert_eq!(promoted.removed.len(), 1);
        assert_eq!((promoted.changed[0].before.outbound, promoted.changed[0].after.outbound), (false, true));

        let three = table(&[("A", "DBL", true), ("B", "DBL", false), ("C", "DBL", false)]);
        let refused = plan(CodeKind::RoomType, &three, Edit::Delete("A".into())).unwrap_err();
        assert_eq!(
            refused,
            vec![Conflict::NoOutbound { bookhub_code: "DBL".into(), codes: vec!["B".into(), "C".into()] }]
        );
    }

    #[test]
    fn a_row_moved_to_another_code_leaves_that_codes_choice_alone() {
        let current = table(&[("A", "DBL", true), ("B", "SGL", true)]);
        let moved = plan(CodeKind::RoomType, &current, Edit::Put(entry("A", "SGL", None))).unwrap();
        let after = &moved.changed[0];
        assert_eq!((after.supplier_code.as_str(), after.after.outbound), ("A", false));
        assert_eq!(moved.unchanged, 1, "B stays SGL's outbound row");
        let marked = plan(CodeKind::RoomType, &current, Edit::Put(entry("A", "SGL", Some(true)))).unwrap_err();
        assert!(matches!(&marked[..], [Conflict::SeveralOutbound { bookhub_code, .. }] if bookhub_code == "SGL"));
    }

    #[test]
    fn a_replace_lists_additions_changes_and_removals_and_keeps_choices_it_does_not_mention() {
        let current = table(&[("A", "DBL", true), ("B", "DBL", false), ("C", "SGL", true)]);
        let rows = vec![entry("A", "DBL", None), entry("B", "DBL", None), entry("D", "TWN", None)];
        let plan = plan(CodeKind::RoomType, &current, Edit::Replace(rows)).unwrap();
        assert_eq!(plan.unchanged, 2);
        assert_eq!(plan.removed.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["C"]);
        assert_eq!(plan.added.iter().map(|(c, m)| (c.as_str(), m.outbound)).collect::<Vec<_>>(), [("D", true)]);
        assert!(plan.changed.is_empty());
        assert!(plan.maps_more());
    }

    #[test]
    fn status_rows_are_never_outbound_and_an_inactive_row_cannot_be_marked() {
        let two = plan(
            CodeKind::Status,
            &BTreeMap::new(),
            Edit::Replace(vec![entry("CNF", "confirmed", None), entry("OK", "confirmed", None)]),
        )
        .unwrap();
        assert!(two.added.iter().all(|(_, m)| !m.outbound));

        let mut v = Violations::default();
        let raw = RawEntry {
            supplier_code: "X",
            bookhub_code: "DBL",
            active: false,
            outbound: Some(true),
            ..Default::default()
        };
        assert_eq!(Entry::parse(CodeKind::RoomType, &raw, &mut v), None);
        let raw = RawEntry { supplier_code: " X", bookhub_code: "PENTHOUSE", ..Default::default() };
        assert_eq!(Entry::parse(CodeKind::RoomType, &raw, &mut v), None);
        let fields: Vec<_> = v.finish(|| ()).unwrap_err().errors.into_iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(
            fields,
            [
                ("outbound".into(), "inactive_outbound"),
                ("supplier_code".into(), "invalid_code"),
                ("bookhub_code".into(), "unknown_code")
            ]
        );
    }
}
