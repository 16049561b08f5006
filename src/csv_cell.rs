//! Cells of the CSV files people open in spreadsheets (survey responses, the audit
//! export). A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or with a tab
//! or a carriage return before one) as a formula, so text a customer typed could run on
//! an officer's machine. Such a cell is written with a leading `'`, which spreadsheets
//! show as text; a cell that already starts with `'` gets one too, so that a reader
//! recovers every value exactly by dropping one leading `'` when there is one.

use std::borrow::Cow;

/// The first characters that make a spreadsheet read a cell as a formula.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// What marks a neutralised cell.
pub const MARK: char = '\'';

/// The cell to write for `value`: itself, or `'` and itself when a spreadsheet would run
/// it as a formula or when it starts with `'`.
pub fn inert(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) || value.starts_with(MARK) {
        Cow::Owned(format!("{MARK}{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value a cell written by `inert` holds: the cell without its one leading `'`.
pub fn read_back(cell: &str) -> &str {
    cell.strip_prefix(MARK).unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_marked_and_other_cells_left_alone() {
        for value in [
            "=1+1",
            "+1",
            "-2",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "=HYPERLINK(\"x\")",
        ] {
            assert_eq!(inert(value), format!("'{value}"), "{value:?}");
        }
        for value in ["", "plain", "1", "a=b", "{\"k\":\"=x\"}", "ع=", " =1"] {
            assert!(
                matches!(inert(value), Cow::Borrowed(v) if v == value),
                "{value:?}"
            );
        }
    }

    #[test]
    fn every_value_reads_back_exactly() {
        for value in [
            "", "plain", "=1+1", "-", "@", "'", "''", "'=1", "'plain", "\t", "x'", "-'=",
        ] {
            assert_eq!(read_back(&inert(value)), value, "{value:?}");
        }
    }
}
