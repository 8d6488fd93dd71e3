//! Families of runs (a line of work) and what their spend bought: how runs are grouped, which
//! way a metric improves, the gain over a baseline per dollar, the cost-vs-metric frontier, and
//! budgets.

use serde::{Deserialize, Serialize};

use super::calendar::Period;
use super::price::validate_usd;
use crate::{ModelError, RunId};

/// How runs are grouped into families: by experiment (the default), owner, GPU model, a tag's
/// value, or one saved view (its query's runs are one family).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "key")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum FamilyBy {
    Exp,
    Owner,
    Gpu,
    Tag(String),
    View(String),
}

/// What `FamilyBy::parse` accepts, for its errors.
pub const FAMILY_BY_HINT: &str = "exp, owner, gpu, tag:KEY or view:NAME";

impl FamilyBy {
    /// `exp`, `owner`, `gpu`, `tag:team`, `view:my-sweeps` (also `experiment`, `user`, `tags.team`).
    pub fn parse(text: &str) -> Result<FamilyBy, ModelError> {
        let t = text.trim();
        let bad = |reason| ModelError::InvalidKey {
            what: "family",
            value: text.to_owned(),
            reason,
        };
        let (kind, key) = match t.split_once([':', '.']) {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (t.to_ascii_lowercase(), None),
        };
        match (kind.as_str(), key) {
            ("exp" | "experiment" | "experiments", None) => Ok(FamilyBy::Exp),
            ("owner" | "user", None) => Ok(FamilyBy::Owner),
            ("gpu" | "gpus" | "infra.gpu", None) => Ok(FamilyBy::Gpu),
            ("tag" | "tags", Some(k)) if !k.is_empty() => {
                crate::validate_key("tag key", k)?;
                Ok(FamilyBy::Tag(k.to_owned()))
            }
            ("view", Some(v)) if !v.is_empty() => Ok(FamilyBy::View(v.to_owned())),
            ("tag" | "tags" | "view", _) => Err(bad(
                "give a key or name after the colon: tag:KEY, view:NAME",
            )),
            _ => Err(bad("expected exp, owner, gpu, tag:KEY or view:NAME")),
        }
    }

    pub fn label(&self) -> String {
        match self {
            FamilyBy::Exp => "exp".into(),
            FamilyBy::Owner => "owner".into(),
            FamilyBy::Gpu => "gpu".into(),
            FamilyBy::Tag(k) => format!("tag:{k}"),
            FamilyBy::View(v) => format!("view:{v}"),
        }
    }
}

impl std::fmt::Display for FamilyBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One family: how it is grouped and its value (`exp` + `resnet50-imagenet`). Written
/// `exp:resnet50-imagenet`, `owner:alice`, `gpu:NVIDIA H200`, `tag:team=vision`, `view:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FamilyKey {
    pub by: FamilyBy,
    /// The family's name under `by`: an experiment's name, an owner, a GPU model, a tag value
    /// (for a view, its name again).
    pub name: String,
}

impl FamilyKey {
    pub fn parse(text: &str) -> Result<FamilyKey, ModelError> {
        let bad = |reason| ModelError::InvalidKey {
            what: "family",
            value: text.to_owned(),
            reason,
        };
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            bad("expected exp:NAME, owner:NAME, gpu:MODEL, tag:KEY=VALUE or view:NAME")
        })?;
        let rest = rest.trim();
        if rest.is_empty() || rest.chars().any(char::is_control) || rest.len() > 500 {
            return Err(bad(
                "the name after the colon must be 1-500 printable characters",
            ));
        }
        let by = match kind.trim().to_ascii_lowercase().as_str() {
            "tag" | "tags" => {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| bad("a tag family is tag:KEY=VALUE"))?;
                crate::validate_key("tag key", k.trim())?;
                return Ok(FamilyKey {
                    by: FamilyBy::Tag(k.trim().to_owned()),
                    name: v.trim().to_owned(),
                });
            }
            "view" => FamilyBy::View(rest.to_owned()),
            other => FamilyBy::parse(other)?,
        };
        Ok(FamilyKey {
            by,
            name: rest.to_owned(),
        })
    }
}

