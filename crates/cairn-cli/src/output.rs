//! Terminal output, the one place the CLI prints from: aligned tables, human units, times,
//! `--json`, stdout writes that report a closed pipe as an error instead of panicking, and the
//! notes, warnings and progress written to stderr.

/// `println!` that returns the write error (a closed pipe) to the caller with `?`.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?;
    }};
}

/// `print!` that returns the write error to the caller with `?`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*)?;
    }};
}

/// `eprintln!`: notes, warnings and progress for the person at the terminal (never on stdout,
/// which scripts read).
macro_rules! errln {
    () => {
        $crate::output::stderr_line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::output::stderr_line(format_args!($($t)*))
    };
}

/// `eprint!`: a progress line redrawn in place with `\r`.
macro_rules! err {
    ($($t:tt)*) => {
        $crate::output::stderr_text(format_args!($($t)*))
    };
}

use std::time::{Duration, UNIX_EPOCH};

/// Prints `v` as pretty JSON (`--json`).
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// One line to stderr (`errln!`).
#[allow(clippy::print_stderr)]
pub fn stderr_line(text: std::fmt::Arguments<'_>) {
    eprintln!("{text}");
}

/// Text to stderr without a newline (`err!`).
#[allow(clippy::print_stderr)]
pub fn stderr_text(text: std::fmt::Arguments<'_>) {
    eprint!("{text}");
}

/// A table printed with aligned columns; long cells are cut with an ellipsis.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns aligned right (numbers).
    right: Vec<bool>,
}

const MAX_CELL: usize = 48;

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            right: vec![false; headers.len()],
        }
    }

    pub fn right_align(mut self, cols: &[usize]) -> Table {
        for &c in cols {
            if c < self.right.len() {
                self.right[c] = true;
            }
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cut = |s: &str| -> String {
            if s.chars().count() > MAX_CELL {
                let mut t: String = s.chars().take(MAX_CELL - 1).collect();
                t.push('…');
                t
            } else {
                s.to_owned()
            }
        };
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| cut(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
        }
        let line = |r: &[String]| -> String {
            let mut out = String::new();
            for (i, c) in r.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(c.chars().count());
                let last = i + 1 == r.len();
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    out.push_str("  ");
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        for r in &cells {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

/// `2026-11-27 04:35` in UTC.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..16).map(|p| p.replace('T', " ")).unwrap_or(s)
}

/// `1h 02m`, `3m 12s`, `45s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `1.2 GB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1,281,167`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A metric value: 4 significant decimals, NaN and infinities spelled out.
pub fn metric(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_cut() {
        let mut t = Table::new(&["name", "n"]).right_align(&[1]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["x".repeat(60), "100".into()]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], format!("a{}    1", " ".repeat(47)));
        assert!(lines[2].contains('…'));
    }

    #[test]
    fn units_read_well() {
        assert_eq!(thousands(1_281_167), "1,281,167");
        assert_eq!(bytes(2_306_100_600), "2.3 GB");
        assert_eq!(duration(3_725_000), "1h 02m");
        assert_eq!(metric(f64::NAN), "NaN");
        assert_eq!(metric(0.93125), "0.9313");
        assert_eq!(time(1_795_752_388_045), "2026-11-27 04:06");
    }
}
