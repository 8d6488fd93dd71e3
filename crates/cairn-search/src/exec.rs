//! Running a query: the tree is compiled against the schema into a plan, the plan is evaluated
//! segment by segment into a bit set of matching documents, and the matches are ordered by the
//! sort keys with the run id as the last tie-breaker, so a page is the same every time it is
//! asked for.
//!
//! Leaves read tantivy's structures directly: postings of one term (`=`, `IN`), a walk over the
//! terms under one key with a predicate (`!=`, `LIKE`, text ranges, numbers in text), a scan of
//! one f64 fast column (metric and numeric param ranges, times), and tantivy's own term and
//! phrase queries on the stemmed free-text field. `AND`, `OR`, `NOT` are bit set operations,
//! which keeps `NOT` exact (a run without the field is not `x = 1`, so it is `NOT x = 1`).

use std::cmp::Ordering;
use std::ops::Bound as StdBound;

use cairn_model::{ParamValue, RunId};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{EnableScoring, PhraseQuery, Query as _, TermQuery, Weight};
use tantivy::schema::{Field as TField, IndexRecordOption};
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED, Term};

use crate::query::{
    Attribute, Field, LineageField, Op, Query, ReviewField, SortKey, Value, parse_date,
};
use crate::schema::{ACTIVE, DELETED, Fields, ID_HI, ID_LO, json_column, json_str_term};
use crate::{Lifecycle, LikePattern, Page, SearchError, SearchRequest};

/// A compiled query.
enum Plan {
    All,
    Nothing,
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    /// Documents holding this exact term.
    Term(Term),
    /// Documents holding a term under `prefix` whose rest satisfies `pred`.
    Terms {
        field: TField,
        prefix: Vec<u8>,
        pred: TextPred,
    },
    /// Documents whose value in this f64 column satisfies `pred`.
    Num {
        column: String,
        pred: NumPred,
    },
    /// Documents with a value (NaN included) in this f64 column.
    NumPresent {
        column: String,
    },
    /// Free text, as tantivy's own term or phrase query.
    Text(Box<dyn Weight>),
}

/// A numeric condition: a closed interval (exclusive ends are stepped to the next float),
/// possibly with one value cut out (`!=`).
#[derive(Debug, Clone, Copy)]
struct NumPred {
    lo: f64,
    hi: f64,
    except: Option<f64>,
}

impl NumPred {
    fn new(lo: StdBound<f64>, hi: StdBound<f64>) -> NumPred {
        // -0.0 and 0.0 are equal as numbers but not as fast-field bits: an included zero
        // takes both. (`next_up`/`next_down` step over both zeros.)
        let lo = match lo {
            StdBound::Included(v) => {
                if v == 0.0 {
                    -0.0
                } else {
                    v
                }
            }
            StdBound::Excluded(v) => v.next_up(),
            StdBound::Unbounded => f64::NEG_INFINITY,
        };
        let hi = match hi {
            StdBound::Included(v) => {
                if v == 0.0 {
                    0.0
                } else {
                    v
                }
            }
            StdBound::Excluded(v) => v.next_down(),
            StdBound::Unbounded => f64::INFINITY,
        };
        NumPred {
            lo,
            hi,
            except: None,
        }
    }

    fn of(op: Op, v: f64) -> NumPred {
        use StdBound::*;
        match op {
            Op::Gt => Self::new(Excluded(v), Unbounded),
            Op::Ge => Self::new(Included(v), Unbounded),
            Op::Lt => Self::new(Unbounded, Excluded(v)),
            Op::Le => Self::new(Unbounded, Included(v)),
            Op::Ne => NumPred {
                except: Some(v),
                ..Self::new(Unbounded, Unbounded)
            },
            _ => Self::new(Included(v), Included(v)),
        }
    }

    fn holds(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi && self.except != Some(v)
    }
}

