//! The query language: its syntax tree, the parser (text → [`Query`]) and the printer
//! ([`Query`]'s `Display`, which the parser reads back to the same tree).
//!
//! Every MLflow `search_runs` filter is a query and means the same:
//! `metrics.acc > 0.9 and params.optimizer = 'adam' and tags.owner LIKE 'ali%'`. On top of
//! MLflow's AND-joined clauses Cairn adds `OR`, `NOT`, parentheses, implicit AND between terms,
//! free text (`smoothing`, `"label smoothing"`), shorthands (`owner:alice`, `tag:baseline`,
//! `tag:stage=candidate`, `param:optimizer=adam`, `exp:resnet-sweep`, `is:running`), lineage
//! fields (`dataset.digest`, `code.commit`, `infra.gpu`, `feature_set.version`, …), two-sided
//! ranges (`0.001 <= params.lr < 0.01`), relative and calendar times (`created > -7d`,
//! `created >= '2024-05-01'`).
//!
//! Shorthands and value-first comparisons are sugar: the tree holds their canonical form, which
//! is what the printer writes.

mod cost;
mod lexer;
mod parser;

use std::fmt;

pub use cost::CostField;
pub use parser::{parse, parse_sort};

/// A parse error: the 1-based column (in characters) where it happened and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct QueryError {
    pub column: usize,
    pub kind: QueryErrorKind,
}

/// What was wrong with a query. Every message names the offending text and says where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryErrorKind {
    /// A token the grammar does not allow here.
    Unexpected {
        column: usize,
        found: String,
        expected: String,
    },
    /// A name that looks like a field but is none.
    UnknownField {
        column: usize,
        field: String,
        expected: String,
    },
    /// Anything else: a bad number, an unterminated quote, a value of the wrong type.
    Invalid { column: usize, message: String },
    /// The query exceeds one of the bounds every query is held to ([`MAX_QUERY_LEN`],
    /// [`MAX_DEPTH`], [`MAX_TERMS`], [`MAX_LIST`]): `what` names the bound.
    TooLarge {
        column: usize,
        what: &'static str,
        limit: usize,
    },
}

/// The longest query text accepted, in bytes: an `IN` list of thousands of run ids fits.
pub const MAX_QUERY_LEN: usize = 256 * 1024;
/// How deep parentheses and `NOT`s may nest. Every pass over the tree (parsing, printing,
/// compiling to the index's query, dropping it) recurses once per level, so this bounds the stack.
pub const MAX_DEPTH: usize = 64;
/// How many comparisons and free-text terms one query may hold.
pub const MAX_TERMS: usize = 1_000;
/// How many values one `IN (…)` list may hold.
pub const MAX_LIST: usize = 10_000;

impl fmt::Display for QueryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unexpected {
                column,
                found,
                expected,
            } => write!(
                f,
                "unexpected {found} at column {column}, expected {expected}"
            ),
            Self::UnknownField {
                column,
                field,
                expected,
            } => write!(
                f,
                "unknown field '{field}' at column {column}: expected {expected}"
            ),
            Self::Invalid { column, message } => write!(f, "{message} at column {column}"),
            Self::TooLarge {
                column,
                what,
                limit,
            } => write!(
                f,
                "the query has more than {limit} {what} (at column {column})"
            ),
        }
    }
}

impl QueryError {
    pub(crate) fn unexpected(column: usize, found: impl Into<String>, expected: &str) -> Self {
        QueryError {
            column,
            kind: QueryErrorKind::Unexpected {
                column,
                found: found.into(),
                expected: expected.to_owned(),
            },
        }
    }

    pub(crate) fn invalid(column: usize, message: impl Into<String>) -> Self {
        QueryError {
            column,
            kind: QueryErrorKind::Invalid {
                column,
                message: message.into(),
            },
        }
    }

    pub(crate) fn too_large(column: usize, what: &'static str, limit: usize) -> Self {
        QueryError {
            column,
            kind: QueryErrorKind::TooLarge {
                column,
                what,
                limit,
            },
        }
    }

    pub(crate) fn unknown_field(column: usize, field: &str, expected: &str) -> Self {
        QueryError {
            column,
            kind: QueryErrorKind::UnknownField {
                column,
                field: field.to_owned(),
                expected: expected.to_owned(),
            },
        }
    }
}

