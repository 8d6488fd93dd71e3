//! Recursive descent over the tokens: `OR` binds loosest, then `AND` (explicit or implicit
//! between terms), then `NOT`.
//!
//! ```text
//! query   = [or] END
//! or      = and { OR and }
//! and     = unary { [AND] unary }
//! unary   = NOT unary | primary
//! primary = '(' or ')' | field cmp value | value cmp field [cmp value]
//!         | shorthand ':' value | word | quoted | number
//! ```

use super::lexer::{CmpTok, Spanned, Tok, tokenize};
use super::{
    Attribute, Bound, Comparison, Field, MAX_DEPTH, MAX_LIST, MAX_QUERY_LEN, MAX_TERMS, Op, Query,
    QueryError, Range, ReviewField, SortKey, Value, field_of, is_keyword, looks_like_field,
    parse_date,
};

/// Parses a query. Empty (or blank) text is [`Query::All`]. Queries longer than
/// [`MAX_QUERY_LEN`] bytes, nested deeper than [`MAX_DEPTH`], or with more than [`MAX_TERMS`]
/// terms are refused with an error naming the bound.
pub fn parse(src: &str) -> Result<Query, QueryError> {
    let mut p = Parser::new(src)?;
    if p.peek().tok == Tok::End {
        return Ok(Query::All);
    }
    let q = p.or()?;
    let t = p.peek();
    if t.tok != Tok::End {
        return Err(QueryError::unexpected(
            t.column,
            t.tok.to_string(),
            "AND, OR, a term or the end of the query",
        ));
    }
    Ok(q)
}

/// Parses sort keys separated by commas: `metrics.acc DESC, params.lr`. Empty text is no key.
pub fn parse_sort(src: &str) -> Result<Vec<SortKey>, QueryError> {
    let mut p = Parser::new(src)?;
    let mut keys = Vec::new();
    if p.peek().tok == Tok::End {
        return Ok(keys);
    }
    loop {
        let t = p.next();
        let field = match &t.tok {
            Tok::Word(w) if !is_keyword(w) => resolve_field(w, t.column)?,
            other => {
                return Err(QueryError::unexpected(
                    t.column,
                    other.to_string(),
                    "a field to sort by",
                ));
            }
        };
        if let Field::Lineage(_) | Field::Review(_) = field {
            return Err(QueryError::invalid(
                t.column,
                format!("cannot sort by {field}: a run can have several"),
            ));
        }
        let mut descending = false;
        let t = p.next();
        let t = match &t.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("desc") => {
                descending = true;
                p.next()
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("asc") => p.next(),
            _ => t,
        };
        keys.push(SortKey { field, descending });
        match t.tok {
            Tok::End => return Ok(keys),
            Tok::Comma => {}
            other => {
                return Err(QueryError::unexpected(
                    t.column,
                    other.to_string(),
                    "ASC, DESC, ',' or the end of the sort",
                ));
            }
        }
    }
}

fn resolve_field(name: &str, column: usize) -> Result<Field, QueryError> {
    field_of(name).map_err(|hint| QueryError::unknown_field(column, name, &hint))
}

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    /// Parentheses and `NOT`s open around the current token.
    depth: usize,
    /// Comparisons and free-text terms read so far.
    terms: usize,
}

const TERM_START: &str = "a field, a word, a phrase or '('";
const VALUE: &str = "a value";