/// A condition on the text of one term.
enum TextPred {
    Any,
    Ne(String),
    NotIn(Vec<String>),
    /// `LIKE` or `ILIKE`: the pattern knows which.
    Like(LikePattern),
    /// Lexicographic range.
    Lex(StdBound<String>, StdBound<String>),
    /// The text read as a number.
    Num(NumPred),
}

impl TextPred {
    fn holds(&self, s: &str) -> bool {
        match self {
            TextPred::Any => true,
            TextPred::Ne(v) => s != v,
            TextPred::NotIn(vs) => !vs.iter().any(|v| v == s),
            TextPred::Like(p) => p.matches(s),
            TextPred::Lex(lo, hi) => {
                let above = match lo {
                    StdBound::Included(l) => s >= l.as_str(),
                    StdBound::Excluded(l) => s > l.as_str(),
                    StdBound::Unbounded => true,
                };
                let below = match hi {
                    StdBound::Included(h) => s <= h.as_str(),
                    StdBound::Excluded(h) => s < h.as_str(),
                    StdBound::Unbounded => true,
                };
                above && below
            }
            TextPred::Num(p) => ParamValue::infer(s).as_f64().is_some_and(|v| p.holds(v)),
        }
    }
}

/// Where a field's values live in the index.
enum Loc {
    /// A keyword field, or one key of a JSON keyword field.
    Str { field: TField, key: Option<String> },
    /// An f64 fast column.
    Num(String),
    /// A param: its text, and its number when it has one.
    Param(String),
    /// Cairn does not have it (`artifact_uri`).
    Missing,
}

struct Compiler<'a> {
    f: &'a Fields,
    searcher: &'a Searcher,
    now_ms: i64,
}

