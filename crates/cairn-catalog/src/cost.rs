//! The cost projection: each run's cost and idle figures (`run_costs`), computed by
//! `cairn-core` when a run, its utilisation samples or the team's prices change, and kept here
//! so rollups over 100k runs read one row per run, never raw samples. A report's rollups come
//! from one pass over the narrow `run_costs_rollup` index (`cost_scan`), not from the rows.
//!
//! `cost_state` records how far the projection has caught up: the runs' change counter it has
//! seen and a digest of the pricing it was computed with. Like every projection it is derived
//! (from the docs, the metric store and the team doc's prices) and can be dropped and rebuilt.

use std::collections::{BinaryHeap, HashMap};

use cairn_model::cost::RunCost;
use cairn_model::{ExperimentId, RunId, RunStatus};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::{Catalog, Error};

pub(crate) fn create_table(tx: &Transaction<'_>) -> Result<(), Error> {
    // Revision 14 indexes only the running runs (the rest never change by themselves): the
    // index of every run by status was 54 B a run.
    let whole_index: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'run_costs_running'
         AND sql NOT LIKE '%WHERE%'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if whole_index {
        tx.execute_batch("DROP INDEX run_costs_running")?;
    }
    tx.execute_batch(
        "
CREATE TABLE IF NOT EXISTS run_costs (
    run TEXT PRIMARY KEY, experiment TEXT NOT NULL, owner TEXT, status TEXT NOT NULL,
    deleted INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    -- The run's end, or the instant the figures were taken while it runs.
    end_ms INTEGER NOT NULL,
    gpu_model TEXT, gpus INTEGER NOT NULL, hours REAL NOT NULL, gpu_hours REAL NOT NULL,
    -- NULL: unpriced.
    usd REAL, usd_per_hour REAL NOT NULL,
    observed_s REAL NOT NULL, idle_s REAL NOT NULL, idle_usd REAL,
    json TEXT NOT NULL, spans TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_costs_running ON run_costs(run) WHERE status = 'running';
-- What a report's one pass reads (`cost_scan`), oldest first: every figure of the rollups and
-- none of the JSON, so the scan reads this index and never the rows (a third of their size).
-- Revision 11 put it in place of `run_costs_idle (deleted, idle_usd)`, which made the rollups
-- look up every row through it.
DROP INDEX IF EXISTS run_costs_idle;
CREATE INDEX IF NOT EXISTS run_costs_rollup ON run_costs(
    deleted, start_ms, run, end_ms, status, experiment, owner, gpu_model, usd, gpu_hours,
    observed_s, idle_s, idle_usd
);
CREATE TABLE IF NOT EXISTS cost_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
",
    )?;
    Ok(())
}

/// One run's row of the projection.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub run: RunId,
    pub experiment: ExperimentId,
    pub owner: Option<String>,
    pub status: RunStatus,
    pub deleted: bool,
    pub start_ms: i64,
    pub cost: RunCost,
}

/// How far the projection has caught up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostState {
    /// The runs' change counter the projection has seen (-1: nothing yet).
    pub seen: i64,
    /// A digest of the prices and settings the figures were computed with.
    pub pricing: String,
    /// The team doc's heads when `pricing` was taken (unchanged heads: unchanged pricing).
    pub team_heads: Vec<u8>,
}

/// How rows are grouped for a rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CostGroup {
    Experiment,
    Owner,
    GpuModel,
    /// A tag's value (runs without the tag form the group of `None`).
    Tag(String),
    /// One group of every row in scope.
    All,
}

/// Sums over one group of live runs, as of when their figures were taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostTotals {
    /// The group's value (an experiment id, an owner, a GPU model, a tag value); `None` for
    /// runs without it.
    pub key: Option<String>,
    pub runs: u64,
    pub priced: u64,
    pub usd: f64,
    pub gpu_hours: f64,
    pub observed_s: f64,
    pub idle_s: f64,
    pub idle_usd: f64,
    /// Spend inside each window asked for (a run's spread evenly over its time).
    pub in_window: Vec<f64>,
}

/// The figures of one run that search indexes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostFields {
    pub usd: Option<f64>,
    pub idle_usd: Option<f64>,
    pub observed_s: f64,
    pub idle_s: f64,
    pub gpu_hours: f64,
}

