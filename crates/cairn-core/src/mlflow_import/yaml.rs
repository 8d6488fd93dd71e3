//! The YAML of MLflow's file store (`meta.yaml`), read without a YAML library: what PyYAML's
//! `safe_dump` writes for a flat mapping — `key: value` lines whose values are plain,
//! 'single-quoted' or "double-quoted" scalars (folded over indented lines when long), `null`,
//! `[]` / `{}`, or a nested mapping of the same (a run's `tags`, an input's `tags`, a model's
//! `aliases`). Anything else (anchors, block scalars, lists of items, flow collections with
//! content) is refused with the line it is on. Bounded: [`MAX_BYTES`] of text, [`MAX_DEPTH`]
//! levels of nesting.

use std::fmt;

/// The largest `meta.yaml` read (a dataset's schema and profile can be long; MLflow's own
/// limits on them sum to ~17 MB).
pub const MAX_BYTES: usize = 32 << 20;
/// Mappings nested deeper than this are refused.
pub const MAX_DEPTH: usize = 4;

/// A value of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The text of a scalar; `None` for null and mappings.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// A document: its top-level mapping, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Doc(pub Vec<(String, Value)>);

impl Doc {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The text of `key`, `None` when absent or null.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::text)
    }

    /// The `key: value` pairs of a nested mapping (`tags`), scalars only.
    pub fn pairs(&self, key: &str) -> Vec<(String, String)> {
        match self.get(key) {
            Some(Value::Map(m)) => m
                .iter()
                .filter_map(|(k, v)| v.text().map(|t| (k.clone(), t.to_owned())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What is wrong, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Error {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, Error> {
    Err(Error {
        line: line + 1,
        message: message.into(),
    })
}

/// Reads a document.
pub fn parse(text: &str) -> Result<Doc, Error> {
    if text.len() > MAX_BYTES {
        return err(0, format!("longer than {MAX_BYTES} bytes"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let map = mapping(&lines, &mut i, 0, 0)?;
    skip_blank(&lines, &mut i);
    if i < lines.len() {
        return err(i, "indented less than the mapping it follows");
    }
    Ok(Doc(map))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn skip_blank(lines: &[&str], i: &mut usize) {
    while *i < lines.len() && is_blank(lines[*i]) {
        *i += 1;
    }
}

/// The entries at `indent` from line `i` on.
fn mapping(
    lines: &[&str],
    i: &mut usize,
    indent: usize,
    depth: usize,
) -> Result<Vec<(String, Value)>, Error> {
    if depth > MAX_DEPTH {
        return err(*i, format!("mappings nested deeper than {MAX_DEPTH}"));
    }
    let mut out: Vec<(String, Value)> = Vec::new();
    loop {
        skip_blank(lines, i);
        let Some(&line) = lines.get(*i) else { break };
        let ind = indent_of(line);
        if ind < indent {
            break;
        }
        if ind > indent {
            return err(*i, "unexpected indentation");
        }
        if line[ind..].starts_with('\t') {
            return err(*i, "a tab in the indentation");
        }
        let at = *i;
        let (key, rest) = key_of(&line[ind..]).ok_or_else(|| Error {
            line: at + 1,
            message: "not a `key: value` line".into(),
        })?;
        let key = scalar(&[key], at)?.ok_or_else(|| Error {
            line: at + 1,
            message: "a key that is null".into(),
        })?;
        if out.iter().any(|(k, _)| *k == key) {
            return err(at, format!("the key {key:?} twice"));
        }
        *i += 1;
        let rest = rest.trim();
        let value = if rest.is_empty() || rest.starts_with('#') {
            // A nested mapping on the lines below, or null.
            let mut j = *i;
            skip_blank(lines, &mut j);
            match lines.get(j) {
                Some(next) if indent_of(next) > ind => {
                    *i = j;
                    Value::Map(mapping(lines, i, indent_of(next), depth + 1)?)
                }
                _ => Value::Null,
            }
        } else if rest == "[]" || rest == "{}" {
            Value::Map(Vec::new())
        } else {
            // The scalar and its continuation lines (more indented than the key).
            let mut parts = vec![rest];
            while let Some(&next) = lines.get(*i) {
                if !next.trim().is_empty() && indent_of(next) <= ind {
                    break;
                }
                parts.push(next.trim());
                *i += 1;
            }
            while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            match scalar(&parts, at)? {
                Some(t) => Value::Text(t),
                None => Value::Null,
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Splits `key: rest` (the key possibly quoted); `None` when the line has no `: `.
fn key_of(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let end = match b.first()? {
        q @ (b'\'' | b'"') => {
            // The closing quote (a doubled '' or an escaped \" does not close).
            let mut k = 1;
            loop {
                let c = *b.get(k)?;
                if c == b'\\' && *q == b'"' {
                    k += 2;
                    continue;
                }
                if c == *q {
                    if *q == b'\'' && b.get(k + 1) == Some(&b'\'') {
                        k += 2;
                        continue;
                    }
                    break k + 1;
                }
                k += 1;
            }
        }
        _ => line
            .find(": ")
            .or_else(|| line.ends_with(':').then(|| line.len() - 1))?,
    };
    let rest = line.get(end..)?;
    let rest = rest.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((&line[..end], rest))
}

/// A scalar written over `parts` (its first line and continuation lines): `None` for null.
fn scalar(parts: &[&str], line: usize) -> Result<Option<String>, Error> {
    let first = parts[0];
    match first.as_bytes().first() {
        Some(b'\'') => quoted(parts, line, '\''),
        Some(b'"') => quoted(parts, line, '"'),
        Some(b'&' | b'*' | b'!' | b'|' | b'>' | b'[' | b'{' | b'-' | b'%' | b'@' | b'`')
            if first != "-" && !first.starts_with("-.") && !is_number(first) =>
        {
            err(
                line,
                format!("a value YAML's MLflow files never hold: {first:?}"),
            )
        }
        _ => {
            if parts[1..]
                .iter()
                .any(|p| p.contains(": ") || p.ends_with(':'))
            {
                return err(
                    line,
                    "a mapping inside a plain value (unexpected indentation)",
                );
            }
            let text = fold(parts, false);
            // A comment ends a plain scalar.
            let text = match text.find(" #") {
                Some(k) => text[..k].trim_end().to_owned(),
                None => text,
            };
            if matches!(text.as_str(), "null" | "~" | "Null" | "NULL" | "") {
                Ok(None)
            } else {
                Ok(Some(text))
            }
        }
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// Lines folded as YAML folds flow scalars: a line break is a space, an empty line a newline.
/// In a double-quoted scalar a line ending in an escaping `\` joins with nothing.
fn fold(parts: &[&str], double: bool) -> String {
    let mut out = String::new();
    let mut newline = false;
    for (n, p) in parts.iter().enumerate() {
        if n > 0 {
            if p.is_empty() {
                out.push('\n');
                newline = true;
                continue;
            }
            let escaped = double && out.ends_with('\\') && {
                let run = out.len() - out.trim_end_matches('\\').len();
                run % 2 == 1
            };
            if escaped {
                out.pop();
            } else if !newline {
                out.push(' ');
            }
        }
        newline = false;
        out.push_str(p);
    }
    out
}

fn quoted(parts: &[&str], line: usize, q: char) -> Result<Option<String>, Error> {
    let text = fold(parts, q == '"');
    let body = &text[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((k, c)) = chars.next() {
        if c == q {
            if q == '\'' && body[k + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            let after = body[k + 1..].trim();
            if !(after.is_empty() || after.starts_with('#')) {
                return err(line, format!("text after a quoted value: {after:?}"));
            }
            return Ok(Some(out));
        }
        if c == '\\' && q == '"' {
            let Some((_, e)) = chars.next() else { break };
            let code = |chars: &mut std::str::CharIndices<'_>, n: usize| -> Result<char, Error> {
                let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == n)
                    .and_then(char::from_u32)
                    .ok_or_else(|| Error {
                        line: line + 1,
                        message: format!("a bad escape \\{e}{hex}"),
                    })
            };
            out.push(match e {
                'n' => '\n',
                't' | '\t' => '\t',
                'r' => '\r',
                '0' => '\0',
                'a' => '\x07',
                'b' => '\x08',
                'e' => '\x1b',
                'f' => '\x0c',
                'v' => '\x0b',
                ' ' => ' ',
                '"' => '"',
                '/' => '/',
                '\\' => '\\',
                'N' => '\u{85}',
                '_' => '\u{a0}',
                'L' => '\u{2028}',
                'P' => '\u{2029}',
                'x' => code(&mut chars, 2)?,
                'u' => code(&mut chars, 4)?,
                'U' => code(&mut chars, 8)?,
                other => return err(line, format!("a bad escape \\{other}")),
            });
            continue;
        }
        out.push(c);
    }
    err(line, format!("a {q}quoted value that does not end"))
}

/// Writes `doc` so that [`parse`] reads it back equal: every key and text double-quoted (for
/// tests and the fuzz target's round trip).
pub fn emit(doc: &Doc) -> String {
    fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if (0x80..0xa0).contains(&(c as u32)) || c == '\u{2028}' || c == '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    fn map(entries: &[(String, Value)], indent: usize, out: &mut String) {
        for (k, v) in entries {
            out.push_str(&" ".repeat(indent));
            out.push_str(&quote(k));
            out.push(':');
            match v {
                Value::Null => out.push_str(" null\n"),
                Value::Text(t) => {
                    out.push(' ');
                    out.push_str(&quote(t));
                    out.push('\n');
                }
                Value::Map(m) if m.is_empty() => out.push_str(" {}\n"),
                Value::Map(m) => {
                    out.push('\n');
                    map(m, indent + 2, out);
                }
            }
        }
    }
    let mut out = String::new();
    map(&doc.0, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn mlflows_run_meta_reads() {
        let doc = parse(
            "artifact_uri: file:///tmp/a/545f/artifacts\nend_time: 1700000230000\n\
             entry_point_name: ''\nexperiment_id: '4011'\nrun_name: resnet18\nstatus: 3\n\
             tags: []\nuser_id: unknown\nlast: null\n",
        )
        .unwrap();
        assert_eq!(
            doc.text("artifact_uri"),
            Some("file:///tmp/a/545f/artifacts")
        );
        assert_eq!(doc.text("entry_point_name"), Some(""));
        assert_eq!(doc.text("experiment_id"), Some("4011"));
        assert_eq!(doc.text("status"), Some("3"));
        assert_eq!(doc.get("tags"), Some(&Value::Map(vec![])));
        assert_eq!(doc.get("last"), Some(&Value::Null));
    }

    #[test]
    fn folded_quoted_values_and_nested_maps_read() {
        let doc = parse(
            "schema: '{\"mlflow_colspec\": [{\"type\": \"double\"}, {\"type\":\n  \"long\", \
             \"name\": \"y\"}]}'\nsource_type: s3\ntags:\n  mlflow.data.context: training\n  \
             other: 'it''s'\nd: \"a\\tb\\\n  c\\u00e9\"\n",
        )
        .unwrap();
        assert_eq!(
            doc.text("schema"),
            Some(
                "{\"mlflow_colspec\": [{\"type\": \"double\"}, {\"type\": \"long\", \"name\": \"y\"}]}"
            )
        );
        assert_eq!(
            doc.pairs("tags"),
            [
                ("mlflow.data.context".to_owned(), "training".to_owned()),
                ("other".to_owned(), "it's".to_owned())
            ]
        );
        assert_eq!(doc.get("d"), Some(&t("a\tbc\u{e9}")));
    }

    #[test]
    fn what_is_not_mlflows_yaml_is_refused_with_its_line() {
        for (text, line) in [
            ("a: 1\n  b: 2\n", 1),
            ("a:\n  b: 1\n c: 2\n", 3),
            ("a: 1\nno colon here\n", 2),
            ("a: 'open\n", 1),
            ("a: &anchor x\n", 1),
            ("a: 1\na: 2\n", 2),
            ("a: \"bad \\q escape\"\n", 1),
            ("a: 'x' y\n", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        let deep: String = (0..10)
            .map(|d| format!("{}k{d}:\n", "  ".repeat(d)))
            .collect();
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn what_emit_writes_reads_back() {
        let doc = Doc(vec![
            ("a: b".into(), t("x\n\"y\"\\ \u{1} #z")),
            ("n".into(), Value::Null),
            ("m".into(), Value::Map(vec![("k".into(), t("'v'"))])),
            ("e".into(), Value::Map(vec![])),
        ]);
        assert_eq!(parse(&emit(&doc)).unwrap(), doc);
    }
}
