//! Cost governance (issue #16): what each run cost, how much of it paid for idle GPUs, and what
//! each family of runs spent and bought.
//!
//! The team's prices, budgets and idle threshold live in the team doc, one key per record
//! (`price/<id>`, `budget/<id>`, `cost/idle_threshold_pct`), so they sync and concurrent
//! additions merge. The figures are `cairn-model`'s rules (`cairn_model::cost`); this module
//! feeds them and keeps their results in the catalog's `run_costs` projection, caught up — like
//! the search index — with the runs whose projection changed since it last looked (a new run, an
//! end, new utilisation samples, from any process or peer), and recomputed in full when the
//! prices or the threshold change. Queries read the projection; a running run's cost is grown
//! from its stored rate to now, never recomputed from samples per query.

mod report;

use std::collections::BTreeMap;

use cairn_catalog::{CostRow, CostState};
use cairn_charts::{
    Chart, Frame, LineChart, Point as ChartPoint, Samples, Series, SystemPanel, Theme, XAxis,
};
use cairn_model::cost::{
    BudgetEntry, BudgetPeriod, DEFAULT_IDLE_THRESHOLD_PCT, FamilyKey, GpuTrace, PriceEntry,
    PriceTable, PriceUnit, RunCost, RunPricing, UtilSample, budgets_in_effect, idle_figures,
    parse_utc,
};
use cairn_model::{Run, RunId, RunStatus};
use serde::{Deserialize, Serialize};

use crate::charts::ChartView;
use crate::stores::now_ms;
use crate::views::MetricPoint;
use crate::{Error, Stores, Workspace};

pub use report::{
    BestPoint, BudgetStatus, CostDashboard, CostReport, CostRequest, DashboardRequest, FamilyCost,
    IdleWaster, PeriodLabel,
};

/// Team-doc key of the idle threshold, in percent utilisation.
const THRESHOLD_KEY: &str = "cost/idle_threshold_pct";
const PRICE_PREFIX: &str = "price/";
const BUDGET_PREFIX: &str = "budget/";

/// The utilisation series of GPU `i`, as `cairn exec` samples it (MLflow's system metric name).
pub fn util_key(gpu: u32) -> String {
    format!("system/gpu_{gpu}_utilization_percentage")
}

/// The GPU index of a utilisation series key.
fn util_gpu(key: &str) -> Option<u32> {
    key.strip_prefix("system/gpu_")?
        .strip_suffix("_utilization_percentage")?
        .parse()
        .ok()
}

/// The most GPUs one imported trace may hold.
pub const MAX_TRACE_GPUS: usize = 256;
/// The largest trace imported at once, in bytes (a week of 8 GPUs read every second is about
/// 300 MB).
pub const MAX_TRACE_BYTES: u64 = 1 << 30;

/// The metric series of an `nvidia-smi --query-gpu=timestamp,index,utilization.gpu,
/// utilization.memory,memory.used,power.draw --format=csv -lms N` trace, under the names
/// `cairn exec` samples into (`system/gpu_0_utilization_percentage`, memory in MB, power in W),
/// one step per reading of each GPU. A malformed line is an error naming it.
pub fn util_trace_series(text: &str) -> Result<Vec<(String, Vec<MetricPoint>)>, Error> {
    if text.len() as u64 > MAX_TRACE_BYTES {
        return Err(Error::Invalid(format!(
            "GPU utilisation trace: {} bytes, more than the {MAX_TRACE_BYTES} imported at once",
            text.len()
        )));
    }
    let samples = cairn_probe::parse_util_trace(text)
        .map_err(|e| Error::Invalid(format!("GPU utilisation trace: {e}")))?;
    let mut by_gpu: BTreeMap<u32, Vec<&cairn_probe::GpuUtilSample>> = BTreeMap::new();
    for s in &samples {
        by_gpu.entry(s.index).or_default().push(s);
        if by_gpu.len() > MAX_TRACE_GPUS {
            return Err(Error::Invalid(format!(
                "GPU utilisation trace: more than {MAX_TRACE_GPUS} GPUs (index {})",
                s.index
            )));
        }
    }
    let mut out = Vec::new();
    for (gpu, mut samples) in by_gpu {
        samples.sort_by_key(|s| s.ts_ms);
        let point = |step: usize, s: &cairn_probe::GpuUtilSample, value: f64| MetricPoint {
            step: step as i64,
            ts_ms: s.ts_ms,
            value,
        };
        let util = samples
            .iter()
            .enumerate()
            .map(|(i, s)| point(i, s, s.util_gpu_pct));
        out.push((util_key(gpu), util.collect()));
        let mem = samples
            .iter()
            .enumerate()
            .map(|(i, s)| point(i, s, s.memory_used_mib * 1.048_576));
        out.push((
            format!("system/gpu_{gpu}_memory_usage_megabytes"),
            mem.collect(),
        ));
        let power: Vec<MetricPoint> = samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.power_w.map(|p| point(i, s, p)))
            .collect();
        if !power.is_empty() {
            out.push((format!("system/gpu_{gpu}_power_usage_watts"), power));
        }
    }
    Ok(out)
}