impl Compiler<'_> {
    fn loc(&self, field: &Field) -> Loc {
        let f = self.f;
        let s = |field| Loc::Str { field, key: None };
        match field {
            Field::Metric(k) => Loc::Num(json_column("metrics", k)),
            Field::Eval(k) => Loc::Num(json_column("evals", k)),
            Field::Fairness(k) => Loc::Num(json_column("fairness", k)),
            Field::Param(k) => Loc::Param(k.clone()),
            Field::Tag(k) => Loc::Str {
                field: f.tags,
                key: Some(k.clone()),
            },
            Field::Attribute(a) => match a {
                Attribute::RunId => s(f.id),
                Attribute::RunName => s(f.name),
                Attribute::Status => s(f.status),
                Attribute::Owner => s(f.owner),
                Attribute::Created => Loc::Num("created".into()),
                Attribute::Ended => Loc::Num("ended".into()),
                Attribute::ArtifactUri => Loc::Missing,
                Attribute::Experiment => s(f.experiment),
                Attribute::ExperimentId => s(f.experiment_id),
                Attribute::Compliance => s(f.compliance),
            },
            Field::Lineage(l) => s(match l {
                LineageField::DatasetName => f.dataset_name,
                LineageField::DatasetDigest => f.dataset_digest,
                LineageField::DatasetContext => f.dataset_context,
                LineageField::DatasetUri => f.dataset_uri,
                LineageField::FeatureSetName => f.feature_set_name,
                LineageField::FeatureSetVersion => f.feature_set_version,
                LineageField::CodeCommit => f.code_commit,
                LineageField::CodeBranch => f.code_branch,
                LineageField::CodeRepo => f.code_repo,
                LineageField::InfraHost => f.infra_host,
                LineageField::InfraGpu => f.infra_gpu,
                LineageField::InfraOs => f.infra_os,
                LineageField::InfraInstanceType => f.infra_instance_type,
            }),
            Field::Cost(c) => Loc::Num(c.column().into()),
            Field::Review(r) => s(match r {
                ReviewField::Id => f.review_id,
                ReviewField::Decision => f.review_decision,
                ReviewField::Confidence => f.review_confidence,
                ReviewField::Author => f.review_author,
                ReviewField::ActionOwner => f.review_action_owner,
            }),
        }
    }

    fn compile(&self, q: &Query) -> Result<Plan, SearchError> {
        Ok(match q {
            Query::All => Plan::All,
            Query::And(parts) => Plan::And(
                parts
                    .iter()
                    .map(|p| self.compile(p))
                    .collect::<Result<_, _>>()?,
            ),
            Query::Or(parts) => Plan::Or(
                parts
                    .iter()
                    .map(|p| self.compile(p))
                    .collect::<Result<_, _>>()?,
            ),
            Query::Not(inner) => Plan::Not(Box::new(self.compile(inner)?)),
            Query::Text(t) => self.text(t)?,
            Query::Compare(c) => self.compare(&c.field, c.op, &c.value)?,
            Query::Range(r) => {
                let bound = |b: &crate::query::Bound| {
                    if b.inclusive {
                        StdBound::Included(b.value.clone())
                    } else {
                        StdBound::Excluded(b.value.clone())
                    }
                };
                self.range(&r.field, bound(&r.low), bound(&r.high))
            }
        })
    }

    /// A number for numeric comparisons: the number itself, a relative time, a date.
    fn number(&self, v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => Some(*n),
            Value::Ago(a) => Some(a.before(self.now_ms) as f64),
            Value::Text(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .or_else(|| parse_date(t).map(|ms| ms as f64)),
            _ => None,
        }
    }

    fn range(&self, field: &Field, lo: StdBound<Value>, hi: StdBound<Value>) -> Plan {
        let num = |b: StdBound<Value>| match b {
            StdBound::Included(v) => self.number(&v).map(StdBound::Included),
            StdBound::Excluded(v) => self.number(&v).map(StdBound::Excluded),
            StdBound::Unbounded => Some(StdBound::Unbounded),
        };
        let text = |b: StdBound<Value>| match b {
            StdBound::Included(Value::Text(t)) => StdBound::Included(t),
            StdBound::Excluded(Value::Text(t)) => StdBound::Excluded(t),
            _ => StdBound::Unbounded,
        };
        let textual = |b: &StdBound<Value>| {
            matches!(
                b,
                StdBound::Included(Value::Text(_)) | StdBound::Excluded(Value::Text(_))
            )
        };
        let loc = self.loc(field);
        let is_num = matches!(loc, Loc::Num(_)) || !(textual(&lo) || textual(&hi));
        if is_num {
            let (Some(l), Some(h)) = (num(lo), num(hi)) else {
                return Plan::Nothing;
            };
            let pred = NumPred::new(l, h);
            match loc {
                Loc::Num(column) => Plan::Num { column, pred },
                Loc::Param(k) => Plan::Num {
                    column: json_column("params_num", &k),
                    pred,
                },
                Loc::Str { field, key } => self.terms(field, key.as_deref(), TextPred::Num(pred)),
                Loc::Missing => Plan::Nothing,
            }
        } else {
            let pred = TextPred::Lex(text(lo), text(hi));
            match loc {
                Loc::Str { field, key } => self.terms(field, key.as_deref(), pred),
                Loc::Param(k) => self.terms(self.f.params, Some(&k), pred),
                Loc::Num(_) | Loc::Missing => Plan::Nothing,
            }
        }
    }

    fn terms(&self, field: TField, key: Option<&str>, pred: TextPred) -> Plan {
        let prefix = match key {
            Some(k) => json_str_term(field, k, "")
                .serialized_value_bytes()
                .to_vec(),
            None => Vec::new(),
        };
        Plan::Terms {
            field,
            prefix,
            pred,
        }
    }

    fn term(&self, field: TField, key: Option<&str>, value: &str) -> Plan {
        Plan::Term(match key {
            Some(k) => json_str_term(field, k, value),
            None => Term::from_field_text(field, value),
        })
    }

    fn compare(&self, field: &Field, op: Op, value: &Value) -> Result<Plan, SearchError> {
        let loc = self.loc(field);
        // Text literals as stored: status upper case, run and experiment ids lower case.
        let norm = |s: &str| -> String {
            match field {
                Field::Attribute(Attribute::Status) => s.to_ascii_uppercase(),
                Field::Attribute(
                    Attribute::RunId | Attribute::ExperimentId | Attribute::Compliance,
                )
                | Field::Review(
                    ReviewField::Id | ReviewField::Decision | ReviewField::Confidence,
                ) => s.to_ascii_lowercase(),
                _ => s.to_owned(),
            }
        };
        let present = |loc: &Loc| match loc {
            Loc::Num(column) => Plan::NumPresent {
                column: column.clone(),
            },
            Loc::Param(k) => self.terms(self.f.params, Some(k), TextPred::Any),
            Loc::Str { field, key } => self.terms(*field, key.as_deref(), TextPred::Any),
            Loc::Missing => Plan::Nothing,
        };
        let (field_t, key) = match &loc {
            Loc::Str { field, key } => (Some(*field), key.clone()),
            Loc::Param(k) => (Some(self.f.params), Some(k.clone())),
            _ => (None, None),
        };
        Ok(match (op, value) {
            (Op::IsNull, _) => Plan::Not(Box::new(present(&loc))),
            (Op::IsNotNull, _) => present(&loc),
            (_, Value::Number(_) | Value::Ago(_)) | (_, Value::Text(_))
                if matches!(loc, Loc::Num(_)) =>
            {
                let Some(v) = self.number(value) else {
                    return Ok(Plan::Nothing);
                };
                let Loc::Num(column) = loc else {
                    return Ok(Plan::Nothing);
                };
                Plan::Num {
                    column,
                    pred: NumPred::of(op, v),
                }
            }
            (_, Value::Number(n)) => {
                let pred = NumPred::of(op, *n);
                match loc {
                    Loc::Param(k) => Plan::Num {
                        column: json_column("params_num", &k),
                        pred,
                    },
                    Loc::Str { field, key } => {
                        self.terms(field, key.as_deref(), TextPred::Num(pred))
                    }
                    _ => Plan::Nothing,
                }
            }
            (_, Value::Ago(_)) => Plan::Nothing,
            (_, Value::Text(t)) => {
                let Some(f) = field_t else {
                    return Ok(Plan::Nothing);
                };
                let k = key.as_deref();
                let t = norm(t);
                match op {
                    Op::Eq => self.term(f, k, &t),
                    Op::Ne => self.terms(f, k, TextPred::Ne(t)),
                    Op::Like => self.terms(f, k, TextPred::Like(LikePattern::case_sensitive(&t)?)),
                    Op::ILike => {
                        self.terms(f, k, TextPred::Like(LikePattern::case_insensitive(&t)?))
                    }
                    Op::Gt => self.terms(
                        f,
                        k,
                        TextPred::Lex(StdBound::Excluded(t), StdBound::Unbounded),
                    ),
                    Op::Ge => self.terms(
                        f,
                        k,
                        TextPred::Lex(StdBound::Included(t), StdBound::Unbounded),
                    ),
                    Op::Lt => self.terms(
                        f,
                        k,
                        TextPred::Lex(StdBound::Unbounded, StdBound::Excluded(t)),
                    ),
                    Op::Le => self.terms(
                        f,
                        k,
                        TextPred::Lex(StdBound::Unbounded, StdBound::Included(t)),
                    ),
                    _ => Plan::Nothing,
                }
            }
            (Op::In | Op::NotIn, Value::List(items)) => {
                let Some(f) = field_t else {
                    return Ok(Plan::Nothing);
                };
                let k = key.as_deref();
                let items: Vec<String> = items.iter().map(|s| norm(s)).collect();
                if op == Op::In {
                    Plan::Or(items.iter().map(|v| self.term(f, k, v)).collect())
                } else {
                    self.terms(f, k, TextPred::NotIn(items))
                }
            }
            _ => Plan::Nothing,
        })
    }

    fn text(&self, text: &str) -> Result<Plan, SearchError> {
        let field = self.f.text;
        let mut analyzer = self
            .searcher
            .index()
            .tokenizer_for_field(field)
            .map_err(SearchError::index)?;
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            let tok = stream.token();
            terms.push((tok.position, Term::from_field_text(field, &tok.text)));
        }
        let scoring = EnableScoring::disabled_from_searcher(self.searcher);
        let weight = match terms.len() {
            0 => return Ok(Plan::All),
            1 => {
                let (_, t) = terms.remove(0);
                TermQuery::new(t, IndexRecordOption::Basic).weight(scoring)
            }
            _ => PhraseQuery::new_with_offset(terms).weight(scoring),
        }
        .map_err(SearchError::index)?;
        Ok(Plan::Text(weight))
    }
}