impl std::fmt::Display for FamilyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.by {
            FamilyBy::Tag(k) => write!(f, "tag:{k}={}", self.name),
            FamilyBy::View(v) => write!(f, "view:{v}"),
            by => write!(f, "{by}:{}", self.name),
        }
    }
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Direction {
    /// Higher is better (accuracy, AUC, mAP).
    Max,
    /// Lower is better (loss, error, perplexity).
    Min,
}

impl Direction {
    /// Lower is better for names that say loss, error or distance (`loss`, `val_loss`, `wer`,
    /// `rmse`, `perplexity`, …); higher for everything else.
    pub fn infer(metric: &str) -> Direction {
        let m = metric.to_ascii_lowercase();
        const LOWER: [&str; 10] = [
            "loss",
            "err",
            "wer",
            "cer",
            "rmse",
            "mse",
            "mae",
            "perplexity",
            "ppl",
            "latency",
        ];
        if LOWER.iter().any(|w| m.contains(w)) {
            Direction::Min
        } else {
            Direction::Max
        }
    }

    pub fn parse(text: &str) -> Result<Direction, ModelError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "max" | "higher" | "up" => Ok(Direction::Max),
            "min" | "lower" | "down" => Ok(Direction::Min),
            _ => Err(ModelError::InvalidKey {
                what: "direction",
                value: text.to_owned(),
                reason: "expected max (higher is better) or min (lower is better)",
            }),
        }
    }

    /// How much better `b` is than `a` (negative when worse).
    pub fn gain(self, a: f64, b: f64) -> f64 {
        match self {
            Direction::Max => b - a,
            Direction::Min => a - b,
        }
    }

    pub fn better(self, a: f64, b: f64) -> bool {
        self.gain(a, b) > 0.0
    }
}

/// One run of a family as the rollups see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyRun {
    pub id: RunId,
    pub start_ms: i64,
    /// What it cost; `None` when unpriced (it then adds nothing to spend).
    pub usd: Option<f64>,
    /// Its value of the chosen metric (the last logged), when finite.
    pub value: Option<f64>,
}

/// What the gain is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Baseline {
    /// The family's first run with a value.
    FirstRun,
    /// A registered model's `@champion`: its run's value, from its start on.
    Champion {
        run: RunId,
        start_ms: i64,
        value: f64,
    },
}

/// A family's improvement per dollar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Improvement {
    pub baseline: Baseline,
    pub baseline_value: f64,
    /// The run the baseline value is from.
    pub baseline_run: RunId,
    /// The best value after the baseline (the baseline's own when nothing beat it).
    pub best_value: f64,
    pub best_run: RunId,
    /// How much better the best is than the baseline, direction aware (0 when not better).
    pub gain: f64,
    /// What the runs after the baseline cost, up to and including the best one (all of them
    /// when nothing beat the baseline): the spend that bought the gain.
    pub spend_usd: f64,
    /// `gain / spend_usd`; `None` when nothing was spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub per_usd: Option<f64>,
    /// The last runs (up to N): how much they improved on the best before them, what they
    /// cost, and the ratio — is this line of work still paying?
    pub marginal: Marginal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Marginal {
    pub runs: u32,
    pub gain: f64,
    pub spend_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub per_usd: Option<f64>,
}

fn ratio(gain: f64, spend: f64) -> Option<f64> {
    (spend > 0.0).then(|| gain / spend)
}

