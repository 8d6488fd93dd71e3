//! Rollups by family: spend (in all, per period, against budgets), GPU-hours, idle share and
//! idle dollars, improvement per dollar, the cost-vs-metric frontier, the top idle wasters —
//! read from the cost projection in one pass (`Catalog::cost_scan`: sums, each run's row, the top
//! idle), with running runs grown to now.

use std::collections::HashMap;

use cairn_catalog::{CostGroup, CostPoint, CostScan, CostTotals};
use cairn_charts::{
    Cell, Chart, Frame, ScatterChart, ScatterPoint, StackedChart, StackedSeries, Theme,
};
use cairn_model::cost::{
    Baseline, BudgetEntry, BudgetPeriod, Direction, FamilyBy, FamilyKey, FamilyRun, Improvement,
    Period, RunCost, best_over_time, improvement, pareto_frontier,
};
use cairn_model::{Run, RunId};
use serde::{Deserialize, Serialize};

use super::Pricing;
use crate::charts::ChartView;
use crate::search::SharedIndex;
use crate::stores::now_ms;
use crate::{Error, Stores};

/// What a cost report covers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct CostRequest {
    /// How runs form families: `exp` (default), `owner`, `gpu`, `tag:KEY`, `view:NAME`.
    pub by: Option<String>,
    /// Only the runs this query matches.
    pub q: Option<String>,
    /// The metric improvement per dollar is measured on (its last value per run).
    pub metric: Option<String>,
    /// `max` or `min`; default from the metric's name (loss, error … lower is better).
    pub direction: Option<String>,
    /// Spend per `day`, `week` or `month` (UTC); default week.
    pub every: Option<String>,
    /// How many periods, up to now (default 12, at most 366).
    pub periods: Option<u32>,
    /// The marginal improvement per dollar is over the family's last N runs (default 10).
    pub last: Option<u32>,
    /// A registered model whose `@champion` is the baseline (default: a champion whose run is
    /// in the family, else the family's first run).
    pub champion: Option<String>,
    /// How many top idle wasters (default 10, at most 1000).
    pub top: Option<u32>,
}

/// One period of the report's spend columns.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct PeriodLabel {
    pub start_ms: i64,
    pub label: String,
}

/// The best value so far, after a run that improved it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BestPoint {
    pub start_ms: i64,
    pub value: f64,
    pub run: RunId,
}

/// A budget and how much of it is spent in its current period.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BudgetStatus {
    pub family: String,
    pub usd: f64,
    pub period: BudgetPeriod,
    /// `2026-12`, `2026-W49`, `2026-12-04`, or `all time`.
    pub period_label: String,
    pub spent_usd: f64,
    pub over: bool,
}

/// What one family spent and bought.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FamilyCost {
    /// `exp:resnet50-imagenet`, `owner:alice`, …
    pub key: String,
    /// What it is called (`(no owner)`, `(untagged)`, `(no GPU)` for runs without one).
    pub name: String,
    pub runs: u64,
    pub unpriced_runs: u64,
    pub usd: f64,
    pub gpu_hours: f64,
    pub idle_usd: f64,
    /// Idle share of the observed GPU time, when there were readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub idle_share: Option<f64>,
    /// Spend in each of the report's periods (a run's cost spread over the time it ran).
    pub spend: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub improvement: Option<Improvement>,
    pub best: Vec<BestPoint>,
    /// The runs on the cost-vs-metric frontier, cheapest first.
    pub frontier: Vec<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub budget: Option<BudgetStatus>,
}

/// A run whose idle GPUs cost most.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct IdleWaster {
    pub run: RunId,
    pub name: String,
    pub experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub idle_usd: Option<f64>,
    pub idle_s: f64,
    pub idle_share: f64,
    pub start_s: f64,
    pub middle_s: f64,
    pub end_s: f64,
    pub unused_s: f64,
}

