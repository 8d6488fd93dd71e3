//! What substring search sees of spans, and how it is kept: the `span_text` index holds one
//! row per trace and append (not per span), so an append of a 10-span trace tokenizes and
//! stores one row, and the trigrams its spans share are posted once.
//!
//! A row's text is its spans' texts joined by line breaks; `bounds` says where each span's text
//! starts (little-endian `u32` byte offsets of the second and later ones; NULL for a row of one
//! span). A search asks "does some span's text match this LIKE pattern": the trigram index finds
//! the rows whose whole text contains the pattern anywhere (a superset), and [`span_like`] (the
//! SQL function `cairn_span_like`) keeps those where one span's text matches by itself, with
//! SQLite's LIKE semantics. A pattern `%…%` holding no wildcard and no line break cannot match
//! across two spans' texts, so the index answers it alone.
//!
//! Row ids say whose rows they are: `trace << ROW_BITS | n`, where `trace` is `traces.id` and
//! `n` counts that trace's rows. So a trace's rows are a rowid range (deleted or rebuilt
//! together), and a row names its trace without a lookup.

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;

use crate::model::{Span, Value, attr};

/// Bits of a `span_text` row id that count a trace's rows. Few, so that row ids stay dense: the
/// index stores each trigram's rows as varint deltas, one byte each while they are under 128. A
/// trace appended to more often than this gets its rows merged into one.
pub(crate) const ROW_BITS: u32 = 6;
/// Text of one span kept for substring search, in characters.
pub(crate) const SPAN_TEXT_CHARS: usize = 8192;
/// A row's text is cut into another row past this many bytes (bounds are `u32`).
const ROW_BYTES: usize = 16 << 20;

/// The SQL function [`register`] adds: `cairn_span_like(text, bounds, pattern)`.
pub(crate) const SPAN_LIKE: &str = "cairn_span_like";

/// The row ids of `trace`'s rows: `first..=last`.
pub(crate) fn row_range(trace: i64) -> (i64, i64) {
    let first = trace << ROW_BITS;
    (first, first | ((1 << ROW_BITS) - 1))
}

/// Rows of span text being built for one trace in one append.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Rows filled, each `(text, bounds)`.
    pub(crate) done: Vec<(String, Option<Vec<u8>>)>,
    text: String,
    bounds: Vec<u8>,
    spans: usize,
}

impl Rows {
    /// Adds what substring search sees of `span`: its name, status message, attributes (key
    /// and value as MLflow's client dumps them) and event names, cut at [`SPAN_TEXT_CHARS`]
    /// characters.
    pub(crate) fn push(&mut self, span: &Span) {
        let start = self.begin();
        let t = &mut self.text;
        t.push_str(&span.name);
        if !span.status.message.is_empty() {
            t.push('\n');
            t.push_str(&span.status.message);
        }
        for (k, v) in &span.attributes {
            if k == attr::REQUEST_ID {
                continue;
            }
            t.push('\n');
            t.push_str(k);
            t.push_str(": ");
            match v {
                Value::Str(s) => t.push_str(s),
                other => t.push_str(&other.to_python_json()),
            }
            if t.len() - start > SPAN_TEXT_CHARS * 4 {
                break;
            }
        }
        for e in &span.events {
            t.push('\n');
            t.push_str(&e.name);
        }
        if let Some((i, _)) = t[start..].char_indices().nth(SPAN_TEXT_CHARS) {
            t.truncate(start + i);
        }
    }

    /// Adds one span's text as an earlier version stored it.
    pub(crate) fn push_text(&mut self, text: &str) {
        self.begin();
        self.text.push_str(text);
    }

    /// Starts a span's text; returns where it starts.
    fn begin(&mut self) -> usize {
        if self.text.len() >= ROW_BYTES {
            self.cut();
        }
        if self.spans > 0 {
            self.text.push('\n');
            // Below ROW_BYTES plus one span's text, so it fits.
            let at = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
            self.bounds.extend_from_slice(&at.to_le_bytes());
        }
        self.spans += 1;
        self.text.len()
    }

