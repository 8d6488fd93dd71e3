//! Projection tables of logged models — the models, their params, tags, latest metric values,
//! the runs that produced or read them, and the blobs their artifacts bind — so a search by a
//! filter and an order by a metric or a param are indexed queries. Derived from the shard docs
//! in the same transaction as every write, rebuilt with the other projections.

use cairn_model::{ArtifactKind, ExperimentId, LoggedModel, LoggedModelId, RunId};
use rusqlite::{
    Connection, OptionalExtension, Transaction, params, params_from_iter, types::Value,
};

use crate::Error;

pub(crate) fn create_tables(tx: &Transaction<'_>) -> Result<(), Error> {
    tx.execute_batch(
        "
CREATE TABLE IF NOT EXISTS logged_models (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, shard TEXT NOT NULL, name TEXT NOT NULL,
    source_run TEXT, status TEXT NOT NULL, model_type TEXT, status_message TEXT,
    artifact_location TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logged_models_experiment ON logged_models(experiment, deleted, created_ms);
CREATE INDEX IF NOT EXISTS logged_models_shard ON logged_models(shard);
CREATE INDEX IF NOT EXISTS logged_models_name ON logged_models(name);
CREATE INDEX IF NOT EXISTS logged_models_source_run ON logged_models(source_run);
CREATE TABLE IF NOT EXISTS logged_model_params (
    model TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, num REAL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logged_model_params_key ON logged_model_params(key, value);
CREATE TABLE IF NOT EXISTS logged_model_tags (
    model TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logged_model_tags_key ON logged_model_tags(key, value);
-- One row per (model, metric, run, dataset): the latest value of that series.
CREATE TABLE IF NOT EXISTS logged_model_metrics (
    model TEXT NOT NULL, key TEXT NOT NULL, run TEXT NOT NULL, dataset_name TEXT NOT NULL,
    dataset_digest TEXT NOT NULL, value REAL, step INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
    PRIMARY KEY (model, key, run, dataset_name, dataset_digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logged_model_metrics_key ON logged_model_metrics(key, value);
-- Runs that produced a model (role 'output', with the step) or took it as input ('input').
CREATE TABLE IF NOT EXISTS logged_model_runs (
    model TEXT NOT NULL, run TEXT NOT NULL, role TEXT NOT NULL, step INTEGER NOT NULL,
    PRIMARY KEY (model, run, role)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logged_model_runs_run ON logged_model_runs(run, role);
-- What `bound_blobs` adds to the runs' bindings, so gc keeps and sync offers a model's files.
CREATE TABLE IF NOT EXISTS logged_model_artifacts (
    model TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, kind TEXT NOT NULL,
    live INTEGER NOT NULL,
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logged_model_artifacts_hash ON logged_model_artifacts(hash, kind, live);
",
    )?;
    Ok(())
}

const CHILD_TABLES: [&str; 5] = [
    "logged_model_params",
    "logged_model_tags",
    "logged_model_metrics",
    "logged_model_runs",
    "logged_model_artifacts",
];

/// Rewrites every projection row of `m`.
pub(crate) fn upsert(tx: &Transaction<'_>, m: &LoggedModel, shard: &str) -> Result<(), Error> {
    let id = m.id.as_str();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO logged_models(id, experiment, shard, name, source_run, status,
            model_type, status_message, artifact_location, created_ms, updated_ms, deleted, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        id,
        m.experiment.to_string(),
        shard,
        m.name,
        m.source_run.map(|r| r.to_string()),
        m.status.as_str(),
        m.model_type,
        m.status_message,
        m.artifact_location,
        m.created_ms,
        m.updated_ms,
        m.deleted.is_some(),
        serde_json::to_string(m).unwrap_or_default(),
    ])?;
    for table in CHILD_TABLES {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE model = ?1"))?
            .execute([id])?;
    }
    let mut p = tx.prepare_cached(
        "INSERT INTO logged_model_params(model, key, value, num) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (k, v) in &m.params {
        p.execute(params![
            id,
            k,
            v,
            cairn_model::ParamValue::infer(v).as_f64()
        ])?;
    }
    let mut t =
        tx.prepare_cached("INSERT INTO logged_model_tags(model, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in &m.tags {
        t.execute(params![id, k, v])?;
    }
    let mut x = tx.prepare_cached(
        "INSERT OR REPLACE INTO logged_model_metrics(model, key, run, dataset_name, dataset_digest,
            value, step, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for metric in &m.metrics {
        // SQLite has no NaN: it is stored as NULL (and so matches no comparison).
        let value = (!metric.value.is_nan()).then_some(metric.value);
        x.execute(params![
            id,
            metric.key,
            metric.run.map(|r| r.to_string()).unwrap_or_default(),
            metric.dataset_name.as_deref().unwrap_or(""),
            metric.dataset_digest.as_deref().unwrap_or(""),
            value,
            metric.step,
            metric.ts_ms,
        ])?;
    }
    let mut r = tx.prepare_cached(
        "INSERT OR REPLACE INTO logged_model_runs(model, run, role, step) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (run, step) in &m.outputs {
        r.execute(params![id, run.to_string(), "output", step])?;
    }
    for run in m.inputs.keys() {
        r.execute(params![id, run.to_string(), "input", 0])?;
    }
    let mut a = tx.prepare_cached(
        "INSERT INTO logged_model_artifacts(model, path, hash, kind, live) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (path, reference) in &m.artifacts {
        let kind = match reference.kind {
            ArtifactKind::File => "file",
            ArtifactKind::Dir => "dir",
        };
        a.execute(params![
            id,
            path,
            reference.hash.to_hex(),
            kind,
            m.deleted.is_none()
        ])?;
    }
    Ok(())
}

/// Removes every projection row of the models of `shard` (before a rebuild re-projects them).
pub(crate) fn clear_shard(tx: &Transaction<'_>, shard: &str) -> Result<(), Error> {
    for table in CHILD_TABLES {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE model IN (SELECT id FROM logged_models WHERE shard = ?1)"
            ),
            [shard],
        )?;
    }
    tx.execute("DELETE FROM logged_models WHERE shard = ?1", [shard])?;
    Ok(())
}

fn parse(json: &str) -> Result<LoggedModel, Error> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        doc: "logged_models projection".into(),
        reason: e.to_string(),
    })
}

pub(crate) fn get(conn: &Connection, id: &LoggedModelId) -> Result<Option<LoggedModel>, Error> {
    conn.prepare_cached("SELECT json FROM logged_models WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get::<_, String>(0))
        .optional()?
        .map(|j| parse(&j))
        .transpose()
}

pub(crate) fn shard_of(conn: &Connection, id: &LoggedModelId) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT shard FROM logged_models WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?)
}

/// How a run relates to a logged model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    /// The run logged the model (at a step).
    Output,
    /// The run took the model as an input.
    Input,
}