/// A set of documents of one segment.
#[derive(Clone)]
struct Bits {
    words: Vec<u64>,
    len: u32,
}

impl Bits {
    fn empty(len: u32) -> Bits {
        Bits {
            words: vec![0; (len as usize).div_ceil(64)],
            len,
        }
    }

    fn full(len: u32) -> Bits {
        let mut b = Bits {
            words: vec![u64::MAX; (len as usize).div_ceil(64)],
            len,
        };
        b.trim();
        b
    }

    fn trim(&mut self) {
        let rem = self.len % 64;
        if rem != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }

    fn insert(&mut self, doc: DocId) {
        if doc < self.len {
            self.words[(doc / 64) as usize] |= 1 << (doc % 64);
        }
    }

    fn and(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn or(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn not(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    fn iter(&self) -> impl Iterator<Item = DocId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }
}

fn add_docset(bits: &mut Bits, docs: &mut dyn DocSet) {
    let mut doc = docs.doc();
    while doc != TERMINATED {
        bits.insert(doc);
        doc = docs.advance();
    }
}

fn eval(plan: &Plan, seg: &SegmentReader) -> Result<Bits, SearchError> {
    let n = seg.max_doc();
    Ok(match plan {
        Plan::All => Bits::full(n),
        Plan::Nothing => Bits::empty(n),
        Plan::And(parts) => {
            let mut acc = Bits::full(n);
            for p in parts {
                acc.and(&eval(p, seg)?);
                if acc.is_empty() {
                    break;
                }
            }
            acc
        }
        Plan::Or(parts) => {
            let mut acc = Bits::empty(n);
            for p in parts {
                acc.or(&eval(p, seg)?);
            }
            acc
        }
        Plan::Not(inner) => {
            let mut b = eval(inner, seg)?;
            b.not();
            b
        }
        Plan::Term(term) => {
            let mut b = Bits::empty(n);
            let inv = seg
                .inverted_index(term.field())
                .map_err(SearchError::index)?;
            if let Some(mut postings) = inv
                .read_postings(term, IndexRecordOption::Basic)
                .map_err(SearchError::io_index)?
            {
                add_docset(&mut b, &mut postings);
            }
            b
        }
        Plan::Terms {
            field,
            prefix,
            pred,
        } => {
            let mut b = Bits::empty(n);
            let inv = seg.inverted_index(*field).map_err(SearchError::index)?;
            let mut stream = inv
                .terms()
                .range()
                .ge(prefix)
                .into_stream()
                .map_err(SearchError::io_index)?;
            while stream.advance() {
                let key = stream.key();
                let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
                    break;
                };
                let Ok(text) = std::str::from_utf8(rest) else {
                    continue;
                };
                if !pred.holds(text) {
                    continue;
                }
                let mut postings = inv
                    .read_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)
                    .map_err(SearchError::io_index)?;
                add_docset(&mut b, &mut postings);
            }
            b
        }
        Plan::Num { column, pred } => {
            let mut b = Bits::empty(n);
            if let Some(col) = f64_column(seg, column)?
                && pred.lo <= pred.hi
            {
                if pred.lo.is_finite() && pred.hi.is_finite() {
                    let mut docs = Vec::new();
                    col.get_docids_for_value_range(pred.lo..=pred.hi, 0..n, &mut docs);
                    for d in docs {
                        if pred.except.is_none() || col.first(d).is_some_and(|v| pred.holds(v)) {
                            b.insert(d);
                        }
                    }
                } else {
                    // A half-open range (`< 0.61`): the column's range lookup mishandles an
                    // infinite bound (it matched every document), so test each value instead —
                    // a scan of one f64 per document, which also keeps ±inf values in range.
                    for d in 0..n {
                        if col.first(d).is_some_and(|v| pred.holds(v)) {
                            b.insert(d);
                        }
                    }
                }
            }
            b
        }
        Plan::NumPresent { column } => {
            let mut b = Bits::empty(n);
            if let Some(col) = f64_column(seg, column)? {
                for d in 0..n {
                    if col.first(d).is_some() {
                        b.insert(d);
                    }
                }
            }
            b
        }
        Plan::Text(weight) => {
            let mut b = Bits::empty(n);
            let mut scorer = weight.scorer(seg, 1.0).map_err(SearchError::index)?;
            add_docset(&mut b, scorer.as_mut());
            b
        }
    })
}

