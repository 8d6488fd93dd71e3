//! Projection tables: runs, params, tags and summary metrics as SQL rows, derived from the docs
//! for listing and filtering; each run's compliance with its schema; its evaluations' overall
//! metrics and fairness figures (`run_evals`, `run_fairness`). Never the source of truth:
//! `Catalog::rebuild_projections` recomputes them from the docs.
//!
//! Compliance and fairness are derived figures computed here, when their inputs change — a run's
//! doc, its experiment's schema, the project's schema — by `cairn-model`'s pure functions
//! (`Compliance::check`, `fairness`), never per query. The rules live in `cairn-model`; this
//! module only decides when to apply them.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use cairn_model::{
    Compliance, ComplianceState, Experiment, ExperimentId, FairnessFigure, Num, Run, RunId,
    RunSchema, RunStatus,
};
use rusqlite::{
    Connection, OptionalExtension, Transaction, params, params_from_iter, types::Value as SqlValue,
};

use crate::Error;

pub(crate) fn create_tables(tx: &Transaction<'_>) -> Result<(), Error> {
    // Revision 14 keyed params, tags and summary metrics by the run's integer `rid` and an
    // interned key, and left out of `runs.json` what those tables and the row's columns hold
    // (at 100k runs the copy of the whole run made `runs` 366 MiB). The old tables go; the
    // catalog rebuilds its projections from the docs once (`PROJECTIONS_SINCE`).
    let old_runs: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'
         AND NOT EXISTS (SELECT 1 FROM pragma_table_info('runs') WHERE name = 'rid')",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if old_runs {
        tx.execute_batch(
            "DROP TABLE runs; DROP TABLE IF EXISTS params; DROP TABLE IF EXISTS tags;
             DROP TABLE IF EXISTS run_metrics;",
        )?;
    }
    tx.execute_batch(
        "
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS experiments_name ON experiments(name);
-- `rid` stays a run's for as long as its row exists (rows are updated in place, never
-- replaced): the rows of params, tags and summaries name their run by it. `json` holds what no
-- column or other table does (see `row_json`).
CREATE TABLE IF NOT EXISTS runs (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE, experiment TEXT NOT NULL, shard TEXT NOT NULL, name TEXT NOT NULL,
    owner TEXT, status TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, parent TEXT,
    deleted INTEGER NOT NULL, incomplete INTEGER NOT NULL, json TEXT NOT NULL,
    changed_seq INTEGER NOT NULL DEFAULT 0, compliance TEXT NOT NULL DEFAULT 'compliant'
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment, start_ms);
-- Counting and listing an experiment's live runs: without `deleted` here, SQLite picked
-- runs_deleted for `experiment = ? AND deleted = 0` and read every run (0.3 s each at 100k).
CREATE INDEX IF NOT EXISTS runs_experiment_live ON runs(experiment, deleted, start_ms);
CREATE INDEX IF NOT EXISTS runs_start ON runs(start_ms);
CREATE INDEX IF NOT EXISTS runs_owner ON runs(owner, start_ms);
CREATE INDEX IF NOT EXISTS runs_shard ON runs(shard);
CREATE INDEX IF NOT EXISTS runs_deleted ON runs(deleted, start_ms);
CREATE INDEX IF NOT EXISTS runs_changed ON runs(changed_seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters(name, value) VALUES ('changed', 0);
-- Param, tag and metric keys, each stored once: a row names its key by `id`.
CREATE TABLE IF NOT EXISTS key_names (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
-- Parts of `runs.json` that many runs share (this machine's profile, a compliance finding),
-- each stored once: the row's JSON names them by `id`.
CREATE TABLE IF NOT EXISTS json_parts (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);
-- No index by key or value: filters and sorts on params and metrics are the search index's
-- (`cairn-search`); these rows serve reading a run whole and the cost rollups' joins.
CREATE TABLE IF NOT EXISTS run_params (
    run INTEGER NOT NULL, key INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_tags (
    run INTEGER NOT NULL, key INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;
-- `min` and `max` are NULL when they are the last value, `-` when absent (`bound_column`).
CREATE TABLE IF NOT EXISTS run_summaries (
    run INTEGER NOT NULL, key INTEGER NOT NULL, last REAL, step INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL, min REAL, max REAL, count INTEGER NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;
-- The same rows by run id and key name, as they read before revision 14 (for `verify`, which
-- compares them with a fresh projection whose ids differ, and for reading a catalog by hand).
CREATE VIEW IF NOT EXISTS params AS
    SELECT r.id AS run, k.key AS key, p.value AS value
    FROM run_params p JOIN runs r ON r.rid = p.run JOIN key_names k ON k.id = p.key;
CREATE VIEW IF NOT EXISTS tags AS
    SELECT r.id AS run, k.key AS key, t.value AS value
    FROM run_tags t JOIN runs r ON r.rid = t.run JOIN key_names k ON k.id = t.key;
CREATE VIEW IF NOT EXISTS run_metrics AS
    SELECT r.id AS run, k.key AS key, m.last AS last, m.step AS step, m.ts_ms AS ts_ms,
           CASE typeof(m.min) WHEN 'null' THEN m.last WHEN 'text' THEN NULL ELSE m.min END AS min,
           CASE typeof(m.max) WHEN 'null' THEN m.last WHEN 'text' THEN NULL ELSE m.max END AS max,
           m.count AS count
    FROM run_summaries m JOIN runs r ON r.rid = m.run JOIN key_names k ON k.id = m.key;
-- The project's run schema (the team doc's `schema`), so a run's compliance is computed in the
-- transaction that projects it without loading the team doc.
CREATE TABLE IF NOT EXISTS project_schema (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
-- Each evaluation's overall metrics (NaN as NULL), for rollups across runs.
CREATE TABLE IF NOT EXISTS run_evals (
    run TEXT NOT NULL, benchmark TEXT NOT NULL, metric TEXT NOT NULL, value REAL, dataset TEXT,
    PRIMARY KEY (run, benchmark, metric)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_evals_metric ON run_evals(benchmark, metric, value);
-- Fairness figures (cairn_model::fairness) per evaluation, metric and sensitive attribute.
CREATE TABLE IF NOT EXISTS run_fairness (
    run TEXT NOT NULL, benchmark TEXT NOT NULL, metric TEXT NOT NULL, attribute TEXT NOT NULL,
    difference REAL, ratio REAL, groups INTEGER NOT NULL, lowest TEXT NOT NULL,
    highest TEXT NOT NULL,
    PRIMARY KEY (run, benchmark, metric, attribute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_fairness_metric ON run_fairness(metric, attribute, difference);
",
    )?;
    crate::blob_refs::create_table(tx)?;
    crate::logged_model_project::create_tables(tx)?;
    crate::cost::create_table(tx)?;
    Ok(())
}

/// Projects an experiment; when its schema changed, its runs' compliance is checked again.
pub(crate) fn upsert_experiment(tx: &Transaction<'_>, exp: &Experiment) -> Result<(), Error> {
    let before: Option<Option<String>> = tx
        .prepare_cached("SELECT json_extract(json, '$.schema') FROM experiments WHERE id = ?1")?
        .query_row([exp.id.to_string()], |r| r.get::<_, Option<String>>(0))
        .optional()?;
    let before: Option<RunSchema> = before.flatten().and_then(|t| serde_json::from_str(&t).ok());
    tx.execute(
        "INSERT OR REPLACE INTO experiments(id, name, created_ms, deleted, json) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![exp.id.to_string(), exp.name, exp.created_ms, exp.deleted, serde_json::to_string(exp).unwrap_or_default()],
    )?;
    if before != exp.schema {
        recheck_compliance(tx, Some(exp.id))?;
    }
    Ok(())
}

/// Records the project's schema as the team doc holds it (`None`: the default); when it changed,
/// every run's compliance is checked again. Returns whether it changed.
pub(crate) fn set_project_schema(
    tx: &Transaction<'_>,
    schema: Option<&RunSchema>,
) -> Result<bool, Error> {
    let before: Option<String> = tx
        .query_row("SELECT json FROM project_schema WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    let before: Option<RunSchema> = before.and_then(|t| serde_json::from_str(&t).ok());
    let after = schema.cloned().unwrap_or_default();
    if before.as_ref() == Some(&after) {
        return Ok(false);
    }
    tx.execute(
        "INSERT OR REPLACE INTO project_schema(id, json) VALUES (1, ?1)",
        [serde_json::to_string(&after).unwrap_or_default()],
    )?;
    // A catalog that never projected a schema checked its runs against the default.
    if before.is_some() || after != RunSchema::default() {
        recheck_compliance(tx, None)?;
    }
    Ok(true)
}

/// The schema the runs of `experiment` answer to: its own, else the project's, else the
/// default.
fn schema_for(tx: &Transaction<'_>, experiment: ExperimentId) -> Result<RunSchema, Error> {
    let own: Option<Option<String>> = tx
        .prepare_cached("SELECT json_extract(json, '$.schema') FROM experiments WHERE id = ?1")?
        .query_row([experiment.to_string()], |r| r.get::<_, Option<String>>(0))
        .optional()?;
    if let Some(s) = own.flatten().and_then(|t| serde_json::from_str(&t).ok()) {
        return Ok(s);
    }
    let project: Option<String> = tx
        .prepare_cached("SELECT json FROM project_schema WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(project
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Checks the compliance of every run (of `experiment`, or all) against its schema again and
/// rewrites the rows whose compliance changed (raising the change counters, so the search
/// index looks at them again). Returns how many changed. Reads the runs' projected JSON, not
/// their docs.
pub(crate) fn recheck_compliance(
    tx: &Transaction<'_>,
    experiment: Option<ExperimentId>,
) -> Result<usize, Error> {
    let runs = match experiment {
        Some(e) => load_runs(tx, "experiment = ?1", &[e.to_string().into()])?,
        None => load_runs(tx, "1", &[])?,
    };
    let mut schemas: HashMap<ExperimentId, RunSchema> = HashMap::new();
    let mut changed = 0;
    for (_, mut run) in runs {
        let schema = match schemas.get(&run.experiment) {
            Some(s) => s,
            None => {
                let s = schema_for(tx, run.experiment)?;
                schemas.entry(run.experiment).or_insert(s)
            }
        };
        let c = Compliance::check(schema, &run);
        if c == run.compliance {
            continue;
        }
        run.compliance = c;
        tx.prepare_cached(
            "UPDATE runs SET json = ?2, incomplete = ?3, compliance = ?4, changed_seq = ?5 WHERE id = ?1",
        )?
        .execute(params![
            run.id.to_string(),
            row_json(tx, &run)?,
            !run.compliance.is_compliant(),
            run.compliance.state.as_str(),
            bump_changed(tx)?,
        ])?;
        changed += 1;
    }
    if changed > 0 {
        bump_docs(tx)?;
    }
    Ok(changed)
}

fn parse_experiment(json: String) -> Result<Experiment, Error> {
    serde_json::from_str(&json).map_err(|e| Error::Corrupt {
        doc: "experiments projection".into(),
        reason: e.to_string(),
    })
}

pub(crate) fn experiments(conn: &Connection) -> Result<Vec<Experiment>, Error> {
    let mut stmt = conn.prepare_cached("SELECT json FROM experiments ORDER BY created_ms, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| parse_experiment(r?)).collect()
}

pub(crate) fn experiment_where(
    conn: &Connection,
    cond: &str,
    arg: &str,
) -> Result<Option<Experiment>, Error> {
    let sql = format!("SELECT json FROM experiments WHERE {cond} ORDER BY created_ms LIMIT 1");
    conn.prepare_cached(&sql)?
        .query_row([arg], |r| r.get::<_, String>(0))
        .optional()?
        .map(parse_experiment)
        .transpose()
}

/// Projects a run: its row (with its compliance, checked against its schema now), params,
/// tags, summary metrics, artifact bindings, evaluations and fairness figures.
pub(crate) fn upsert_run(tx: &Transaction<'_>, run: &Run, shard: &str) -> Result<(), Error> {
    upsert_run_as(tx, run, shard, Change::Doc)
}

/// What changed in a run's doc, for the counters a derived index reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Doc,
    /// Only the metric summaries a logging run's doc takes every few seconds: the metric store
    /// holds them live, so an index may catch up with them lazily.
    Summaries,
}

pub(crate) fn upsert_run_as(
    tx: &Transaction<'_>,
    run: &Run,
    shard: &str,
    change: Change,
) -> Result<(), Error> {
    let compliance = Compliance::check(&schema_for(tx, run.experiment)?, run);
    let run: Cow<'_, Run> = if compliance == run.compliance {
        Cow::Borrowed(run)
    } else {
        let mut r = run.clone();
        r.compliance = compliance;
        Cow::Owned(r)
    };
    let run = run.as_ref();
    let id = run.id.to_string();
    // Updated in place, so the run keeps its `rid`.
    let rid: i64 = tx
        .prepare_cached(
            "INSERT INTO runs(id, experiment, shard, name, owner, status, start_ms, end_ms, parent, deleted, incomplete, json, changed_seq, compliance)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT(id) DO UPDATE SET experiment = excluded.experiment, shard = excluded.shard,
                 name = excluded.name, owner = excluded.owner, status = excluded.status,
                 start_ms = excluded.start_ms, end_ms = excluded.end_ms, parent = excluded.parent,
                 deleted = excluded.deleted, incomplete = excluded.incomplete, json = excluded.json,
                 changed_seq = excluded.changed_seq, compliance = excluded.compliance
             RETURNING rid",
        )?
        .query_row(
            params![
                id,
                run.experiment.to_string(),
                shard,
                run.name,
                run.owner,
                run.status.as_str(),
                run.start_ms,
                run.end_ms,
                run.parent.map(|p| p.to_string()),
                run.deleted,
                !run.compliance.is_compliant(),
                row_json(tx, run)?,
                bump_changed(tx)?,
                run.compliance.state.as_str(),
            ],
            |r| r.get(0),
        )?;
    if change == Change::Doc {
        bump_docs(tx)?;
    }
    crate::blob_refs::upsert(tx, run)?;
    upsert_evaluations(tx, run)?;
    delete_rows_of(tx, rid)?;
    let mut p = tx.prepare_cached("INSERT INTO run_params(run, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in &run.params {
        p.execute(params![rid, key_id(tx, k)?, v])?;
    }
    let mut t = tx.prepare_cached("INSERT INTO run_tags(run, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in &run.tags {
        t.execute(params![rid, key_id(tx, k)?, v])?;
    }
    insert_summaries(tx, rid, run.metrics.iter().map(|(k, s)| (k.as_str(), s)))
}

/// Writes summary rows of run `rid` (replacing rows of the same keys).
fn insert_summaries<'a>(
    tx: &Transaction<'_>,
    rid: i64,
    summaries: impl Iterator<Item = (&'a str, &'a cairn_model::MetricSummary)>,
) -> Result<(), Error> {
    let mut m = tx.prepare_cached(
        "INSERT OR REPLACE INTO run_summaries(run, key, last, step, ts_ms, min, max, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (k, s) in summaries {
        // SQLite has no NaN: it is stored as NULL, and infinities as themselves.
        let last = (!s.last.is_nan()).then_some(s.last);
        m.execute(params![
            rid,
            key_id(tx, k)?,
            last,
            s.step,
            s.ts_ms,
            bound_column(s.min, s.last),
            bound_column(s.max, s.last),
            s.count as i64
        ])?;
    }
    Ok(())
}

/// A summary's min or max as stored: NULL when it is the last value (a metric logged once,
/// most of MLflow's: 16 bytes a row less), the text `-` when absent (or NaN, which SQLite cannot
/// hold), else the number. [`bound_value`] reads it back.
fn bound_column(bound: Option<f64>, last: f64) -> SqlValue {
    match bound {
        Some(b) if b == last => SqlValue::Null,
        Some(b) if !b.is_nan() => SqlValue::Real(b),
        _ => SqlValue::Text("-".into()),
    }
}

/// A min or max read back (see [`bound_column`]).
fn bound_value(column: rusqlite::types::ValueRef<'_>, last: f64) -> Option<f64> {
    use rusqlite::types::ValueRef;
    match column {
        ValueRef::Null => Some(last),
        ValueRef::Real(b) => Some(b),
        ValueRef::Integer(b) => Some(b as f64),
        ValueRef::Text(_) | ValueRef::Blob(_) => None,
    }
}

/// The id of a param, tag or metric key, interned on first use.
fn key_id(tx: &Transaction<'_>, key: &str) -> Result<i64, Error> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM key_names WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => Ok(tx
            .prepare_cached("INSERT INTO key_names(key) VALUES (?1) RETURNING id")?
            .query_row([key], |r| r.get(0))?),
    }
}

/// Deletes the params, tags and summaries of run `rid`.
fn delete_rows_of(tx: &Transaction<'_>, rid: i64) -> Result<(), Error> {
    for table in ["run_params", "run_tags", "run_summaries"] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE run = ?1"))?
            .execute([rid])?;
    }
    Ok(())
}

/// Deletes the rows of every run of `shard` (before it is projected again whole).
pub(crate) fn delete_shard(tx: &Transaction<'_>, shard: &str) -> Result<(), Error> {
    for table in ["run_params", "run_tags", "run_summaries"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE run IN (SELECT rid FROM runs WHERE shard = ?1)"),
            [shard],
        )?;
    }
    tx.execute("DELETE FROM runs WHERE shard = ?1", [shard])?;
    Ok(())
}

/// Fields of a run that `runs.json` leaves out: the row's own columns, and the params, tags and
/// summary metrics that have tables of their own.
const NOT_IN_ROW_JSON: &[&str] = &[
    "id",
    "experiment",
    "name",
    "owner",
    "status",
    "start_ms",
    "end_ms",
    "parent",
    "deleted",
    "params",
    "tags",
    "metrics",
];

/// What `runs.json` holds of a run: everything but [`NOT_IN_ROW_JSON`] (and empty lineage and
/// artifacts, which deserialise as their defaults), with its machine profile (`infra`, taken
/// out of `lineage`) and its `compliance` as the ids of their [`part_id`]s.
fn row_json(tx: &Transaction<'_>, run: &Run) -> Result<String, Error> {
    use serde_json::Value as J;
    let mut value = serde_json::to_value(run).unwrap_or_default();
    if let J::Object(map) = &mut value {
        for key in NOT_IN_ROW_JSON {
            map.remove(*key);
        }
        if let Some(J::Object(lineage)) = map.get_mut("lineage")
            && let Some(infra) = lineage.remove("infra")
        {
            map.insert("infra".into(), J::from(part_id(tx, &infra)?));
        }
        if let Some(c) = map.remove("compliance") {
            map.insert("compliance".into(), J::from(part_id(tx, &c)?));
        }
        for key in ["lineage", "artifacts"] {
            if map
                .get(key)
                .is_some_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
            {
                map.remove(key);
            }
        }
    }
    Ok(value.to_string())
}

/// The id of a shared part of `runs.json`, stored on first use.
fn part_id(tx: &Transaction<'_>, part: &serde_json::Value) -> Result<i64, Error> {
    let text = part.to_string();
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM json_parts WHERE json = ?1")?
        .query_row([&text], |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => Ok(tx
            .prepare_cached("INSERT INTO json_parts(json) VALUES (?1) RETURNING id")?
            .query_row([&text], |r| r.get(0))?),
    }
}

/// Whole runs read back from the projection, with their `rid`: each row's columns and JSON,
/// its params, tags and summaries (four queries, whatever the number of runs). `cond` is a
/// condition on `runs`.
fn load_runs(conn: &Connection, cond: &str, args: &[SqlValue]) -> Result<Vec<(i64, Run)>, Error> {
    let corrupt = |reason: String| Error::Corrupt {
        doc: "runs projection".into(),
        reason,
    };
    let mut params: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    let mut tags: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    let mut metrics: HashMap<i64, BTreeMap<String, cairn_model::MetricSummary>> = HashMap::new();
    for (table, into) in [("run_params", &mut params), ("run_tags", &mut tags)] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT t.run, k.key, t.value FROM {table} t JOIN key_names k ON k.id = t.key
             WHERE t.run IN (SELECT rid FROM runs WHERE {cond})"
        ))?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            into.entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, r.get(2)?);
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT m.run, k.key, m.last, m.step, m.ts_ms, m.min, m.max, m.count
         FROM run_summaries m JOIN key_names k ON k.id = m.key
         WHERE m.run IN (SELECT rid FROM runs WHERE {cond})"
    ))?;
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let last = r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN);
        metrics.entry(r.get(0)?).or_default().insert(
            r.get(1)?,
            cairn_model::MetricSummary {
                last,
                step: r.get(3)?,
                ts_ms: r.get(4)?,
                min: bound_value(r.get_ref(5)?, last),
                max: bound_value(r.get_ref(6)?, last),
                count: r.get::<_, i64>(7)? as u64,
            },
        );
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rid, id, experiment, name, owner, status, start_ms, end_ms, parent, deleted, json
         FROM runs WHERE {cond}"
    ))?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    let mut parts: HashMap<i64, serde_json::Value> = HashMap::new();
    let mut part_stmt = conn.prepare_cached("SELECT json FROM json_parts WHERE id = ?1")?;
    let mut part = |id: Option<i64>| -> Result<serde_json::Value, Error> {
        let id = id.ok_or_else(|| corrupt("a part id that is no integer".into()))?;
        if let Some(v) = parts.get(&id) {
            return Ok(v.clone());
        }
        let text: String = part_stmt
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| corrupt(format!("no part {id} of a run's JSON")))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| corrupt(format!("part {id}: {e}")))?;
        parts.insert(id, v.clone());
        Ok(v)
    };
    while let Some(r) = rows.next()? {
        use serde_json::Value as J;
        let rid: i64 = r.get(0)?;
        let id: String = r.get(1)?;
        let json: String = r.get(10)?;
        let mut map: serde_json::Map<String, J> =
            serde_json::from_str(&json).map_err(|e| corrupt(format!("run {id}: {e}")))?;
        let text = |i: usize| -> Result<Option<J>, rusqlite::Error> {
            Ok(r.get::<_, Option<String>>(i)?.map(J::String))
        };
        let int = |i: usize| -> Result<Option<J>, rusqlite::Error> {
            Ok(r.get::<_, Option<i64>>(i)?.map(J::from))
        };
        for (key, value) in [
            ("experiment", text(2)?),
            ("name", text(3)?),
            ("owner", text(4)?),
            ("status", text(5)?),
            ("start_ms", int(6)?),
            ("end_ms", int(7)?),
            ("parent", text(8)?),
        ] {
            if let Some(v) = value {
                map.insert(key.to_owned(), v);
            }
        }
        map.insert("deleted".into(), J::Bool(r.get(9)?));
        map.insert("id".into(), J::String(id.clone()));
        if let Some(J::Number(n)) = map.get("compliance") {
            let part = part(n.as_i64())?;
            map.insert("compliance".into(), part);
        }
        if let Some(J::Number(n)) = map.remove("infra") {
            let part = part(n.as_i64())?;
            if let J::Object(lineage) = map
                .entry("lineage")
                .or_insert_with(|| J::Object(Default::default()))
            {
                lineage.insert("infra".into(), part);
            }
        }
        let mut run: Run = serde_json::from_value(J::Object(map))
            .map_err(|e| corrupt(format!("run {id}: {e}")))?;
        run.params = params.remove(&rid).unwrap_or_default();
        run.tags = tags.remove(&rid).unwrap_or_default();
        run.metrics = metrics.remove(&rid).unwrap_or_default();
        out.push((rid, run));
    }
    Ok(out)
}

