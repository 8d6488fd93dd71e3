//! `cairn cost`: spend by family, idle GPU waste and improvement per dollar (tables, `--json`,
//! `--csv`), one run's cost, and the team's prices, budgets and idle threshold. A crossed budget
//! is a warning on stderr and exit status [`OVER_BUDGET`], so scripts can stop a line of work.

use anyhow::Result;
use cairn_core::cost::{
    CostReport, CostRequest, CostSettings, FamilyCost, RunCostRequest, SetBudget, SetPrice,
};
use cairn_model::cost::{Direction, PriceSource, RunCost};

use crate::args::{BudgetCmd, Cli, CostArgs, CostCmd, CostReportArgs, PriceCmd};
use crate::common::open;
use crate::output::{Table, metric, print_json, short_id, thousands, time};

/// The exit status of `cairn cost` (and `cost budget list`) when a family's spend crossed its
/// budget: not 1, which is an error.
pub const OVER_BUDGET: i32 = 3;

/// `cairn cost …`; returns the exit status.
pub fn cost(cli: &Cli, a: &CostArgs) -> Result<i32> {
    match &a.cmd {
        None => report(cli, &a.report),
        Some(CostCmd::Run { run }) => run_cost(cli, run).map(|()| 0),
        Some(CostCmd::Price(c)) => price(cli, c).map(|()| 0),
        Some(CostCmd::Budget(c)) => budget(cli, c),
        Some(CostCmd::Threshold { pct }) => {
            let ws = open(cli)?;
            let s = ws.set_cost_settings(&CostSettings {
                idle_threshold_pct: *pct,
            })?;
            if cli.json {
                print_json(&s)?;
            } else {
                outln!(
                    "a GPU below {}% utilisation now counts as idle",
                    s.idle_threshold_pct
                );
            }
            Ok(0)
        }
    }
}

/// `$1,234.56`, `$0.0214` (small amounts keep 3 significant digits), `-` when unknown.
fn usd(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => metric(v),
        Some(v) if v != 0.0 && v.abs() < 1.0 => format!("${v:.4}"),
        Some(v) => {
            let cents = (v.abs() * 100.0).round() as u64;
            let sign = if v < 0.0 { "-" } else { "" };
            format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
        }
    }
}

fn pct(share: Option<f64>) -> String {
    share.map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// A ratio that may be tiny (metric gain per dollar).
fn per_usd(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), metric)
}

fn report(cli: &Cli, a: &CostReportArgs) -> Result<i32> {
    let ws = open(cli)?;
    let req = CostRequest {
        by: Some(a.by.clone()),
        q: a.query.clone(),
        metric: a.metric.clone(),
        direction: a.direction.clone(),
        every: Some(a.every.clone()),
        periods: Some(a.periods),
        last: Some(a.last),
        champion: a.champion.clone(),
        top: Some(a.top),
    };
    let r = ws.cost_report(&req)?;
    if cli.json {
        print_json(&r)?;
    } else if a.csv {
        print_csv(&r)?;
    } else {
        print_report(&r)?;
    }
    for p in &r.problems {
        errln!("warning: {p}");
    }
    for b in r.budgets.iter().filter(|b| b.over) {
        errln!(
            "warning: {} spent {} of its {} budget of {} ({})",
            b.family,
            usd(Some(b.spent_usd)),
            b.period.as_str(),
            usd(Some(b.usd)),
            b.period_label
        );
    }
    Ok(if r.over_budget > 0 { OVER_BUDGET } else { 0 })
}

fn family_cells(f: &FamilyCost, with_metric: bool) -> Vec<String> {
    let mut row = vec![
        f.name.clone(),
        thousands(f.runs),
        if f.unpriced_runs > 0 {
            thousands(f.unpriced_runs)
        } else {
            "-".into()
        },
        usd(Some(f.usd)),
        format!("{:.1}", f.gpu_hours),
        usd(Some(f.idle_usd)),
        pct(f.idle_share),
        usd(f.spend.last().copied()),
    ];
    if with_metric {
        let i = f.improvement.as_ref();
        row.push(i.map_or_else(|| "-".into(), |i| metric(i.best_value)));
        row.push(per_usd(i.and_then(|i| i.per_usd)));
        row.push(per_usd(i.and_then(|i| i.marginal.per_usd)));
    }
    row.push(match &f.budget {
        None => "-".into(),
        Some(b) => format!(
            "{}{} of {}/{}",
            if b.over { "OVER " } else { "" },
            usd(Some(b.spent_usd)),
            usd(Some(b.usd)),
            b.period.as_str()
        ),
    });
    row
}