fn f64_column(seg: &SegmentReader, name: &str) -> Result<Option<Column<f64>>, SearchError> {
    seg.fast_fields()
        .column_opt::<f64>(name)
        .map_err(SearchError::index)
}

fn str_column(seg: &SegmentReader, name: &str) -> Result<Option<StrColumn>, SearchError> {
    seg.fast_fields().str(name).map_err(SearchError::index)
}

/// One sort key's value for one document, comparable within its segment.
#[derive(Debug, Clone, Copy)]
enum Part {
    Num(f64),
    /// A term ordinal in the segment's dictionary of that column (ordinal order is text order).
    Ord(u64),
    Id,
    Missing,
}

/// One sort key's value, comparable across segments.
#[derive(Debug, Clone)]
enum GPart {
    Num(f64),
    Str(String),
    Id,
    Missing,
}

/// How one sort key reads a segment.
enum KeyReader {
    Num(Option<Column<f64>>),
    Str(Option<StrColumn>),
    /// Numbers first (by value), then text.
    Param(Option<Column<f64>>, Option<StrColumn>),
    Id,
    Missing,
}

impl KeyReader {
    fn open(key: &SortKey, seg: &SegmentReader) -> Result<KeyReader, SearchError> {
        let sc = |name: &str| str_column(seg, name);
        Ok(match &key.field {
            Field::Metric(k) => KeyReader::Num(f64_column(seg, &json_column("metrics", k))?),
            Field::Eval(k) => KeyReader::Num(f64_column(seg, &json_column("evals", k))?),
            Field::Fairness(k) => KeyReader::Num(f64_column(seg, &json_column("fairness", k))?),
            Field::Param(k) => KeyReader::Param(
                f64_column(seg, &json_column("params_num", k))?,
                sc(&json_column("params", k))?,
            ),
            Field::Tag(k) => KeyReader::Str(sc(&json_column("tags", k))?),
            Field::Attribute(a) => match a {
                Attribute::RunId => KeyReader::Id,
                Attribute::Created => KeyReader::Num(f64_column(seg, "created")?),
                Attribute::Ended => KeyReader::Num(f64_column(seg, "ended")?),
                Attribute::ArtifactUri => KeyReader::Missing,
                Attribute::RunName => KeyReader::Str(sc("name")?),
                Attribute::Status => KeyReader::Str(sc("status")?),
                Attribute::Owner => KeyReader::Str(sc("owner")?),
                Attribute::Experiment => KeyReader::Str(sc("experiment")?),
                Attribute::ExperimentId => KeyReader::Str(sc("experiment_id")?),
                Attribute::Compliance => KeyReader::Str(sc("compliance")?),
            },
            Field::Lineage(_) | Field::Review(_) => KeyReader::Missing,
            Field::Cost(c) => KeyReader::Num(f64_column(seg, c.column())?),
        })
    }

