//! A mapping table as CSV: `supplier_code,bookhub_code,description,active[,outbound]`, with a
//! header row. Export writes every column; import needs the first four and takes the columns in
//! any order. An import is all or nothing: one bad row and [`parse`] returns every problem found
//! (row, column, reason), up to [`MAX_REPORTED`].

use std::collections::HashMap;

use domain::Violations;
use serde::Serialize;

use crate::CodeKind;
use crate::table::{Entry, Mapping, RawEntry};

/// The columns, in export order; the first four are required on import.
pub const COLUMNS: [&str; 5] = ["supplier_code", "bookhub_code", "description", "active", "outbound"];
const REQUIRED: usize = 4;
/// The most row problems one import reports.
pub const MAX_REPORTED: usize = 100;

/// One problem in an import. `row` counts the header as row 1, as a spreadsheet shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: u64,
    /// The column's name; `None` for a problem with the whole row.
    pub column: Option<String>,
    pub code: &'static str,
    pub reason: String,
}

/// Why an import was refused, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the CSV has {} problem(s){}", errors.len(), if *truncated { " or more" } else { "" })]
pub struct CsvRejected {
    pub errors: Vec<RowError>,
    pub truncated: bool,
}

impl CsvRejected {
    /// Records a problem (past [`MAX_REPORTED`], only that there were more).
    pub fn push(&mut self, error: RowError) {
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(error);
        } else {
            self.truncated = true;
        }
    }
}

/// The entries of a `kind` table's CSV, or every problem in it.
pub fn parse(kind: CodeKind, bytes: &[u8]) -> Result<Vec<Entry>, CsvRejected> {
    let mut entries = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    read(bytes, &COLUMNS, REQUIRED, |row, fields, rejected| {
        let Some(entry) = parse_row(kind, row, fields, rejected) else { return };
        match seen.get(&entry.supplier_code) {
            Some(first) => rejected.push(RowError {
                row,
                column: Some("supplier_code".into()),
                code: "duplicate_code",
                reason: format!("{} is already on row {first}", entry.supplier_code),
            }),
            None => {
                seen.insert(entry.supplier_code.clone(), row);
                entries.push(entry);
            }
        }
    })?;
    Ok(entries)
}

/// Reads a CSV file whose header row names `columns` (the first `required` of them must be
/// there; any order; a spreadsheet's BOM is skipped), giving `each` the row number and every
/// row's fields in `columns` order (`None` for a column the file lacks). Malformed rows, wrong
/// field counts and text that is not UTF-8 are reported here; `each` reports its own. All or
/// nothing: any problem and the result is every problem found. Mapping tables and supplier
/// statements are read with it.
pub fn read(
    bytes: &[u8],
    columns: &[&str],
    required: usize,
    mut each: impl FnMut(u64, &[Option<&str>], &mut CsvRejected),
) -> Result<(), CsvRejected> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rejected = CsvRejected { errors: Vec::new(), truncated: false };
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(whole(1, "malformed", e.to_string())),
        None => {
            return Err(whole(
                1,
                "missing_header",
                format!("the first row must name the columns: {}", columns.join(",")),
            ));
        }
    };
    let positions = match header_columns(&header, columns, required) {
        Ok(positions) => positions,
        Err(errors) => return Err(CsvRejected { errors, truncated: false }),
    };
    for (index, record) in records.enumerate() {
        let row = index as u64 + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                rejected.push(RowError { row, column: None, code: "malformed", reason: e.to_string() });
                continue;
            }
        };
        if record.len() != positions.len() {
            let reason = format!("has {} fields; the header names {}", record.len(), positions.len());
            rejected.push(RowError { row, column: None, code: "wrong_field_count", reason });
            continue;
        }
        let mut fields: Vec<Option<&str>> = vec![None; columns.len()];
        let mut utf8 = true;
        for (&column, value) in positions.iter().zip(record.iter()) {
            match std::str::from_utf8(value) {
                Ok(text) => fields[column] = Some(text),
                Err(_) => {
                    utf8 = false;
                    let reason = "is not UTF-8 text (save the file as UTF-8)".to_owned();
                    rejected.push(RowError { row, column: Some(columns[column].into()), code: "not_utf8", reason });
                }
            }
        }
        if utf8 {
            each(row, &fields, &mut rejected);
        }
    }
    if rejected.errors.is_empty() { Ok(()) } else { Err(rejected) }
}

fn whole(row: u64, code: &'static str, reason: String) -> CsvRejected {
    CsvRejected { errors: vec![RowError { row, column: None, code, reason }], truncated: false }
}

/// Each header cell's column (an index into `columns`), or why the header will not do.
fn header_columns(header: &::csv::ByteRecord, columns: &[&str], required: usize) -> Result<Vec<usize>, Vec<RowError>> {
    let mut positions = Vec::new();
    let mut errors = Vec::new();
    let error = |column: Option<String>, code, reason: String| RowError { row: 1, column, code, reason };
    for cell in header.iter() {
        let name = String::from_utf8_lossy(cell).trim().to_ascii_lowercase();
        match columns.iter().position(|c| *c == name) {
            Some(i) if positions.contains(&i) => {
                errors.push(error(Some(name), "duplicate_column", "appears twice in the header".into()))
            }
            Some(i) => positions.push(i),
            None => errors.push(error(
                Some(name),
                "unknown_column",
                format!("is not a column; the columns are {}", columns.join(",")),
            )),
        }
    }
    for (i, name) in columns.iter().enumerate().take(required) {
        if !positions.contains(&i) {
            errors.push(error(Some((*name).into()), "missing_column", "the header must name this column".into()));
        }
    }
    if errors.is_empty() { Ok(positions) } else { Err(errors) }
}