/// A parsed query. `And` and `Or` always have two or more children, and never a child of their
/// own kind (the parser flattens `a AND (b AND c)`).
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every run: the empty query.
    All,
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Compare(Comparison),
    Range(Range),
    /// Free text: a word, or a quoted phrase whose words must appear in this order. Matched,
    /// stemmed, against run and experiment names, owners, notes, tag values and text params.
    Text(String),
}

impl Query {
    /// `AND` of `parts`, flattening nested `AND`s; one part is itself, none is [`Query::All`].
    pub fn and(parts: impl IntoIterator<Item = Query>) -> Query {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Query::And(inner) => out.extend(inner),
                Query::All => {}
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Query::All,
            1 => out.pop().unwrap_or(Query::All),
            _ => Query::And(out),
        }
    }

    /// `OR` of `parts`, flattening nested `OR`s; one part is itself.
    pub fn or(parts: impl IntoIterator<Item = Query>) -> Query {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Query::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Query::All,
            1 => out.pop().unwrap_or(Query::All),
            _ => Query::Or(out),
        }
    }
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: Field,
    pub op: Op,
    pub value: Value,
}

/// `low <(=) field <(=) high`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub field: Field,
    pub low: Bound,
    pub high: Bound,
}

/// One end of a [`Range`]: a number, a time ([`Value::Ago`] or a date text) and whether it is
/// included.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub inclusive: bool,
}

/// What a comparison reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// A summary metric's last value.
    Metric(String),
    /// A param's logged text; compared with a number, its numeric value.
    Param(String),
    /// A tag's value; compared with a number, its numeric value.
    Tag(String),
    Attribute(Attribute),
    Lineage(LineageField),
    /// A cost figure (`cost.usd`, `cost.idle_share`, …).
    Cost(CostField),
    /// An evaluation's overall metric: `BENCHMARK.METRIC` (`eval.imagenet-val.acc`).
    Eval(String),
    /// The worst fairness figure of a metric over the run's evaluations and sensitive
    /// attributes: `METRIC.difference` (the largest) or `METRIC.ratio` (the smallest).
    Fairness(String),
    /// What the run's reviews say (any of them): `review.decision`, `review.confidence`, ….
    Review(ReviewField),
}

/// A run's reviews, as fields. A run can have several reviews: a comparison holds when it holds
/// for any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewField {
    /// A review's id (`is:reviewed` is `review.id IS NOT NULL`).
    Id,
    /// adopt, iterate, abandon.
    Decision,
    /// low, medium, high (a calibrated probability as its level).
    Confidence,
    /// The member who wrote it.
    Author,
    /// The owner of an *open* next action (`has:open-action=alice`).
    ActionOwner,
}

impl ReviewField {
    pub const ALL: [ReviewField; 5] = [
        Self::Id,
        Self::Decision,
        Self::Confidence,
        Self::Author,
        Self::ActionOwner,
    ];

    /// The name after `review.`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Decision => "decision",
            Self::Confidence => "confidence",
            Self::Author => "author",
            Self::ActionOwner => "action_owner",
        }
    }

    pub(crate) fn lookup(name: &str) -> Option<ReviewField> {
        let name = match name {
            "owner" | "action-owner" | "open_action" | "open-action" => "action_owner",
            n => n,
        };
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

/// The run's own fields. Names as printed; MLflow's `attributes.*` names and aliases parse too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `id` (`attributes.run_id`, `run_uuid`).
    RunId,
    /// `name` (`attributes.run_name`).
    RunName,
    /// `status`: RUNNING, FINISHED, FAILED, KILLED (compared case-insensitively).
    Status,
    /// `owner` (`attributes.user_id`).
    Owner,
    /// `created` (`attributes.start_time`): epoch milliseconds.
    Created,
    /// `ended` (`attributes.end_time`): epoch milliseconds.
    Ended,
    /// `artifact_uri`: Cairn has none, so it is always missing.
    ArtifactUri,
    /// `experiment`: the experiment's name.
    Experiment,
    /// `experiment_id`.
    ExperimentId,
    /// `compliance` with the run's schema: compliant, incomplete, pending, refused.
    Compliance,
}