/// Each family's budget in effect.
type Budgets = Vec<(FamilyKey, BudgetEntry)>;

/// The prices and the settings cost figures are computed with, and a digest of them.
#[derive(Debug, Clone)]
pub(crate) struct Pricing {
    pub(crate) table: PriceTable,
    pub(crate) threshold_pct: f64,
    digest: String,
    /// Entries the team doc holds that were left out, and why.
    pub(crate) problems: Vec<String>,
}

/// A price as a front end sets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SetPrice {
    /// A GPU model (`NVIDIA H200`), an instance type or a host name.
    pub target: String,
    /// US dollars per `per`.
    pub usd: f64,
    /// `gpu-hour` (default: the target is a GPU model) or `hour` (a machine).
    pub per: Option<String>,
    /// From when: `2026-11-01` or `2026-11-01T09:00` (UTC), or `always`. Default: from the
    /// beginning for a target's first price, from now for a change (history keeps its price).
    pub from: Option<String>,
}

/// The price table as stored, and what in it was left out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct PriceList {
    pub entries: Vec<PriceEntry>,
    pub idle_threshold_pct: f64,
    pub problems: Vec<String>,
}

/// A budget as a front end sets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    /// `exp:NAME`, `owner:NAME`, `gpu:MODEL`, `tag:KEY=VALUE` or `view:NAME`.
    pub family: String,
    /// US dollars per period; absent lifts the budget.
    pub usd: Option<f64>,
    /// `day`, `week`, `month` (default) or `total`.
    pub period: Option<String>,
}

/// The budgets as stored.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BudgetList {
    /// The budget in effect for each family.
    pub budgets: Vec<BudgetEntry>,
    pub problems: Vec<String>,
}

/// The team's cost settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CostSettings {
    /// A GPU reading below this utilisation (percent) is idle.
    pub idle_threshold_pct: f64,
}

/// One run's cost panel: its figures (grown to now while it runs) and its GPU utilisation
/// chart with the idle stretches shaded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunCostView {
    pub run: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub cost: Option<RunCost>,
    pub idle_threshold_pct: f64,
    /// GPUs with readings that were never busy while the run held them.
    pub unused_gpus: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub chart: Option<ChartView>,
}

/// A run's cost panel, asked for by run id or prefix.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct RunCostRequest {
    pub id: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub dark: Option<bool>,
}

/// The figures search reads: what `cost.*` fields hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct CostBrief {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub idle_share: Option<f64>,
}

impl CostBrief {
    pub(crate) fn of(cost: &RunCost) -> CostBrief {
        CostBrief {
            usd: cost.usd,
            idle_share: cost.idle_share(),
        }
    }
}

fn bad_json(what: &str, key: &str, e: serde_json::Error) -> String {
    format!("{what} {key} is unreadable and left out: {e}")
}

/// The unit of a price given as text, `gpu-hour` when absent.
fn unit_of(per: Option<&str>) -> Result<PriceUnit, Error> {
    Ok(match per.filter(|p| !p.trim().is_empty()) {
        Some(p) => PriceUnit::parse(p)?,
        None => PriceUnit::GpuHour,
    })
}