/// Rewrites the run's rows of `run_evals` and `run_fairness`.
fn upsert_evaluations(tx: &Transaction<'_>, run: &Run) -> Result<(), Error> {
    let id = run.id.to_string();
    for table in ["run_evals", "run_fairness"] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE run = ?1"))?
            .execute([&id])?;
    }
    if run.lineage.evaluations.is_empty() {
        return Ok(());
    }
    let real = |n: Num| (!n.0.is_nan()).then_some(n.0);
    let mut ev = tx.prepare_cached(
        "INSERT INTO run_evals(run, benchmark, metric, value, dataset) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut fa = tx.prepare_cached(
        "INSERT OR REPLACE INTO run_fairness(run, benchmark, metric, attribute, difference, ratio, groups, lowest, highest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (bench, e) in &run.lineage.evaluations {
        for (m, v) in &e.metrics {
            ev.execute(params![id, bench, m, real(*v), e.dataset])?;
        }
        for f in cairn_model::fairness(bench, e) {
            fa.execute(params![
                id,
                f.benchmark,
                f.metric,
                f.attribute,
                real(f.difference),
                real(f.ratio),
                f.groups,
                f.lowest,
                f.highest
            ])?;
        }
    }
    Ok(())
}

/// The fairness figures of a run's evaluations, as projected.
pub(crate) fn fairness(conn: &Connection, run: RunId) -> Result<Vec<FairnessFigure>, Error> {
    let nan = |v: Option<f64>| Num(v.unwrap_or(f64::NAN));
    conn.prepare_cached(
        "SELECT benchmark, metric, attribute, difference, ratio, groups, lowest, highest
         FROM run_fairness WHERE run = ?1 ORDER BY benchmark, attribute, metric",
    )?
    .query_map([run.to_string()], |r| {
        Ok(FairnessFigure {
            benchmark: r.get(0)?,
            metric: r.get(1)?,
            attribute: r.get(2)?,
            difference: nan(r.get(3)?),
            ratio: nan(r.get(4)?),
            groups: r.get(5)?,
            lowest: r.get(6)?,
            highest: r.get(7)?,
        })
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

pub(crate) fn upsert_metric_rows(
    tx: &Transaction<'_>,
    run: RunId,
    summaries: &[(String, cairn_model::MetricSummary)],
) -> Result<(), Error> {
    // The run's summaries changed: a derived index must look at it again.
    let seq = bump_changed(tx)?;
    let rid: Option<i64> = tx
        .prepare_cached("UPDATE runs SET changed_seq = ?2 WHERE id = ?1 RETURNING rid")?
        .query_row(params![run.to_string(), seq], |r| r.get(0))
        .optional()?;
    // A run not projected yet gets its summaries with its row, from its doc.
    let Some(rid) = rid else { return Ok(()) };
    insert_summaries(tx, rid, summaries.iter().map(|(k, s)| (k.as_str(), s)))
}

pub(crate) fn run(conn: &Connection, id: RunId) -> Result<Option<Run>, Error> {
    Ok(load_runs(conn, "id = ?1", &[id.to_string().into()])?
        .pop()
        .map(|(_, run)| run))
}

pub(crate) fn resolve_run(conn: &Connection, prefix: &str) -> Result<RunId, Error> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NoRunMatches(prefix.to_owned()));
    }
    // Hex digits sort as text, so a prefix is a range scan on the primary key.
    let hi = format!("{p}g");
    let matches: Vec<String> = conn
        .prepare_cached("SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6")?
        .query_map([&p, &hi], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    match matches.as_slice() {
        [] => Err(Error::NoRunMatches(prefix.to_owned())),
        [one] => one.parse().map_err(|e| Error::Corrupt {
            doc: "runs projection".into(),
            reason: format!("{e}"),
        }),
        _ => Err(Error::AmbiguousRun {
            prefix: prefix.to_owned(),
            matches,
        }),
    }
}

/// How listed runs are ordered.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RunOrder {
    /// Newest first.
    #[default]
    Newest,
    Oldest,
    /// By a summary metric's latest value; runs without it come last.
    Metric {
        key: String,
        descending: bool,
    },
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub experiment: Option<ExperimentId>,
    pub status: Option<RunStatus>,
    pub owner: Option<String>,
    pub include_deleted: bool,
    pub order: RunOrder,
    pub limit: Option<u64>,
    pub offset: u64,
}