/// A run's link to a logged model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunModelLink {
    pub run: RunId,
    pub model: LoggedModelId,
    pub role: ModelRole,
    /// For an output, the step the run logged it at.
    pub step: i64,
}

/// The models the runs `runs` produced or read, in the order the runs are given, then by
/// model id.
pub(crate) fn links_of_runs(conn: &Connection, runs: &[RunId]) -> Result<Vec<RunModelLink>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT model, role, step FROM logged_model_runs WHERE run = ?1 ORDER BY role DESC, model",
    )?;
    let mut out = Vec::new();
    for run in runs {
        let rows = stmt.query_map([run.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (model, role, step) = row?;
            out.push(RunModelLink {
                run: *run,
                model: model.parse().map_err(|e| Error::Corrupt {
                    doc: "logged_model_runs".into(),
                    reason: format!("{e}"),
                })?,
                role: if role == "input" {
                    ModelRole::Input
                } else {
                    ModelRole::Output
                },
                step,
            });
        }
    }
    Ok(out)
}

/// A field of a logged model a search compares or orders by.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelField {
    Attribute(ModelAttribute),
    Metric(String),
    Param(String),
    Tag(String),
}

/// A logged model's own columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelAttribute {
    Id,
    Name,
    Experiment,
    Status,
    StatusMessage,
    ModelType,
    SourceRun,
    ArtifactLocation,
    CreatedMs,
    UpdatedMs,
}

impl ModelAttribute {
    /// The projection column, as SQL (absent text reads as '', as MLflow stores it).
    fn column(self) -> &'static str {
        match self {
            ModelAttribute::Id => "m.id",
            ModelAttribute::Name => "m.name",
            ModelAttribute::Experiment => "m.experiment",
            ModelAttribute::Status => "m.status",
            ModelAttribute::StatusMessage => "coalesce(m.status_message, '')",
            ModelAttribute::ModelType => "coalesce(m.model_type, '')",
            ModelAttribute::SourceRun => "coalesce(m.source_run, '')",
            ModelAttribute::ArtifactLocation => "m.artifact_location",
            ModelAttribute::CreatedMs => "m.created_ms",
            ModelAttribute::UpdatedMs => "m.updated_ms",
        }
    }
}

/// A comparison operator of a search filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Case-sensitive `%`/`_` pattern.
    Like,
    /// Case-insensitive (ASCII) `%`/`_` pattern.
    ILike,
    In,
    NotIn,
}

