//! MLflow's trace search grammar: `clause AND clause …`, each clause `entity.key op value`, and
//! its compilation to SQL over the index.
//!
//! Entities, as MLflow's `SearchTraceUtils` names them: `trace.`/`attributes.` (`request_id`,
//! `timestamp_ms`, `execution_time_ms`, `end_time_ms`, `status`, `client_request_id`, `name`,
//! `run_id`, `text`), `tags.`, `metadata.` (or `request_metadata.`), `span.` (`name`, `type`,
//! `status`, `content`), `feedback.<name>` and `expectation.<name>`. A bare key is an
//! attribute. Keys may be quoted with backticks (`` tags.`a.b` ``); values are quoted strings,
//! numbers, or parenthesised lists for `IN`.
//!
//! What differs from MLflow: `RLIKE` is refused (SQLite has no regular expressions here), and
//! `name` falls back to the root span's name for traces without an `mlflow.traceName` tag (a
//! plain OpenTelemetry trace is found by its root span's name). Every refusal names the part
//! of the filter that was wrong.

use rusqlite::types::Value as Sql;

use crate::error::Error;
use crate::span_text;

/// The longest filter accepted.
pub const MAX_FILTER: usize = 64 << 10;
/// The most clauses one filter may hold.
pub const MAX_CLAUSES: usize = 256;
/// The most values of one `IN` list.
pub const MAX_IN_VALUES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entity {
    Attr(String),
    Tag(String),
    Meta(String),
    Span(String),
    Feedback(String),
    Expectation(String),
    /// `assessment.name`, `assessment.type`: only in trace metric filters.
    Assessment(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    RLike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::RLike => "RLIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }

    /// The SQL comparison for a scalar right-hand side (SQLite's LIKE ignores ASCII case, as
    /// MLflow's own server on SQLite does for both LIKE and ILIKE).
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like | Op::ILike | Op::RLike => "LIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
    List(Vec<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    pub(crate) entity: Entity,
    pub(crate) op: Op,
    pub(crate) value: Lit,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Dotted segments (backticked ones unquoted).
    Ident(Vec<String>),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn err(filter: &str, reason: impl Into<String>) -> Error {
    Error::Filter {
        filter: filter.chars().take(200).collect(),
        reason: reason.into(),
    }
}

fn tokenize(f: &str) -> Result<Vec<Tok>, Error> {
    let c: Vec<char> = f.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        match ch {
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' | '"' => {
                let q = ch;
                let mut s = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => {
                            return Err(err(f, format!("a string opened with {q} is not closed")));
                        }
                        Some(&x) if x == q => {
                            // A doubled quote is the quote itself.
                            if c.get(i + 1) == Some(&q) {
                                s.push(q);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&x) => {
                            s.push(x);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            '!' if c.get(i + 1) == Some(&'=') => {
                out.push(Tok::Op("!="));
                i += 2;
            }
            '<' if c.get(i + 1) == Some(&'>') => {
                out.push(Tok::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let eq = c.get(i + 1) == Some(&'=');
                out.push(Tok::Op(match (ch, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            '-' | '0'..='9' | '.'
                if ch != '.' || c.get(i + 1).is_some_and(char::is_ascii_digit) =>
            {
                let start = i;
                i += 1;
                while i < c.len()
                    && (c[i].is_ascii_digit()
                        || c[i] == '.'
                        || c[i] == 'e'
                        || c[i] == 'E'
                        || ((c[i] == '-' || c[i] == '+') && matches!(c[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                out.push(Tok::Num(c[start..i].iter().collect()));
            }
            '`' => {
                let (segs, next) = ident(f, &c, i)?;
                out.push(Tok::Ident(segs));
                i = next;
            }
            x if x.is_alphabetic() || x == '_' => {
                let (segs, next) = ident(f, &c, i)?;
                out.push(Tok::Ident(segs));
                i = next;
            }
            other => {
                return Err(err(
                    f,
                    format!("unexpected character '{other}' at {}", i + 1),
                ));
            }
        }
    }
    Ok(out)
}

/// Dotted segments from `i`: words (letters, digits, `_`, `-`) or backticked text.
fn ident(f: &str, c: &[char], mut i: usize) -> Result<(Vec<String>, usize), Error> {
    let mut segs = Vec::new();
    loop {
        if c.get(i) == Some(&'`') {
            let start = i + 1;
            let end = c[start..]
                .iter()
                .position(|&x| x == '`')
                .map(|p| start + p)
                .ok_or_else(|| err(f, "a key opened with ` is not closed"))?;
            segs.push(c[start..end].iter().collect());
            i = end + 1;
        } else {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '-') {
                i += 1;
            }
            if i == start {
                return Err(err(f, format!("a key is missing at {}", i + 1)));
            }
            segs.push(c[start..i].iter().collect());
        }
        if c.get(i) == Some(&'.') {
            i += 1;
        } else {
            return Ok((segs, i));
        }
    }
}

/// Parses an MLflow trace search filter. An empty or blank filter is no clause.
pub(crate) fn parse(filter: &str) -> Result<Vec<Clause>, Error> {
    let clauses = parse_clauses(filter)?;
    for c in &clauses {
        check(filter, c)?;
    }
    Ok(clauses)
}

/// Parses clauses without checking which keys and comparisons a search allows (trace metric
/// filters check their own).
pub(crate) fn parse_clauses(filter: &str) -> Result<Vec<Clause>, Error> {
    if filter.len() > MAX_FILTER {
        return Err(err(
            filter,
            format!(
                "the filter has {} bytes (at most {MAX_FILTER})",
                filter.len()
            ),
        ));
    }
    let toks = tokenize(filter)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !out.is_empty() {
            match &toks[i] {
                Tok::Ident(s) if s.len() == 1 && s[0].eq_ignore_ascii_case("and") => i += 1,
                Tok::Ident(s) if s.len() == 1 && s[0].eq_ignore_ascii_case("or") => {
                    return Err(err(
                        filter,
                        "OR is not supported: clauses are joined with AND",
                    ));
                }
                other => {
                    return Err(err(
                        filter,
                        format!("expected AND between clauses, found {}", show(other)),
                    ));
                }
            }
        }
        let Some(Tok::Ident(segs)) = toks.get(i) else {
            return Err(err(
                filter,
                format!(
                    "expected a key such as trace.status or tags.name, found {}",
                    toks.get(i).map_or("the end".to_owned(), show)
                ),
            ));
        };
        let entity = entity(filter, segs)?;
        i += 1;
        let (op, next) = operator(filter, &toks, i)?;
        i = next;
        let value = match op {
            Op::IsNull | Op::IsNotNull => Lit::None,
            Op::In | Op::NotIn => {
                if toks.get(i) != Some(&Tok::LParen) {
                    return Err(err(
                        filter,
                        format!("{} takes a list in parentheses", op.text()),
                    ));
                }
                i += 1;
                let mut vals = Vec::new();
                loop {
                    match toks.get(i) {
                        Some(Tok::Str(s)) => vals.push(s.clone()),
                        Some(Tok::Num(n)) => vals.push(n.clone()),
                        other => {
                            return Err(err(
                                filter,
                                format!(
                                    "expected a value in the {} list, found {}",
                                    op.text(),
                                    other.map_or("the end".to_owned(), show)
                                ),
                            ));
                        }
                    }
                    i += 1;
                    match toks.get(i) {
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::RParen) => {
                            i += 1;
                            break;
                        }
                        other => {
                            return Err(err(
                                filter,
                                format!(
                                    "expected ',' or ')' in the {} list, found {}",
                                    op.text(),
                                    other.map_or("the end".to_owned(), show)
                                ),
                            ));
                        }
                    }
                    if vals.len() > MAX_IN_VALUES {
                        return Err(err(
                            filter,
                            format!("an IN list holds at most {MAX_IN_VALUES} values"),
                        ));
                    }
                }
                Lit::List(vals)
            }
            _ => {
                let v = match toks.get(i) {
                    Some(Tok::Str(s)) => Lit::Str(s.clone()),
                    Some(Tok::Num(n)) => match n.parse::<i64>() {
                        Ok(v) => Lit::Int(v),
                        Err(_) => Lit::Float(
                            n.parse::<f64>()
                                .map_err(|_| err(filter, format!("'{n}' is not a number")))?,
                        ),
                    },
                    other => {
                        return Err(err(
                            filter,
                            format!(
                                "expected a quoted value or a number after {}, found {}",
                                op.text(),
                                other.map_or("the end".to_owned(), show)
                            ),
                        ));
                    }
                };
                i += 1;
                v
            }
        };
        out.push(Clause { entity, op, value });
        if out.len() > MAX_CLAUSES {
            return Err(err(
                filter,
                format!("a filter holds at most {MAX_CLAUSES} clauses"),
            ));
        }
    }
    Ok(out)
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{}'", s.join(".")),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.clone(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

fn entity(filter: &str, segs: &[String]) -> Result<Entity, Error> {
    if segs.len() == 1 {
        return Ok(Entity::Attr(segs[0].clone()));
    }
    let rest = segs[1..].join(".");
    Ok(match segs[0].to_ascii_lowercase().as_str() {
        "trace" | "attribute" | "attributes" => Entity::Attr(rest),
        "tag" | "tags" => Entity::Tag(rest),
        "metadata" | "request_metadata" => Entity::Meta(rest),
        "span" => Entity::Span(rest),
        "feedback" => Entity::Feedback(rest),
        "expectation" => Entity::Expectation(rest),
        "assessment" => Entity::Assessment(rest),
        other => {
            return Err(err(
                filter,
                format!(
                    "'{other}' is not an entity of a trace filter (expected trace, tags, metadata, span, feedback or expectation)"
                ),
            ));
        }
    })
}

fn operator(filter: &str, toks: &[Tok], i: usize) -> Result<(Op, usize), Error> {
    let word = |j: usize| match toks.get(j) {
        Some(Tok::Ident(s)) if s.len() == 1 => Some(s[0].to_ascii_uppercase()),
        _ => None,
    };
    Ok(match toks.get(i) {
        Some(Tok::Op(o)) => (
            match *o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            i + 1,
        ),
        _ => match word(i).as_deref() {
            Some("LIKE") => (Op::Like, i + 1),
            Some("ILIKE") => (Op::ILike, i + 1),
            Some("RLIKE") => (Op::RLike, i + 1),
            Some("IN") => (Op::In, i + 1),
            Some("NOT") if word(i + 1).as_deref() == Some("IN") => (Op::NotIn, i + 2),
            Some("IS") if word(i + 1).as_deref() == Some("NULL") => (Op::IsNull, i + 2),
            Some("IS")
                if word(i + 1).as_deref() == Some("NOT")
                    && word(i + 2).as_deref() == Some("NULL") =>
            {
                (Op::IsNotNull, i + 3)
            }
            _ => {
                return Err(err(
                    filter,
                    format!(
                        "expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL), found {}",
                        toks.get(i).map_or("the end".to_owned(), show)
                    ),
                ));
            }
        },
    })
}

const ATTRS: &[&str] = &[
    "request_id",
    "timestamp",
    "timestamp_ms",
    "execution_time",
    "execution_time_ms",
    "end_time",
    "end_time_ms",
    "status",
    "client_request_id",
    "name",
    "run_id",
    "text",
];

fn numeric_attr(k: &str) -> bool {
    matches!(
        k,
        "timestamp"
            | "timestamp_ms"
            | "execution_time"
            | "execution_time_ms"
            | "end_time"
            | "end_time_ms"
    )
}

fn check(filter: &str, c: &Clause) -> Result<(), Error> {
    use Op::*;
    let refuse = |what: &str, allowed: &str| {
        err(
            filter,
            format!(
                "{} is not a comparison for {what} (use {allowed})",
                c.op.text()
            ),
        )
    };
    if c.op == RLike {
        return Err(err(filter, "RLIKE is not supported: use LIKE with % and _"));
    }
    match &c.entity {
        Entity::Attr(k) => {
            let k = k.as_str();
            if k == "prompt" {
                return Err(err(filter, "filtering by linked prompts is not supported"));
            }
            if !ATTRS.contains(&k) {
                return Err(err(
                    filter,
                    format!(
                        "'{k}' is not a trace attribute (expected one of {})",
                        ATTRS.join(", ")
                    ),
                ));
            }
            if numeric_attr(k) {
                if !matches!(c.op, Eq | Ne | Lt | Le | Gt | Ge) {
                    return Err(refuse(k, "=, !=, <, <=, > or >="));
                }
                if !matches!(c.value, Lit::Int(_) | Lit::Float(_)) {
                    return Err(err(filter, format!("{k} is compared with a number")));
                }
            } else if k == "text" {
                if !matches!(c.op, Like | ILike) {
                    return Err(refuse(k, "LIKE or ILIKE"));
                }
            } else {
                if !matches!(c.op, Eq | Ne | Like | ILike | In | NotIn) {
                    return Err(refuse(k, "=, !=, LIKE, ILIKE, IN or NOT IN"));
                }
                // MLflow keeps a trace's name as a tag, and tags take no IN.
                if matches!(c.op, In | NotIn)
                    && !matches!(k, "status" | "request_id" | "run_id" | "client_request_id")
                {
                    return Err(refuse(k, "=, !=, LIKE or ILIKE"));
                }
                if matches!(c.value, Lit::Int(_) | Lit::Float(_)) {
                    return Err(err(filter, format!("{k} is compared with a quoted string")));
                }
            }
        }
        Entity::Tag(k) | Entity::Meta(k) => {
            if k.is_empty() {
                return Err(err(filter, "a tag or metadata key is missing"));
            }
            if !matches!(c.op, Eq | Ne | Like | ILike | IsNull | IsNotNull) {
                return Err(refuse(
                    "tags and metadata",
                    "=, !=, LIKE, ILIKE, IS NULL or IS NOT NULL",
                ));
            }
            if matches!(c.value, Lit::Int(_) | Lit::Float(_)) {
                return Err(err(
                    filter,
                    format!("'{k}' is compared with a quoted string"),
                ));
            }
        }
        Entity::Span(k) => match k.as_str() {
            "name" | "type" | "status" => {
                if !matches!(c.op, Eq | Ne | Like | ILike | In | NotIn) {
                    return Err(refuse(
                        &format!("span.{k}"),
                        "=, !=, LIKE, ILIKE, IN or NOT IN",
                    ));
                }
            }
            "content" => {
                if !matches!(c.op, Like | ILike) {
                    return Err(refuse("span.content", "LIKE or ILIKE"));
                }
            }
            other => {
                return Err(err(
                    filter,
                    format!(
                        "'span.{other}' is not searchable (expected span.name, span.type, span.status or span.content)"
                    ),
                ));
            }
        },
        Entity::Assessment(_) => {
            return Err(err(
                filter,
                "assessment.* keys filter trace metrics, not traces: use feedback.<name> or expectation.<name>",
            ));
        }
        Entity::Feedback(k) | Entity::Expectation(k) => {
            if k.is_empty() {
                return Err(err(filter, "an assessment name is missing"));
            }
            if matches!(c.op, In | NotIn) {
                return Err(refuse(
                    "assessments",
                    "=, !=, <, <=, >, >=, LIKE, ILIKE, IS NULL or IS NOT NULL",
                ));
            }
        }
    }
    Ok(())
}

fn lit(v: &Lit) -> Sql {
    match v {
        Lit::Str(s) => Sql::Text(s.clone()),
        Lit::Int(i) => Sql::Integer(*i),
        Lit::Float(f) => Sql::Real(*f),
        Lit::List(_) | Lit::None => Sql::Null,
    }
}

/// `op ?` or `op (?, ?, …)`, pushing the values.
pub(crate) fn rhs(c: &Clause, params: &mut Vec<Sql>) -> String {
    match (&c.value, c.op) {
        (_, Op::IsNull | Op::IsNotNull) => c.op.sql().to_owned(),
        (Lit::List(vals), _) => {
            let marks: Vec<&str> = vals.iter().map(|_| "?").collect();
            params.extend(vals.iter().map(|v| Sql::Text(v.clone())));
            format!("{} ({})", c.op.sql(), marks.join(", "))
        }
        (v, op) => {
            params.push(lit(v));
            format!("{} ?", op.sql())
        }
    }
}

/// `trace.text` and `span.content` (LIKE or ILIKE): some span of the trace has text matching the
/// pattern. The trigram index finds the rows holding it anywhere; unless the pattern is a plain
/// `%…%`, `cairn_span_like` keeps those where one span's text matches by itself.
fn span_text_condition(c: &Clause, params: &mut Vec<Sql>) -> String {
    let bits = span_text::ROW_BITS;
    match &c.value {
        Lit::Str(p) if span_text::needs_no_check(p) => {
            params.push(Sql::Text(p.clone()));
            format!("t.id IN (SELECT rowid >> {bits} FROM span_text WHERE text LIKE ?)")
        }
        v => {
            params.push(lit(v));
            params.push(lit(v));
            format!(
                "t.id IN (SELECT rowid >> {bits} FROM span_text WHERE text LIKE '%' || ? || '%' \
                 AND {}(text, bounds, CAST(? AS TEXT)))",
                span_text::SPAN_LIKE
            )
        }
    }
}

/// SQL conditions on `traces t`, joined with AND, and their parameters.
pub(crate) fn compile(clauses: &[Clause], params: &mut Vec<Sql>) -> Vec<String> {
    clauses.iter().map(|c| compile_one(c, params)).collect()
}

fn compile_one(c: &Clause, params: &mut Vec<Sql>) -> String {
    match &c.entity {
        Entity::Attr(k) => {
            let col = match k.as_str() {
                "request_id" => "t.trace_id",
                "timestamp" | "timestamp_ms" => "t.request_time",
                "execution_time" | "execution_time_ms" => "t.execution_ms",
                "end_time" | "end_time_ms" => "(t.request_time + t.execution_ms)",
                "status" => "t.state",
                "client_request_id" => "t.client_request_id",
                "name" => "t.name",
                "run_id" => {
                    let r = rhs(c, params);
                    return if c.op == Op::Ne || c.op == Op::NotIn {
                        let positive = r.replacen("!=", "=", 1).replacen("NOT IN", "IN", 1);
                        format!(
                            "NOT EXISTS (SELECT 1 FROM trace_runs r WHERE r.trace = t.id AND r.run {positive})"
                        )
                    } else {
                        format!(
                            "EXISTS (SELECT 1 FROM trace_runs r WHERE r.trace = t.id AND r.run {r})"
                        )
                    };
                }
                _ => return span_text_condition(c, params),
            };
            let r = rhs(c, params);
            format!("{col} {r}")
        }
        Entity::Tag(k) | Entity::Meta(k) => {
            let kind = if matches!(c.entity, Entity::Tag(_)) {
                crate::project::TAG
            } else {
                crate::project::METADATA
            };
            params.push(Sql::Integer(kind));
            params.push(Sql::Text(k.clone()));
            let base = "SELECT 1 FROM trace_kv k WHERE k.trace = t.id AND k.kind = ? AND k.key = ? AND k.value IS NOT NULL";
            match c.op {
                Op::IsNull => format!("NOT EXISTS ({base})"),
                Op::IsNotNull => format!("EXISTS ({base})"),
                _ => {
                    let r = rhs(c, params);
                    format!("EXISTS ({base} AND k.value {r})")
                }
            }
        }
        Entity::Span(k) => {
            if k == "content" {
                return span_text_condition(c, params);
            }
            let col = match k.as_str() {
                "name" => "s.name",
                "type" => "s.type",
                _ => "s.status",
            };
            let r = rhs(c, params);
            format!("EXISTS (SELECT 1 FROM spans s WHERE s.trace = t.id AND {col} {r})")
        }
        Entity::Assessment(_) => "0".into(),
        Entity::Feedback(name) | Entity::Expectation(name) => {
            let kind = if matches!(c.entity, Entity::Feedback(_)) {
                "feedback"
            } else {
                "expectation"
            };
            params.push(Sql::Text(kind.into()));
            params.push(Sql::Text(name.clone()));
            let base = "SELECT 1 FROM assessments a WHERE a.trace = t.id AND a.kind = ? AND a.name = ? AND a.valid = 1";
            match c.op {
                Op::IsNull => format!("NOT EXISTS ({base})"),
                Op::IsNotNull => format!("EXISTS ({base})"),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    let r = rhs(c, params);
                    format!("EXISTS ({base} AND CAST(a.value AS REAL) {r})")
                }
                _ => {
                    let r = rhs(c, params);
                    format!("EXISTS ({base} AND a.value {r})")
                }
            }
        }
    }
}

/// One `order_by` entry compiled: the SQL expression and its direction.
pub(crate) fn order(key: &str) -> Result<String, Error> {
    let mut words = key.split_whitespace();
    let field = words.next().unwrap_or("");
    let dir = match words.next().map(str::to_ascii_uppercase).as_deref() {
        None | Some("ASC") => "ASC",
        Some("DESC") => "DESC",
        Some(other) => {
            return Err(Error::Invalid(format!(
                "invalid order_by '{key}': '{other}' is not ASC or DESC"
            )));
        }
    };
    if words.next().is_some() {
        return Err(Error::Invalid(format!(
            "invalid order_by '{key}': expected a key and ASC or DESC"
        )));
    }
    let field = field
        .strip_prefix("trace.")
        .or_else(|| field.strip_prefix("attribute."))
        .or_else(|| field.strip_prefix("attributes."))
        .unwrap_or(field);
    let col = match field {
        "timestamp" | "timestamp_ms" => "t.request_time",
        "execution_time" | "execution_time_ms" => "t.execution_ms",
        "end_time" | "end_time_ms" => "(t.request_time + t.execution_ms)",
        "status" => "t.state",
        "request_id" => "t.trace_id",
        "name" => "t.name",
        "run_id" => "t.run_id",
        "experiment_id" => "t.experiment",
        other => {
            return Err(Error::Invalid(format!(
                "invalid order_by '{key}': '{other}' is not a key traces are ordered by (timestamp_ms, execution_time_ms, end_time_ms, status, request_id, name, run_id, experiment_id)"
            )));
        }
    };
    Ok(format!("{col} {dir}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(f: &str) -> String {
        match parse(f) {
            Err(Error::Filter { reason, .. }) => reason,
            other => panic!("{f:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn clauses_parse() {
        let c = parse("trace.status = 'OK' AND tags.`a.b` != \"x\" and timestamp_ms >= 5 AND metadata.mlflow.sourceRun IS NOT NULL")
            .unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].entity, Entity::Attr("status".into()));
        assert_eq!(c[1].entity, Entity::Tag("a.b".into()));
        assert_eq!(c[1].op, Op::Ne);
        assert_eq!(c[2].value, Lit::Int(5));
        assert_eq!(c[3].entity, Entity::Meta("mlflow.sourceRun".into()));
        assert_eq!(c[3].op, Op::IsNotNull);
        let c = parse("trace.status IN ('a', 'b') AND span.type NOT IN ('LLM') AND feedback.good = 'true' AND trace.text ILIKE '%x%'").unwrap();
        assert_eq!(c[0].value, Lit::List(vec!["a".into(), "b".into()]));
        assert_eq!(c[1].op, Op::NotIn);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn refusals_name_what_was_wrong() {
        assert!(reason("trace.bogus = 'x'").contains("'bogus' is not a trace attribute"));
        assert!(
            reason("trace.status = 'OK' OR trace.status = 'ERROR'").contains("OR is not supported")
        );
        assert!(reason("trace.timestamp_ms = 'x'").contains("compared with a number"));
        assert!(reason("trace.text = 'x'").contains("= is not a comparison for text"));
        assert!(reason("tags.x RLIKE 'a.*'").contains("RLIKE is not supported"));
        assert!(reason("tags.x = 'unclosed").contains("not closed"));
        assert!(reason("trace.status 'OK'").contains("expected a comparison"));
        assert!(reason("foo.bar = 'x'").contains("'foo' is not an entity"));
        assert!(reason("span.kind = 'x'").contains("'span.kind' is not searchable"));
        assert!(reason("trace.status = 'OK' trace.name = 'x'").contains("expected AND"));
        assert!(reason("trace.name IN ('a'").contains("expected ',' or ')'"));
        // As MLflow: a trace's name is a tag, and tags take no IN.
        assert!(reason("trace.name IN ('a')").contains("IN is not a comparison for name"));
        let long = "a".repeat(MAX_FILTER + 1);
        assert!(reason(&long).contains("at most"));
    }

    #[test]
    fn order_keys_compile() {
        assert_eq!(order("timestamp_ms DESC").unwrap(), "t.request_time DESC");
        assert_eq!(
            order("trace.execution_time_ms").unwrap(),
            "t.execution_ms ASC"
        );
        assert!(
            order("bogus")
                .unwrap_err()
                .to_string()
                .contains("'bogus' is not a key")
        );
        assert!(
            order("name sideways")
                .unwrap_err()
                .to_string()
                .contains("not ASC or DESC")
        );
    }
}