fn parse_row(kind: CodeKind, row: u64, fields: &[Option<&str>], rejected: &mut CsvRejected) -> Option<Entry> {
    let mut flags = Vec::new();
    let mut flag = |column: usize, default: Option<bool>| match fields[column].map(str::trim) {
        None | Some("") => default,
        Some(value) => parse_bool(value).or_else(|| {
            flags.push((column, value.to_owned()));
            None
        }),
    };
    let active = flag(3, Some(true));
    let outbound = flag(4, None);
    let bad_flags = !flags.is_empty();
    for (column, value) in flags {
        let reason = format!("{value:?} is not true or false");
        rejected.push(RowError { row, column: Some(COLUMNS[column].into()), code: "invalid_boolean", reason });
    }
    let raw = RawEntry {
        supplier_code: fields[0].unwrap_or(""),
        bookhub_code: fields[1].unwrap_or(""),
        description: fields[2].unwrap_or(""),
        active: active.unwrap_or(true),
        outbound,
    };
    let mut v = Violations::default();
    let entry = Entry::parse(kind, &raw, &mut v);
    if let Err(errors) = v.finish(|| ()) {
        for e in errors.errors {
            rejected.push(RowError { row, column: Some(e.field), code: e.code, reason: e.message });
        }
    }
    entry.filter(|_| !bad_flags)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The rows as CSV, every column, in supplier-code order.
pub fn export<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Mapping)>) -> Vec<u8> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let flag = |b: bool| if b { "true" } else { "false" };
    writer.write_record(COLUMNS).expect("writing to memory");
    for (code, m) in rows {
        let record = [code, &m.bookhub_code, &m.description, flag(m.active), flag(m.outbound)];
        writer.write_record(record).expect("writing to memory");
    }
    writer.into_inner().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(csv: &[u8]) -> Vec<(u64, Option<String>, &'static str)> {
        parse(CodeKind::RoomType, csv).unwrap_err().errors.into_iter().map(|e| (e.row, e.column, e.code)).collect()
    }

    #[test]
    fn reads_the_columns_in_any_order_with_defaults_and_a_bom() {
        let csv = "\u{feff}bookhub_code,supplier_code,active,description\nDBL,DBL.ST,,\"Double, standard\"\nSGL,SGL.ST,false,\n";
        let entries = parse(CodeKind::RoomType, csv.as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].supplier_code.as_str(), entries[0].description.as_str()),
            ("DBL.ST", "Double, standard")
        );
        assert!(entries[0].active && !entries[1].active);
        assert_eq!(entries[0].outbound, None);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_row_and_column() {
        let csv = b"supplier_code,bookhub_code,description,active\n\
            DBL.ST,DBL,,true\n\
            X,PENTHOUSE,,true\n\
            DBL.ST,SGL,,true\n\
            Y,SGL,,maybe\n\
            Z,\xff\xfe,,true\n\
            W,TWN\n";
        assert_eq!(
            problems(csv),
            vec![
                (3, Some("bookhub_code".into()), "unknown_code"),
                (4, Some("supplier_code".into()), "duplicate_code"),
                (5, Some("active".into()), "invalid_boolean"),
                (6, Some("bookhub_code".into()), "not_utf8"),
                (7, None, "wrong_field_count"),
            ]
        );
    }

    #[test]
    fn a_header_without_a_required_column_or_with_an_unknown_one_is_refused() {
        assert_eq!(
            problems(b"supplier_code,bookhub_code,colour\nA,DBL,red\n"),
            vec![
                (1, Some("colour".into()), "unknown_column"),
                (1, Some("description".into()), "missing_column"),
                (1, Some("active".into()), "missing_column"),
            ]
        );
        assert_eq!(problems(b""), vec![(1, None, "missing_header")]);
    }

    #[test]
    fn an_export_reads_back_as_the_same_rows() {
        let rows = [
            (
                "DBL.ST",
                Mapping {
                    bookhub_code: "DBL".into(),
                    description: "Double \"std\", sea".into(),
                    active: true,
                    outbound: true,
                },
            ),
            (
                "DBL.OLD",
                Mapping { bookhub_code: "DBL".into(), description: String::new(), active: false, outbound: false },
            ),
        ];
        let csv = export(rows.iter().map(|(c, m)| (*c, m)));
        let back = parse(CodeKind::RoomType, &csv).unwrap();
        for ((code, m), e) in rows.iter().zip(&back) {
            assert_eq!(
                (e.supplier_code.as_str(), &e.bookhub_code, &e.description),
                (*code, &m.bookhub_code, &m.description)
            );
            assert_eq!((e.active, e.outbound), (m.active, Some(m.outbound)));
        }
    }
}