/// The improvement per dollar of a family's runs (in start order) on a metric going
/// `direction`, from `baseline`; the marginal figure over the last `last_n` runs. `None` when
/// no run (and no champion) has a value.
pub fn improvement(
    runs: &[FamilyRun],
    direction: Direction,
    baseline: Baseline,
    last_n: usize,
) -> Option<Improvement> {
    let (base_value, base_run, base_start, base_index) = match baseline {
        Baseline::FirstRun => {
            let i = runs.iter().position(|r| r.value.is_some())?;
            (runs[i].value?, runs[i].id, runs[i].start_ms, Some(i))
        }
        Baseline::Champion {
            run,
            start_ms,
            value,
        } => (value, run, start_ms, runs.iter().position(|r| r.id == run)),
    };
    // The runs that came after the baseline: after its index when it is one of ours, else
    // those started after it.
    let after: Vec<&FamilyRun> = match base_index {
        Some(i) => runs[i + 1..].iter().collect(),
        None => runs.iter().filter(|r| r.start_ms > base_start).collect(),
    };
    let mut best = (base_value, base_run, None::<usize>);
    for (i, r) in after.iter().enumerate() {
        if let Some(v) = r.value
            && direction.better(best.0, v)
        {
            best = (v, r.id, Some(i));
        }
    }
    let spend_to = best.2.map_or(after.len(), |i| i + 1);
    let spend: f64 = after[..spend_to].iter().filter_map(|r| r.usd).sum();
    let gain = direction.gain(base_value, best.0).max(0.0);

    let n = last_n.min(runs.len());
    let (before, last) = runs.split_at(runs.len() - n);
    let best_of = |rs: &[FamilyRun]| {
        rs.iter()
            .filter_map(|r| r.value)
            .reduce(|a, b| if direction.better(a, b) { b } else { a })
    };
    let m_gain = match (best_of(before), best_of(last)) {
        (Some(b), Some(l)) => direction.gain(b, l).max(0.0),
        _ => 0.0,
    };
    let m_spend: f64 = last.iter().filter_map(|r| r.usd).sum();
    Some(Improvement {
        baseline,
        baseline_value: base_value,
        baseline_run: base_run,
        best_value: best.0,
        best_run: best.1,
        gain,
        spend_usd: spend,
        per_usd: ratio(gain, spend),
        marginal: Marginal {
            runs: n as u32,
            gain: m_gain,
            spend_usd: m_spend,
            per_usd: ratio(m_gain, m_spend),
        },
    })
}

/// The best value so far after each run that improved it (runs in start order): `(start_ms,
/// value, run)`.
pub fn best_over_time(runs: &[FamilyRun], direction: Direction) -> Vec<(i64, f64, RunId)> {
    let mut out: Vec<(i64, f64, RunId)> = Vec::new();
    for r in runs {
        if let Some(v) = r.value
            && out.last().is_none_or(|b| direction.better(b.1, v))
        {
            out.push((r.start_ms, v, r.id));
        }
    }
    out
}

/// The cost-vs-metric Pareto frontier: the priced runs with a value that no other run beats
/// on both (cheaper or as cheap, and better or as good, one of them strictly), cheapest first.
pub fn pareto_frontier(runs: &[FamilyRun], direction: Direction) -> Vec<RunId> {
    let mut pts: Vec<(f64, f64, RunId)> = runs
        .iter()
        .filter_map(|r| Some((r.usd?, r.value?, r.id)))
        .filter(|(c, v, _)| c.is_finite() && v.is_finite())
        .collect();
    // Cheapest first; among equal costs the best value first, so it alone can be on the front.
    pts.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| 0.0f64.total_cmp(&direction.gain(b.1, a.1)))
            .then_with(|| a.2.cmp(&b.2))
    });
    let mut out = Vec::new();
    let mut best: Option<f64> = None;
    for (_, v, id) in pts {
        if best.is_none_or(|b| direction.better(b, v)) {
            out.push(id);
            best = Some(v);
        }
    }
    out
}

/// The spend a budget limits: per calendar period (UTC) or over all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
    Total,
}