/// One line of a run listing (`cairn-core` turns it into its DTO).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: RunId,
    pub experiment: ExperimentId,
    pub experiment_name: String,
    pub name: String,
    pub owner: Option<String>,
    pub status: RunStatus,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// Not compliant with its schema (incomplete, pending or refused).
    pub incomplete: bool,
    pub compliance: ComplianceState,
    /// Latest value of each summary metric (NaN when the last value logged was NaN).
    pub metrics: BTreeMap<String, f64>,
}

fn where_clause(f: &RunFilter) -> (String, Vec<SqlValue>) {
    let mut conds = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(e) = f.experiment {
        args.push(e.to_string().into());
        conds.push(format!("r.experiment = ?{}", args.len()));
    }
    if let Some(s) = f.status {
        args.push(s.as_str().to_owned().into());
        conds.push(format!("r.status = ?{}", args.len()));
    }
    if let Some(o) = &f.owner {
        args.push(o.clone().into());
        conds.push(format!("r.owner = ?{}", args.len()));
    }
    if !f.include_deleted {
        conds.push("r.deleted = 0".into());
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (clause, args)
}

pub(crate) fn count_runs(conn: &Connection, f: &RunFilter) -> Result<u64, Error> {
    let (clause, args) = where_clause(f);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM runs r {clause}"))?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}

/// How many live runs each experiment has (experiments without runs are absent), from the index
/// alone.
pub(crate) fn run_counts(conn: &Connection) -> Result<Vec<(String, u64)>, Error> {
    let mut stmt = conn.prepare_cached(
        // Named: left to itself the planner takes runs_deleted and reads every row (0.4 s).
        "SELECT experiment, count(*) FROM runs INDEXED BY runs_experiment_live \
         WHERE deleted = 0 GROUP BY experiment",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One `runs` row as listed: id, experiment, experiment name, name, owner, status, start, end,
/// incomplete, compliance, rid.
type RawRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    bool,
    String,
    i64,
);

pub(crate) fn list_runs(conn: &Connection, f: &RunFilter) -> Result<Vec<RunRow>, Error> {
    let (clause, mut args) = where_clause(f);
    let (join, order) = match &f.order {
        RunOrder::Newest => (String::new(), "r.start_ms DESC, r.id DESC".to_owned()),
        RunOrder::Oldest => (String::new(), "r.start_ms ASC, r.id ASC".to_owned()),
        RunOrder::Metric { key, descending } => {
            args.push(key.clone().into());
            let dir = if *descending { "DESC" } else { "ASC" };
            (
                format!(
                    "LEFT JOIN run_summaries m ON m.run = r.rid \
                     AND m.key = (SELECT id FROM key_names WHERE key = ?{})",
                    args.len()
                ),
                format!("m.last IS NULL, m.last {dir}, r.id"),
            )
        }
    };
    args.push((f.limit.map_or(-1, |l| l as i64)).into());
    let limit = args.len();
    args.push((f.offset as i64).into());
    let offset = args.len();
    let sql = format!(
        "SELECT r.id, r.experiment, coalesce(e.name, ''), r.name, r.owner, r.status, r.start_ms, r.end_ms, r.incomplete, r.compliance, r.rid
         FROM runs r LEFT JOIN experiments e ON e.id = r.experiment {join} {clause}
         ORDER BY {order} LIMIT ?{limit} OFFSET ?{offset}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raw: Vec<RawRow> = stmt
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let corrupt = |e: cairn_model::ModelError| Error::Corrupt {
        doc: "runs projection".into(),
        reason: e.to_string(),
    };
    let mut metric_stmt = conn.prepare_cached(
        "SELECT k.key, m.last FROM run_summaries m JOIN key_names k ON k.id = m.key WHERE m.run = ?1",
    )?;
    let mut out = Vec::with_capacity(raw.len());
    for (id, exp, exp_name, name, owner, status, start_ms, end_ms, incomplete, compliance, rid) in
        raw
    {
        let metrics = metric_stmt
            .query_map([rid], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN),
                ))
            })?
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        out.push(RunRow {
            id: id.parse().map_err(corrupt)?,
            experiment: exp.parse().map_err(corrupt)?,
            experiment_name: exp_name,
            name,
            owner,
            status: status.parse().map_err(corrupt)?,
            start_ms,
            end_ms,
            incomplete,
            compliance: compliance_state(&compliance),
            metrics,
        });
    }
    Ok(out)
}