/// One run as the family rollups read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostPoint {
    pub run: RunId,
    pub start_ms: i64,
    pub end_ms: i64,
    pub running: bool,
    pub usd: Option<f64>,
    /// The run's last value of the metric asked for, when logged and not NaN.
    pub value: Option<f64>,
}

/// One group of a [`CostScan`]: its sums and its runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostFamily {
    /// `in_window` is empty: a scan sums no windows.
    pub totals: CostTotals,
    pub runs: Vec<CostPoint>,
}

/// What one pass over the live rows in scope yields: what `cost_totals`, `cost_points` and the
/// top idle wasters would each read the rows again for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostScan {
    /// Ordered by key, `None` first.
    pub families: Vec<CostFamily>,
    /// The live runs whose idle GPU time cost most (idle dollars, then idle seconds, then id),
    /// most first, with their figures (without idle spans).
    pub top_idle: Vec<(RunId, RunCost)>,
}

impl CostFamily {
    /// The spend of these runs inside `[lo, hi)` (Unix ms), each run's cost spread evenly over
    /// its time: what `cost_totals` sums for a window.
    pub fn in_window(&self, lo: i64, hi: i64) -> f64 {
        let mut sum = Sum::default();
        for p in &self.runs {
            let Some(usd) = p.usd else { continue };
            if p.end_ms <= lo || p.start_ms >= hi {
                continue;
            }
            if p.end_ms <= p.start_ms {
                sum.add(usd);
            } else {
                let overlap = p.end_ms.min(hi) - p.start_ms.max(lo);
                sum.add(usd * overlap as f64 / (p.end_ms - p.start_ms) as f64);
            }
        }
        sum.value()
    }
}

/// A sum with Neumaier's compensation, as SQLite's `total()` sums.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    carry: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.carry
    }
}

/// A family's sums while a scan runs.
#[derive(Debug, Default)]
struct Acc {
    key: Option<String>,
    runs: u64,
    priced: u64,
    usd: Sum,
    gpu_hours: Sum,
    observed_s: Sum,
    idle_s: Sum,
    idle_usd: Sum,
    points: Vec<CostPoint>,
}

/// A candidate of the top idle wasters, ordered most idle first: most idle dollars (none counts
/// as 0), then most idle seconds, then the smaller id.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Idler {
    idle_usd: f64,
    idle_s: f64,
    run: RunId,
}

impl Eq for Idler {}

impl Ord for Idler {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Most first: the greater figures order before.
        other
            .idle_usd
            .total_cmp(&self.idle_usd)
            .then_with(|| other.idle_s.total_cmp(&self.idle_s))
            .then_with(|| self.run.cmp(&other.run))
    }
}

impl PartialOrd for Idler {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn corrupt(reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        doc: "run_costs projection".into(),
        reason: reason.to_string(),
    }
}

fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| corrupt(format!("id '{text}': {e}")))
}

/// The figures without their spans (kept in a column of their own, read by one run's page) and
/// without the fields the row's columns hold ([`COST_COLUMNS`]; a row written before holds them
/// twice, and reads the same).
fn split_spans(cost: &RunCost) -> (String, Option<String>) {
    let mut slim = cost.clone();
    let spans = slim.idle.as_mut().map(|i| std::mem::take(&mut i.spans));
    let mut value = serde_json::to_value(&slim).unwrap_or_default();
    if let serde_json::Value::Object(map) = &mut value {
        for (field, _) in COLUMN_FIELDS {
            map.remove(*field);
        }
    }
    let json = value.to_string();
    let spans = spans
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::to_string(&s).unwrap_or_default());
    (json, spans)
}

/// The columns a run's figures are read from, the JSON last.
const COST_COLUMNS: &str =
    "usd, gpu_model, gpus, hours, gpu_hours, usd_per_hour, idle_usd, end_ms, json";

/// The fields of [`RunCost`] its row holds as columns, in [`COST_COLUMNS`]' order (`end_ms`
/// is the instant the figures were taken).
const COLUMN_FIELDS: &[(&str, bool)] = &[
    ("usd", true),
    ("gpu_model", false),
    ("gpus", false),
    ("hours", true),
    ("gpu_hours", true),
    ("usd_per_hour", true),
    ("idle_usd", true),
    ("as_of_ms", false),
];

