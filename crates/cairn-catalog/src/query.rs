//! MLflow's `search_runs` filter grammar, parsed and compiled to SQL over the projection tables.
//!
//! `metrics.acc > 0.9 and params.optimizer = 'adam' and tags.owner LIKE 'ali%'`: clauses joined
//! by AND; identifiers `metrics.*`, `params.*`, `tags.*`, `attributes.*`, `datasets.*` (with
//! MLflow's aliases and backtick- or double-quoted keys); comparators `= != > >= < <=`, `LIKE`,
//! `ILIKE`, `IN (…)`, `NOT IN (…)`, `IS NULL`, `IS NOT NULL`. Every value is bound as an SQL
//! parameter: no query text reaches SQL.

use std::fmt;

use rusqlite::types::Value as SqlValue;

/// A parse error with the column (1-based) where it happened and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

/// What a clause compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Metric(String),
    Param(String),
    Tag(String),
    /// One of [`ATTRIBUTES`], by its canonical name.
    Attribute(&'static str),
    /// `name`, `digest` or `context` of any of the run's datasets.
    Dataset(&'static str),
}

/// Canonical attribute names, and the names MLflow also accepts for them.
const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("run_id", &["run_id", "run_uuid", "id"]),
    ("run_name", &["run_name", "name"]),
    ("status", &["status"]),
    ("user_id", &["user_id", "owner"]),
    ("start_time", &["start_time", "created", "creation_time"]),
    ("end_time", &["end_time"]),
    ("artifact_uri", &["artifact_uri"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "GLOB",
            Op::ILike => "LIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
    List(Vec<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: Field,
    pub op: Op,
    pub value: Literal,
}

/// A parsed filter: clauses that must all hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Clause>,
}

/// A sort key of `order_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub field: Field,
    pub descending: bool,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Str(s) => write!(f, "string '{s}'"),
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Op(o) => write!(f, "'{o}'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::End => f.write_str("the end of the query"),
        }
    }
}

impl<'a> Lexer<'a> {
    fn err(&self, at: usize, message: String) -> QueryError {
        QueryError {
            column: self.src[..at.min(self.src.len())].chars().count() + 1,
            message,
        }
    }

    /// The next token and the byte offset where it starts.
    fn next(&mut self) -> Result<(Tok, usize), QueryError> {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = bytes.get(self.pos) else {
            return Ok((Tok::End, start));
        };
        let tok = match c {
            b'(' => {
                self.pos += 1;
                Tok::LParen
            }
            b')' => {
                self.pos += 1;
                Tok::RParen
            }
            b',' => {
                self.pos += 1;
                Tok::Comma
            }
            b'\'' | b'"' | b'`' => {
                let rest = &self.src[self.pos + 1..];
                let end = rest
                    .find(c as char)
                    .ok_or_else(|| self.err(start, format!("unterminated {} quote", c as char)))?;
                self.pos += end + 2;
                let text = rest[..end].to_owned();
                if c == b'\'' {
                    Tok::Str(text)
                } else {
                    Tok::Ident(text)
                }
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = self.src.get(self.pos..self.pos + 2).unwrap_or("");
                let op = match two {
                    "!=" => "!=",
                    ">=" => ">=",
                    "<=" => "<=",
                    "==" => "=",
                    "<>" => "!=",
                    _ => match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        _ => return Err(self.err(start, "unexpected '!', expected '!='".into())),
                    },
                };
                self.pos += if two.len() == 2 && ["!=", ">=", "<=", "==", "<>"].contains(&two) {
                    2
                } else {
                    1
                };
                Tok::Op(op)
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                let mut end = self.pos + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || matches!(bytes[end], b'.' | b'-' | b'+'))
                {
                    end += 1;
                }
                let text = &self.src[self.pos..end];
                let n = text
                    .parse::<f64>()
                    .map_err(|_| self.err(start, format!("'{text}' is not a number")))?;
                self.pos = end;
                Tok::Num(n)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = self.pos;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || matches!(bytes[end], b'_' | b'.' | b'-' | b'/'))
                {
                    end += 1;
                }
                // A quoted key after the dot: metrics.`my metric`, tags."mlflow.user".
                let mut text = self.src[self.pos..end].to_owned();
                if text.ends_with('.') && matches!(bytes.get(end), Some(b'`' | b'"')) {
                    let q = bytes[end] as char;
                    let rest = &self.src[end + 1..];
                    let close = rest
                        .find(q)
                        .ok_or_else(|| self.err(end, format!("unterminated {q} quote")))?;
                    text.push_str(&rest[..close]);
                    end += close + 2;
                }
                self.pos = end;
                Tok::Ident(text)
            }
            _ => {
                let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                return Err(self.err(start, format!("unexpected '{ch}'")));
            }
        };
        Ok((tok, start))
    }
}

