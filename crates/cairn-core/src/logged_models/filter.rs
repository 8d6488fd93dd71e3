//! MLflow's filter grammar for logged models: comparisons joined by `AND` —
//! `name = 'x'`, `status = 'READY'`, `params.lr = '0.01'`, `metrics.acc > 0.9`,
//! `tags.\`team\` IN ('a', 'b')`, `creation_timestamp > 1700000000000` — and the order keys
//! (`metrics.acc`, `params.lr`, an attribute). Errors read as MLflow's server words them.
//!
//! A superset of what MLflow's server accepts where it answers a user's mistake with an
//! internal error or silently matches nothing: an unknown attribute or a value that is not a
//! number is `INVALID_PARAMETER_VALUE` naming it, `status` compares by name (`'READY'`) as
//! well as by MLflow's number, double-quoted strings are strings, and params may be ordered by.

use cairn_catalog::{CmpOp, CmpValue, ModelAttribute, ModelCondition, ModelField};
use cairn_model::{LoggedModelStatus, py_repr};

use crate::Error;

/// The longest filter read, in bytes, and the most comparisons and `IN` values in one.
const MAX_FILTER: usize = 64 * 1024;
const MAX_COMPARISONS: usize = 100;
const MAX_IN_VALUES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A name (`name`, `metrics.acc`, `` tags.`a b` ``), as written.
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Semicolon,
}

fn invalid(filter: &str, why: &str) -> Error {
    Error::Invalid(format!("Invalid filter string: {}. {why}", py_repr(filter)))
}

fn not_and(filter: &str) -> Error {
    invalid(
        filter,
        "Expected a list of comparisons separated by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01').",
    )
}

fn tokens(filter: &str) -> Result<Vec<Tok>, Error> {
    let mut out = Vec::new();
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
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
            ';' => {
                out.push(Tok::Semicolon);
                i += 1;
            }
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(filter, "A string is not closed.")),
                        // A doubled quote inside a string is the quote itself (SQL).
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            s.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '<' | '>' | '=' | '!' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let op = match two.as_str() {
                    "<=" => "<=",
                    ">=" => ">=",
                    "!=" => "!=",
                    "<>" => "!=",
                    "==" => "=",
                    _ => match c {
                        '<' => "<",
                        '>' => ">",
                        '=' => "=",
                        _ => return Err(not_and(filter)),
                    },
                };
                i += if op.len() == 2 || two == "<>" || two == "==" {
                    2
                } else {
                    1
                };
                out.push(Tok::Op(op));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.') && i + 1 < chars.len()) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+'))
                {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            _ => {
                // A name: letters, digits, `_`, `.`, and backquoted parts.
                let mut s = String::new();
                while i < chars.len() {
                    let d = chars[i];
                    if d == '`' {
                        s.push(d);
                        i += 1;
                        while i < chars.len() && chars[i] != '`' {
                            s.push(chars[i]);
                            i += 1;
                        }
                        if i == chars.len() {
                            return Err(invalid(filter, "A backquoted name is not closed."));
                        }
                        s.push('`');
                        i += 1;
                    } else if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if s.is_empty() {
                    return Err(not_and(filter));
                }
                out.push(Tok::Ident(s));
            }
        }
    }
    Ok(out)
}

/// The field a name in a filter or an order stands for.
pub(crate) fn field(name: &str) -> Result<ModelField, Error> {
    let strip = |k: &str| k.trim_matches('`').to_owned();
    if let Some((entity, key)) = name.split_once('.')
        && !entity.is_empty()
        && entity.bytes().all(|b| b.is_ascii_lowercase())
        && !key.is_empty()
    {
        return match entity {
            "attributes" => attribute(&strip(key)).map(ModelField::Attribute),
            "metrics" => Ok(ModelField::Metric(strip(key))),
            "params" => Ok(ModelField::Param(strip(key))),
            "tags" => Ok(ModelField::Tag(strip(key))),
            other => Err(Error::Invalid(format!(
                "Invalid entity type: {}. Expected one of ['attributes', 'metrics', 'params', 'tags'].",
                py_repr(other)
            ))),
        };
    }
    attribute(&strip(name)).map(ModelField::Attribute)
}