/// A run's lineage, as fields. A run can have several datasets (and GPU models): a comparison
/// holds when it holds for any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineageField {
    /// The dataset's own name, else the name the run gave it (MLflow's `datasets.name`).
    DatasetName,
    DatasetDigest,
    /// The role the run gave the dataset: `train`, `eval` (MLflow's `datasets.context`).
    DatasetContext,
    DatasetUri,
    FeatureSetName,
    FeatureSetVersion,
    CodeCommit,
    CodeBranch,
    CodeRepo,
    InfraHost,
    InfraGpu,
    InfraOs,
    InfraInstanceType,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// Case-sensitive pattern: `%` any text, `_` one character.
    Like,
    /// Case-insensitive [`Op::Like`].
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Never NaN.
    Number(f64),
    Text(String),
    /// A time this long before the search runs (`-7d`).
    Ago(Ago),
    /// For `IN` and `NOT IN`.
    List(Vec<String>),
    /// For `IS NULL` and `IS NOT NULL`.
    Null,
}

/// `-<amount><unit>`: `-30m`, `-12h`, `-7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ago {
    pub amount: u32,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl TimeUnit {
    fn suffix(self) -> char {
        match self {
            Self::Seconds => 's',
            Self::Minutes => 'm',
            Self::Hours => 'h',
            Self::Days => 'd',
            Self::Weeks => 'w',
        }
    }

    fn from_suffix(c: char) -> Option<TimeUnit> {
        Some(match c {
            's' => Self::Seconds,
            'm' => Self::Minutes,
            'h' => Self::Hours,
            'd' => Self::Days,
            'w' => Self::Weeks,
            _ => return None,
        })
    }

    fn millis(self) -> i64 {
        match self {
            Self::Seconds => 1_000,
            Self::Minutes => 60_000,
            Self::Hours => 3_600_000,
            Self::Days => 86_400_000,
            Self::Weeks => 7 * 86_400_000,
        }
    }
}

impl Ago {
    /// The instant this long before `now_ms`.
    pub fn before(self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(i64::from(self.amount).saturating_mul(self.unit.millis()))
    }
}

/// A sort key: any metric, param, tag or attribute, ascending or descending. Runs without the
/// value sort last either way; ties are broken by run id, so pages are stable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

impl SortKey {
    pub fn asc(field: Field) -> SortKey {
        SortKey {
            field,
            descending: false,
        }
    }

    pub fn desc(field: Field) -> SortKey {
        SortKey {
            field,
            descending: true,
        }
    }

    /// Parses one MLflow `order_by` entry: `metrics.acc DESC`, `attributes.start_time`.
    pub fn parse(src: &str) -> Result<SortKey, QueryError> {
        let mut keys = parse_sort(src)?;
        match keys.len() {
            1 => Ok(keys.remove(0)),
            _ => Err(QueryError::invalid(1, "expected exactly one sort key")),
        }
    }
}

impl Field {
    /// Compares as a number (metrics, times); `LIKE` and `IN` do not apply.
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Field::Metric(_)
                | Field::Cost(_)
                | Field::Eval(_)
                | Field::Fairness(_)
                | Field::Attribute(Attribute::Created | Attribute::Ended)
        )
    }

    pub(crate) fn is_time(&self) -> bool {
        matches!(
            self,
            Field::Attribute(Attribute::Created | Attribute::Ended)
        )
    }
}

impl Attribute {
    pub const ALL: [Attribute; 10] = [
        Self::RunId,
        Self::RunName,
        Self::Status,
        Self::Owner,
        Self::Created,
        Self::Ended,
        Self::ArtifactUri,
        Self::Experiment,
        Self::ExperimentId,
        Self::Compliance,
    ];