/// The value a field is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum CmpValue {
    Num(f64),
    Text(String),
    List(Vec<String>),
}

/// One comparison; a search's conditions all hold (AND).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCondition {
    pub field: ModelField,
    pub op: CmpOp,
    pub value: CmpValue,
}

/// One key of a search's order. For a metric, the latest value logged on the model (by time,
/// then step), among values measured on `dataset_name`/`dataset_digest` when given.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOrder {
    pub field: ModelField,
    pub ascending: bool,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A dataset a search's metric conditions are restricted to (any of them).
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFilter {
    pub name: String,
    pub digest: Option<String>,
}

/// A search of logged models: in `experiments`, matching every condition, ordered, one page.
/// Models without the metric or param ordered by come last; ties go to the newest, then to
/// the smaller id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedModelQuery {
    pub experiments: Vec<ExperimentId>,
    pub conditions: Vec<ModelCondition>,
    pub datasets: Vec<DatasetFilter>,
    pub order: Vec<ModelOrder>,
    pub include_deleted: bool,
    pub limit: usize,
    pub offset: usize,
}

/// A LIKE pattern as a GLOB pattern: GLOB is case-sensitive, as MLflow's LIKE is.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

struct Sql {
    args: Vec<Value>,
}

impl Sql {
    fn arg(&mut self, v: impl Into<Value>) -> String {
        self.args.push(v.into());
        format!("?{}", self.args.len())
    }

    /// `expr OP value`.
    fn compare(&mut self, expr: &str, op: CmpOp, value: &CmpValue) -> String {
        let one = |s: &mut Sql, v: &CmpValue| match v {
            CmpValue::Num(n) => s.arg(*n),
            CmpValue::Text(t) => s.arg(t.clone()),
            CmpValue::List(l) => s.arg(l.join(",")),
        };
        match op {
            CmpOp::Eq => format!("{expr} = {}", one(self, value)),
            CmpOp::Ne => format!("{expr} != {}", one(self, value)),
            CmpOp::Lt => format!("{expr} < {}", one(self, value)),
            CmpOp::Le => format!("{expr} <= {}", one(self, value)),
            CmpOp::Gt => format!("{expr} > {}", one(self, value)),
            CmpOp::Ge => format!("{expr} >= {}", one(self, value)),
            CmpOp::Like => {
                let p = match value {
                    CmpValue::Text(t) => like_to_glob(t),
                    other => like_to_glob(&text_of(other)),
                };
                format!("{expr} GLOB {}", self.arg(p))
            }
            CmpOp::ILike => format!("{expr} LIKE {}", one(self, value)),
            CmpOp::In | CmpOp::NotIn => {
                let items = match value {
                    CmpValue::List(l) => l.clone(),
                    other => vec![text_of(other)],
                };
                let placeholders: Vec<String> = items.into_iter().map(|i| self.arg(i)).collect();
                let not = if op == CmpOp::NotIn { "NOT " } else { "" };
                if placeholders.is_empty() {
                    // `IN ()` matches nothing; `NOT IN ()` everything.
                    return if op == CmpOp::NotIn { "1" } else { "0" }.into();
                }
                format!("{expr} {not}IN ({})", placeholders.join(", "))
            }
        }
    }

    fn datasets(&mut self, datasets: &[DatasetFilter], alias: &str) -> String {
        let any: Vec<String> = datasets
            .iter()
            .map(|d| {
                let name = self.arg(d.name.clone());
                match &d.digest {
                    Some(digest) => format!(
                        "({alias}.dataset_name = {name} AND {alias}.dataset_digest = {})",
                        self.arg(digest.clone())
                    ),
                    None => format!("{alias}.dataset_name = {name}"),
                }
            })
            .collect();
        format!("({})", any.join(" OR "))
    }
}

fn text_of(v: &CmpValue) -> String {
    match v {
        CmpValue::Num(n) => n.to_string(),
        CmpValue::Text(t) => t.clone(),
        CmpValue::List(l) => l.join(","),
    }
}