/// A run's figures from [`COST_COLUMNS`], read from column `at` on.
fn cost_from_row(r: &rusqlite::Row<'_>, at: usize) -> Result<RunCost, Error> {
    use rusqlite::types::ValueRef;
    use serde_json::Value as J;
    let json: String = r.get(at + COLUMN_FIELDS.len())?;
    let mut map: serde_json::Map<String, J> = serde_json::from_str(&json).map_err(corrupt)?;
    for (i, (field, real)) in COLUMN_FIELDS.iter().enumerate() {
        let value = match r.get_ref(at + i)? {
            ValueRef::Null => continue,
            ValueRef::Integer(n) if *real => J::from(n as f64),
            ValueRef::Integer(n) => J::from(n),
            ValueRef::Real(x) => J::from(x),
            ValueRef::Text(t) => J::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(_) => return Err(corrupt(format!("{field}: a blob"))),
        };
        map.insert((*field).to_owned(), value);
    }
    serde_json::from_value(J::Object(map)).map_err(corrupt)
}

fn group_sql(group: &CostGroup) -> (&'static str, &'static str) {
    match group {
        CostGroup::Experiment => ("c.experiment", ""),
        CostGroup::Owner => ("c.owner", ""),
        CostGroup::GpuModel => ("c.gpu_model", ""),
        CostGroup::Tag(_) => (
            "t.value",
            "LEFT JOIN runs tr ON tr.id = c.run \
             LEFT JOIN run_tags t ON t.run = tr.rid AND t.key = (SELECT id FROM key_names WHERE key = ?1)",
        ),
        CostGroup::All => ("NULL", ""),
    }
}

/// The runs a rollup is limited to, in a temporary table of this connection.
fn scope_join(conn: &Connection, scope: Option<&[RunId]>) -> Result<&'static str, Error> {
    let Some(ids) = scope else {
        return Ok("");
    };
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS cost_scope (run TEXT PRIMARY KEY) WITHOUT ROWID;
         DELETE FROM temp.cost_scope;",
    )?;
    let mut ins = conn.prepare_cached("INSERT OR IGNORE INTO temp.cost_scope(run) VALUES (?1)")?;
    for id in ids {
        ins.execute([id.to_string()])?;
    }
    Ok("JOIN temp.cost_scope s ON s.run = c.run")
}