    /// The name the printer writes (a bare field name).
    pub fn name(self) -> &'static str {
        match self {
            Self::RunId => "id",
            Self::RunName => "name",
            Self::Status => "status",
            Self::Owner => "owner",
            Self::Created => "created",
            Self::Ended => "ended",
            Self::ArtifactUri => "artifact_uri",
            Self::Experiment => "experiment",
            Self::ExperimentId => "experiment_id",
            Self::Compliance => "compliance",
        }
    }

    /// Every name it parses from, bare or after `attributes.`, lower case.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::RunId => &["id", "run_id", "run_uuid"],
            Self::RunName => &["name", "run_name"],
            Self::Status => &["status"],
            Self::Owner => &["owner", "user_id", "user"],
            Self::Created => &["created", "start_time", "creation_time", "started"],
            Self::Ended => &["ended", "end_time"],
            Self::ArtifactUri => &["artifact_uri"],
            Self::Experiment => &["experiment", "experiment_name", "exp"],
            Self::ExperimentId => &["experiment_id"],
            Self::Compliance => &["compliance"],
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Attribute> {
        let lower = name.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|a| a.aliases().contains(&lower.as_str()))
    }
}

impl LineageField {
    pub const ALL: [LineageField; 13] = [
        Self::DatasetName,
        Self::DatasetDigest,
        Self::DatasetContext,
        Self::DatasetUri,
        Self::FeatureSetName,
        Self::FeatureSetVersion,
        Self::CodeCommit,
        Self::CodeBranch,
        Self::CodeRepo,
        Self::InfraHost,
        Self::InfraGpu,
        Self::InfraOs,
        Self::InfraInstanceType,
    ];

    /// `(prefix, name)` as printed: `dataset.digest`, `infra.gpu`.
    pub fn parts(self) -> (&'static str, &'static str) {
        match self {
            Self::DatasetName => ("dataset", "name"),
            Self::DatasetDigest => ("dataset", "digest"),
            Self::DatasetContext => ("dataset", "context"),
            Self::DatasetUri => ("dataset", "uri"),
            Self::FeatureSetName => ("feature_set", "name"),
            Self::FeatureSetVersion => ("feature_set", "version"),
            Self::CodeCommit => ("code", "commit"),
            Self::CodeBranch => ("code", "branch"),
            Self::CodeRepo => ("code", "repo"),
            Self::InfraHost => ("infra", "host"),
            Self::InfraGpu => ("infra", "gpu"),
            Self::InfraOs => ("infra", "os"),
            Self::InfraInstanceType => ("infra", "instance_type"),
        }
    }

    /// The canonical lineage prefix `prefix` stands for, if any.
    fn canonical_prefix(prefix: &str) -> Option<&'static str> {
        Some(match prefix {
            "dataset" | "datasets" => "dataset",
            "feature_set" | "featureset" | "features" => "feature_set",
            "code" => "code",
            "infra" => "infra",
            _ => return None,
        })
    }

    fn lookup(prefix: &'static str, name: &str) -> Option<LineageField> {
        let name = match (prefix, name) {
            ("code", "sha" | "git_commit") => "commit",
            ("infra", "hostname") => "host",
            ("infra", "gpu_model") => "gpu",
            (_, n) => n,
        };
        Self::ALL.into_iter().find(|f| f.parts() == (prefix, name))
    }

    fn names_under(prefix: &str) -> String {
        Self::ALL
            .iter()
            .filter(|f| f.parts().0 == prefix)
            .map(|f| f.parts().1)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Characters a bare word (a field name, a key, a shorthand value, a free-text word) may hold
/// after its first one.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '@')
}

pub(crate) fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(crate) const KEYWORDS: &[&str] = &["and", "or", "not", "in", "like", "ilike", "is", "null"];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// The hint listed when a field is unknown.
pub(crate) const FIELD_HINT: &str = "metrics.KEY, params.KEY, tags.KEY, attributes.NAME, \
     datasets.NAME, eval.BENCHMARK.METRIC, fairness.METRIC.difference|ratio, review.decision|\
     confidence|author|action_owner|id, a lineage field \
     (dataset.digest, code.commit, infra.gpu, feature_set.version, …) or an attribute (id, name, \
     status, owner, created, ended, experiment, compliance)";

/// What `eval.` and `fairness.` need after them.
const EVAL_HINT: &str = "BENCHMARK.METRIC after 'eval.' (eval.imagenet-val.acc)";
const FAIRNESS_HINT: &str =
    "METRIC.difference or METRIC.ratio after 'fairness.' (fairness.acc.difference)";