    fn part(&self, doc: DocId) -> Part {
        let ord = |c: &Option<StrColumn>| {
            c.as_ref()
                .and_then(|c| c.ords().first(doc))
                .map_or(Part::Missing, Part::Ord)
        };
        let num = |c: &Option<Column<f64>>| {
            c.as_ref()
                .and_then(|c| c.first(doc))
                .filter(|v| !v.is_nan())
                .map_or(Part::Missing, Part::Num)
        };
        match self {
            KeyReader::Num(c) => num(c),
            KeyReader::Str(c) => ord(c),
            KeyReader::Param(n, s) => match num(n) {
                Part::Missing => ord(s),
                p => p,
            },
            KeyReader::Id => Part::Id,
            KeyReader::Missing => Part::Missing,
        }
    }

    fn global(&self, p: Part) -> Result<GPart, SearchError> {
        Ok(match p {
            Part::Num(v) => GPart::Num(v),
            Part::Id => GPart::Id,
            Part::Missing => GPart::Missing,
            Part::Ord(o) => {
                let col = match self {
                    KeyReader::Str(Some(c)) | KeyReader::Param(_, Some(c)) => c,
                    _ => return Ok(GPart::Missing),
                };
                let mut s = String::new();
                col.ord_to_str(o, &mut s).map_err(SearchError::io_index)?;
                GPart::Str(s)
            }
        })
    }
}