fn word_is(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn new(src: &str) -> Result<Parser, QueryError> {
        if src.len() > MAX_QUERY_LEN {
            return Err(QueryError::too_large(
                MAX_QUERY_LEN + 1,
                "bytes",
                MAX_QUERY_LEN,
            ));
        }
        Ok(Parser {
            toks: tokenize(src)?,
            pos: 0,
            depth: 0,
            terms: 0,
        })
    }

    /// Enters one level of nesting at `column`, refusing to go past [`MAX_DEPTH`].
    fn nest(&mut self, column: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::too_large(
                column,
                "levels of nesting (parentheses and NOT)",
                MAX_DEPTH,
            ));
        }
        Ok(())
    }

    /// Counts one term starting at `column`, refusing more than [`MAX_TERMS`].
    fn term(&mut self, column: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(QueryError::too_large(column, "terms", MAX_TERMS));
        }
        Ok(())
    }

    fn peek(&self) -> &Spanned {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Spanned {
        let i = (self.pos + ahead).min(self.toks.len() - 1);
        &self.toks[i]
    }

    fn next(&mut self) -> Spanned {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.and()?];
        while word_is(&self.peek().tok, "or") {
            self.next();
            parts.push(self.and()?);
        }
        Ok(Query::or(parts))
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            let t = &self.peek().tok;
            if word_is(t, "and") {
                self.next();
                parts.push(self.unary()?);
            } else if self.starts_term() {
                parts.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(Query::and(parts))
    }

    /// Whether the next token can begin a term (for implicit AND).
    fn starts_term(&self) -> bool {
        match &self.peek().tok {
            Tok::Word(w) => {
                !is_keyword(w) || w.eq_ignore_ascii_case("not") || self.peek_at(1).tok == Tok::Colon
            }
            Tok::Quoted(_) | Tok::Num(..) | Tok::Ago(_) | Tok::LParen => true,
            _ => false,
        }
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        if word_is(&self.peek().tok, "not") {
            let not = self.next();
            self.nest(not.column)?;
            let q = Query::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(q);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, QueryError> {
        let t = self.next();
        if t.tok != Tok::LParen {
            self.term(t.column)?;
        }
        match t.tok {
            Tok::LParen => {
                self.nest(t.column)?;
                let q = self.or()?;
                self.depth -= 1;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(QueryError::unexpected(
                        close.column,
                        close.tok.to_string(),
                        "')', AND, OR or a term",
                    ));
                }
                Ok(q)
            }
            Tok::Word(w) if self.peek().tok == Tok::Colon => {
                self.next();
                self.shorthand(&w, t.column)
            }
            Tok::Word(w) if is_keyword(&w) => Err(QueryError::unexpected(
                t.column,
                format!("'{w}'"),
                TERM_START,
            )),
            Tok::Word(w) => {
                if self.starts_comparison() {
                    let field = resolve_field(&w, t.column)?;
                    return self.comparison(field);
                }
                if looks_like_field(&w) {
                    let n = self.peek();
                    return Err(QueryError::unexpected(
                        n.column,
                        n.tok.to_string(),
                        &format!(
                            "a comparison after {w} (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, IS NULL)"
                        ),
                    ));
                }
                Ok(Query::Text(w))
            }
            Tok::Quoted(s) if self.ordering_next().is_some() => {
                self.value_first(Value::Text(s), t.column)
            }
            Tok::Num(n, _) if self.ordering_next().is_some() => {
                self.value_first(Value::Number(n), t.column)
            }
            Tok::Ago(a) if self.ordering_next().is_some() => {
                self.value_first(Value::Ago(a), t.column)
            }
            Tok::Quoted(s) => Ok(Query::Text(s)),
            Tok::Num(_, raw) => Ok(Query::Text(raw)),
            other => Err(QueryError::unexpected(
                t.column,
                other.to_string(),
                TERM_START,
            )),
        }
    }

    fn starts_comparison(&self) -> bool {
        let t = &self.peek().tok;
        matches!(t, Tok::Cmp(_))
            || ["like", "ilike", "in", "is"].iter().any(|k| word_is(t, k))
            || (word_is(t, "not") && word_is(&self.peek_at(1).tok, "in"))
    }

    /// The next token if it is `<`, `<=`, `>` or `>=`.
    fn ordering_next(&self) -> Option<CmpTok> {
        match self.peek().tok {
            Tok::Cmp(c @ (CmpTok::Lt | CmpTok::Le | CmpTok::Gt | CmpTok::Ge)) => Some(c),
            _ => None,
        }
    }

    /// `field op value`, the field already read.
    fn comparison(&mut self, field: Field) -> Result<Query, QueryError> {
        let t = self.next();
        let op_column = t.column;
        let op = match &t.tok {
            Tok::Cmp(c) => cmp_op(*c),
            w if word_is(w, "like") => Op::Like,
            w if word_is(w, "ilike") => Op::ILike,
            w if word_is(w, "in") => Op::In,
            w if word_is(w, "not") => {
                self.next();
                Op::NotIn
            }
            _ => {
                // `IS [NOT] NULL`
                let t = self.next();
                let negated = word_is(&t.tok, "not");
                let t = if negated { self.next() } else { t };
                if !word_is(&t.tok, "null") {
                    return Err(QueryError::unexpected(
                        t.column,
                        t.tok.to_string(),
                        if negated { "NULL" } else { "NULL or NOT NULL" },
                    ));
                }
                let op = if negated { Op::IsNotNull } else { Op::IsNull };
                return Ok(Query::Compare(Comparison {
                    field,
                    op,
                    value: Value::Null,
                }));
            }
        };
        if field.is_numeric() && matches!(op, Op::Like | Op::ILike | Op::In | Op::NotIn) {
            return Err(QueryError::invalid(
                op_column,
                format!("{op} compares text, and {field} is a number"),
            ));
        }
        let value = match op {
            Op::In | Op::NotIn => Value::List(self.list()?),
            Op::Like | Op::ILike => {
                let t = self.next();
                match t.tok {
                    Tok::Quoted(s) => Value::Text(s),
                    other => {
                        return Err(QueryError::unexpected(
                            t.column,
                            other.to_string(),
                            "a quoted pattern such as 'ali%'",
                        ));
                    }
                }
            }
            _ => {
                let t = self.next();
                let raw = match t.tok {
                    Tok::Quoted(s) => Value::Text(s),
                    Tok::Num(n, _) => Value::Number(n),
                    Tok::Ago(a) => Value::Ago(a),
                    Tok::Word(w) if !is_keyword(&w) => Value::Text(w),
                    other => {
                        return Err(QueryError::unexpected(t.column, other.to_string(), VALUE));
                    }
                };
                typed_value(&field, op, raw, t.column)?
            }
        };
        Ok(Query::Compare(Comparison { field, op, value }))
    }

    /// `( 'a', 'b', … )`
    fn list(&mut self) -> Result<Vec<String>, QueryError> {
        let t = self.next();
        if t.tok != Tok::LParen {
            return Err(QueryError::unexpected(
                t.column,
                t.tok.to_string(),
                "'(' to open a list",
            ));
        }
        let mut items = Vec::new();
        loop {
            let t = self.next();
            if items.len() == MAX_LIST {
                return Err(QueryError::too_large(
                    t.column,
                    "values in one list",
                    MAX_LIST,
                ));
            }
            match t.tok {
                Tok::Quoted(s) => items.push(s),
                Tok::Num(_, raw) => items.push(raw),
                Tok::Word(w) if !is_keyword(&w) => items.push(w),
                other => {
                    return Err(QueryError::unexpected(t.column, other.to_string(), VALUE));
                }
            }
            let t = self.next();
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok(items),
                other => {
                    return Err(QueryError::unexpected(
                        t.column,
                        other.to_string(),
                        "',' or ')'",
                    ));
                }
            }
        }
    }

    /// `value op field [op value]`: a one-sided comparison written backwards, or a range.
    fn value_first(&mut self, first: Value, first_column: usize) -> Result<Query, QueryError> {
        let t = self.next();
        let Tok::Cmp(op1) = t.tok else {
            return Err(QueryError::unexpected(
                t.column,
                t.tok.to_string(),
                "<, <=, > or >=",
            ));
        };
        let t = self.next();
        let field = match &t.tok {
            Tok::Word(w) if !is_keyword(w) => resolve_field(w, t.column)?,
            other => {
                return Err(QueryError::unexpected(
                    t.column,
                    other.to_string(),
                    "a field after the comparison",
                ));
            }
        };
        let ascending = matches!(op1, CmpTok::Lt | CmpTok::Le);
        let first = typed_value(&field, flip(cmp_op(op1)), first, first_column)?;
        let op2 = match self.ordering_next() {
            Some(c @ (CmpTok::Lt | CmpTok::Le)) if ascending => c,
            Some(c @ (CmpTok::Gt | CmpTok::Ge)) if !ascending => c,
            _ => {
                return Ok(Query::Compare(Comparison {
                    field,
                    op: flip(cmp_op(op1)),
                    value: first,
                }));
            }
        };
        self.next();
        let t = self.next();
        let raw = match t.tok {
            Tok::Quoted(s) => Value::Text(s),
            Tok::Num(n, _) => Value::Number(n),
            Tok::Ago(a) => Value::Ago(a),
            other => return Err(QueryError::unexpected(t.column, other.to_string(), VALUE)),
        };
        let second = typed_value(&field, cmp_op(op2), raw, t.column)?;
        let inclusive = |c: CmpTok| matches!(c, CmpTok::Le | CmpTok::Ge);
        let (low, high) = if ascending {
            (
                Bound {
                    value: first,
                    inclusive: inclusive(op1),
                },
                Bound {
                    value: second,
                    inclusive: inclusive(op2),
                },
            )
        } else {
            (
                Bound {
                    value: second,
                    inclusive: inclusive(op2),
                },
                Bound {
                    value: first,
                    inclusive: inclusive(op1),
                },
            )
        };
        Ok(Query::Range(Range { field, low, high }))
    }

    /// `owner:alice`, `tag:baseline`, `tag:stage=candidate`, `param:optimizer=adam`,
    /// `exp:resnet-sweep`, `is:running`, `status:failed`.
    fn shorthand(&mut self, name: &str, column: usize) -> Result<Query, QueryError> {
        let lower = name.to_ascii_lowercase();
        let value = |p: &mut Parser| -> Result<(String, usize), QueryError> {
            let t = p.next();
            match t.tok {
                Tok::Word(w) => Ok((w, t.column)),
                Tok::Quoted(s) => Ok((s, t.column)),
                Tok::Num(_, raw) => Ok((raw, t.column)),
                other => Err(QueryError::unexpected(
                    t.column,
                    other.to_string(),
                    &format!("a value after {name}:"),
                )),
            }
        };
        let cmp = |field, op, value| Query::Compare(Comparison { field, op, value });
        match lower.as_str() {
            "owner" | "user" => {
                let (v, _) = value(self)?;
                Ok(cmp(
                    Field::Attribute(Attribute::Owner),
                    Op::Eq,
                    Value::Text(v),
                ))
            }
            "exp" | "experiment" => {
                let (v, _) = value(self)?;
                Ok(cmp(
                    Field::Attribute(Attribute::Experiment),
                    Op::Eq,
                    Value::Text(v),
                ))
            }
            "is" | "status" => {
                let (v, c) = value(self)?;
                if v.eq_ignore_ascii_case("reviewed") {
                    return Ok(cmp(
                        Field::Review(ReviewField::Id),
                        Op::IsNotNull,
                        Value::Null,
                    ));
                }
                // Compliance with the schema: `is:incomplete` is every run that lacks what its
                // schema requires (incomplete, pending or refused).
                let compliance = Field::Attribute(Attribute::Compliance);
                let text = |s: &str| Value::Text(s.to_owned());
                match v.to_ascii_lowercase().as_str() {
                    "compliant" => return Ok(cmp(compliance, Op::Eq, text("compliant"))),
                    "incomplete" | "noncompliant" | "non-compliant" => {
                        return Ok(cmp(compliance, Op::Ne, text("compliant")));
                    }
                    s @ ("pending" | "refused") => return Ok(cmp(compliance, Op::Eq, text(s))),
                    _ => {}
                }
                let status: cairn_model::RunStatus = v.parse().map_err(|_| {
                    QueryError::invalid(
                        c,
                        format!(
                            "unknown status '{v}': expected running, finished, failed or \
                             killed, or compliant, incomplete, pending or refused"
                        ),
                    )
                })?;
                Ok(cmp(
                    Field::Attribute(Attribute::Status),
                    Op::Eq,
                    Value::Text(status.as_str().to_ascii_uppercase()),
                ))
            }
            "tag" | "param" => {
                let (key, c) = value(self)?;
                if key.is_empty() {
                    return Err(QueryError::invalid(
                        c,
                        format!("an empty key after {name}:"),
                    ));
                }
                let field = if lower == "tag" {
                    Field::Tag(key)
                } else {
                    Field::Param(key)
                };
                if self.peek().tok != Tok::Cmp(CmpTok::Eq) {
                    return Ok(cmp(field, Op::IsNotNull, Value::Null));
                }
                self.next();
                let (v, _) = value(self)?;
                Ok(cmp(field, Op::Eq, Value::Text(v)))
            }
            // `has:open-action`: a review of the run has an open next action; `=alice`: one
            // alice owns. (`owner:` stays the run's owner.)
            "has" => {
                let (what, c) = value(self)?;
                if !matches!(
                    what.to_ascii_lowercase().as_str(),
                    "open-action" | "open-actions" | "open_action" | "open_actions"
                ) {
                    return Err(QueryError::invalid(
                        c,
                        format!("unknown has:{what}: expected has:open-action"),
                    ));
                }
                let field = Field::Review(ReviewField::ActionOwner);
                if self.peek().tok != Tok::Cmp(CmpTok::Eq) {
                    return Ok(cmp(field, Op::IsNotNull, Value::Null));
                }
                self.next();
                let (v, _) = value(self)?;
                Ok(cmp(field, Op::Eq, Value::Text(v)))
            }
            r if r.starts_with("review.") || r.starts_with("reviews.") => {
                let key = r.split_once('.').map_or("", |(_, k)| k);
                let Some(f) = ReviewField::lookup(key) else {
                    return Err(QueryError::unknown_field(
                        column,
                        &format!("{name}:"),
                        "review.decision:, review.confidence:, review.author:, \
                         review.action_owner: or review.id:",
                    ));
                };
                let (v, _) = value(self)?;
                Ok(cmp(Field::Review(f), Op::Eq, Value::Text(v)))
            }
            _ => Err(QueryError::unknown_field(
                column,
                &format!("{name}:"),
                "owner:, tag:, param:, exp:, is:, status:, has:open-action or review.FIELD:",
            )),
        }
    }
}