/// Resolves a field name: `metrics.acc`, `tags."mlflow.user"` (quotes already removed),
/// `attributes.start_time`, `dataset.digest`, `created`. `Err` is the error's hint.
pub(crate) fn field_of(name: &str) -> Result<Field, String> {
    let Some((prefix, key)) = name.split_once('.') else {
        if let Some(c) = CostField::bare(name) {
            return Ok(Field::Cost(c));
        }
        return Attribute::from_name(name)
            .map(Field::Attribute)
            .ok_or_else(|| FIELD_HINT.to_owned());
    };
    let lower = prefix.to_ascii_lowercase();
    let dynamic = match lower.as_str() {
        "metric" | "metrics" => Some(Field::Metric as fn(String) -> Field),
        "param" | "params" | "parameter" | "parameters" => {
            Some(Field::Param as fn(String) -> Field)
        }
        "tag" | "tags" => Some(Field::Tag as fn(String) -> Field),
        _ => None,
    };
    match lower.as_str() {
        "eval" | "evals" | "evaluation" | "evaluations" => {
            // The benchmark holds no '.': the first one ends it.
            return match key.split_once('.') {
                Some((b, m)) if !b.is_empty() && !m.is_empty() => Ok(Field::Eval(key.to_owned())),
                _ => Err(EVAL_HINT.to_owned()),
            };
        }
        "fairness" => {
            return match key.rsplit_once('.') {
                Some((m, "difference" | "ratio")) if !m.is_empty() => {
                    Ok(Field::Fairness(key.to_owned()))
                }
                _ => Err(FAIRNESS_HINT.to_owned()),
            };
        }
        _ => {}
    }
    if let Some(make) = dynamic {
        if key.is_empty() {
            return Err(format!("a key after '{prefix}.'"));
        }
        return Ok(make(key.to_owned()));
    }
    let key_lower = key.to_ascii_lowercase();
    match lower.as_str() {
        "attribute" | "attributes" | "attr" | "run" => Attribute::from_name(&key_lower)
            .map(Field::Attribute)
            .ok_or_else(|| {
                format!(
                    "an attribute: {}",
                    Attribute::ALL
                        .iter()
                        .map(|a| a.aliases().join("/"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        "review" | "reviews" => ReviewField::lookup(&key_lower)
            .map(Field::Review)
            .ok_or_else(|| format!("one of {} after 'review.'", ReviewField::names())),
        "cost" => CostField::lookup(&key_lower)
            .map(Field::Cost)
            .ok_or_else(|| format!("one of {} after 'cost.'", CostField::names())),
        p => match LineageField::canonical_prefix(p) {
            Some(canon) => LineageField::lookup(canon, &key_lower)
                .map(Field::Lineage)
                .ok_or_else(|| {
                    format!(
                        "one of {} after '{prefix}.'",
                        LineageField::names_under(canon)
                    )
                }),
            None => Err(FIELD_HINT.to_owned()),
        },
    }
}

/// Whether `word` reads as a field name (so that a missing comparison after it is an error
/// rather than free text).
pub(crate) fn looks_like_field(word: &str) -> bool {
    match word.split_once('.') {
        Some((prefix, _)) => {
            let p = prefix.to_ascii_lowercase();
            LineageField::canonical_prefix(&p).is_some()
                || matches!(
                    p.as_str(),
                    "metric"
                        | "cost"
                        | "metrics"
                        | "param"
                        | "params"
                        | "parameter"
                        | "parameters"
                        | "tag"
                        | "tags"
                        | "attribute"
                        | "attributes"
                        | "attr"
                        | "run"
                        | "eval"
                        | "evals"
                        | "evaluation"
                        | "evaluations"
                        | "fairness"
                        | "review"
                        | "reviews"
                )
        }
        None => false,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch milliseconds of a UTC date or date-time: `2024-05-01`, `2024-05-01T13:45`,
/// `2024-05-01 13:45:30`, optionally ending in `Z`.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut dp = date.split('-');
    let (y, m, d) = (
        num(dp.next()?, 4)?,
        num(dp.next()?, 2)?,
        num(dp.next()?, 2)?,
    );
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = 0;
    if let Some(t) = time {
        let mut tp = t.split(':');
        let h = num(tp.next()?, 2)?;
        let mi = num(tp.next()?, 2)?;
        let se = match tp.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        if tp.next().is_some() || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + se;
    }
    Some((days_from_civil(y, m, d) * 86_400 + secs) * 1000)
}

// ---- printing ----

/// Writes `text` in single quotes, doubling any single quote inside.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(quote)?;
    for c in text.chars() {
        if c == quote {
            f.write_char(quote)?;
        }
        f.write_char(c)?;
    }
    f.write_char(quote)
}

fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    if !key.is_empty() && key.chars().all(is_word_char) {
        f.write_str(key)
    } else {
        write_quoted(f, key, '`')
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Metric(k) => {
                f.write_str("metrics.")?;
                write_key(f, k)
            }
            Field::Param(k) => {
                f.write_str("params.")?;
                write_key(f, k)
            }
            Field::Tag(k) => {
                f.write_str("tags.")?;
                write_key(f, k)
            }
            Field::Attribute(a) => f.write_str(a.name()),
            Field::Lineage(l) => {
                let (p, n) = l.parts();
                write!(f, "{p}.{n}")
            }
            Field::Eval(k) => {
                f.write_str("eval.")?;
                write_key(f, k)
            }
            Field::Fairness(k) => {
                f.write_str("fairness.")?;
                write_key(f, k)
            }
            Field::Cost(c) => write!(f, "cost.{}", c.name()),
            Field::Review(r) => write!(f, "review.{}", r.name()),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        })
    }
}

impl fmt::Display for Ago {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{}{}", self.amount, self.unit.suffix())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(t) => write_quoted(f, t, '\''),
            Value::Ago(a) => write!(f, "{a}"),
            Value::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, item, '\'')?;
                }
                f.write_str(")")
            }
            Value::Null => Ok(()),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Op::IsNull | Op::IsNotNull => write!(f, "{} {}", self.field, self.op),
            _ => write!(f, "{} {} {}", self.field, self.op, self.value),
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = |inclusive| if inclusive { "<=" } else { "<" };
        write!(
            f,
            "{} {} {} {} {}",
            self.low.value,
            op(self.low.inclusive),
            self.field,
            op(self.high.inclusive),
            self.high.value
        )
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.field,
            if self.descending { "DESC" } else { "ASC" }
        )
    }
}