fn attribute(name: &str) -> Result<ModelAttribute, Error> {
    Ok(match name {
        "model_id" => ModelAttribute::Id,
        "name" => ModelAttribute::Name,
        "experiment_id" => ModelAttribute::Experiment,
        "status" => ModelAttribute::Status,
        "status_message" => ModelAttribute::StatusMessage,
        "model_type" => ModelAttribute::ModelType,
        "source_run_id" => ModelAttribute::SourceRun,
        "artifact_location" | "artifact_uri" => ModelAttribute::ArtifactLocation,
        "creation_timestamp_ms" | "creation_timestamp" | "creation_time" => {
            ModelAttribute::CreatedMs
        }
        "last_updated_timestamp_ms" | "last_updated_timestamp" => ModelAttribute::UpdatedMs,
        other => {
            return Err(Error::Invalid(format!(
                "Invalid attribute key {}: expected one of model_id, name, experiment_id, \
                 status, status_message, model_type, source_run_id, artifact_location, \
                 creation_timestamp, last_updated_timestamp",
                py_repr(other)
            )));
        }
    })
}

fn is_numeric(f: &ModelField) -> bool {
    matches!(
        f,
        ModelField::Metric(_)
            | ModelField::Attribute(ModelAttribute::CreatedMs | ModelAttribute::UpdatedMs)
    )
}

fn shown(f: &ModelField) -> String {
    match f {
        ModelField::Attribute(a) => format!("attributes.{}", attribute_name(*a)),
        ModelField::Metric(k) => format!("metrics.{k}"),
        ModelField::Param(k) => format!("params.{k}"),
        ModelField::Tag(k) => format!("tags.{k}"),
    }
}

fn attribute_name(a: ModelAttribute) -> &'static str {
    match a {
        ModelAttribute::Id => "model_id",
        ModelAttribute::Name => "name",
        ModelAttribute::Experiment => "experiment_id",
        ModelAttribute::Status => "status",
        ModelAttribute::StatusMessage => "status_message",
        ModelAttribute::ModelType => "model_type",
        ModelAttribute::SourceRun => "source_run_id",
        ModelAttribute::ArtifactLocation => "artifact_location",
        ModelAttribute::CreatedMs => "creation_timestamp_ms",
        ModelAttribute::UpdatedMs => "last_updated_timestamp_ms",
    }
}

/// A status as a filter names it: `READY`, `LOGGED_MODEL_READY`, or MLflow's number (2).
pub(crate) fn status_value(v: &str) -> Result<LoggedModelStatus, Error> {
    let t = v.trim();
    let name = t.strip_prefix("LOGGED_MODEL_").unwrap_or(t);
    match name {
        "1" => return Ok(LoggedModelStatus::Pending),
        "2" => return Ok(LoggedModelStatus::Ready),
        "3" => return Ok(LoggedModelStatus::Failed),
        _ => {}
    }
    if name.eq_ignore_ascii_case("UPLOAD_FAILED") {
        return Ok(LoggedModelStatus::Failed);
    }
    name.parse().map_err(|_| {
        Error::Invalid(format!(
            "Invalid status {}: expected PENDING, READY or FAILED (or MLflow's LOGGED_MODEL_ names)",
            py_repr(v)
        ))
    })
}