impl Stores {
    fn price_entries(&mut self) -> Result<(Vec<PriceEntry>, Vec<String>), Error> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (key, text) in self.catalog_mut().team_entries(PRICE_PREFIX)? {
            match serde_json::from_str::<PriceEntry>(&text) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(bad_json("price", &key, e)),
            }
        }
        Ok((entries, problems))
    }

    fn idle_threshold(&mut self) -> Result<(f64, Option<String>), Error> {
        let Some(text) = self.catalog_mut().team_entry(THRESHOLD_KEY)? else {
            return Ok((DEFAULT_IDLE_THRESHOLD_PCT, None));
        };
        match text.trim().parse::<f64>() {
            Ok(t) if (0.0..=100.0).contains(&t) => Ok((t, None)),
            _ => Ok((
                DEFAULT_IDLE_THRESHOLD_PCT,
                Some(format!(
                    "the idle threshold '{text}' is not a percentage: {DEFAULT_IDLE_THRESHOLD_PCT}% is used"
                )),
            )),
        }
    }

    /// The team's prices and idle threshold, with what was left out.
    pub(crate) fn pricing(&mut self) -> Result<Pricing, Error> {
        let (entries, mut problems) = self.price_entries()?;
        let (threshold_pct, threshold_problem) = self.idle_threshold()?;
        problems.extend(threshold_problem);
        let (table, bad) = PriceTable::new(entries);
        for (e, why) in bad {
            problems.push(format!("price {} is left out: {why}", e.id));
        }
        let mut h = blake3::Hasher::new();
        for e in table.entries() {
            h.update(serde_json::to_string(e).unwrap_or_default().as_bytes());
            h.update(b"\n");
        }
        h.update(format!("threshold={threshold_pct}").as_bytes());
        Ok(Pricing {
            table,
            threshold_pct,
            digest: h.finalize().to_hex().to_string(),
            problems,
        })
    }

    pub(crate) fn set_price(&mut self, req: &SetPrice) -> Result<PriceEntry, Error> {
        let unit = unit_of(req.per.as_deref())?;
        let table = self.pricing()?.table;
        let now = now_ms();
        let from_ms = match req.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) if f.eq_ignore_ascii_case("always") || f.eq_ignore_ascii_case("beginning") => {
                None
            }
            Some(f) => Some(parse_utc(f).ok_or_else(|| {
                Error::Invalid(format!(
                    "'{f}' is not a date: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), or always"
                ))
            })?),
            // A first price applies to every run; a change applies from now on.
            None if table.knows(unit, &req.target) => Some(now),
            None => None,
        };
        let entry = PriceEntry {
            id: RunId::new().to_hex(),
            target: req.target.trim().to_owned(),
            unit,
            usd: req.usd,
            from_ms,
            set_by: self.user().to_owned(),
            set_ms: now,
        };
        entry.validate()?;
        let text = serde_json::to_string(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
        self.catalog_mut()
            .put_team_entry(&format!("{PRICE_PREFIX}{}", entry.id), Some(&text))?;
        Ok(entry)
    }

    pub(crate) fn price_list(&mut self) -> Result<PriceList, Error> {
        let p = self.pricing()?;
        Ok(PriceList {
            entries: p.table.entries().to_vec(),
            idle_threshold_pct: p.threshold_pct,
            problems: p.problems,
        })
    }

    pub(crate) fn set_cost_settings(&mut self, s: &CostSettings) -> Result<CostSettings, Error> {
        if !(0.0..=100.0).contains(&s.idle_threshold_pct) {
            return Err(Error::Invalid(format!(
                "idle threshold {} is not a percentage: expected 0 to 100",
                s.idle_threshold_pct
            )));
        }
        self.catalog_mut()
            .put_team_entry(THRESHOLD_KEY, Some(&s.idle_threshold_pct.to_string()))?;
        Ok(s.clone())
    }

    fn budget_entries(&mut self) -> Result<(Vec<BudgetEntry>, Vec<String>), Error> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (key, text) in self.catalog_mut().team_entries(BUDGET_PREFIX)? {
            match serde_json::from_str::<BudgetEntry>(&text) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(bad_json("budget", &key, e)),
            }
        }
        Ok((entries, problems))
    }

    /// The budget in effect per family, and what was left out.
    pub(crate) fn budgets(&mut self) -> Result<(Budgets, Vec<String>), Error> {
        let (entries, mut problems) = self.budget_entries()?;
        let (live, bad) = budgets_in_effect(&entries);
        for (e, why) in bad {
            problems.push(format!("budget {} is left out: {why}", e.id));
        }
        Ok((live, problems))
    }

    /// Checks that a family names something that exists where that can be known (an
    /// experiment, a saved view).
    pub(crate) fn check_family(&mut self, key: &FamilyKey) -> Result<(), Error> {
        match &key.by {
            cairn_model::cost::FamilyBy::Exp => self.experiment(&key.name).map(drop),
            cairn_model::cost::FamilyBy::View(v) => self.view(v).map(drop),
            _ => Ok(()),
        }
    }

    pub(crate) fn set_budget(&mut self, req: &SetBudget) -> Result<BudgetEntry, Error> {
        let key = FamilyKey::parse(&req.family)?;
        self.check_family(&key)?;
        let period = match req.period.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => BudgetPeriod::parse(p)?,
            None => BudgetPeriod::Month,
        };
        let entry = BudgetEntry {
            id: RunId::new().to_hex(),
            family: key.to_string(),
            usd: req.usd,
            period,
            set_by: self.user().to_owned(),
            set_ms: now_ms(),
        };
        entry.validate()?;
        let text = serde_json::to_string(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
        self.catalog_mut()
            .put_team_entry(&format!("{BUDGET_PREFIX}{}", entry.id), Some(&text))?;
        Ok(entry)
    }

    /// The GPU utilisation readings of a run, one trace per GPU.
    fn util_traces(&self, run: &Run) -> Result<Vec<GpuTrace>, Error> {
        let mut gpus: Vec<u32> = self
            .catalog()
            .metric_keys_with_prefix(run.id, "system/gpu_")?
            .iter()
            .filter_map(|k| util_gpu(k))
            .collect();
        gpus.sort_unstable();
        gpus.dedup();
        let mut traces = Vec::with_capacity(gpus.len());
        for gpu in gpus {
            let points = match self.metric_history(run.id, &util_key(gpu)) {
                Ok(p) => p,
                Err(Error::UnknownMetric { .. }) => continue,
                Err(e) => return Err(e),
            };
            traces.push(GpuTrace {
                index: gpu,
                samples: points
                    .into_iter()
                    .map(|p| UtilSample {
                        ts_ms: p.ts_ms,
                        pct: p.value,
                    })
                    .collect(),
            });
        }
        Ok(traces)
    }

    /// The time a run held its machine: from its start to its end, or to `now` while it runs.
    fn window(run: &Run, now: i64) -> (i64, i64) {
        let hi = match (run.status, run.end_ms) {
            (RunStatus::Running, _) => now,
            (_, Some(end)) => end,
            (_, None) => run.start_ms,
        };
        (run.start_ms, hi.max(run.start_ms))
    }

    /// A run's cost and idle figures, computed from its profile, its readings and `pricing`.
    pub(crate) fn compute_cost(
        &self,
        run: &Run,
        pricing: &Pricing,
        now: i64,
    ) -> Result<RunCost, Error> {
        let (lo, hi) = Self::window(run, now);
        let traces = self.util_traces(run)?;
        let idle =
            (!traces.is_empty()).then(|| idle_figures(&traces, lo, hi, pricing.threshold_pct));
        let priced = RunPricing::new(run.lineage.infra.as_ref(), lo, hi, &pricing.table);
        Ok(priced.cost(run.status == RunStatus::Running, idle))
    }

    fn cost_row(&self, run: &Run, pricing: &Pricing, now: i64) -> Result<CostRow, Error> {
        Ok(CostRow {
            run: run.id,
            experiment: run.experiment,
            owner: run.owner.clone(),
            status: run.status,
            deleted: run.deleted,
            start_ms: run.start_ms,
            cost: self.compute_cost(run, pricing, now)?,
        })
    }

    /// Brings the cost projection up to date: the runs whose projection changed since it last
    /// looked (any process, any peer) are costed again; everything is, when the prices or the
    /// idle threshold changed. Nothing is done when nothing changed.
    pub(crate) fn cost_catch_up(&mut self) -> Result<(), Error> {
        let (changed, _) = self.catalog().change_counters()?;
        let mut state: CostState = self.catalog().cost_state()?;
        let heads = self.catalog().team_heads()?;
        let team_moved = heads != state.team_heads || state.pricing.is_empty();
        if !team_moved && changed == state.seen {
            return Ok(());
        }
        let pricing = self.pricing()?;
        let full = pricing.digest != state.pricing;
        state.pricing = pricing.digest.clone();
        state.team_heads = heads;
        let since = if full { -1 } else { state.seen };
        let (seq, runs) = self.catalog().changes_since(since)?;
        let now = now_ms();
        let mut rows = Vec::with_capacity(runs.len());
        for run in &runs {
            rows.push(self.cost_row(run, &pricing, now)?);
        }
        state.seen = seq;
        self.catalog_mut().put_run_costs(&rows, &[], &state, seq)?;
        if full && !runs.is_empty() {
            tracing::info!(
                runs = runs.len(),
                "costed every run again: the prices changed"
            );
        }
        Ok(())
    }

    /// A run's figures as of now: the projection's, grown to now while it runs (computed
    /// afresh when a price changed since it was taken).
    pub(crate) fn cost_now(
        &mut self,
        id: RunId,
        pricing: Option<&Pricing>,
    ) -> Result<Option<RunCost>, Error> {
        let Some(stored) = self.catalog().run_cost(id)? else {
            return Ok(None);
        };
        let now = now_ms();
        if stored.valid_at(now) {
            return Ok(Some(stored.at(now)));
        }
        let owned;
        let pricing = match pricing {
            Some(p) => p,
            None => {
                owned = self.pricing()?;
                &owned
            }
        };
        let run = self.run_record(id)?;
        Ok(Some(self.compute_cost(&run, pricing, now)?))
    }

    /// The cost panel of one run.
    pub(crate) fn run_cost_view(&mut self, req: &RunCostRequest) -> Result<RunCostView, Error> {
        self.cost_catch_up()?;
        let id = self.resolve_run(&req.id)?;
        let pricing = self.pricing()?;
        let cost = self.cost_now(id, Some(&pricing))?;
        let run = self.run_record(id)?;
        let traces = self.util_traces(&run)?;
        let (lo, hi) = Self::window(&run, now_ms());
        let threshold = pricing.threshold_pct;
        let busy = |t: &GpuTrace| {
            t.samples
                .iter()
                .any(|s| s.ts_ms >= lo && s.ts_ms < hi && s.pct >= threshold)
        };
        let unused_gpus: Vec<u32> = traces
            .iter()
            .filter(|t| !busy(t))
            .map(|t| t.index)
            .collect();
        let chart = if traces.is_empty() {
            None
        } else {
            let mut chart = LineChart::new("GPU utilisation (%)");
            chart.x = XAxis::RelativeTime;
            let spans = cost
                .as_ref()
                .and_then(|c| c.idle.as_ref())
                .map(|i| i.spans.clone())
                .unwrap_or_default();
            // The idle stretches of the GPUs that worked (an unused GPU would shade it all).
            let mut shade: Vec<(f64, f64)> = spans
                .iter()
                .filter(|s| !unused_gpus.contains(&s.gpu))
                .map(|s| {
                    (
                        (s.start_ms - run.start_ms) as f64 / 1000.0,
                        (s.end_ms - run.start_ms) as f64 / 1000.0,
                    )
                })
                .collect();
            shade.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut merged: Vec<(f64, f64)> = Vec::new();
            for (a, b) in shade {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            chart.shade = merged;
            chart.y_range = Some((0.0, 100.0));
            for t in &traces {
                let points = t
                    .samples
                    .iter()
                    .map(|s| ChartPoint {
                        x: (s.ts_ms - run.start_ms) as f64 / 1000.0,
                        y: s.pct,
                    })
                    .collect();
                chart.series.push(Series::new(
                    format!("gpu{}", t.index),
                    format!("GPU {}", t.index),
                    Samples::Points(points),
                ));
            }
            let mut frame = Frame::new(
                req.width.unwrap_or(720).clamp(200, 4000),
                req.height.unwrap_or(280).clamp(120, 4000),
            );
            frame.theme = if req.dark.unwrap_or(false) {
                Theme::Dark
            } else {
                Theme::Light
            };
            // A panel of one chart: its note counts GPUs, not runs.
            let panel = SystemPanel {
                title: Some(format!("GPU utilisation, idle below {threshold}% shaded")),
                charts: vec![chart],
            };
            let out = cairn_charts::render_svg(&Chart::System(panel), &frame)
                .map_err(|e| Error::Invalid(format!("chart: {e}")))?;
            Some(ChartView {
                svg: out.svg,
                map: out.map,
            })
        };
        Ok(RunCostView {
            run: id,
            cost,
            idle_threshold_pct: threshold,
            unused_gpus,
            chart,
        })
    }

    /// The cost figures of runs for a page of results (grown to now while they run).
    pub(crate) fn cost_briefs(
        &mut self,
        ids: &[RunId],
    ) -> Result<BTreeMap<RunId, CostBrief>, Error> {
        let now = now_ms();
        Ok(self
            .catalog()
            .run_costs(ids)?
            .into_iter()
            .map(|(id, c)| (id, CostBrief::of(&c.at(now))))
            .collect())
    }
}