impl BudgetPeriod {
    pub fn parse(text: &str) -> Result<BudgetPeriod, ModelError> {
        if matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "total" | "all" | "ever"
        ) {
            return Ok(BudgetPeriod::Total);
        }
        match Period::parse(text) {
            Some(Period::Day) => Ok(BudgetPeriod::Day),
            Some(Period::Week) => Ok(BudgetPeriod::Week),
            Some(Period::Month) => Ok(BudgetPeriod::Month),
            None => Err(ModelError::InvalidKey {
                what: "budget period",
                value: text.to_owned(),
                reason: "expected day, week, month or total",
            }),
        }
    }

    pub fn period(self) -> Option<Period> {
        match self {
            BudgetPeriod::Day => Some(Period::Day),
            BudgetPeriod::Week => Some(Period::Week),
            BudgetPeriod::Month => Some(Period::Month),
            BudgetPeriod::Total => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Week => "week",
            BudgetPeriod::Month => "month",
            BudgetPeriod::Total => "total",
        }
    }
}

/// A budget for one family, kept like a price: each setting is its own record, the latest set
/// is in effect, and one with no amount lifts the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BudgetEntry {
    /// A UUIDv7, 32 hex digits: its team-doc key is `budget/<id>`.
    pub id: String,
    /// The family, as [`FamilyKey`] writes it (`exp:resnet50-imagenet`).
    pub family: String,
    /// US dollars per period; `None` lifts the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub usd: Option<f64>,
    pub period: BudgetPeriod,
    pub set_by: String,
    pub set_ms: i64,
}

impl BudgetEntry {
    pub fn validate(&self) -> Result<FamilyKey, ModelError> {
        if let Some(u) = self.usd {
            validate_usd(u, &self.family)?;
        }
        FamilyKey::parse(&self.family)
    }
}

/// An entry left out, and why.
pub type Refused = (BudgetEntry, ModelError);