fn cmp_op(c: CmpTok) -> Op {
    match c {
        CmpTok::Eq => Op::Eq,
        CmpTok::Ne => Op::Ne,
        CmpTok::Gt => Op::Gt,
        CmpTok::Ge => Op::Ge,
        CmpTok::Lt => Op::Lt,
        CmpTok::Le => Op::Le,
    }
}

/// `a < x` is `x > a`.
fn flip(op: Op) -> Op {
    match op {
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        other => other,
    }
}

/// Checks `value` against what `field` compares with, turning numeric text into numbers where a
/// number is meant.
fn typed_value(field: &Field, op: Op, value: Value, column: usize) -> Result<Value, QueryError> {
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    if field.is_time() {
        return match value {
            Value::Text(t) => match t.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Value::Number(n)),
                _ if parse_date(&t).is_some() => Ok(Value::Text(t)),
                _ => Err(QueryError::invalid(
                    column,
                    format!(
                        "'{t}' is not a time: expected epoch milliseconds, a date such as \
                         '2024-05-01' or a relative time such as -7d"
                    ),
                )),
            },
            v => Ok(v),
        };
    }
    if let Value::Ago(a) = value {
        return Err(QueryError::invalid(
            column,
            format!("{a} is a relative time, and {field} is not a time (created, ended)"),
        ));
    }
    match (field, value) {
        (
            Field::Metric(_) | Field::Cost(_) | Field::Eval(_) | Field::Fairness(_),
            Value::Text(t),
        ) => match t.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(QueryError::invalid(
                column,
                format!("'{t}' is not a number, and {field} compares with numbers"),
            )),
        },
        (_, Value::Text(t)) if ordering => match t.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Ok(Value::Text(t)),
        },
        (_, v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Ago, LineageField, QueryErrorKind, TimeUnit};
    use super::*;

    fn cmp(field: Field, op: Op, value: Value) -> Query {
        Query::Compare(Comparison { field, op, value })
    }

    fn metric(k: &str) -> Field {
        Field::Metric(k.into())
    }

    #[test]
    fn mlflow_filters_parse_as_mlflow_means_them() {
        assert_eq!(
            parse("metrics.acc > 0.9 and params.optimizer = 'adam' AND tags.owner LIKE 'ali%'")
                .unwrap(),
            Query::And(vec![
                cmp(metric("acc"), Op::Gt, Value::Number(0.9)),
                cmp(
                    Field::Param("optimizer".into()),
                    Op::Eq,
                    Value::Text("adam".into())
                ),
                cmp(
                    Field::Tag("owner".into()),
                    Op::Like,
                    Value::Text("ali%".into())
                ),
            ])
        );
        assert_eq!(
            parse("attributes.status IN ('FINISHED', 'FAILED') and tags.`mlflow.user` = 'bob'")
                .unwrap(),
            Query::And(vec![
                cmp(
                    Field::Attribute(Attribute::Status),
                    Op::In,
                    Value::List(vec!["FINISHED".into(), "FAILED".into()])
                ),
                cmp(
                    Field::Tag("mlflow.user".into()),
                    Op::Eq,
                    Value::Text("bob".into())
                ),
            ])
        );
        let q = parse(
            "tags.\"mlflow.runName\" != 'x' and datasets.digest = 'abc' and attribute.run_name ILIKE '%sweep%'",
        )
        .unwrap();
        let Query::And(parts) = q else { panic!() };
        assert_eq!(
            parts[1],
            cmp(
                Field::Lineage(LineageField::DatasetDigest),
                Op::Eq,
                Value::Text("abc".into())
            )
        );
        assert_eq!(parse("  ").unwrap(), Query::All);
        assert_eq!(
            parse("metrics.loss <= -1e-3").unwrap(),
            cmp(metric("loss"), Op::Le, Value::Number(-1e-3))
        );
        assert_eq!(
            parse("metrics.acc > '0.5'").unwrap(),
            cmp(metric("acc"), Op::Gt, Value::Number(0.5))
        );
        assert_eq!(
            parse("tags.x IS NOT NULL").unwrap(),
            cmp(Field::Tag("x".into()), Op::IsNotNull, Value::Null)
        );
        assert_eq!(
            parse("attributes.run_id NOT IN ('a')").unwrap(),
            cmp(
                Field::Attribute(Attribute::RunId),
                Op::NotIn,
                Value::List(vec!["a".into()])
            )
        );
        assert_eq!(
            parse("attributes.start_time >= 1700000000000 and attributes.user_id = \"alice\"")
                .unwrap(),
            Query::And(vec![
                cmp(
                    Field::Attribute(Attribute::Created),
                    Op::Ge,
                    Value::Number(1.7e12)
                ),
                cmp(
                    Field::Attribute(Attribute::Owner),
                    Op::Eq,
                    Value::Text("alice".into())
                ),
            ])
        );
        assert_eq!(
            parse("metrics.`val acc` == 1").unwrap(),
            cmp(metric("val acc"), Op::Eq, Value::Number(1.0))
        );
    }

    #[test]
    fn cairn_additions_parse() {
        let owner = |v: &str| {
            cmp(
                Field::Attribute(Attribute::Owner),
                Op::Eq,
                Value::Text(v.into()),
            )
        };
        assert_eq!(
            parse("owner:alice OR (owner:bob AND NOT tag:baseline) \"label smoothing\" adam")
                .unwrap(),
            Query::Or(vec![
                owner("alice"),
                Query::And(vec![
                    owner("bob"),
                    Query::Not(Box::new(cmp(
                        Field::Tag("baseline".into()),
                        Op::IsNotNull,
                        Value::Null
                    ))),
                    Query::Text("label smoothing".into()),
                    Query::Text("adam".into()),
                ]),
            ])
        );
        assert_eq!(
            parse("0.001 <= params.lr < 0.01").unwrap(),
            Query::Range(Range {
                field: Field::Param("lr".into()),
                low: Bound {
                    value: Value::Number(0.001),
                    inclusive: true
                },
                high: Bound {
                    value: Value::Number(0.01),
                    inclusive: false
                },
            })
        );
        assert_eq!(
            parse("0.01 > params.lr >= 0.001").unwrap(),
            parse("0.001 <= params.lr < 0.01").unwrap()
        );
        assert_eq!(
            parse("0.9 < metrics.acc").unwrap(),
            cmp(metric("acc"), Op::Gt, Value::Number(0.9))
        );
        assert_eq!(
            parse("created > -7d").unwrap(),
            cmp(
                Field::Attribute(Attribute::Created),
                Op::Gt,
                Value::Ago(Ago {
                    amount: 7,
                    unit: TimeUnit::Days
                })
            )
        );
        assert_eq!(
            parse("is:running").unwrap(),
            cmp(
                Field::Attribute(Attribute::Status),
                Op::Eq,
                Value::Text("RUNNING".into())
            )
        );
        assert_eq!(
            parse("tag:stage=candidate exp:resnet-sweep").unwrap(),
            Query::And(vec![
                cmp(
                    Field::Tag("stage".into()),
                    Op::Eq,
                    Value::Text("candidate".into())
                ),
                cmp(
                    Field::Attribute(Attribute::Experiment),
                    Op::Eq,
                    Value::Text("resnet-sweep".into())
                ),
            ])
        );
        assert_eq!(
            parse("code.commit = 'abc' infra.gpu LIKE '%A100%' feature_set.version = '3'")
                .unwrap()
                .to_string(),
            "code.commit = 'abc' AND infra.gpu LIKE '%A100%' AND feature_set.version = '3'"
        );
        assert_eq!(
            parse("created >= '2024-05-01'").unwrap().to_string(),
            "created >= '2024-05-01'"
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            (
                "(metrics.acc >= )",
                "unexpected ')' at column 17, expected a value",
            ),
            (
                "metrics.acc > ",
                "unexpected the end of the query at column 15, expected a value",
            ),
            (
                "foo.bar = 1",
                "unknown field 'foo.bar' at column 1: expected metrics.KEY, params.KEY, tags.KEY, \
                 attributes.NAME, datasets.NAME, eval.BENCHMARK.METRIC, \
                 fairness.METRIC.difference|ratio, \
                 review.decision|confidence|author|action_owner|id, a lineage field \
                 (dataset.digest, code.commit, infra.gpu, feature_set.version, …) or an attribute (id, name, status, owner, \
                 created, ended, experiment, compliance)",
            ),
            (
                "acc > 0.9",
                "unknown field 'acc' at column 1: expected metrics.KEY, params.KEY, tags.KEY, \
                 attributes.NAME, datasets.NAME, eval.BENCHMARK.METRIC, \
                 fairness.METRIC.difference|ratio, \
                 review.decision|confidence|author|action_owner|id, a lineage field \
                 (dataset.digest, code.commit, infra.gpu, feature_set.version, …) or an attribute (id, name, status, owner, \
                 created, ended, experiment, compliance)",
            ),
            (
                "infra.gpus = 'x'",
                "unknown field 'infra.gpus' at column 1: expected one of host, gpu, os, instance_type after 'infra.'",
            ),
            // Found by fuzzing (fuzz/crashers/query/empty-tag-key): it parsed, and printed as
            // tags.`` which does not.
            ("tag:''p", "an empty key after tag: at column 5"),
            ("param:\"\" = 1", "an empty key after param: at column 7"),
            (
                "colour:red",
                "unknown field 'colour:' at column 1: expected owner:, tag:, param:, exp:, is:, \
                 status:, has:open-action or review.FIELD:",
            ),
            (
                "metrics.acc 0.9",
                "unexpected number 0.9 at column 13, expected a comparison after metrics.acc (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, IS NULL)",
            ),
            (
                "metrics.acc LIKE '0%'",
                "LIKE compares text, and metrics.acc is a number at column 13",
            ),
            (
                "metrics.acc > 'high'",
                "'high' is not a number, and metrics.acc compares with numbers at column 15",
            ),
            (
                "params.lr > -7d",
                "-7d is a relative time, and params.lr is not a time (created, ended) at column 13",
            ),
            (
                "created > 'last week'",
                "'last week' is not a time: expected epoch milliseconds, a date such as '2024-05-01' or a relative time such as -7d at column 11",
            ),
            (
                "(a OR b",
                "unexpected the end of the query at column 8, expected ')', AND, OR or a term",
            ),
            (
                "a AND",
                "unexpected the end of the query at column 6, expected a field, a word, a phrase or '('",
            ),
            (
                "tags.x IS 3",
                "unexpected number 3 at column 11, expected NULL or NOT NULL",
            ),
            (
                "params.x IN 'a'",
                "unexpected string 'a' at column 13, expected '(' to open a list",
            ),
            (
                "params.x IN ('a' 'b')",
                "unexpected string 'b' at column 18, expected ',' or ')'",
            ),
            (
                "is:done",
                "unknown status 'done': expected running, finished, failed or killed, or compliant, incomplete, pending or refused at column 4",
            ),
            (
                "a )",
                "unexpected ')' at column 3, expected AND, OR, a term or the end of the query",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q).unwrap_err().to_string(), want, "{q}");
        }
    }

    #[test]
    fn sort_keys_parse_with_direction() {
        assert_eq!(
            parse_sort("metrics.acc DESC, params.lr, attributes.start_time asc").unwrap(),
            vec![
                SortKey::desc(metric("acc")),
                SortKey::asc(Field::Param("lr".into())),
                SortKey::asc(Field::Attribute(Attribute::Created)),
            ]
        );
        assert_eq!(
            SortKey::parse("metrics.acc").unwrap(),
            SortKey::asc(metric("acc"))
        );
        assert_eq!(
            SortKey::parse("metrics.acc sideways")
                .unwrap_err()
                .to_string(),
            "unexpected 'sideways' at column 13, expected ASC, DESC, ',' or the end of the sort"
        );
        assert!(parse_sort("dataset.digest").is_err());
        assert_eq!(parse_sort("").unwrap(), vec![]);
    }

    #[test]
    fn hostile_nesting_is_refused_with_the_bound_it_broke() {
        // 2,500 '(' in a 5 KB URL used to overflow the stack and abort the server.
        for src in [
            "(".repeat(2_500),
            format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000)),
            "NOT ".repeat(100_000) + "a",
            "not (".repeat(40) + "a" + &")".repeat(40),
        ] {
            let e = parse(&src).unwrap_err();
            assert!(
                matches!(e.kind, QueryErrorKind::TooLarge { .. }),
                "{e} for {}…",
                &src[..20]
            );
            let msg = e.to_string();
            assert!(
                msg.contains("levels of nesting") || msg.contains("bytes"),
                "{msg}"
            );
        }
        let e = parse(&"(".repeat(2_500)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the query has more than 64 levels of nesting (parentheses and NOT) (at column 65)"
        );
        // The deepest query allowed parses and prints back.
        let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&ok).unwrap(), Query::Text("a".into()));
        let nots = "NOT ".repeat(MAX_DEPTH) + "a";
        let q = parse(&nots).unwrap();
        assert_eq!(parse(&q.to_string()).unwrap(), q);
    }

    #[test]
    fn long_and_wide_queries_are_refused_with_the_bound_they_broke() {
        let long = format!("name = '{}'", "x".repeat(MAX_QUERY_LEN));
        let e = parse(&long).unwrap_err();
        assert!(e.to_string().contains("more than 262144 bytes"), "{e}");
        assert!(parse_sort(&"a".repeat(MAX_QUERY_LEN + 1)).is_err());

        let terms = vec!["a"; MAX_TERMS + 1].join(" or ");
        let e = parse(&terms).unwrap_err();
        assert!(e.to_string().contains("more than 1000 terms"), "{e}");
        assert!(parse(&vec!["a"; MAX_TERMS].join(" or ")).is_ok());

        let list = format!(
            "tags.k IN ({})",
            (0..=MAX_LIST)
                .map(|i| format!("'{i}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let e = parse(&list).unwrap_err();
        assert!(
            e.to_string().contains("more than 10000 values in one list"),
            "{e}"
        );
    }
}