impl Workspace {
    /// The team's price table and idle threshold.
    pub fn prices(&self) -> Result<PriceList, Error> {
        self.read("prices", |s| s.price_list())
    }

    /// Adds a price (never edits one: history keeps the prices it had), then costs the runs
    /// again with it.
    pub fn set_price(&self, req: &SetPrice) -> Result<PriceEntry, Error> {
        let entry = self.write("set_price", |s| s.set_price(req))?;
        self.read("cost_catch_up", |s| s.cost_catch_up())?;
        Ok(entry)
    }

    pub fn set_cost_settings(&self, settings: &CostSettings) -> Result<CostSettings, Error> {
        let out = self.write("set_cost_settings", |s| s.set_cost_settings(settings))?;
        self.read("cost_catch_up", |s| s.cost_catch_up())?;
        Ok(out)
    }

    /// The budget in effect for each family.
    pub fn budgets(&self) -> Result<BudgetList, Error> {
        self.read("budgets", |s| {
            let (live, problems) = s.budgets()?;
            Ok(BudgetList {
                budgets: live.into_iter().map(|(_, e)| e).collect(),
                problems,
            })
        })
    }

    /// Sets (or, without an amount, lifts) a family's budget.
    pub fn set_budget(&self, req: &SetBudget) -> Result<BudgetEntry, Error> {
        self.write("set_budget", |s| s.set_budget(req))
    }