/// Spend, idle waste and what it bought, by family.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct CostReport {
    pub by: String,
    pub as_of_ms: i64,
    pub idle_threshold_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub direction: Option<Direction>,
    pub every: Period,
    pub periods: Vec<PeriodLabel>,
    /// Most spend first.
    pub families: Vec<FamilyCost>,
    /// Every run in scope as one family.
    pub total: FamilyCost,
    /// Every budget in effect (whatever the grouping), and its spend so far.
    pub budgets: Vec<BudgetStatus>,
    /// How many budgets are crossed.
    pub over_budget: u32,
    pub top_idle: Vec<IdleWaster>,
    /// Prices, budgets or settings in the team doc that were left out, and why.
    pub problems: Vec<String>,
}

/// The dashboard: a report and its charts.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct DashboardRequest {
    pub by: Option<String>,
    pub q: Option<String>,
    pub metric: Option<String>,
    pub direction: Option<String>,
    pub every: Option<String>,
    pub periods: Option<u32>,
    pub last: Option<u32>,
    pub champion: Option<String>,
    pub top: Option<u32>,
    /// The family whose frontier is drawn (`exp:NAME`); default the one that spent most.
    pub family: Option<String>,
    pub width: Option<u32>,
    pub dark: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct CostDashboard {
    pub report: CostReport,
    /// Spend per period, stacked by family (the eight that spent most, then the rest).
    pub spend_chart: ChartView,
    /// The family whose frontier is drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub frontier_family: Option<String>,
    /// Its runs' cost against the metric, the frontier joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub frontier_chart: Option<ChartView>,
}

/// Periods the report may span.
const MAX_PERIODS: u32 = 366;
/// Points a frontier chart draws at most (the frontier itself always).
const MAX_SCATTER: usize = 4000;

fn group_of(by: &FamilyBy) -> CostGroup {
    match by {
        FamilyBy::Exp => CostGroup::Experiment,
        FamilyBy::Owner => CostGroup::Owner,
        FamilyBy::Gpu => CostGroup::GpuModel,
        FamilyBy::Tag(k) => CostGroup::Tag(k.clone()),
        FamilyBy::View(_) => CostGroup::All,
    }
}

/// A run's value under a grouping (what `cost_totals` groups it by).
fn key_of(run: &Run, group: &CostGroup, gpu_model: Option<&str>) -> Option<String> {
    match group {
        CostGroup::Experiment => Some(run.experiment.to_string()),
        CostGroup::Owner => run.owner.clone(),
        CostGroup::GpuModel => gpu_model.map(str::to_owned),
        CostGroup::Tag(k) => run.tags.get(k).cloned(),
        CostGroup::All => None,
    }
}

/// The current period's window holding `now`.
fn current(period: BudgetPeriod, now: i64) -> (i64, i64, String) {
    match period.period() {
        Some(p) => {
            let start = p.start_of(now);
            (start, p.next(start), p.label(start))
        }
        None => (i64::MIN / 4, i64::MAX / 4, "all time".into()),
    }
}

/// The growth of running runs since their figures were taken, per run.
struct Growth {
    run: Run,
    gpu_model: Option<String>,
    /// (usd, gpu_hours) added since the stored figures; `usd` is 0 for an unpriced run.
    usd: f64,
    gpu_hours: f64,
    end_ms: i64,
}

impl Stores {
    /// What the running runs added since their figures were taken (recomputed where a price
    /// changed meanwhile).
    fn growth(&mut self, pricing: &Pricing) -> Result<Vec<Growth>, Error> {
        let now = now_ms();
        let mut out = Vec::new();
        for (id, stored) in self.catalog().running_costs()? {
            let Ok(run) = self.run_record(id) else {
                continue;
            };
            let grown = if stored.valid_at(now) {
                stored.at(now)
            } else {
                self.compute_cost(&run, pricing, now)?
            };
            out.push(Growth {
                gpu_model: stored.gpu_model.clone(),
                usd: grown.usd.unwrap_or(0.0) - stored.usd.unwrap_or(0.0),
                gpu_hours: grown.gpu_hours - stored.gpu_hours,
                end_ms: now,
                run,
            });
        }
        Ok(out)
    }

