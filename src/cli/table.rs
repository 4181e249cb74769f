//! Tables for people and CSV for spreadsheets, from the same rows.

use std::fmt::Write as _;

/// A table: headers and rows of cells, all text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns aligned right (numbers).
    pub right: Vec<bool>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            right: vec![false; headers.len()],
        }
    }

    /// Marks columns as numeric (right-aligned in the text table).
    pub fn numeric(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned columns, two spaces apart; the last column is not padded.
    pub fn text(&self) -> String {
        let n = self.headers.len();
        let mut width = vec![0usize; n];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(n) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(n) {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = width[i] - cell.chars().count();
                if self.right[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else if i + 1 < n {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(cell);
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }

    /// RFC 4180 CSV with a header line.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            let _ = writeln!(out, "{}", cells.join(","));
        }
        out
    }
}

/// One CSV cell, quoted when it must be.
pub fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// An optional number with `digits` decimals, or `-`.
pub fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

/// A share as a percentage, or `-`.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{:.1}%", x * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_aligns_and_csv_quotes() {
        let mut t = Table::new(&["id", "name", "n"]).numeric(&[2]);
        t.push(vec!["1".into(), "a, b".into(), "10".into()]);
        t.push(vec!["22".into(), "say \"hi\"".into(), "3".into()]);
        assert_eq!(
            t.text(),
            "id  name       n\n1   a, b      10\n22  say \"hi\"   3\n"
        );
        assert_eq!(
            t.csv(),
            "id,name,n\n1,\"a, b\",10\n22,\"say \"\"hi\"\"\",3\n"
        );
    }
}