/// Raises the projection change counter and returns its new value (stamped on the rows changed).
pub(crate) fn bump_changed(tx: &Transaction<'_>) -> Result<i64, Error> {
    Ok(tx
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'changed' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Raises the projection stamp of `runs` (those that exist) and the docs counter: something a
/// derived index reads of them, kept outside their docs (their reviews), changed.
pub(crate) fn restamp_runs(tx: &Transaction<'_>, runs: &[RunId]) -> Result<(), Error> {
    if runs.is_empty() {
        return Ok(());
    }
    let seq = bump_changed(tx)?;
    let mut stmt = tx.prepare_cached("UPDATE runs SET changed_seq = ?2 WHERE id = ?1")?;
    for id in runs {
        stmt.execute(rusqlite::params![id.to_string(), seq])?;
    }
    drop(stmt);
    bump_docs(tx)
}

/// Raises the counter of changes to runs' docs (not their live metric summaries), which tells a
/// derived index whether more than metrics changed.
fn bump_docs(tx: &Transaction<'_>) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO counters(name, value) VALUES ('docs', 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1",
    )?
    .execute([])?;
    Ok(())
}

/// The change counters: every change of a run's row by any process raises the first, changes of
/// its doc (everything but live metric summaries) the second.
pub(crate) fn change_counters(conn: &Connection) -> Result<(i64, i64), Error> {
    let mut stmt =
        conn.prepare_cached("SELECT name, value FROM counters WHERE name IN ('changed', 'docs')")?;
    let mut out = (0, 0);
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        match row? {
            (n, v) if n == "changed" => out.0 = v,
            (_, v) => out.1 = v,
        }
    }
    Ok(out)
}