fn is_bare_word(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(is_word_start)
        && chars.all(is_word_char)
        && !text.contains('.')
        && !is_keyword(text)
}

impl Query {
    fn fmt_child(&self, f: &mut fmt::Formatter<'_>, parent_and: bool) -> fmt::Result {
        match self {
            Query::Or(_) if parent_and => write!(f, "({self})"),
            Query::All => f.write_str("()"),
            _ => write!(f, "{self}"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::All => Ok(()),
            Query::And(parts) | Query::Or(parts) => {
                let and = matches!(self, Query::And(_));
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if and { " AND " } else { " OR " })?;
                    }
                    p.fmt_child(f, and)?;
                }
                Ok(())
            }
            Query::Not(inner) => match **inner {
                Query::And(_) | Query::Or(_) | Query::All => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
            Query::Compare(c) => write!(f, "{c}"),
            Query::Range(r) => write!(f, "{r}"),
            Query::Text(t) if is_bare_word(t) => f.write_str(t),
            Query::Text(t) => write_quoted(f, t, '"'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_epoch_millis() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-05-01"), Some(1_714_521_600_000));
        assert_eq!(
            parse_date("2024-05-01T01:02:03Z"),
            Some(1_714_521_600_000 + 3_723_000)
        );
        assert_eq!(
            parse_date("2024-05-01 01:02"),
            Some(1_714_521_600_000 + 3_720_000)
        );
        for bad in [
            "2024-13-01",
            "2024-5-1",
            "yesterday",
            "2024-05-01T25:00",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn ago_counts_back_from_now() {
        let a = Ago {
            amount: 7,
            unit: TimeUnit::Days,
        };
        assert_eq!(a.before(8 * 86_400_000), 86_400_000);
        assert_eq!(a.to_string(), "-7d");
    }
}