fn field_of(ident: &str) -> Result<Field, String> {
    let (prefix, key) = ident.split_once('.').ok_or_else(|| {
        format!("'{ident}' is not a field: expected metrics.KEY, params.KEY, tags.KEY, attributes.NAME or datasets.NAME")
    })?;
    if key.is_empty() {
        return Err(format!("'{ident}' names no key"));
    }
    match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Ok(Field::Metric(key.to_owned())),
        "param" | "params" | "parameter" | "parameters" => Ok(Field::Param(key.to_owned())),
        "tag" | "tags" => Ok(Field::Tag(key.to_owned())),
        "attribute" | "attributes" | "attr" | "run" => ATTRIBUTES
            .iter()
            .find(|(_, names)| names.contains(&key.to_ascii_lowercase().as_str()))
            .map(|(canon, _)| Field::Attribute(canon))
            .ok_or_else(|| {
                format!(
                    "unknown attribute '{key}': expected one of {}",
                    ATTRIBUTES
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        "dataset" | "datasets" => match key.to_ascii_lowercase().as_str() {
            "name" => Ok(Field::Dataset("name")),
            "digest" => Ok(Field::Dataset("digest")),
            "context" => Ok(Field::Dataset("context")),
            _ => Err(format!(
                "unknown dataset field '{key}': expected name, digest or context"
            )),
        },
        _ => Err(format!(
            "unknown field type '{prefix}': expected metrics, params, tags, attributes or datasets"
        )),
    }
}

fn is_numeric(field: &Field) -> bool {
    matches!(
        field,
        Field::Metric(_) | Field::Attribute("start_time" | "end_time")
    )
}

/// Parses an MLflow filter string. An empty string is the filter that keeps every run.
pub fn parse_filter(src: &str) -> Result<Filter, QueryError> {
    let mut lx = Lexer { src, pos: 0 };
    let mut clauses = Vec::new();
    let (mut tok, mut at) = lx.next()?;
    if tok == Tok::End {
        return Ok(Filter::default());
    }
    loop {
        let field = match &tok {
            Tok::Ident(id) => field_of(id).map_err(|m| lx.err(at, m))?,
            other => {
                return Err(lx.err(
                    at,
                    format!("unexpected {other}, expected a field such as metrics.acc"),
                ));
            }
        };
        let (op_tok, op_at) = lx.next()?;
        let op = match &op_tok {
            Tok::Op("=") => Op::Eq,
            Tok::Op("!=") => Op::Ne,
            Tok::Op(">") => Op::Gt,
            Tok::Op(">=") => Op::Ge,
            Tok::Op("<") => Op::Lt,
            Tok::Op("<=") => Op::Le,
            Tok::Ident(w) if w.eq_ignore_ascii_case("like") => Op::Like,
            Tok::Ident(w) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Tok::Ident(w) if w.eq_ignore_ascii_case("in") => Op::In,
            Tok::Ident(w) if w.eq_ignore_ascii_case("not") => match lx.next()? {
                (Tok::Ident(w), _) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected IN after NOT"))),
            },
            Tok::Ident(w) if w.eq_ignore_ascii_case("is") => match lx.next()? {
                (Tok::Ident(w), _) if w.eq_ignore_ascii_case("null") => Op::IsNull,
                (Tok::Ident(w), _) if w.eq_ignore_ascii_case("not") => match lx.next()? {
                    (Tok::Ident(w), _) if w.eq_ignore_ascii_case("null") => Op::IsNotNull,
                    (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected NULL"))),
                },
                (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected NULL or NOT NULL"))),
            },
            other => return Err(lx.err(op_at, format!("unexpected {other}, expected a comparison (=, !=, >, >=, <, <=, LIKE, ILIKE, IN)"))),
        };
        let numeric = is_numeric(&field);
        if numeric && matches!(op, Op::Like | Op::ILike | Op::In | Op::NotIn) {
            return Err(lx.err(
                op_at,
                "LIKE, ILIKE and IN compare text; this field is a number".into(),
            ));
        }
        if !numeric
            && matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le)
            && !matches!(field, Field::Attribute(_))
        {
            return Err(lx.err(
                op_at,
                "only metrics and times compare with <, >, <=, >=".into(),
            ));
        }
        let value = match op {
            Op::IsNull | Op::IsNotNull => Literal::None,
            Op::In | Op::NotIn => {
                match lx.next()? {
                    (Tok::LParen, _) => {}
                    (t, a) => {
                        return Err(
                            lx.err(a, format!("unexpected {t}, expected '(' to open a list"))
                        );
                    }
                }
                let mut items = Vec::new();
                loop {
                    match lx.next()? {
                        (Tok::Str(s), _) => items.push(s),
                        (t, a) => {
                            return Err(
                                lx.err(a, format!("unexpected {t}, expected a quoted value"))
                            );
                        }
                    }
                    match lx.next()? {
                        (Tok::Comma, _) => continue,
                        (Tok::RParen, _) => break,
                        (t, a) => {
                            return Err(lx.err(a, format!("unexpected {t}, expected ',' or ')'")));
                        }
                    }
                }
                Literal::List(items)
            }
            _ => match lx.next()? {
                (Tok::Num(n), _) if numeric => Literal::Number(n),
                (Tok::Str(s), a) if numeric => match s.parse::<f64>() {
                    Ok(n) => Literal::Number(n),
                    Err(_) => return Err(lx.err(a, format!("'{s}' is not a number"))),
                },
                (Tok::Str(s), _) => Literal::Text(s),
                (Tok::Num(_), a) => return Err(lx.err(a, "expected a quoted string value".into())),
                (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected a value"))),
            },
        };
        clauses.push(Clause { field, op, value });
        match lx.next()? {
            (Tok::End, _) => break,
            (Tok::Ident(w), _) if w.eq_ignore_ascii_case("and") => {
                (tok, at) = lx.next()?;
            }
            (t, a) => {
                return Err(lx.err(
                    a,
                    format!("unexpected {t}, expected AND or the end of the query"),
                ));
            }
        }
    }
    Ok(Filter { clauses })
}

/// Parses one `order_by` entry: `metrics.acc DESC`, `attributes.start_time`, `params.lr ASC`.
pub fn parse_order_by(src: &str) -> Result<OrderBy, QueryError> {
    let mut lx = Lexer { src, pos: 0 };
    let field = match lx.next()? {
        (Tok::Ident(id), at) => field_of(&id).map_err(|m| lx.err(at, m))?,
        (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected a field to order by"))),
    };
    let descending = match lx.next()? {
        (Tok::End, _) => false,
        (Tok::Ident(w), _) if w.eq_ignore_ascii_case("desc") => true,
        (Tok::Ident(w), _) if w.eq_ignore_ascii_case("asc") => false,
        (t, a) => return Err(lx.err(a, format!("unexpected {t}, expected ASC or DESC"))),
    };
    match lx.next()? {
        (Tok::End, _) => Ok(OrderBy { field, descending }),
        (t, a) => Err(lx.err(a, format!("unexpected {t} after the sort direction"))),
    }
}

/// `LIKE` pattern (case-sensitive in MLflow) as a GLOB pattern.
fn like_to_glob(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// SQL for one field's value of run `r`, binding keys into `args`.
fn value_sql(field: &Field, args: &mut Vec<SqlValue>) -> String {
    let mut bind = |v: String| {
        args.push(v.into());
        format!("?{}", args.len())
    };
    match field {
        Field::Metric(k) => format!(
            "(SELECT last FROM run_metrics WHERE run = r.id AND key = {})",
            bind(k.clone())
        ),
        Field::Param(k) => format!(
            "(SELECT value FROM params WHERE run = r.id AND key = {})",
            bind(k.clone())
        ),
        Field::Tag(k) => format!(
            "(SELECT value FROM tags WHERE run = r.id AND key = {})",
            bind(k.clone())
        ),
        Field::Attribute("run_id") => "r.id".into(),
        Field::Attribute("run_name") => "r.name".into(),
        Field::Attribute("status") => "upper(r.status)".into(),
        Field::Attribute("user_id") => "r.owner".into(),
        Field::Attribute("start_time") => "r.start_ms".into(),
        Field::Attribute("end_time") => "r.end_ms".into(),
        Field::Attribute(_) => "NULL".into(),
        Field::Dataset(_) => "NULL".into(),
    }
}

fn bind_literal(v: &Literal, op: Op, args: &mut Vec<SqlValue>) -> String {
    let mut one = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    match v {
        Literal::Number(n) => one((*n).into()),
        Literal::Text(s) if op == Op::Like => one(like_to_glob(s).into()),
        Literal::Text(s) => one(s.clone().into()),
        Literal::List(items) => format!(
            "({})",
            items
                .iter()
                .map(|s| one(s.clone().into()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Literal::None => String::new(),
    }
}

/// The filter as an SQL condition on `runs r`, with its parameters appended to `args`.
pub(crate) fn filter_sql(filter: &Filter, args: &mut Vec<SqlValue>) -> String {
    let mut conds = Vec::new();
    for c in &filter.clauses {
        if let Field::Dataset(part) = c.field {
            // Datasets live in the run's lineage; `context` is the name the run gave the dataset.
            let path = match part {
                "digest" => "json_extract(d.value, '$.digest')",
                "name" => "coalesce(json_extract(d.value, '$.name'), d.key)",
                "context" => "coalesce(json_extract(d.value, '$.context'), d.key)",
                _ => "NULL",
            };
            let op = c.op;
            let rhs = bind_literal(&c.value, op, args);
            let cmp = format!("{path} {} {rhs}", op.sql());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM json_each(r.json, '$.lineage.datasets') d WHERE {cmp})"
            ));
            continue;
        }
        let lhs = value_sql(&c.field, args);
        let mut value = c.value.clone();
        if c.field == Field::Attribute("status") {
            if let Literal::Text(s) = &value {
                value = Literal::Text(s.to_ascii_uppercase());
            }
            if let Literal::List(items) = &value {
                value = Literal::List(items.iter().map(|s| s.to_ascii_uppercase()).collect());
            }
        }
        let rhs = bind_literal(&value, c.op, args);
        // `!=` keeps runs that lack the field out, as MLflow does.
        conds.push(format!("{lhs} {} {rhs}", c.op.sql()));
    }
    if conds.is_empty() {
        "1".into()
    } else {
        conds.join(" AND ")
    }
}

/// The ORDER BY expression list for `order`, ending with the tie-breakers that make paging stable.
pub(crate) fn order_sql(order: &[OrderBy], args: &mut Vec<SqlValue>) -> String {
    let mut parts = Vec::new();
    for o in order {
        let expr = value_sql(&o.field, args);
        let dir = if o.descending { "DESC" } else { "ASC" };
        // Runs without the value sort last either way.
        parts.push(format!("({expr}) IS NULL, ({expr}) {dir}"));
    }
    if order.is_empty() {
        parts.push("r.start_ms DESC".into());
    }
    parts.push("r.id ASC".into());
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_filters() {
        let f = parse_filter(
            "metrics.acc > 0.9 and params.optimizer = 'adam' AND tags.owner LIKE 'ali%'",
        )
        .unwrap();
        assert_eq!(f.clauses.len(), 3);
        assert_eq!(
            f.clauses[0],
            Clause {
                field: Field::Metric("acc".into()),
                op: Op::Gt,
                value: Literal::Number(0.9)
            }
        );
        assert_eq!(f.clauses[2].op, Op::Like);
        let f = parse_filter(
            "attributes.status IN ('FINISHED', 'FAILED') and tags.`mlflow.user` = 'bob'",
        )
        .unwrap();
        assert_eq!(
            f.clauses[0].value,
            Literal::List(vec!["FINISHED".into(), "FAILED".into()])
        );
        assert_eq!(f.clauses[1].field, Field::Tag("mlflow.user".into()));
        let f = parse_filter("tags.\"mlflow.runName\" != 'x' and datasets.digest = 'abc' and attribute.run_name ILIKE '%sweep%'").unwrap();
        assert_eq!(f.clauses[0].field, Field::Tag("mlflow.runName".into()));
        assert_eq!(f.clauses[1].field, Field::Dataset("digest"));
        assert_eq!(parse_filter("  ").unwrap(), Filter::default());
        assert_eq!(
            parse_filter("metrics.loss <= -1e-3").unwrap().clauses[0].value,
            Literal::Number(-1e-3)
        );
        assert_eq!(
            parse_filter("tags.x IS NOT NULL").unwrap().clauses[0].op,
            Op::IsNotNull
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            (
                "metrics.acc > ",
                "unexpected the end of the query, expected a value at column 15",
            ),
            (
                "metrics.acc > 0.9 or params.x = 'y'",
                "unexpected 'or', expected AND or the end of the query at column 19",
            ),
            (
                "params.lr > '0.1'",
                "only metrics and times compare with <, >, <=, >= at column 11",
            ),
            (
                "foo.bar = 1",
                "unknown field type 'foo': expected metrics, params, tags, attributes or datasets at column 1",
            ),
            (
                "attributes.colour = 'red'",
                "unknown attribute 'colour': expected one of run_id, run_name, status, user_id, start_time, end_time, artifact_uri at column 1",
            ),
            (
                "params.x = 'unterminated",
                "unterminated ' quote at column 12",
            ),
            ("metrics.acc ~ 1", "unexpected '~' at column 13"),
            (
                "params.x = 3",
                "expected a quoted string value at column 12",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(parse_filter(q).unwrap_err().to_string(), want, "{q}");
        }
    }

    #[test]
    fn order_by_parses_direction() {
        assert_eq!(
            parse_order_by("metrics.acc DESC").unwrap(),
            OrderBy {
                field: Field::Metric("acc".into()),
                descending: true
            }
        );
        assert!(!parse_order_by("attributes.start_time").unwrap().descending);
        assert!(parse_order_by("metrics.acc sideways").is_err());
    }

    #[test]
    fn like_patterns_become_case_sensitive_globs() {
        assert_eq!(like_to_glob("ali%_x*"), "ali*?x[*]");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_the_parser(s in "\\PC{0,60}") {
            // Whatever the text, the parser answers (no panic), and answers the same way twice.
            proptest::prop_assert_eq!(parse_filter(&s), parse_filter(&s));
            proptest::prop_assert_eq!(parse_order_by(&s), parse_order_by(&s));
        }
    }
}