    /// The rows, the one being filled last.
    pub(crate) fn finish(mut self) -> Vec<(String, Option<Vec<u8>>)> {
        if self.spans > 0 {
            self.cut();
        }
        self.done
    }

    fn cut(&mut self) {
        let bounds = std::mem::take(&mut self.bounds);
        self.done.push((
            std::mem::take(&mut self.text),
            (!bounds.is_empty()).then_some(bounds),
        ));
        self.spans = 0;
    }
}

/// Adds `cairn_span_like(text, bounds, pattern[, escape])` to a connection.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    for args in [3, 4] {
        conn.create_scalar_function(
            SPAN_LIKE,
            args,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            span_like_sql,
        )?;
    }
    Ok(())
}

fn span_like_sql(ctx: &mut Context<'_>) -> rusqlite::Result<bool> {
    let text = match ctx.get_raw(0) {
        ValueRef::Text(t) => t,
        _ => return Ok(false),
    };
    let bounds = match ctx.get_raw(1) {
        ValueRef::Blob(b) => b,
        _ => &[],
    };
    let pattern = match ctx.get_raw(2) {
        ValueRef::Text(p) => p,
        _ => return Ok(false),
    };
    let escape = match ctx.len() {
        4 => match ctx.get_raw(3) {
            ValueRef::Text(e) => {
                let e = String::from_utf8_lossy(e);
                let mut chars = e.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some(c),
                    _ => {
                        return Err(rusqlite::Error::UserFunctionError(
                            "ESCAPE expression must be a single character".into(),
                        ));
                    }
                }
            }
            _ => return Ok(false),
        },
        _ => None,
    };
    Ok(span_like(text, bounds, pattern, escape))
}

/// Whether one span's text in a row matches the LIKE `pattern`.
pub(crate) fn span_like(text: &[u8], bounds: &[u8], pattern: &[u8], escape: Option<char>) -> bool {
    let pattern = String::from_utf8_lossy(pattern);
    let Some(pattern) = Pattern::parse(&pattern, escape) else {
        return false;
    };
    let mut start = 0usize;
    let mut starts = bounds
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    loop {
        let next = starts.next();
        // A span's text ends at the line break before the next one starts.
        let end = next.map_or(text.len(), |n| n.saturating_sub(1));
        let segment = text.get(start..end.max(start)).unwrap_or(&[]);
        if pattern.matches(&String::from_utf8_lossy(segment)) {
            return true;
        }
        match next {
            Some(n) if n <= text.len() => start = n,
            _ => return false,
        }
    }
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `%`: any run of characters.
    Any,
    /// `_`: one character.
    One,
    Char(char),
}

/// A LIKE pattern as SQLite reads it: `%` and `_` wildcards, an optional escape character,
/// ASCII letters matched in any case, the text and the pattern ending at a NUL.
#[derive(Debug)]
struct Pattern(Vec<Tok>);