impl Catalog {
    /// How far the cost projection has caught up.
    pub fn cost_state(&self) -> Result<CostState, Error> {
        let mut state = CostState {
            seen: -1,
            ..Default::default()
        };
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT key, value FROM cost_state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            match k.as_str() {
                "seen" => state.seen = v.parse().unwrap_or(-1),
                "pricing" => state.pricing = v,
                "team_heads" => state.team_heads = hex_decode(&v),
                _ => {}
            }
        }
        Ok(state)
    }

    /// The team doc's heads as stored (what tells whether prices may have changed).
    pub fn team_heads(&self) -> Result<Vec<u8>, Error> {
        Ok(self
            .conn()
            .query_row("SELECT heads FROM docs WHERE id = 'team'", [], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()?
            .flatten()
            .unwrap_or_default())
    }

    /// Writes computed rows, drops `removed` ones, and records `state`. Runs whose figures
    /// changed get their projection change stamp raised (so the search index, which holds
    /// `cost.*` fields, looks at them again). `read_at` is the change counter the rows were
    /// computed from: when nothing else wrote since, the stamps raised here are counted as
    /// seen too; otherwise only `state.seen` is.
    pub fn put_run_costs(
        &mut self,
        rows: &[CostRow],
        removed: &[RunId],
        state: &CostState,
        read_at: i64,
    ) -> Result<(), Error> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let counter_before = crate::project::change_seq(&tx)?;
        let mut changed = 0;
        for row in rows {
            let id = row.run.to_string();
            let (json, spans) = split_spans(&row.cost);
            // Compared whole (the JSON leaves out what the columns hold), without the spans.
            let mut slim = row.cost.clone();
            if let Some(idle) = slim.idle.as_mut() {
                idle.spans.clear();
            }
            let same = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT spans, status, deleted, {COST_COLUMNS} FROM run_costs WHERE run = ?1"
                ))?;
                let mut found = stmt.query([&id])?;
                match found.next()? {
                    Some(r) => {
                        r.get::<_, Option<String>>(0)? == spans
                            && r.get::<_, String>(1)? == row.status.as_str()
                            && r.get::<_, bool>(2)? == row.deleted
                            && cost_from_row(r, 3)? == slim
                    }
                    None => false,
                }
            };
            if same {
                continue;
            }
            let c = &row.cost;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO run_costs(run, experiment, owner, status, deleted, start_ms,
                 end_ms, gpu_model, gpus, hours, gpu_hours, usd, usd_per_hour, observed_s, idle_s,
                 idle_usd, json, spans)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?
            .execute(params![
                id,
                row.experiment.to_string(),
                row.owner,
                row.status.as_str(),
                row.deleted,
                row.start_ms,
                c.as_of_ms,
                c.gpu_model,
                c.gpus,
                c.hours,
                c.gpu_hours,
                c.usd,
                c.usd_per_hour,
                c.idle.as_ref().map_or(0.0, |i| i.observed_s),
                c.idle.as_ref().map_or(0.0, |i| i.idle_s),
                c.idle_usd,
                json,
                spans,
            ])?;
            // New or changed figures restamp the run: the search index holds `cost.*` fields.
            let seq = crate::project::bump_changed(&tx)?;
            tx.prepare_cached("UPDATE runs SET changed_seq = ?2 WHERE id = ?1")?
                .execute(params![id, seq])?;
            changed += 1;
        }
        for id in removed {
            tx.prepare_cached("DELETE FROM run_costs WHERE run = ?1")?
                .execute([id.to_string()])?;
        }
        let seen = if counter_before == read_at {
            counter_before + changed
        } else {
            state.seen
        };
        let mut put =
            tx.prepare_cached("INSERT OR REPLACE INTO cost_state(key, value) VALUES (?1, ?2)")?;
        put.execute(params!["seen", seen.to_string()])?;
        put.execute(params!["pricing", state.pricing])?;
        put.execute(params!["team_heads", hex_encode(&state.team_heads)])?;
        drop(put);
        tx.commit()?;
        Ok(())
    }

    /// Drops every row and the state: the next catch-up computes everything again.
    pub fn reset_run_costs(&mut self) -> Result<(), Error> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch("DELETE FROM run_costs; DELETE FROM cost_state;")?;
        tx.commit()?;
        Ok(())
    }

    /// A run's figures as last computed, with its idle spans.
    pub fn run_cost(&self, id: RunId) -> Result<Option<RunCost>, Error> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT spans, {COST_COLUMNS} FROM run_costs WHERE run = ?1"
        ))?;
        let mut rows = stmt.query([id.to_string()])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        let spans: Option<String> = r.get(0)?;
        let mut cost = cost_from_row(r, 1)?;
        if let (Some(idle), Some(s)) = (cost.idle.as_mut(), spans) {
            idle.spans = serde_json::from_str(&s).map_err(corrupt)?;
        }
        Ok(Some(cost))
    }

    /// Several runs' figures as last computed (without idle spans), for a page of results.
    pub fn run_costs(&self, ids: &[RunId]) -> Result<HashMap<RunId, RunCost>, Error> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COST_COLUMNS} FROM run_costs WHERE run = ?1"
        ))?;
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            let mut rows = stmt.query([id.to_string()])?;
            if let Some(r) = rows.next()? {
                out.insert(*id, cost_from_row(r, 0)?);
            }
        }
        Ok(out)
    }

    /// The searchable figures of `ids` (of every run with figures, when `None`).
    pub fn cost_fields(&self, ids: Option<&[RunId]>) -> Result<HashMap<RunId, CostFields>, Error> {
        let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, CostFields)> {
            Ok((
                r.get(0)?,
                CostFields {
                    usd: r.get(1)?,
                    idle_usd: r.get(2)?,
                    observed_s: r.get(3)?,
                    idle_s: r.get(4)?,
                    gpu_hours: r.get(5)?,
                },
            ))
        };
        const COLS: &str = "run, usd, idle_usd, observed_s, idle_s, gpu_hours";
        let mut out = HashMap::new();
        match ids {
            Some(ids) => {
                let mut stmt = self
                    .conn()
                    .prepare_cached(&format!("SELECT {COLS} FROM run_costs WHERE run = ?1"))?;
                for id in ids {
                    if let Some((_, f)) = stmt.query_row([id.to_string()], read).optional()? {
                        out.insert(*id, f);
                    }
                }
            }
            None => {
                let mut stmt = self
                    .conn()
                    .prepare(&format!("SELECT {COLS} FROM run_costs"))?;
                for row in stmt.query_map([], read)? {
                    let (id, f) = row?;
                    out.insert(parse_id(&id)?, f);
                }
            }
        }
        Ok(out)
    }

    /// The keys of `run`'s summary metrics that start with `prefix`, from the projection the
    /// metric store keeps current at every append (the doc's copy trails while a run logs).
    pub fn metric_keys_with_prefix(&self, run: RunId, prefix: &str) -> Result<Vec<String>, Error> {
        // Keys sort as text: the prefix is a range of the primary key.
        let hi = format!("{prefix}\u{10ffff}");
        let mut stmt = self.conn().prepare_cached(
            "SELECT k.key FROM run_summaries m JOIN key_names k ON k.id = m.key
             WHERE m.run = (SELECT rid FROM runs WHERE id = ?1) AND k.key >= ?2 AND k.key < ?3
             ORDER BY k.key",
        )?;
        let rows = stmt.query_map(params![run.to_string(), prefix, hi], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The runs whose rows say they are running (their cost grows to now).
    pub fn running_costs(&self) -> Result<Vec<(RunId, RunCost)>, Error> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT run, {COST_COLUMNS} FROM run_costs WHERE status = 'running' AND deleted = 0"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            out.push((parse_id(&id)?, cost_from_row(r, 1)?));
        }
        Ok(out)
    }

    /// Sums per group over the live runs in `scope` (all when `None`): runs, priced runs,
    /// dollars, GPU-hours, observed and idle GPU-seconds, idle dollars, and the spend inside
    /// each of `windows` (`[from, to)` in Unix ms; a run's cost is spread evenly over its
    /// time). Figures are as last computed: a running run's growth since is the caller's.
    pub fn cost_totals(
        &self,
        group: &CostGroup,
        scope: Option<&[RunId]>,
        windows: &[(i64, i64)],
    ) -> Result<Vec<CostTotals>, Error> {
        let (key, join) = group_sql(group);
        let scope = scope_join(self.conn(), scope)?;
        let mut cols = String::new();
        for (i, _) in windows.iter().enumerate() {
            let (a, b) = (2 + 2 * i, 3 + 2 * i);
            cols.push_str(&format!(
                ", total(CASE WHEN c.usd IS NULL OR c.end_ms <= ?{a} OR c.start_ms >= ?{b} THEN 0 \
                 WHEN c.end_ms <= c.start_ms THEN c.usd \
                 ELSE c.usd * (min(c.end_ms, ?{b}) - max(c.start_ms, ?{a})) * 1.0 / (c.end_ms - c.start_ms) END)"
            ));
        }
        let sql = format!(
            "SELECT {key}, count(*), count(c.usd), total(c.usd), total(c.gpu_hours), total(c.observed_s),
                    total(c.idle_s), total(c.idle_usd){cols}
             FROM run_costs c {join} {scope} WHERE c.deleted = 0 GROUP BY 1"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let mut args: Vec<rusqlite::types::Value> = vec![match group {
            CostGroup::Tag(k) => k.clone().into(),
            _ => rusqlite::types::Value::Null,
        }];
        for (a, b) in windows {
            args.push((*a).into());
            args.push((*b).into());
        }
        // `?1` is only named by a tag's join; bind it anyway so the numbering holds.
        let sql_uses_1 = matches!(group, CostGroup::Tag(_));
        let bound: Vec<rusqlite::types::Value> = if sql_uses_1 || !windows.is_empty() {
            args
        } else {
            Vec::new()
        };
        let rows = stmt.query_map(rusqlite::params_from_iter(bound), |r| {
            let mut t = CostTotals {
                key: r.get(0)?,
                runs: r.get::<_, i64>(1)? as u64,
                priced: r.get::<_, i64>(2)? as u64,
                usd: r.get(3)?,
                gpu_hours: r.get(4)?,
                observed_s: r.get(5)?,
                idle_s: r.get(6)?,
                idle_usd: r.get(7)?,
                in_window: Vec::with_capacity(windows.len()),
            };
            for i in 0..windows.len() {
                t.in_window.push(r.get(8 + i)?);
            }
            Ok(t)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The spend inside `[lo, hi)` (Unix ms) of the live runs in `scope` whose group value is
    /// `key` (of every one, for `CostGroup::All`), each run's cost spread evenly over its time:
    /// one family's `in_window` of `cost_totals`, without summing every other family.
    pub fn cost_spend(
        &self,
        group: &CostGroup,
        key: Option<&str>,
        scope: Option<&[RunId]>,
        (lo, hi): (i64, i64),
    ) -> Result<f64, Error> {
        let (column, join) = group_sql(group);
        let scope = scope_join(self.conn(), scope)?;
        let only = match group {
            CostGroup::All => "",
            _ => "AND {column} IS ?4",
        }
        .replace("{column}", column);
        let sql = format!(
            "SELECT total(CASE WHEN c.usd IS NULL OR c.end_ms <= ?2 OR c.start_ms >= ?3 THEN 0 \
             WHEN c.end_ms <= c.start_ms THEN c.usd \
             ELSE c.usd * (min(c.end_ms, ?3) - max(c.start_ms, ?2)) * 1.0 / (c.end_ms - c.start_ms) END)
             FROM run_costs c {join} {scope} WHERE c.deleted = 0 {only}"
        );
        let tag = match group {
            CostGroup::Tag(k) => Some(k.as_str()),
            _ => None,
        };
        let mut stmt = self.conn().prepare(&sql)?;
        let spent = if only.is_empty() {
            stmt.query_row(params![tag, lo, hi], |r| r.get(0))?
        } else {
            stmt.query_row(params![tag, lo, hi, key], |r| r.get(0))?
        };
        Ok(spent)
    }

    /// Each live run in `scope` with its group value, times, cost and its last value of
    /// `metric` (when given), oldest first (start, then id).
    pub fn cost_points(
        &self,
        group: &CostGroup,
        scope: Option<&[RunId]>,
        metric: Option<&str>,
    ) -> Result<Vec<(Option<String>, CostPoint)>, Error> {
        let mut out = Vec::new();
        self.scan_points(group, scope, metric, |key, _, p| {
            out.push((key.map(str::to_owned), p));
            Ok(())
        })?;
        Ok(out)
    }

    /// One pass over the live runs in `scope`: each group's sums and runs (oldest first, with
    /// their last value of `metric` when given), and the `top` runs whose idle GPU time cost
    /// most. The same figures as `cost_totals` (without windows), `cost_points` and an
    /// `ORDER BY` of idle dollars, from reading the rows once.
    pub fn cost_scan(
        &self,
        group: &CostGroup,
        scope: Option<&[RunId]>,
        metric: Option<&str>,
        top: usize,
    ) -> Result<CostScan, Error> {
        let mut accs: Vec<Acc> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut none: Option<usize> = None;
        // The best `top` so far, the worst of them on top (most idle first orders least).
        let mut idlers: BinaryHeap<Idler> = BinaryHeap::with_capacity(top + 1);
        self.scan_points(group, scope, metric, |key, f, p| {
            let slot = match key {
                None => *none.get_or_insert_with(|| {
                    accs.push(Acc::default());
                    accs.len() - 1
                }),
                Some(k) => match index.get(k) {
                    Some(i) => *i,
                    None => {
                        accs.push(Acc {
                            key: Some(k.to_owned()),
                            ..Default::default()
                        });
                        index.insert(k.to_owned(), accs.len() - 1);
                        accs.len() - 1
                    }
                },
            };
            let a = &mut accs[slot];
            a.runs += 1;
            if let Some(usd) = p.usd {
                a.priced += 1;
                a.usd.add(usd);
            }
            a.gpu_hours.add(f.gpu_hours);
            a.observed_s.add(f.observed_s);
            a.idle_s.add(f.idle_s);
            if let Some(u) = f.idle_usd {
                a.idle_usd.add(u);
            }
            a.points.push(p);
            if top > 0 && f.idle_s > 0.0 {
                // `+ 0.0` makes -0 a 0, as SQL compares them.
                let candidate = Idler {
                    idle_usd: f.idle_usd.unwrap_or(0.0) + 0.0,
                    idle_s: f.idle_s + 0.0,
                    run: p.run,
                };
                if idlers.len() < top {
                    idlers.push(candidate);
                } else if idlers.peek().is_some_and(|worst| candidate < *worst) {
                    idlers.pop();
                    idlers.push(candidate);
                }
            }
            Ok(())
        })?;
        accs.sort_by(|a, b| a.key.cmp(&b.key));
        let families = accs
            .into_iter()
            .map(|a| CostFamily {
                totals: CostTotals {
                    key: a.key,
                    runs: a.runs,
                    priced: a.priced,
                    usd: a.usd.value(),
                    gpu_hours: a.gpu_hours.value(),
                    observed_s: a.observed_s.value(),
                    idle_s: a.idle_s.value(),
                    idle_usd: a.idle_usd.value(),
                    in_window: Vec::new(),
                },
                runs: a.points,
            })
            .collect();
        let most_first = idlers.into_sorted_vec();
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COST_COLUMNS} FROM run_costs WHERE run = ?1"
        ))?;
        let mut top_idle = Vec::with_capacity(most_first.len());
        for i in most_first {
            let mut rows = stmt.query([i.run.to_string()])?;
            let r = rows
                .next()?
                .ok_or_else(|| corrupt(format!("no row of run {}", i.run)))?;
            top_idle.push((i.run, cost_from_row(r, 0)?));
        }
        Ok(CostScan { families, top_idle })
    }

    /// Calls `each` with every live run in `scope`, oldest first (start, then id): its group
    /// value, its searchable figures and its point (with its last value of `metric`, when
    /// given). Reads the `run_costs_rollup` index, not the rows.
    fn scan_points(
        &self,
        group: &CostGroup,
        scope: Option<&[RunId]>,
        metric: Option<&str>,
        mut each: impl FnMut(Option<&str>, CostFields, CostPoint) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (key, join) = group_sql(group);
        let scope = scope_join(self.conn(), scope)?;
        // The metric's join only when one is asked for: a probe per run otherwise wasted.
        let (value, metric_join) = match metric {
            Some(_) => (
                "m.last",
                "LEFT JOIN runs mr ON mr.id = c.run \
                 LEFT JOIN run_summaries m ON m.run = mr.rid \
                 AND m.key = (SELECT id FROM key_names WHERE key = ?2)",
            ),
            None => ("NULL", ""),
        };
        let sql = format!(
            "SELECT c.run, {key}, c.start_ms, c.end_ms, c.status = 'running', c.usd, c.gpu_hours,
                    c.observed_s, c.idle_s, c.idle_usd, {value}
             FROM run_costs c {join} {scope} {metric_join}
             WHERE c.deleted = 0 ORDER BY c.start_ms, c.run"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let tag = match group {
            CostGroup::Tag(k) => Some(k.as_str()),
            _ => None,
        };
        // Bind only the parameters the text names (`?2` implies `?1`).
        let mut rows = match (metric, tag) {
            (Some(m), t) => stmt.query(params![t, m])?,
            (None, Some(t)) => stmt.query(params![t])?,
            (None, None) => stmt.query([])?,
        };
        while let Some(r) = rows.next()? {
            let id = r.get_ref(0)?.as_str().map_err(corrupt)?;
            let key = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Null => None,
                v => Some(v.as_str().map_err(corrupt)?),
            };
            let usd: Option<f64> = r.get(5)?;
            let fields = CostFields {
                usd,
                gpu_hours: r.get(6)?,
                observed_s: r.get(7)?,
                idle_s: r.get(8)?,
                idle_usd: r.get(9)?,
            };
            let point = CostPoint {
                run: parse_id(id)?,
                start_ms: r.get(2)?,
                end_ms: r.get(3)?,
                running: r.get(4)?,
                usd,
                value: r.get::<_, Option<f64>>(10)?.filter(|v| v.is_finite()),
            };
            each(key, fields, point)?;
        }
        Ok(())
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2))
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}