fn print_report(r: &CostReport) -> Result<()> {
    let with_metric = r.metric.is_some();
    let current = r
        .periods
        .last()
        .map_or_else(|| "this period".to_owned(), |p| p.label.clone());
    let mut headers = vec![
        r.by.as_str(),
        "runs",
        "unpriced",
        "spend",
        "GPU-h",
        "idle $",
        "idle",
        current.as_str(),
    ];
    if with_metric {
        headers.extend(["best", "gain/$", "last gain/$"]);
    }
    headers.push("budget");
    let mut t = Table::new(&headers).right_align(&(1..headers.len() - 1).collect::<Vec<_>>());
    for f in &r.families {
        t.row(family_cells(f, with_metric));
    }
    if t.is_empty() {
        outln!("no runs");
        return Ok(());
    }
    let mut total = family_cells(&r.total, with_metric);
    total[0] = "total".into();
    t.row(total);
    out!("{}", t.render());
    if let Some(m) = &r.metric {
        let dir = match r.direction {
            Some(Direction::Min) => "lower is better",
            _ => "higher is better",
        };
        outln!(
            "gain/$: improvement of {m} ({dir}) over each family's baseline per dollar; last: over its last runs"
        );
    }
    outln!(
        "as of {}, idle below {}% GPU utilisation",
        time(r.as_of_ms),
        r.idle_threshold_pct
    );
    if !r.top_idle.is_empty() {
        outln!();
        outln!("top idle wasters");
        let mut t = Table::new(&[
            "run",
            "name",
            "experiment",
            "owner",
            "idle $",
            "idle",
            "start",
            "middle",
            "end",
            "unused",
        ])
        .right_align(&[4, 5, 6, 7, 8, 9]);
        for w in &r.top_idle {
            let secs = |s: f64| format!("{s:.0}s");
            t.row(vec![
                short_id(&w.run.to_string()).to_owned(),
                w.name.clone(),
                w.experiment.clone(),
                w.owner.clone().unwrap_or_else(|| "-".into()),
                usd(w.idle_usd),
                pct(Some(w.idle_share)),
                secs(w.start_s),
                secs(w.middle_s),
                secs(w.end_s),
                secs(w.unused_s),
            ]);
        }
        out!("{}", t.render());
    }
    Ok(())
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One row per family: its figures as plain numbers, then the spend of each period.
fn print_csv(r: &CostReport) -> Result<()> {
    let mut headers: Vec<String> = [
        "family",
        "name",
        "runs",
        "unpriced_runs",
        "usd",
        "gpu_hours",
        "idle_usd",
        "idle_share",
        "improvement_per_usd",
        "marginal_per_usd",
        "budget_usd",
        "budget_spent_usd",
    ]
    .map(str::to_owned)
    .to_vec();
    headers.extend(r.periods.iter().map(|p| p.label.clone()));
    outln!("{}", headers.join(","));
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for f in r.families.iter().chain(std::iter::once(&r.total)) {
        let i = f.improvement.as_ref();
        let mut row = vec![
            csv_cell(&f.key),
            csv_cell(&f.name),
            f.runs.to_string(),
            f.unpriced_runs.to_string(),
            f.usd.to_string(),
            f.gpu_hours.to_string(),
            f.idle_usd.to_string(),
            opt(f.idle_share),
            opt(i.and_then(|i| i.per_usd)),
            opt(i.and_then(|i| i.marginal.per_usd)),
            opt(f.budget.as_ref().map(|b| b.usd)),
            opt(f.budget.as_ref().map(|b| b.spent_usd)),
        ];
        row.extend(f.spend.iter().map(f64::to_string));
        outln!("{}", row.join(","));
    }
    Ok(())
}

fn run_cost(cli: &Cli, run: &str) -> Result<()> {
    let ws = open(cli)?;
    let mut view = ws.run_cost(&RunCostRequest {
        id: run.to_owned(),
        width: None,
        height: None,
        dark: None,
    })?;
    if cli.json {
        // The chart is the UI's; a script wants the figures.
        view.chart = None;
        return print_json(&view);
    }
    let id = view.run.to_string();
    let Some(c) = view.cost else {
        outln!("run {}: no cost figures yet", short_id(&id));
        return Ok(());
    };
    print_run_cost(&id, &c, &view.unused_gpus)
}

fn print_run_cost(id: &str, c: &RunCost, unused: &[u32]) -> Result<()> {
    let source = match c.source {
        PriceSource::Run => "the run's own hourly price",
        PriceSource::Table => "the team's price table",
        PriceSource::Unpriced => "unpriced",
    };
    let state = if c.running { " so far (running)" } else { "" };
    match c.usd {
        Some(v) => outln!(
            "run {}: {}{state}, from {source}",
            short_id(id),
            usd(Some(v))
        ),
        None => outln!("run {}: unpriced{state}", short_id(id)),
    }
    if c.usd.is_some() {
        outln!(
            "  GPUs {}  machine {}  ({}/h now)",
            usd(Some(c.gpu_usd)),
            usd(Some(c.machine_usd)),
            usd(Some(c.usd_per_hour))
        );
    }
    let gpus = match &c.gpu_model {
        Some(m) => format!("{} x {m}", c.gpus),
        None => format!("{} GPUs", c.gpus),
    };
    outln!("  {:.3} h on {gpus}: {:.3} GPU-hours", c.hours, c.gpu_hours);
    if let Some(note) = &c.note {
        outln!("  note: {note}");
    }
    match &c.idle {
        None => outln!("  no GPU utilisation readings: idle time unknown"),
        Some(i) => {
            outln!(
                "  idle below {}%: {:.1} of {:.1} GPU-seconds observed ({}), costing {}",
                i.threshold_pct,
                i.idle_s,
                i.observed_s,
                pct(c.idle_share()),
                usd(c.idle_usd)
            );
            outln!(
                "    at start {:.1}s, in the middle {:.1}s, at the end {:.1}s, unused GPUs {:.1}s",
                i.start_s,
                i.middle_s,
                i.end_s,
                i.unused_s
            );
            if !unused.is_empty() {
                let list: Vec<String> = unused.iter().map(u32::to_string).collect();
                outln!("    GPUs never busy: {}", list.join(", "));
            }
        }
    }
    Ok(())
}

fn price(cli: &Cli, c: &PriceCmd) -> Result<()> {
    let ws = open(cli)?;
    match c {
        PriceCmd::Set {
            target,
            usd: amount,
            per,
            from,
        } => {
            let e = ws.set_price(&SetPrice {
                target: target.clone(),
                usd: *amount,
                per: Some(per.clone()),
                from: from.clone(),
            })?;
            if cli.json {
                return print_json(&e);
            }
            let since = e
                .from_ms
                .map_or_else(|| "always".to_owned(), |f| format!("from {}", time(f)));
            outln!(
                "{} costs {} per {} ({since})",
                e.target,
                usd(Some(e.usd)),
                e.unit
            );
        }
        PriceCmd::List => {
            let list = ws.prices()?;
            if cli.json {
                return print_json(&list);
            }
            let mut t =
                Table::new(&["target", "per", "usd", "from", "set by", "set"]).right_align(&[2]);
            for e in &list.entries {
                t.row(vec![
                    e.target.clone(),
                    e.unit.to_string(),
                    usd(Some(e.usd)),
                    e.from_ms.map_or_else(|| "always".into(), time),
                    e.set_by.clone(),
                    time(e.set_ms),
                ]);
            }
            if t.is_empty() {
                outln!("no prices: every run is unpriced unless it has its own --hourly-price");
            } else {
                out!("{}", t.render());
            }
            outln!("idle below {}% GPU utilisation", list.idle_threshold_pct);
            for p in &list.problems {
                errln!("warning: {p}");
            }
        }
    }
    Ok(())
}

fn budget(cli: &Cli, c: &BudgetCmd) -> Result<i32> {
    let ws = open(cli)?;
    match c {
        BudgetCmd::Set {
            family,
            usd: amount,
            period,
        } => {
            let e = ws.set_budget(&SetBudget {
                family: family.clone(),
                usd: Some(*amount),
                period: Some(period.clone()),
            })?;
            if cli.json {
                print_json(&e)?;
            } else {
                outln!(
                    "{} budget: {} per {}",
                    e.family,
                    usd(e.usd),
                    e.period.as_str()
                );
            }
        }
        BudgetCmd::Rm { family } => {
            let e = ws.set_budget(&SetBudget {
                family: family.clone(),
                usd: None,
                period: None,
            })?;
            if cli.json {
                print_json(&e)?;
            } else {
                outln!("{} has no budget now", e.family);
            }
        }
        BudgetCmd::List => {
            // The report knows what each budget's family spent in its current period.
            let r = ws.cost_report(&CostRequest {
                periods: Some(1),
                top: Some(0),
                ..Default::default()
            })?;
            if cli.json {
                print_json(&r.budgets)?;
            } else if r.budgets.is_empty() {
                outln!("no budgets");
            } else {
                let mut t = Table::new(&["family", "budget", "per", "period", "spent", ""])
                    .right_align(&[1, 4]);
                for b in &r.budgets {
                    t.row(vec![
                        b.family.clone(),
                        usd(Some(b.usd)),
                        b.period.as_str().into(),
                        b.period_label.clone(),
                        usd(Some(b.spent_usd)),
                        if b.over { "OVER".into() } else { String::new() },
                    ]);
                }
                out!("{}", t.render());
            }
            return Ok(if r.over_budget > 0 { OVER_BUDGET } else { 0 });
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_read_well() {
        assert_eq!(usd(Some(1234.567)), "$1,234.57");
        assert_eq!(usd(Some(0.0214239)), "$0.0214");
        assert_eq!(usd(Some(0.0)), "$0.00");
        assert_eq!(usd(None), "-");
        assert_eq!(pct(Some(0.72143)), "72.1%");
    }
}
