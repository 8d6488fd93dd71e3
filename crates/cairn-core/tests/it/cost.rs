//! Cost governance through the handle: exact figures on small hand-made traces (gaps, several
//! GPUs, a run still running, a price change mid-run, unpriced runs), the real H200 trace,
//! rollups over the demo catalog against a brute-force sum, budgets, and bad input.

use cairn_core::cost::{CostRequest, RunCostRequest, SetBudget, SetPrice, util_trace_series};
use cairn_core::{DemoOptions, MetricPoint, NewRun, RunLog, SearchRequest, Workspace};
use cairn_model::cost::{PriceSource, parse_utc};
use cairn_model::{GpuGroup, InfraProfile, Lineage, RunId, RunStatus};

use crate::workspace;

const H: i64 = 3_600_000;

fn t(text: &str) -> i64 {
    parse_utc(text).unwrap()
}

fn gpu_box(gpus: u32, hourly: Option<f64>) -> Lineage {
    Lineage {
        infra: Some(InfraProfile {
            host: Some("gpu-box-01".into()),
            instance_type: Some("p5en.48xlarge".into()),
            gpus: vec![GpuGroup {
                model: "NVIDIA H200".into(),
                count: gpus,
                ..Default::default()
            }],
            hourly_price_usd: hourly,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A run of `exp` on `lineage` from `start`, ended at `end` (still running when `None`).
fn run_between(ws: &Workspace, exp: &str, lineage: Lineage, start: i64, end: Option<i64>) -> RunId {
    let id = ws
        .start_run(NewRun {
            experiment_name: Some(exp.into()),
            lineage,
            start_ms: Some(start),
            ..Default::default()
        })
        .unwrap()
        .id;
    if let Some(end) = end {
        ws.set_status(id, RunStatus::Finished, Some(end)).unwrap();
    }
    id
}

fn price(ws: &Workspace, target: &str, usd: f64, per: &str, from: Option<&str>) {
    ws.set_price(&SetPrice {
        target: target.into(),
        usd,
        per: Some(per.into()),
        from: from.map(str::to_owned),
    })
    .unwrap();
}

/// GPU `gpu`'s utilisation readings `(ms, percent)`.
fn log_util(ws: &Workspace, id: RunId, gpu: u32, readings: &[(i64, f64)]) {
    let points: Vec<MetricPoint> = readings
        .iter()
        .enumerate()
        .map(|(i, &(ts_ms, value))| MetricPoint {
            step: i as i64,
            ts_ms,
            value,
        })
        .collect();
    ws.log_metric(
        id,
        &format!("system/gpu_{gpu}_utilization_percentage"),
        &points,
    )
    .unwrap();
}

fn cost_of(ws: &Workspace, id: RunId) -> cairn_model::cost::RunCost {
    ws.run_cost(&RunCostRequest {
        id: id.to_string(),
        width: None,
        height: None,
        dark: None,
    })
    .unwrap()
    .cost
    .expect("the run has figures")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn two_gpus_with_a_gap_cost_and_idle_exactly() {
    let (_d, ws) = workspace();
    let t0 = t("2026-06-01T10:00");
    // Two H200 for 1 h at $4/GPU-h and the instance at $10/h: 2 x 4 + 10 = $18.
    price(&ws, "NVIDIA H200", 4.0, "gpu-hour", None);
    price(&ws, "p5en.48xlarge", 10.0, "hour", None);
    let id = run_between(&ws, "hand", gpu_box(2, None), t0, Some(t0 + H));
    // GPU 0, read every 60 s: idle 10 min loading data, then 30 readings at 95 %, then none
    // for 11 min (the reading at minute 39 holds 3 intervals, to minute 42; minutes 42-50 are
    // unobserved), then idle 10 min.
    let mut g0 = Vec::new();
    for m in 0..10 {
        g0.push((t0 + m * 60_000, 0.0));
    }
    for m in 10..40 {
        g0.push((t0 + m * 60_000, 95.0));
    }
    for m in 50..60 {
        g0.push((t0 + m * 60_000, 1.0));
    }
    log_util(&ws, id, 0, &g0);
    // GPU 1 never works: 60 readings of 0 % (held, unused).
    log_util(
        &ws,
        id,
        1,
        &(0..60).map(|m| (t0 + m * 60_000, 0.0)).collect::<Vec<_>>(),
    );
    let c = cost_of(&ws, id);
    assert_eq!(c.usd, Some(18.0));
    assert_eq!((c.gpu_usd, c.machine_usd, c.gpu_hours), (8.0, 10.0, 2.0));
    assert_eq!(c.source, PriceSource::Table);
    let idle = c.idle.as_ref().unwrap();
    // GPU 0: 10 idle + 29 + 3 busy + 10 idle = 52 min observed; GPU 1: 60 min.
    assert_eq!(idle.observed_s, (52.0 + 60.0) * 60.0);
    assert_eq!(idle.start_s, 600.0);
    assert_eq!(idle.end_s, 600.0);
    assert_eq!(idle.unused_s, 3600.0);
    assert_eq!(idle.idle_s, 4800.0);
    // Idle GPU time at each GPU's own price: 80 GPU-minutes x $4/h.
    assert!(close(c.idle_usd.unwrap(), 80.0 / 60.0 * 4.0));

    // The run page's panel: GPU 1 is reported unused; its idle time is not shaded.
    let view = ws
        .run_cost(&RunCostRequest {
            id: id.to_string(),
            width: Some(600),
            height: None,
            dark: None,
        })
        .unwrap();
    assert_eq!(view.unused_gpus, [1]);
    let svg = view.chart.unwrap().svg;
    assert!(svg.contains("idle below 5% shaded"), "no title");
    // Two shaded stretches: GPU 0's start and end.
    assert_eq!(
        svg.matches(r##"opacity="0.14" fill="#D55E00""##).count(),
        2,
        "{svg}"
    );
}

#[test]
fn a_price_change_mid_run_splits_the_run_and_changing_prices_keeps_history() {
    let (_d, ws) = workspace();
    let t0 = t("2026-03-01T00:00");
    price(&ws, "NVIDIA H200", 3.0, "gpu-hour", None);
    let early = run_between(
        &ws,
        "prices",
        gpu_box(8, None),
        t0 - 4 * H,
        Some(t0 - 2 * H),
    );
    let across = run_between(&ws, "prices", gpu_box(8, None), t0 - H, Some(t0 + 2 * H));
    assert_eq!(cost_of(&ws, early).usd, Some(48.0));
    assert_eq!(cost_of(&ws, across).usd, Some(72.0));
    // From t0 on H200s cost $5: the early run keeps its $48; the one across it is split.
    price(&ws, "NVIDIA H200", 5.0, "gpu-hour", Some("2026-03-01"));
    assert_eq!(cost_of(&ws, early).usd, Some(48.0));
    assert_eq!(cost_of(&ws, across).usd, Some(8.0 * 3.0 + 8.0 * 2.0 * 5.0));
    // A price without a date, for a target that has one, applies from now: history holds.
    price(&ws, "NVIDIA H200", 9.0, "gpu-hour", None);
    assert_eq!(cost_of(&ws, across).usd, Some(104.0));
    let list = ws.prices().unwrap();
    assert_eq!(list.entries.len(), 3);
    assert!(list.entries.iter().all(|e| e.set_by == "alice"));
}

#[test]
fn unpriced_runs_are_never_zero_and_the_runs_own_price_overrides() {
    let (_d, ws) = workspace();
    let t0 = t("2026-05-01T00:00");
    let bare = run_between(&ws, "u", gpu_box(1, None), t0, Some(t0 + H));
    let no_profile = run_between(&ws, "u", Lineage::default(), t0, Some(t0 + H));
    let own = run_between(&ws, "u", gpu_box(8, Some(63.296)), t0, Some(t0 + H / 2));
    price(&ws, "gpu-box-02", 1.0, "hour", None);
    let c = cost_of(&ws, bare);
    assert_eq!(c.usd, None);
    assert_eq!(
        c.note.as_deref(),
        Some("no price for GPU 'NVIDIA H200', 'p5en.48xlarge', 'gpu-box-01'")
    );
    assert_eq!(cost_of(&ws, no_profile).usd, None);
    assert_eq!(cost_of(&ws, own).usd, Some(31.648));
    let report = ws.cost_report(&CostRequest::default()).unwrap();
    let fam = &report.families[0];
    assert_eq!((fam.runs, fam.unpriced_runs, fam.usd), (3, 2, 31.648));
    // Search: the unpriced have no dollars; the priced one is found by them.
    let page = ws
        .search(&SearchRequest {
            q: Some("cost.usd IS NULL".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 2);
    let page = ws
        .search(&SearchRequest {
            q: Some("cost.usd > 30".into()),
            order: Some("cost DESC".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].id, own);
    assert_eq!(page.runs[0].cost.unwrap().usd, Some(31.648));
}

#[test]
fn a_running_runs_cost_grows_to_now() {
    let (_d, ws) = workspace();
    let before = now();
    let start = before - 2 * H;
    let id = run_between(&ws, "live", gpu_box(8, Some(10.0)), start, None);
    let first = cost_of(&ws, id).usd.unwrap();
    let after = now();
    let hours = |ms: i64| (ms - start) as f64 / H as f64;
    // Within the instants around the call (and a rounding error: the stored part and the
    // growth since are summed).
    let within = |usd: f64, lo: i64, hi: i64| {
        usd >= 10.0 * hours(lo) - 1e-9 && usd <= 10.0 * hours(hi) + 1e-9
    };
    assert!(within(first, before, after), "{first}");
    // Asked again later, it has grown (and the rollup grows with it).
    let later = now();
    let report = ws.cost_report(&CostRequest::default()).unwrap();
    let end = now();
    let usd = report.families[0].usd;
    assert!(within(usd, later, end), "{usd}");
    assert!(usd >= first - 1e-9);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The real H200 trace: ~9 s idle before, start-up with memory held at 0 %, ~8 s of training
/// at 93-98 %, ~5 s idle after. By hand, from util-trace.csv (readings every ~250 ms, so no gap
/// exceeds 3 intervals; the run held the GPU from the first reading to the last, which then
/// covers nothing):
/// - first reading 04:06:11.781, last 04:06:42.326: 30.545 s observed;
/// - first busy reading (14 %) 04:06:28.310: 28.310 - 11.781 = 16.529 s idle at the start
///   (the 1 % readings at 21.302 and 28.059 are below 5 %: idle);
/// - last busy reading (52 %) 04:06:36.569 holds until 04:06:36.819: 42.326 - 36.819 = 5.507 s
///   idle at the end; none in the middle;
/// - 22.036 s idle in all, 72.1 % of the observed time; at $3.50 per H200-hour that is
///   22.036 x 3.50 / 3600 = $0.0214239 of a run costing 30.545 x 3.50 / 3600 = $0.0296965.
#[test]
fn the_real_h200_trace_idles_22_seconds_for_two_cents() {
    let (_d, ws) = workspace();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/gpu-box/util-trace.csv"
    ))
    .unwrap();
    price(&ws, "NVIDIA H200", 3.5, "gpu-hour", None);
    let first = t("2026-11-27T04:06:11") + 781;
    let last = t("2026-11-27T04:06:42") + 326;
    let id = run_between(&ws, "h200", gpu_box(1, None), first, None);
    ws.log_run(
        id,
        &RunLog {
            series: util_trace_series(&text).unwrap(),
            ..Default::default()
        },
    )
    .unwrap();
    ws.set_status(id, RunStatus::Finished, Some(last)).unwrap();
    let c = cost_of(&ws, id);
    let idle = c.idle.as_ref().unwrap();
    assert!(close(idle.observed_s, 30.545), "{}", idle.observed_s);
    assert!(close(idle.idle_s, 22.036), "{}", idle.idle_s);
    assert!(close(idle.start_s, 16.529), "{}", idle.start_s);
    assert!(close(idle.end_s, 5.507), "{}", idle.end_s);
    assert_eq!((idle.middle_s, idle.unused_s), (0.0, 0.0));
    assert!((idle.share() - 0.7214).abs() < 5e-5);
    assert!(close(c.idle_usd.unwrap(), 22.036 * 3.5 / 3600.0));
    assert!((c.idle_usd.unwrap() - 0.0214239).abs() < 1e-7);
    assert!(close(c.usd.unwrap(), 30.545 * 3.5 / 3600.0));
    // It tops the idle wasters.
    let report = ws.cost_report(&CostRequest::default()).unwrap();
    assert_eq!(report.top_idle[0].run, id);
}

#[test]
fn rollups_over_the_demo_match_a_brute_force_sum() {
    let (_d, ws) = workspace();
    ws.generate_demo(
        &DemoOptions {
            runs: 240,
            steps: Some(20),
            seed: 3,
        },
        &mut |_, _| {},
    )
    .unwrap();
    // Every finished demo run carries its hourly price: its cost is price x hours.
    let mut runs = Vec::new();
    let mut offset = 0;
    loop {
        let page = ws
            .search(&SearchRequest {
                q: Some("NOT is:running".into()),
                limit: Some(1000),
                offset: Some(offset),
                ..Default::default()
            })
            .unwrap();
        for r in &page.runs {
            runs.push(ws.run(r.id).unwrap());
        }
        match page.next_offset {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert!(runs.len() > 200);
    for by in ["exp", "owner", "gpu", "tag:team"] {
        let report = ws
            .cost_report(&CostRequest {
                by: Some(by.into()),
                q: Some("NOT is:running".into()),
                ..Default::default()
            })
            .unwrap();
        let mut brute: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
        for v in &runs {
            let r = &v.run;
            let infra = r.lineage.infra.as_ref().unwrap();
            let hours = (r.end_ms.unwrap() - r.start_ms) as f64 / H as f64;
            let gpus: u32 = infra.gpus.iter().map(|g| g.count).sum();
            let name = match by {
                "exp" => v.experiment_name.clone(),
                "owner" => r.owner.clone().unwrap(),
                "gpu" => infra
                    .gpus
                    .first()
                    .map_or("(no GPU)".into(), |g| g.model.clone()),
                _ => r.tags["team"].clone(),
            };
            let e = brute.entry(name).or_default();
            e.0 += 1;
            e.1 += infra.hourly_price_usd.unwrap() * hours;
            e.2 += f64::from(gpus) * hours;
        }
        assert_eq!(report.families.len(), brute.len(), "{by}");
        for f in &report.families {
            let (n, usd, gpu_hours) = brute[&f.name];
            assert_eq!(f.runs, n, "{by} {}", f.name);
            assert!(close(f.usd, usd), "{by} {}: {} vs {usd}", f.name, f.usd);
            assert!(close(f.gpu_hours, gpu_hours), "{by} {}", f.name);
            assert_eq!(f.unpriced_runs, 0);
        }
        let total: f64 = brute.values().map(|b| b.1).sum();
        assert!(close(report.total.usd, total));
        // Most spend first.
        assert!(report.families.windows(2).all(|w| w[0].usd >= w[1].usd));
    }
    // Spend per period adds up to the spend inside the periods shown (here: all of it, 90
    // days of runs inside 20 weeks).
    let report = ws
        .cost_report(&CostRequest {
            every: Some("week".into()),
            periods: Some(20),
            q: Some("NOT is:running".into()),
            ..Default::default()
        })
        .unwrap();
    for f in &report.families {
        let spread: f64 = f.spend.iter().sum();
        assert!(close(spread, f.usd), "{}: {spread} vs {}", f.name, f.usd);
    }
}

#[test]
fn improvement_per_dollar_and_the_frontier_follow_the_runs() {
    let (_d, ws) = workspace();
    let t0 = t("2026-04-01T00:00");
    // Four runs at $10/h: 1 h, 2 h, 1 h, 3 h; acc 0.70, 0.80, 0.75, 0.90.
    let mut ids = Vec::new();
    for (i, (hours, acc)) in [(1, 0.70), (2, 0.80), (1, 0.75), (3, 0.90)]
        .into_iter()
        .enumerate()
    {
        let start = t0 + i as i64 * 10 * H;
        let id = run_between(
            &ws,
            "ipd",
            gpu_box(1, Some(10.0)),
            start,
            Some(start + hours * H),
        );
        ws.log_metric(
            id,
            "acc",
            &[MetricPoint {
                step: 0,
                ts_ms: start,
                value: acc,
            }],
        )
        .unwrap();
        ids.push(id);
    }
    let report = ws
        .cost_report(&CostRequest {
            metric: Some("acc".into()),
            last: Some(2),
            ..Default::default()
        })
        .unwrap();
    let f = &report.families[0];
    let imp = f.improvement.as_ref().unwrap();
    // From the first run (0.70) to the best (0.90): +0.20 bought by runs 2-4, $60.
    assert_eq!((imp.baseline_run, imp.best_run), (ids[0], ids[3]));
    assert!(close(imp.gain, 0.20) && close(imp.spend_usd, 60.0));
    assert!(close(imp.per_usd.unwrap(), 0.20 / 60.0));
    // The last two (0.75, 0.90) against the best before them (0.80): +0.10 for $40.
    assert!(close(imp.marginal.gain, 0.10) && close(imp.marginal.spend_usd, 40.0));
    // Frontier: $10 for 0.70, $20 for 0.80, $30 for 0.90; the $10 run at 0.75 beats the
    // first ($10, 0.70), which drops off.
    assert_eq!(f.frontier, [ids[2], ids[1], ids[3]]);
    let best: Vec<f64> = f.best.iter().map(|b| b.value).collect();
    assert_eq!(best, [0.70, 0.80, 0.90]);

    // With a registered champion (run 2, 0.80) the baseline is the champion.
    ws.create_registered_model("clf", None, Default::default())
        .unwrap();
    // A version pins the content at the run's path: the run has a model there.
    ws.add_artifact_reader(ids[1], "model/MLmodel", &mut &b"flavors: {}\n"[..])
        .unwrap();
    let v = ws
        .create_model_version(
            "clf",
            &format!("runs:/{}/model", ids[1]),
            Some(ids[1]),
            None,
            Default::default(),
        )
        .unwrap();
    ws.set_model_alias("clf", "champion", v.version, None)
        .unwrap();
    let report = ws
        .cost_report(&CostRequest {
            metric: Some("acc".into()),
            ..Default::default()
        })
        .unwrap();
    let imp = report.families[0].improvement.as_ref().unwrap();
    assert_eq!(imp.baseline_run, ids[1]);
    assert!(close(imp.gain, 0.10) && close(imp.spend_usd, 40.0));
    // The dashboard draws the spend and this family's frontier.
    let dash = ws
        .cost_dashboard(&cairn_core::cost::DashboardRequest {
            metric: Some("acc".into()),
            every: Some("day".into()),
            periods: Some(60),
            ..Default::default()
        })
        .unwrap();
    assert!(dash.spend_chart.svg.contains("<svg"));
    assert_eq!(dash.frontier_family.as_deref(), Some("exp:ipd"));
    assert!(
        dash.frontier_chart
            .unwrap()
            .svg
            .contains("acc against cost")
    );
}

#[test]
fn budgets_warn_once_spend_crosses_them() {
    let (_d, ws) = workspace();
    let now = now();
    // Two finished runs this month at $10/h, 1 h each: $20 spent.
    let start = cairn_model::cost::Period::Month
        .start_of(now)
        .max(now - 10 * H);
    for i in 0..2 {
        run_between(
            &ws,
            "budgeted",
            gpu_box(1, Some(10.0)),
            start + i * 60_000,
            Some(start + i * 60_000 + H / 2),
        );
    }
    ws.set_budget(&SetBudget {
        family: "exp:budgeted".into(),
        usd: Some(50.0),
        period: None,
    })
    .unwrap();
    let report = ws.cost_report(&CostRequest::default()).unwrap();
    assert_eq!(report.over_budget, 0);
    assert!(close(report.budgets[0].spent_usd, 10.0));
    ws.set_budget(&SetBudget {
        family: "exp:budgeted".into(),
        usd: Some(5.0),
        period: Some("month".into()),
    })
    .unwrap();
    let report = ws
        .cost_report(&CostRequest {
            by: Some("owner".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        report.over_budget, 1,
        "a budget is checked whatever the grouping"
    );
    assert!(report.budgets[0].over);
    assert_eq!(ws.budgets().unwrap().budgets.len(), 1);
    // Lifted: no budget, no warning.
    ws.set_budget(&SetBudget {
        family: "exp:budgeted".into(),
        usd: None,
        period: None,
    })
    .unwrap();
    assert_eq!(
        ws.cost_report(&CostRequest::default()).unwrap().over_budget,
        0
    );
}

#[test]
fn bad_input_is_named() {
    let (_d, ws) = workspace();
    let e = ws
        .set_price(&SetPrice {
            target: "NVIDIA H200".into(),
            usd: -3.5,
            per: None,
            from: None,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid amount in US dollars '-3.5 for 'NVIDIA H200'': is negative"
    );
    let e = ws
        .set_price(&SetPrice {
            target: "NVIDIA H200".into(),
            usd: 3.5,
            per: Some("fortnight".into()),
            from: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("'fortnight'"), "{e}");
    let e = ws
        .set_price(&SetPrice {
            target: "NVIDIA H200".into(),
            usd: 3.5,
            per: None,
            from: Some("yesterday".into()),
        })
        .unwrap_err();
    assert!(e.to_string().contains("'yesterday' is not a date"), "{e}");
    let e = ws
        .cost_report(&CostRequest {
            by: Some("project".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid family 'project': expected exp, owner, gpu, tag:KEY or view:NAME"
    );
    let e = ws
        .cost_report(&CostRequest {
            by: Some("view:nope".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "no saved view 'nope'");
    let e = ws
        .set_budget(&SetBudget {
            family: "exp:nope".into(),
            usd: Some(1.0),
            period: None,
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "no experiment 'nope'");
    let e = util_trace_series("timestamp, index, utilization.gpu [%], utilization.memory [%], memory.used [MiB]\n2026/11/27 04:06:11.781, 0, 1\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("line 2: expected 5 comma-separated fields, found 3"),
        "{e}"
    );
    // Nothing was stored by the refused calls.
    assert!(ws.prices().unwrap().entries.is_empty());
}