/// Parses a filter into its comparisons (all of which must hold).
pub(crate) fn parse(filter: &str) -> Result<Vec<ModelCondition>, Error> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    if filter.len() > MAX_FILTER {
        return Err(Error::Invalid(format!(
            "the filter is {} bytes long; the limit is {MAX_FILTER}",
            filter.len()
        )));
    }
    let toks = tokens(filter)?;
    if toks.contains(&Tok::Semicolon) {
        return Err(invalid(filter, "Expected a single SQL expression."));
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if out.len() == MAX_COMPARISONS {
            return Err(Error::Invalid(format!(
                "a filter may hold at most {MAX_COMPARISONS} comparisons"
            )));
        }
        let Some(Tok::Ident(name)) = toks.get(i) else {
            return Err(not_and(filter));
        };
        i += 1;
        let op = match (toks.get(i), toks.get(i + 1)) {
            (Some(Tok::Op(o)), _) => {
                i += 1;
                *o
            }
            (Some(Tok::Ident(w)), Some(Tok::Ident(w2)))
                if w.eq_ignore_ascii_case("NOT") && w2.eq_ignore_ascii_case("IN") =>
            {
                i += 2;
                "NOT IN"
            }
            (Some(Tok::Ident(w)), _)
                if ["LIKE", "ILIKE", "IN"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                i += 1;
                match w.to_ascii_uppercase().as_str() {
                    "LIKE" => "LIKE",
                    "ILIKE" => "ILIKE",
                    _ => "IN",
                }
            }
            _ => return Err(not_and(filter)),
        };
        let field = field(name)?;
        let numeric = is_numeric(&field);
        let allowed: &[&str] = if numeric {
            &["<", "<=", ">", ">=", "=", "!="]
        } else {
            &["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]
        };
        if !allowed.contains(&op) {
            let listed: Vec<String> = allowed.iter().map(|o| py_repr(o)).collect();
            return Err(Error::Invalid(format!(
                "Invalid comparison operator for {}: {}. Expected one of ({}).",
                shown(&field),
                py_repr(op),
                listed.join(", ")
            )));
        }
        let value = if op == "IN" || op == "NOT IN" {
            if toks.get(i) != Some(&Tok::LParen) {
                return Err(invalid(filter, "IN needs a parenthesised list of strings."));
            }
            i += 1;
            let mut items = Vec::new();
            loop {
                match toks.get(i) {
                    Some(Tok::Str(s)) => items.push(s.clone()),
                    Some(Tok::Num(n)) => items.push(n.clone()),
                    _ => return Err(invalid(filter, "IN needs a parenthesised list of strings.")),
                }
                if items.len() > MAX_IN_VALUES {
                    return Err(Error::Invalid(format!(
                        "an IN list may hold at most {MAX_IN_VALUES} values"
                    )));
                }
                i += 1;
                match toks.get(i) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(invalid(filter, "IN needs a parenthesised list of strings.")),
                }
            }
            CmpValue::List(items)
        } else {
            let raw = match toks.get(i) {
                Some(Tok::Str(s)) => (s.clone(), true),
                Some(Tok::Num(n)) => (n.clone(), false),
                Some(Tok::Ident(n)) => (n.clone(), false),
                _ => return Err(not_and(filter)),
            };
            i += 1;
            if numeric {
                let text = raw.0.trim();
                let parsed = cairn_model::num::parse_text(text)
                    .or_else(|| text.parse::<f64>().ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "Invalid value {} for {}: expected a number",
                            py_repr(&raw.0),
                            shown(&field)
                        ))
                    })?;
                CmpValue::Num(parsed)
            } else if !raw.1 && !matches!(field, ModelField::Attribute(ModelAttribute::Status)) {
                return Err(Error::Invalid(format!(
                    "Invalid value {} for {}: a string value must be quoted",
                    py_repr(&raw.0),
                    shown(&field)
                )));
            } else {
                CmpValue::Text(raw.0)
            }
        };
        let value = match (&field, value) {
            // Statuses compare by their stored names.
            (ModelField::Attribute(ModelAttribute::Status), CmpValue::Text(t))
                if matches!(op, "=" | "!=") =>
            {
                CmpValue::Text(status_value(&t)?.as_str().to_owned())
            }
            (ModelField::Attribute(ModelAttribute::Status), CmpValue::List(l)) => CmpValue::List(
                l.iter()
                    .map(|t| status_value(t).map(|s| s.as_str().to_owned()))
                    .collect::<Result<_, _>>()?,
            ),
            (_, v) => v,
        };
        let op = match op {
            "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "LIKE" => CmpOp::Like,
            "ILIKE" => CmpOp::ILike,
            "IN" => CmpOp::In,
            _ => CmpOp::NotIn,
        };
        out.push(ModelCondition { field, op, value });
        match toks.get(i) {
            None => return Ok(out),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("AND") => i += 1,
            _ => return Err(not_and(filter)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(filter: &str) -> String {
        parse(filter).unwrap_err().to_string()
    }

    #[test]
    fn comparisons_of_every_entity_parse() {
        let c = parse(
            "name = 'm1' AND metrics.acc >= 0.9 AND params.lr IN ('0.1', '0.2') AND tags.`a b` != \"x\" \
             and creation_timestamp > 5 AND status = 'READY' AND attributes.model_type LIKE 'sk%'",
        )
        .unwrap();
        assert_eq!(c.len(), 7);
        assert_eq!(
            c[0],
            ModelCondition {
                field: ModelField::Attribute(ModelAttribute::Name),
                op: CmpOp::Eq,
                value: CmpValue::Text("m1".into())
            }
        );
        assert_eq!(c[1].value, CmpValue::Num(0.9));
        assert_eq!(c[2].value, CmpValue::List(vec!["0.1".into(), "0.2".into()]));
        assert_eq!(c[3].field, ModelField::Tag("a b".into()));
        assert_eq!(c[5].value, CmpValue::Text("ready".into()));
        assert_eq!(c[6].op, CmpOp::Like);
        assert_eq!(
            parse("status = 2").unwrap()[0].value,
            CmpValue::Text("ready".into())
        );
        assert_eq!(parse("  ").unwrap(), Vec::new());
    }

    #[test]
    fn mistakes_are_worded_as_mlflow_words_them() {
        assert_eq!(
            err("bogus.x = 1"),
            "Invalid entity type: 'bogus'. Expected one of ['attributes', 'metrics', 'params', 'tags']."
        );
        assert_eq!(
            err("params.a > 1"),
            "Invalid comparison operator for params.a: '>'. Expected one of ('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN')."
        );
        assert_eq!(
            err("metrics.a LIKE 1"),
            "Invalid comparison operator for metrics.a: 'LIKE'. Expected one of ('<', '<=', '>', '>=', '=', '!=')."
        );
        assert_eq!(
            err("name = 'm1' OR name = 'x'"),
            "Invalid filter string: \"name = 'm1' OR name = 'x'\". Expected a list of comparisons separated by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01')."
        );
        assert_eq!(
            err("name = 'm1'; name = 1"),
            "Invalid filter string: \"name = 'm1'; name = 1\". Expected a single SQL expression."
        );
        assert!(err("foo = 1").contains("Invalid attribute key 'foo'"));
        assert!(err("metrics.a = 'x'").contains("Invalid value 'x' for metrics.a"));
        assert!(err("creation_time > abc").contains("Invalid value 'abc'"));
        assert!(err("status = 'DONE'").contains("Invalid status 'DONE'"));
        assert!(err("name = 'unclosed").contains("not closed"));
    }

    #[test]
    fn hostile_filters_are_bounded() {
        let long = format!("name = '{}'", "x".repeat(MAX_FILTER));
        assert!(err(&long).contains("limit"));
        let many = vec!["name = 'a'"; MAX_COMPARISONS + 1].join(" AND ");
        assert!(err(&many).contains("at most"));
        for junk in [
            "(",
            ")",
            "= =",
            "name",
            "name =",
            "AND",
            "'",
            "`",
            "name IN ('a'",
        ] {
            assert!(parse(junk).is_err(), "{junk}");
        }
    }
}