/// The projection change counter: every change of a run's row, by any process, raises it.
pub(crate) fn change_seq(conn: &Connection) -> Result<i64, Error> {
    Ok(conn
        .query_row(
            "SELECT value FROM counters WHERE name = 'changed'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Runs (deleted ones included) whose projection changed after change `seq`.
pub(crate) fn runs_changed_since(conn: &Connection, seq: i64) -> Result<Vec<Run>, Error> {
    Ok(load_runs(conn, "changed_seq > ?1", &[seq.into()])?
        .into_iter()
        .map(|(_, run)| run)
        .collect())
}

fn compliance_state(text: &str) -> ComplianceState {
    [
        ComplianceState::Compliant,
        ComplianceState::Incomplete,
        ComplianceState::Pending,
        ComplianceState::Refused,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .unwrap_or(ComplianceState::Incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summarys_min_and_max_read_back_as_written() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (last REAL, bound REAL)")
            .unwrap();
        let cases = [
            (0.5, Some(0.5)),
            (0.5, Some(0.25)),
            (0.5, None),
            (f64::INFINITY, None),
            (f64::INFINITY, Some(f64::INFINITY)),
            (f64::NAN, Some(0.25)),
            (f64::NAN, None),
            (-0.0, Some(1e300)),
        ];
        for (last, bound) in cases {
            let stored = (!last.is_nan()).then_some(last);
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                params![stored, bound_column(bound, last)],
            )
            .unwrap();
        }
        let mut stmt = conn
            .prepare("SELECT last, bound FROM t ORDER BY rowid")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        for (last, bound) in cases {
            let r = rows.next().unwrap().unwrap();
            let read_last = r.get::<_, Option<f64>>(0).unwrap().unwrap_or(f64::NAN);
            assert_eq!(
                bound_value(r.get_ref(1).unwrap(), read_last),
                bound,
                "last {last}, bound {bound:?}"
            );
        }
    }
}