/// A sort key's value, within a segment ([`Part`]) or across segments ([`GPart`]).
trait SortPart {
    /// 0 number, 1 text, 2 the run id, 3 missing: numbers sort before text.
    fn rank(&self) -> u8;
    /// Compares two values of the same rank (number or text).
    fn cmp_same(&self, other: &Self) -> Ordering;
}

impl SortPart for Part {
    fn rank(&self) -> u8 {
        match self {
            Part::Num(_) => 0,
            Part::Ord(_) => 1,
            Part::Id => 2,
            Part::Missing => 3,
        }
    }

    fn cmp_same(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Part::Num(a), Part::Num(b)) => a.total_cmp(b),
            (Part::Ord(a), Part::Ord(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

impl SortPart for GPart {
    fn rank(&self) -> u8 {
        match self {
            GPart::Num(_) => 0,
            GPart::Str(_) => 1,
            GPart::Id => 2,
            GPart::Missing => 3,
        }
    }

    fn cmp_same(&self, other: &Self) -> Ordering {
        match (self, other) {
            (GPart::Num(a), GPart::Num(b)) => a.total_cmp(b),
            (GPart::Str(a), GPart::Str(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// Orders two values of one key; a missing value sorts last whatever the direction.
fn cmp_key<P: SortPart>(a: &P, b: &P, descending: bool, ids: (u128, u128)) -> Ordering {
    let (ra, rb) = (a.rank(), b.rank());
    if ra == 3 || rb == 3 {
        return ra.cmp(&rb);
    }
    let o = match ra.cmp(&rb) {
        Ordering::Equal if ra == 2 => ids.0.cmp(&ids.1),
        Ordering::Equal => a.cmp_same(b),
        o => o,
    };
    if descending { o.reverse() } else { o }
}

/// Orders two documents by every key, then by run id.
fn cmp_all<P: SortPart>(a: &[P], b: &[P], sort: &[SortKey], ids: (u128, u128)) -> Ordering {
    for ((x, y), key) in a.iter().zip(b).zip(sort) {
        let o = cmp_key(x, y, key.descending, ids);
        if o != Ordering::Equal {
            return o;
        }
    }
    ids.0.cmp(&ids.1)
}

struct Hit {
    id: u128,
    keys: Vec<GPart>,
}

pub(crate) fn search(
    f: &Fields,
    searcher: &Searcher,
    req: &SearchRequest,
) -> Result<Page, SearchError> {
    let now_ms = req.now_ms.unwrap_or_else(crate::now_ms);
    let c = Compiler {
        f,
        searcher,
        now_ms,
    };
    let mut parts = vec![c.compile(&req.query)?];
    match req.lifecycle {
        Lifecycle::Active => parts.push(Plan::Term(Term::from_field_text(f.lifecycle, ACTIVE))),
        Lifecycle::Deleted => parts.push(Plan::Term(Term::from_field_text(f.lifecycle, DELETED))),
        Lifecycle::All => {}
    }
    if !req.experiments.is_empty() {
        parts.push(Plan::Or(
            req.experiments
                .iter()
                .map(|e| Plan::Term(Term::from_field_text(f.experiment_id, &e.to_hex())))
                .collect(),
        ));
    }
    let plan = Plan::And(parts);
    let default_sort = [SortKey::desc(Field::Attribute(Attribute::Created))];
    let sort: &[SortKey] = if req.sort.is_empty() {
        &default_sort
    } else {
        &req.sort
    };
    let want = req.offset.saturating_add(req.limit);
    let mut total: u64 = 0;
    let mut hits: Vec<Hit> = Vec::new();
    for seg in searcher.segment_readers() {
        let bits = eval(&plan, seg)?;
        let hi = seg.fast_fields().u64(ID_HI).map_err(SearchError::index)?;
        let lo = seg.fast_fields().u64(ID_LO).map_err(SearchError::index)?;
        let readers = sort
            .iter()
            .map(|k| KeyReader::open(k, seg))
            .collect::<Result<Vec<_>, _>>()?;
        let nk = readers.len();
        let mut ids: Vec<u128> = Vec::new();
        let mut docs: Vec<DocId> = Vec::new();
        let mut flat: Vec<Part> = Vec::new();
        for doc in bits.iter() {
            if seg.is_deleted(doc) {
                continue;
            }
            total += 1;
            if want == 0 {
                continue;
            }
            let id = (u128::from(hi.first(doc).unwrap_or(0)) << 64)
                | u128::from(lo.first(doc).unwrap_or(0));
            ids.push(id);
            docs.push(doc);
            flat.extend(readers.iter().map(|r| r.part(doc)));
        }
        if ids.is_empty() {
            continue;
        }
        let cmp = |a: &usize, b: &usize| -> Ordering {
            cmp_all(
                &flat[a * nk..(a + 1) * nk],
                &flat[b * nk..(b + 1) * nk],
                sort,
                (ids[*a], ids[*b]),
            )
        };
        let mut order: Vec<usize> = (0..ids.len()).collect();
        if order.len() > want {
            order.select_nth_unstable_by(want - 1, cmp);
            order.truncate(want);
        }
        for i in order {
            let keys = readers
                .iter()
                .enumerate()
                .map(|(k, r)| r.global(flat[i * nk + k]))
                .collect::<Result<Vec<_>, _>>()?;
            hits.push(Hit { id: ids[i], keys });
        }
    }
    hits.sort_by(|a, b| cmp_all(&a.keys, &b.keys, sort, (a.id, b.id)));
    let runs: Vec<RunId> = hits
        .iter()
        .skip(req.offset)
        .take(req.limit)
        .filter_map(|h| format!("{:032x}", h.id).parse().ok())
        .collect();
    let end = req.offset.saturating_add(runs.len());
    Ok(Page {
        next_offset: (runs.len() == req.limit && (end as u64) < total).then_some(end),
        runs,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_bounds_step_past_excluded_values() {
        let p = NumPred::of(Op::Gt, 0.5);
        assert!(!p.holds(0.5) && p.holds(0.5f64.next_up()));
        let p = NumPred::of(Op::Le, 0.0);
        assert!(p.holds(-0.0) && p.holds(0.0) && !p.holds(1e-300));
        let p = NumPred::of(Op::Eq, 0.0);
        assert!(p.holds(-0.0));
        let p = NumPred::of(Op::Ne, 1.0);
        assert!(!p.holds(1.0) && p.holds(2.0) && !p.holds(f64::NAN));
    }
}