impl Pattern {
    /// None for a pattern that matches nothing (one ending in its escape character).
    fn parse(p: &str, escape: Option<char>) -> Option<Pattern> {
        let mut toks = Vec::with_capacity(p.len());
        let mut chars = p.chars().take_while(|&c| c != '\0');
        while let Some(c) = chars.next() {
            toks.push(if Some(c) == escape {
                Tok::Char(chars.next()?)
            } else if c == '%' {
                Tok::Any
            } else if c == '_' {
                Tok::One
            } else {
                Tok::Char(c)
            });
        }
        Some(Pattern(toks))
    }

    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().take_while(|&c| c != '\0').collect();
        let p = &self.0;
        let (mut pi, mut ti) = (0usize, 0usize);
        // Where the last `%` was, and where in the text it was tried up to.
        let mut back: Option<(usize, usize)> = None;
        while ti < text.len() {
            match p.get(pi) {
                Some(Tok::Any) => {
                    back = Some((pi, ti));
                    pi += 1;
                }
                Some(Tok::One) => {
                    pi += 1;
                    ti += 1;
                }
                Some(Tok::Char(c)) if c.eq_ignore_ascii_case(&text[ti]) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match back {
                    Some((bp, bt)) => {
                        back = Some((bp, bt + 1));
                        pi = bp + 1;
                        ti = bt + 1;
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == Tok::Any)
    }
}

/// Whether `pattern` is `%…%` around text with no wildcard and no line break: the trigram index
/// answers it alone, since it cannot match across two spans' texts.
pub(crate) fn needs_no_check(pattern: &str) -> bool {
    pattern
        .strip_prefix('%')
        .and_then(|p| p.strip_suffix('%'))
        .is_some_and(|mid| !mid.is_empty() && !mid.contains(['%', '_', '\n', '\0']))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matcher agrees with SQLite's own LIKE.
    #[test]
    fn like_matches_as_sqlite_does() {
        let conn = Connection::open_in_memory().unwrap();
        let texts = [
            "",
            "abc",
            "ABC",
            "aXbXc",
            "a%b",
            "a_b",
            "ab\\c",
            "héllo wörld",
            "HÉLLO",
            "retrieve\nmlflow.spanType: \"RETRIEVER\"",
            "x%",
            "%",
            "aaa",
            "mississippi",
            "a\0b",
        ];
        let patterns = [
            "%",
            "",
            "_",
            "abc",
            "ABC",
            "a%",
            "%c",
            "%b%",
            "a_c",
            "a__",
            "%X%",
            "a\\%b",
            "a\\_b",
            "a\\",
            "%\\%%",
            "h_llo%",
            "hé%",
            "HÉ%",
            "%iss%ip%",
            "m%i%s%s%",
            "%ss_p%",
            "_%_",
            "%\n%",
            "retrieve%",
            "%spanType: \"RET%",
            "a%b%c%",
            "%%%",
            "a\0z",
            "%pp_",
        ];
        for t in texts {
            for p in patterns {
                for esc in [None, Some('\\')] {
                    let want: bool = match esc {
                        None => conn.query_row("SELECT ?1 LIKE ?2", [t, p], |r| r.get(0)),
                        Some(_) => {
                            conn.query_row("SELECT ?1 LIKE ?2 ESCAPE '\\'", [t, p], |r| r.get(0))
                        }
                    }
                    .unwrap();
                    assert_eq!(
                        span_like(t.as_bytes(), &[], p.as_bytes(), esc),
                        want,
                        "{t:?} LIKE {p:?} escape {esc:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_matches_only_within_one_spans_text() {
        let mut rows = Rows::default();
        for name in ["alpha", "beta", "gamma"] {
            rows.push(&Span {
                name: name.into(),
                ..Span::default()
            });
        }
        let mut done = rows.finish();
        assert_eq!(done.len(), 1);
        let (text, bounds) = done.pop().unwrap();
        assert_eq!(text, "alpha\nbeta\ngamma");
        let bounds = bounds.unwrap();
        let like = |p: &str| span_like(text.as_bytes(), &bounds, p.as_bytes(), None);
        assert!(like("beta"));
        assert!(like("alpha"));
        assert!(like("gam%"));
        assert!(like("%et%"));
        assert!(!like("alpha%beta"), "across two spans");
        assert!(!like("%a_b%"), "across a span break");
        assert!(!like("alpha\nbeta"));
        assert!(!like("bet"));
    }

    #[test]
    fn only_plain_infixes_skip_the_check() {
        assert!(needs_no_check("%topic-42 %"));
        assert!(!needs_no_check("topic%"));
        assert!(!needs_no_check("%a%b%"));
        assert!(!needs_no_check("%a_b%"));
        assert!(!needs_no_check("%%"));
        assert!(!needs_no_check("%a\nb%"));
    }
}