    /// One run's cost panel: figures and the utilisation chart.
    pub fn run_cost(&self, req: &RunCostRequest) -> Result<RunCostView, Error> {
        self.read("run_cost", |s| s.run_cost_view(req))
    }

    /// Spend, idle waste and improvement per dollar by family.
    pub fn cost_report(&self, req: &CostRequest) -> Result<CostReport, Error> {
        let index = &self.shared_index();
        self.read("cost_report", |s| s.cost_report(index, req))
    }

    /// The cost dashboard: the report, spend over time stacked by family and a family's
    /// cost-vs-metric frontier, drawn.
    pub fn cost_dashboard(&self, req: &DashboardRequest) -> Result<CostDashboard, Error> {
        let index = &self.shared_index();
        self.read("cost_dashboard", |s| s.cost_dashboard(index, req))
    }

    /// Brings the cost projection up to date now (it is, anyway, before every cost query).
    pub fn cost_catch_up(&self) -> Result<(), Error> {
        self.read("cost_catch_up", |s| s.cost_catch_up())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_becomes_exec_series_and_bad_lines_are_named() {
        let text = "timestamp, index, utilization.gpu [%], utilization.memory [%], memory.used [MiB], power.draw [W]\n\
                    2026/11/27 04:06:11.781, 0, 0, 0, 100, 79.13\n\
                    2026/11/27 04:06:11.781, 1, 50, 0, 0, [N/A]\n\
                    2026/11/27 04:06:12.036, 0, 97, 11, 1311, 80.00\n";
        let series = util_trace_series(text).unwrap();
        let keys: Vec<&str> = series.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "system/gpu_0_utilization_percentage",
                "system/gpu_0_memory_usage_megabytes",
                "system/gpu_0_power_usage_watts",
                "system/gpu_1_utilization_percentage",
                "system/gpu_1_memory_usage_megabytes",
            ]
        );
        assert_eq!(series[0].1[1].step, 1);
        assert_eq!(series[0].1[1].value, 97.0);
        assert_eq!(util_gpu("system/gpu_12_utilization_percentage"), Some(12));
        let bad = util_trace_series("timestamp, index, utilization.gpu [%], utilization.memory [%], memory.used [MiB]\n2026/11/27 04:06:11.781, 0, lots, 0, 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            bad,
            "GPU utilisation trace: line 2: utilization.gpu \"lots\" is not a number"
        );
    }
}