/// The budget in effect per family: the latest set entry of each (set time, then id), without
/// lifted ones. Invalid entries are returned apart.
pub fn budgets_in_effect(entries: &[BudgetEntry]) -> (Vec<(FamilyKey, BudgetEntry)>, Vec<Refused>) {
    let mut latest: Vec<(FamilyKey, BudgetEntry)> = Vec::new();
    let mut bad = Vec::new();
    let mut sorted: Vec<&BudgetEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (a.set_ms, &a.id).cmp(&(b.set_ms, &b.id)));
    for e in sorted {
        match e.validate() {
            Ok(key) => match latest.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = e.clone(),
                None => latest.push((key, e.clone())),
            },
            Err(why) => bad.push((e.clone(), why)),
        }
    }
    latest.retain(|(_, e)| e.usd.is_some());
    (latest, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: u64, usd: Option<f64>, value: Option<f64>) -> FamilyRun {
        FamilyRun {
            id: RunId::from_parts(n, u128::from(n)),
            start_ms: n as i64 * 1000,
            usd,
            value,
        }
    }

    #[test]
    fn families_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(FamilyBy::parse("exp").unwrap(), FamilyBy::Exp);
        assert_eq!(
            FamilyBy::parse("tag:team").unwrap(),
            FamilyBy::Tag("team".into())
        );
        assert_eq!(
            FamilyBy::parse("view:my sweeps").unwrap(),
            FamilyBy::View("my sweeps".into())
        );
        let e = FamilyBy::parse("project").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid family 'project': expected exp, owner, gpu, tag:KEY or view:NAME"
        );
        assert!(
            FamilyBy::parse("tag:")
                .unwrap_err()
                .to_string()
                .contains("tag:KEY")
        );
        let k = FamilyKey::parse("tag:team=vision").unwrap();
        assert_eq!(
            (k.by.clone(), k.name.as_str(), k.to_string()),
            (
                FamilyBy::Tag("team".into()),
                "vision",
                "tag:team=vision".to_owned()
            )
        );
        assert_eq!(
            FamilyKey::parse("gpu:NVIDIA H200").unwrap().name,
            "NVIDIA H200"
        );
        assert!(FamilyKey::parse("resnet").is_err());
        assert_eq!(Direction::infer("val_loss"), Direction::Min);
        assert_eq!(Direction::infer("acc"), Direction::Max);
    }

    #[test]
    fn improvement_per_dollar_is_the_gain_over_the_first_run_by_what_bought_it() {
        let runs = [
            run(1, Some(10.0), Some(0.70)), // baseline
            run(2, Some(20.0), Some(0.65)),
            run(3, None, Some(0.80)), // unpriced: its cost is unknown, adds nothing
            run(4, Some(30.0), Some(0.90)), // best
            run(5, Some(40.0), Some(0.85)),
            run(6, Some(50.0), None),
        ];
        let i = improvement(&runs, Direction::Max, Baseline::FirstRun, 3).unwrap();
        assert_eq!(
            (i.baseline_value, i.best_value, i.best_run),
            (0.70, 0.90, runs[3].id)
        );
        assert!((i.gain - 0.20).abs() < 1e-12);
        assert_eq!(i.spend_usd, 50.0); // runs 2, 3, 4
        assert!((i.per_usd.unwrap() - 0.004).abs() < 1e-12);
        // The last 3 (0.90, 0.85, none) against the best before them (0.80): +0.10 for $120.
        assert_eq!((i.marginal.runs, i.marginal.spend_usd), (3, 120.0));
        assert!((i.marginal.gain - 0.10).abs() < 1e-12);
        // Lower is better: the best is the lowest; nothing beat the first, so all after it
        // bought nothing.
        let i = improvement(&runs, Direction::Min, Baseline::FirstRun, 2).unwrap();
        assert_eq!((i.best_value, i.spend_usd), (0.65, 20.0));
        assert!((i.gain - 0.05).abs() < 1e-12);
        let none = [run(1, Some(1.0), None)];
        assert_eq!(
            improvement(&none, Direction::Max, Baseline::FirstRun, 5),
            None
        );
    }

    #[test]
    fn a_champion_baseline_counts_from_the_champions_start() {
        let champ = RunId::from_parts(99, 99);
        let runs = [
            run(1, Some(5.0), Some(0.9)),
            run(3, Some(7.0), Some(0.95)),
            run(4, Some(9.0), Some(0.93)),
        ];
        let base = Baseline::Champion {
            run: champ,
            start_ms: 2000,
            value: 0.92,
        };
        let i = improvement(&runs, Direction::Max, base, 10).unwrap();
        assert_eq!(
            (i.baseline_run, i.best_value, i.spend_usd),
            (champ, 0.95, 7.0)
        );
        assert!((i.gain - 0.03).abs() < 1e-12);
    }

    #[test]
    fn the_frontier_keeps_runs_nothing_beats_on_both_cost_and_metric() {
        let runs = [
            run(1, Some(10.0), Some(0.70)),
            run(2, Some(10.0), Some(0.75)), // same cost, better: it, not run 1
            run(3, Some(20.0), Some(0.74)), // dominated by run 2
            run(4, Some(30.0), Some(0.90)),
            run(5, Some(40.0), Some(0.90)), // as good, dearer
            run(6, None, Some(0.99)),       // unpriced: not placed
        ];
        assert_eq!(
            pareto_frontier(&runs, Direction::Max),
            vec![runs[1].id, runs[3].id]
        );
        let best: Vec<f64> = best_over_time(&runs, Direction::Max)
            .iter()
            .map(|b| b.1)
            .collect();
        assert_eq!(best, vec![0.70, 0.75, 0.90, 0.99]);
    }

    #[test]
    fn the_latest_budget_setting_wins_and_a_lifted_one_is_gone() {
        let b = |id: &str, fam: &str, usd: Option<f64>, set: i64| BudgetEntry {
            id: id.into(),
            family: fam.into(),
            usd,
            period: BudgetPeriod::Month,
            set_by: "lead".into(),
            set_ms: set,
        };
        let (live, bad) = budgets_in_effect(&[
            b("1", "exp:a", Some(100.0), 1),
            b("2", "exp:a", Some(200.0), 2),
            b("3", "exp:b", Some(50.0), 1),
            b("4", "exp:b", None, 2),
            b("5", "exp:c", Some(-1.0), 3),
            b("6", "planet:x", Some(1.0), 3),
        ]);
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].0.name.as_str(), live[0].1.usd), ("a", Some(200.0)));
        assert_eq!(bad.len(), 2);
        assert!(bad[0].1.to_string().contains("negative"));
    }
}