/// The models a query matches, one page (`limit` of them, from `offset`).
pub(crate) fn search(conn: &Connection, q: &LoggedModelQuery) -> Result<Vec<LoggedModel>, Error> {
    let mut sql = Sql { args: Vec::new() };
    let mut conds: Vec<String> = Vec::new();
    let exps: Vec<String> = q
        .experiments
        .iter()
        .map(|e| sql.arg(e.to_string()))
        .collect();
    if exps.is_empty() {
        return Ok(Vec::new());
    }
    conds.push(format!("m.experiment IN ({})", exps.join(", ")));
    if !q.include_deleted {
        conds.push("m.deleted = 0".into());
    }
    let mut metric_conditions = false;
    for c in &q.conditions {
        let cond = match &c.field {
            ModelField::Attribute(a) => sql.compare(a.column(), c.op, &c.value),
            ModelField::Metric(key) => {
                metric_conditions = true;
                let key = sql.arg(key.clone());
                let cmp = sql.compare("x.value", c.op, &c.value);
                let ds = if q.datasets.is_empty() {
                    String::new()
                } else {
                    format!(" AND {}", sql.datasets(&q.datasets, "x"))
                };
                format!(
                    "EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model = m.id AND x.key = {key} AND {cmp}{ds})"
                )
            }
            ModelField::Param(key) => {
                let key = sql.arg(key.clone());
                let cmp = sql.compare("p.value", c.op, &c.value);
                format!(
                    "EXISTS (SELECT 1 FROM logged_model_params p WHERE p.model = m.id AND p.key = {key} AND {cmp})"
                )
            }
            ModelField::Tag(key) => {
                let key = sql.arg(key.clone());
                let cmp = sql.compare("t.value", c.op, &c.value);
                format!(
                    "EXISTS (SELECT 1 FROM logged_model_tags t WHERE t.model = m.id AND t.key = {key} AND {cmp})"
                )
            }
        };
        conds.push(cond);
    }
    if !q.datasets.is_empty() && !metric_conditions {
        // Datasets alone: the models measured on any of them.
        let ds = sql.datasets(&q.datasets, "x");
        conds.push(format!(
            "EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model = m.id AND {ds})"
        ));
    }
    let mut order: Vec<String> = Vec::new();
    let (mut by_created, mut by_id) = (false, false);
    for o in &q.order {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        let expr = match &o.field {
            ModelField::Attribute(a) => {
                by_created |= *a == ModelAttribute::CreatedMs;
                by_id |= *a == ModelAttribute::Id;
                a.column().to_owned()
            }
            ModelField::Metric(key) => {
                let key = sql.arg(key.clone());
                let mut ds = String::new();
                if let Some(name) = &o.dataset_name {
                    ds.push_str(&format!(" AND x.dataset_name = {}", sql.arg(name.clone())));
                }
                if let Some(digest) = &o.dataset_digest {
                    ds.push_str(&format!(
                        " AND x.dataset_digest = {}",
                        sql.arg(digest.clone())
                    ));
                }
                format!(
                    "(SELECT x.value FROM logged_model_metrics x WHERE x.model = m.id AND x.key = {key}{ds} ORDER BY x.ts_ms DESC, x.step DESC, x.run ASC LIMIT 1)"
                )
            }
            ModelField::Param(key) => {
                let key = sql.arg(key.clone());
                let sub = |col: &str| {
                    format!(
                        "(SELECT p.{col} FROM logged_model_params p WHERE p.model = m.id AND p.key = {key})"
                    )
                };
                // Missing last; numeric values by number, before text ones by text.
                let (num, text) = (sub("num"), sub("value"));
                order.push(format!("{text} IS NULL ASC"));
                order.push(format!("{num} IS NULL ASC"));
                order.push(format!("{num} {dir}"));
                order.push(format!("{text} {dir}"));
                continue;
            }
            ModelField::Tag(key) => {
                let key = sql.arg(key.clone());
                format!(
                    "(SELECT t.value FROM logged_model_tags t WHERE t.model = m.id AND t.key = {key})"
                )
            }
        };
        // Models without the value come last, either way.
        order.push(format!("({expr}) IS NULL ASC"));
        order.push(format!("({expr}) {dir}"));
    }
    if !by_created {
        order.push("m.created_ms DESC".into());
    }
    if !by_id {
        order.push("m.id ASC".into());
    }
    let limit = sql.arg(i64::try_from(q.limit).unwrap_or(i64::MAX));
    let offset = sql.arg(i64::try_from(q.offset).unwrap_or(i64::MAX));
    let text = format!(
        "SELECT m.json FROM logged_models m WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        conds.join(" AND "),
        order.join(", ")
    );
    let mut stmt = conn.prepare(&text)?;
    let rows = stmt.query_map(params_from_iter(sql.args), |r| r.get::<_, String>(0))?;
    rows.map(|j| parse(&j?)).collect()
}

/// Every blob a logged model binds, for `bound_blobs`: (hash, bound as a directory, live).
pub(crate) const BOUND_BLOBS_SQL: &str =
    "SELECT hash, kind = 'dir' AS dir, live FROM logged_model_artifacts";