    /// The runs a report is limited to: those `q` matches, narrowed to a view's query
    /// (combined as syntax trees, never as text).
    pub(crate) fn cost_scope(
        &mut self,
        index: &SharedIndex,
        q: Option<&str>,
        view: Option<&str>,
    ) -> Result<Option<Vec<RunId>>, Error> {
        let parse = |what: &'static str, text: &str| {
            cairn_search::parse(text).map_err(|source| Error::Query { what, source })
        };
        let mut parts = Vec::new();
        if let Some(v) = view {
            parts.push(parse("view query", &self.view(v)?.query)?);
        }
        if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
            parts.push(parse("query", q)?);
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.all_matching_query(
            index,
            cairn_search::Query::and(parts),
        )?))
    }

    /// The cost report `req` asks for.
    pub(crate) fn cost_report(
        &mut self,
        index: &SharedIndex,
        req: &CostRequest,
    ) -> Result<CostReport, Error> {
        self.cost_catch_up()?;
        let by = FamilyBy::parse(req.by.as_deref().unwrap_or("exp"))?;
        let view = match &by {
            FamilyBy::View(v) => Some(v.as_str()),
            _ => None,
        };
        let scope = self.cost_scope(index, req.q.as_deref(), view)?;
        let scope = scope.as_deref();
        let group = group_of(&by);
        let pricing = self.pricing()?;
        let now = now_ms();
        let every = match req.every.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(e) => Period::parse(e).ok_or_else(|| {
                Error::Invalid(format!("unknown period '{e}': expected day, week or month"))
            })?,
            None => Period::Week,
        };
        let n_periods = req.periods.unwrap_or(12).clamp(1, MAX_PERIODS);
        let metric = req.metric.clone().filter(|m| !m.trim().is_empty());
        let direction = match (
            &metric,
            req.direction.as_deref().filter(|d| !d.trim().is_empty()),
        ) {
            (_, Some(d)) => Some(Direction::parse(d)?),
            (Some(m), None) => Some(Direction::infer(m)),
            (None, None) => None,
        };
        let names: HashMap<String, String> = self
            .experiments_all()?
            .into_iter()
            .map(|e| (e.id.to_string(), e.name))
            .collect();
        let family_name = |key: &Option<String>| -> String {
            match (&by, key) {
                (FamilyBy::View(v), _) => v.clone(),
                (FamilyBy::Exp, Some(id)) => names.get(id).cloned().unwrap_or_else(|| id.clone()),
                (FamilyBy::Owner, None) => "(no owner)".into(),
                (FamilyBy::Gpu, None) => "(no GPU)".into(),
                (FamilyBy::Tag(_), None) => "(untagged)".into(),
                (_, Some(k)) => k.clone(),
                (FamilyBy::Exp, None) => "(none)".into(),
            }
        };
        let family_key = |key: &Option<String>| -> String {
            let name = family_name(key);
            match &by {
                FamilyBy::View(v) => format!("view:{v}"),
                FamilyBy::Tag(k) => format!("tag:{k}={name}"),
                other => format!("{other}:{name}"),
            }
        };

        // One pass over the projection: totals and runs per family, the top idle wasters; then
        // running runs grown to now.
        let top = req.top.unwrap_or(10).clamp(1, 1000) as usize;
        let scan = self
            .catalog()
            .cost_scan(&group, scope, metric.as_deref(), top)?;
        let totals: Vec<&CostTotals> = scan.families.iter().map(|f| &f.totals).collect();
        let growth = self.growth(&pricing)?;
        let in_scope = |id: &RunId| scope.is_none_or(|s| s.contains(id));
        let mut families: Vec<FamilyCost> = totals
            .iter()
            .map(|t| FamilyCost {
                key: family_key(&t.key),
                name: family_name(&t.key),
                runs: t.runs,
                unpriced_runs: t.runs - t.priced,
                usd: t.usd,
                gpu_hours: t.gpu_hours,
                idle_usd: t.idle_usd,
                idle_share: (t.observed_s > 0.0).then(|| t.idle_s / t.observed_s),
                spend: Vec::new(),
                improvement: None,
                best: Vec::new(),
                frontier: Vec::new(),
                budget: None,
            })
            .collect();
        for g in growth
            .iter()
            .filter(|g| !g.run.deleted && in_scope(&g.run.id))
        {
            let k = key_of(&g.run, &group, g.gpu_model.as_deref());
            if let Some(i) = totals.iter().position(|t| t.key == k) {
                families[i].usd += g.usd;
                families[i].gpu_hours += g.gpu_hours;
            }
        }

        // Per-run rows: spend per period, improvement per dollar, frontiers.
        let period_starts: Vec<i64> = {
            let mut starts = vec![every.start_of(now)];
            while starts.len() < n_periods as usize {
                let first = starts[0];
                starts.insert(0, every.start_of(first - 1));
            }
            starts
        };
        let grown: HashMap<RunId, &Growth> = growth.iter().map(|g| (g.run.id, g)).collect();
        let champion = match req.champion.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(model) => Some(self.champion_of(model, metric.as_deref())?),
            None => None,
        };
        let champions = if champion.is_none() && metric.is_some() {
            self.champions(metric.as_deref())?
        } else {
            Vec::new()
        };
        let last_n = req.last.unwrap_or(10).clamp(1, 10_000) as usize;
        for (i, family) in scan.families.iter().enumerate() {
            let rows = family.runs.as_slice();
            let runs: Vec<FamilyRun> = rows
                .iter()
                .map(|p| {
                    let extra = grown.get(&p.run).map_or(0.0, |g| g.usd);
                    FamilyRun {
                        id: p.run,
                        start_ms: p.start_ms,
                        usd: p.usd.map(|u| u + extra),
                        value: p.value,
                    }
                })
                .collect();
            families[i].spend = spread(rows, &grown, every, &period_starts);
            if let (Some(_), Some(dir)) = (&metric, direction) {
                let baseline = champion
                    .or_else(|| {
                        champions
                            .iter()
                            .find(|c| matches!(c, Baseline::Champion { run, .. } if rows.iter().any(|p| p.run == *run)))
                            .copied()
                    })
                    .unwrap_or(Baseline::FirstRun);
                families[i].improvement = improvement(&runs, dir, baseline, last_n);
                families[i].best = best_over_time(&runs, dir)
                    .into_iter()
                    .map(|(start_ms, value, run)| BestPoint {
                        start_ms,
                        value,
                        run,
                    })
                    .collect();
                families[i].frontier = pareto_frontier(&runs, dir);
            }
        }
        let mut order: Vec<usize> = (0..families.len()).collect();
        order.sort_by(|&a, &b| {
            families[b]
                .usd
                .total_cmp(&families[a].usd)
                .then_with(|| families[a].name.cmp(&families[b].name))
        });
        let mut families: Vec<FamilyCost> = {
            let mut slots: Vec<Option<FamilyCost>> = families.into_iter().map(Some).collect();
            order.into_iter().filter_map(|i| slots[i].take()).collect()
        };

        // Budgets, whatever the grouping.
        let (budgets, mut problems) = self.budgets()?;
        problems.extend(pricing.problems.iter().cloned());
        let unscoped = scope.is_none().then_some((&group, &scan));
        let statuses = self.budget_statuses(index, &budgets, &growth, &names, unscoped, now)?;
        for f in &mut families {
            f.budget = statuses.iter().find(|b| b.family == f.key).cloned();
        }
        let over_budget = statuses.iter().filter(|b| b.over).count() as u32;

        let total = FamilyCost {
            key: "all".into(),
            name: "all runs".into(),
            runs: families.iter().map(|f| f.runs).sum(),
            unpriced_runs: families.iter().map(|f| f.unpriced_runs).sum(),
            usd: families.iter().map(|f| f.usd).sum(),
            gpu_hours: families.iter().map(|f| f.gpu_hours).sum(),
            idle_usd: families.iter().map(|f| f.idle_usd).sum(),
            idle_share: {
                let (o, i) = totals
                    .iter()
                    .fold((0.0, 0.0), |(o, i), t| (o + t.observed_s, i + t.idle_s));
                (o > 0.0).then(|| i / o)
            },
            spend: (0..period_starts.len())
                .map(|p| families.iter().map(|f| f.spend[p]).sum())
                .collect(),
            improvement: None,
            best: Vec::new(),
            frontier: Vec::new(),
            budget: None,
        };
        let top_idle = self.idle_wasters(scan.top_idle, &names)?;
        Ok(CostReport {
            by: by.label(),
            as_of_ms: now,
            idle_threshold_pct: pricing.threshold_pct,
            metric,
            direction,
            every,
            periods: period_starts
                .iter()
                .map(|s| PeriodLabel {
                    start_ms: *s,
                    label: every.label(*s),
                })
                .collect(),
            families: std::mem::take(&mut families),
            total,
            budgets: statuses,
            over_budget,
            top_idle,
            problems,
        })
    }

    /// The spend of every budgeted family in its budget's current period. `unscoped` is a
    /// report's pass over every live run, and its grouping.
    fn budget_statuses(
        &mut self,
        index: &SharedIndex,
        budgets: &[(FamilyKey, BudgetEntry)],
        growth: &[Growth],
        names: &HashMap<String, String>,
        unscoped: Option<(&CostGroup, &CostScan)>,
        now: i64,
    ) -> Result<Vec<BudgetStatus>, Error> {
        let mut out = Vec::new();
        for (key, entry) in budgets {
            let Some(limit) = entry.usd else { continue };
            let (lo, hi, label) = current(entry.period, now);
            let (group, scope, want): (CostGroup, Option<Vec<RunId>>, Option<String>) =
                match &key.by {
                    FamilyBy::View(v) => match self.cost_scope(index, None, Some(v)) {
                        Ok(s) => (CostGroup::All, s, None),
                        // A budget on a view deleted since is reported as unspent.
                        Err(Error::UnknownView(_)) => (CostGroup::All, Some(Vec::new()), None),
                        Err(e) => return Err(e),
                    },
                    FamilyBy::Exp => {
                        let id = names
                            .iter()
                            .find(|(_, n)| **n == key.name)
                            .map(|(id, _)| id.clone());
                        (CostGroup::Experiment, None, Some(id.unwrap_or_default()))
                    }
                    other => (group_of(other), None, Some(key.name.clone())),
                };
            // The report's own pass holds the family when it read every run by the same
            // grouping; otherwise the projection is summed for the budget.
            let mut spent: f64 = match unscoped {
                Some((g, scan)) if *g == group && scope.is_none() => scan
                    .families
                    .iter()
                    .find(|f| f.totals.key == want)
                    .map_or(0.0, |f| f.in_window(lo, hi)),
                _ => self.catalog().cost_spend(
                    &group,
                    want.as_deref(),
                    scope.as_deref(),
                    (lo, hi),
                )?,
            };
            for g in growth.iter().filter(|g| !g.run.deleted) {
                let member = match &group {
                    CostGroup::All => scope.as_ref().is_some_and(|s| s.contains(&g.run.id)),
                    other => key_of(&g.run, other, g.gpu_model.as_deref()) == want,
                };
                if member && g.end_ms > lo && g.end_ms <= hi {
                    spent += g.usd;
                }
            }
            out.push(BudgetStatus {
                family: key.to_string(),
                usd: limit,
                period: entry.period,
                period_label: label,
                spent_usd: spent,
                over: spent > limit,
            });
        }
        Ok(out)
    }

    /// The `@champion` of registered model `model`: its run's value of `metric` and start.
    fn champion_of(&mut self, model: &str, metric: Option<&str>) -> Result<Baseline, Error> {
        let version = self.model_version_by_alias(model, "champion")?;
        let run = version.run.ok_or_else(|| {
            Error::Invalid(format!(
                "the @champion of '{model}' (version {}) names no run to take a baseline from",
                version.version
            ))
        })?;
        let r = self.run_record(run)?;
        let metric = metric.ok_or_else(|| {
            Error::Invalid("a champion baseline needs a metric (--metric)".into())
        })?;
        let value = r
            .metrics
            .get(metric)
            .map(|m| m.last)
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the @champion of '{model}' (run {run}) has no value of '{metric}'"
                ))
            })?;
        Ok(Baseline::Champion {
            run,
            start_ms: r.start_ms,
            value,
        })
    }

    /// Every registered model's `@champion` with a value of `metric`.
    fn champions(&mut self, metric: Option<&str>) -> Result<Vec<Baseline>, Error> {
        let mut out = Vec::new();
        for m in self.registered_models()? {
            if m.aliases.iter().any(|a| a.name == "champion")
                && let Ok(b) = self.champion_of(&m.name, metric)
            {
                out.push(b);
            }
        }
        Ok(out)
    }

    fn idle_wasters(
        &mut self,
        top: Vec<(RunId, RunCost)>,
        names: &HashMap<String, String>,
    ) -> Result<Vec<IdleWaster>, Error> {
        let mut out = Vec::new();
        for (id, cost) in top {
            let Ok(run) = self.run_record(id) else {
                continue;
            };
            let Some(idle) = cost.idle.as_ref() else {
                continue;
            };
            out.push(IdleWaster {
                run: id,
                name: run.name.clone(),
                experiment: names
                    .get(&run.experiment.to_string())
                    .cloned()
                    .unwrap_or_default(),
                owner: run.owner.clone(),
                usd: cost.usd,
                idle_usd: cost.idle_usd,
                idle_s: idle.idle_s,
                idle_share: idle.share(),
                start_s: idle.start_s,
                middle_s: idle.middle_s,
                end_s: idle.end_s,
                unused_s: idle.unused_s,
            });
        }
        Ok(out)
    }

    /// The dashboard: the report and its two charts.
    pub(crate) fn cost_dashboard(
        &mut self,
        index: &SharedIndex,
        req: &DashboardRequest,
    ) -> Result<CostDashboard, Error> {
        let report = self.cost_report(
            index,
            &CostRequest {
                by: req.by.clone(),
                q: req.q.clone(),
                metric: req.metric.clone(),
                direction: req.direction.clone(),
                every: req.every.clone(),
                periods: req.periods,
                last: req.last,
                champion: req.champion.clone(),
                top: req.top,
            },
        )?;
        let width = req.width.unwrap_or(900).clamp(300, 4000);
        let theme = if req.dark.unwrap_or(false) {
            Theme::Dark
        } else {
            Theme::Light
        };
        let draw = |chart: Chart, height: u32| -> Result<ChartView, Error> {
            let frame = Frame::new(width, height).with_theme(theme);
            let out = cairn_charts::render_svg(&chart, &frame)
                .map_err(|e| Error::Invalid(format!("chart: {e}")))?;
            Ok(ChartView {
                svg: out.svg,
                map: out.map,
            })
        };
        // Spend over time: the eight families that spent most, the rest as one.
        const SHOWN: usize = 8;
        let mut series: Vec<StackedSeries> = report
            .families
            .iter()
            .take(SHOWN)
            .map(|f| StackedSeries {
                id: f.key.clone(),
                label: f.name.clone(),
                values: f.spend.clone(),
            })
            .collect();
        if report.families.len() > SHOWN {
            let rest = &report.families[SHOWN..];
            series.push(StackedSeries {
                id: "other".into(),
                label: format!("{} more", rest.len()),
                values: (0..report.periods.len())
                    .map(|p| rest.iter().map(|f| f.spend[p]).sum())
                    .collect(),
            });
        }
        let spend_chart = draw(
            Chart::Stacked(StackedChart {
                title: Some(format!(
                    "Spend per {} by {}, US dollars",
                    report.every, report.by
                )),
                y_label: "US dollars".into(),
                categories: report.periods.iter().map(|p| p.label.clone()).collect(),
                series,
            }),
            300,
        )?;
        let family = match req.family.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(
                report
                    .families
                    .iter()
                    .find(|x| x.key == f || x.name == f)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "no family '{f}' in this report: it has {}",
                            report
                                .families
                                .iter()
                                .map(|x| x.key.as_str())
                                .take(10)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?,
            ),
            None => report.families.iter().find(|f| !f.frontier.is_empty()),
        };
        let frontier_chart = match (family, &report.metric) {
            (Some(f), Some(metric)) => Some(draw(
                Chart::Scatter(self.frontier_scatter(index, f, metric, &report.by)?),
                320,
            )?),
            _ => None,
        };
        Ok(CostDashboard {
            frontier_family: family.map(|f| f.key.clone()),
            report,
            spend_chart,
            frontier_chart,
        })
    }

    /// A family's runs, cost against metric, with its frontier.
    fn frontier_scatter(
        &mut self,
        index: &SharedIndex,
        family: &FamilyCost,
        metric: &str,
        by: &str,
    ) -> Result<ScatterChart, Error> {
        let by = FamilyBy::parse(by)?;
        let group = group_of(&by);
        let key = FamilyKey::parse(&family.key).ok();
        let scope = match &by {
            FamilyBy::View(v) => self.cost_scope(index, None, Some(v))?,
            _ => None,
        };
        let want: Option<String> = match (&by, &key) {
            (FamilyBy::Exp, Some(k)) => Some(self.experiment(&k.name)?.id.to_string()),
            (FamilyBy::View(_), _) => None,
            _ => key
                .as_ref()
                .map(|k| k.name.clone())
                .filter(|n| !n.starts_with('(')),
        };
        let now = now_ms();
        let costs_now: HashMap<RunId, f64> = self
            .catalog()
            .running_costs()?
            .into_iter()
            .filter_map(|(id, c)| c.at(now).usd.map(|u| (id, u)))
            .collect();
        let rows: Vec<CostPoint> = self
            .catalog()
            .cost_points(&group, scope.as_deref(), Some(metric))?
            .into_iter()
            .filter(|(key, _)| matches!(by, FamilyBy::View(_)) || *key == want)
            .map(|(_, p)| p)
            .collect();
        let on_front: std::collections::HashSet<RunId> = family.frontier.iter().copied().collect();
        let stride = (rows.len() / MAX_SCATTER).max(1);
        let mut points = Vec::new();
        for (i, p) in rows.iter().enumerate() {
            let (Some(usd), Some(v)) = (costs_now.get(&p.run).copied().or(p.usd), p.value) else {
                continue;
            };
            if !on_front.contains(&p.run) && i % stride != 0 {
                continue;
            }
            points.push(ScatterPoint {
                id: p.run.to_string(),
                label: p.run.to_string()[..12].to_owned(),
                x: Cell::Number(usd),
                y: v,
                group: Some(if on_front.contains(&p.run) {
                    "on the frontier".into()
                } else {
                    "run".into()
                }),
            });
        }
        Ok(ScatterChart {
            title: Some(format!("{}: {metric} against cost", family.name)),
            x_label: "cost (US dollars)".into(),
            y_label: metric.to_owned(),
            x_scale: cairn_charts::Scale::Linear,
            y_scale: cairn_charts::Scale::Linear,
            group_by: None,
            points,
            frontier: family.frontier.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Spend per period: each run's cost spread evenly over the time it ran (running runs up to
/// now, their growth included), summed per period start.
fn spread(
    rows: &[CostPoint],
    grown: &HashMap<RunId, &Growth>,
    every: Period,
    starts: &[i64],
) -> Vec<f64> {
    let mut out = vec![0.0; starts.len()];
    let Some(&first) = starts.first() else {
        return out;
    };
    let end_all = every.next(*starts.last().unwrap_or(&first));
    for p in rows {
        let g = grown.get(&p.run);
        let Some(usd) = p.usd.map(|u| u + g.map_or(0.0, |g| g.usd)) else {
            continue;
        };
        let (lo, hi) = (p.start_ms, g.map_or(p.end_ms, |g| g.end_ms).max(p.start_ms));
        if hi <= first || lo >= end_all {
            continue;
        }
        if hi == lo {
            if let Some(i) = starts.iter().rposition(|s| *s <= lo) {
                out[i] += usd;
            }
            continue;
        }
        let span = (hi - lo) as f64;
        for (i, s) in starts.iter().enumerate() {
            let e = every.next(*s);
            let overlap = hi.min(e) - lo.max(*s);
            if overlap > 0 {
                out[i] += usd * overlap as f64 / span;
            }
        }
    }
    out
}
