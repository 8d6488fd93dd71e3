//! The cost projection's rollups: one pass (`cost_scan`) yields what the per-query rollups
//! (`cost_totals`, `cost_points`, an `ORDER BY` of idle dollars) yield, whatever the grouping,
//! scope and metric; a catalog of revision 10 gets the rollup index at open and keeps its rows.

use cairn_catalog::{Catalog, CostGroup, CostRow, CostScan, CostState};
use cairn_model::cost::{IdleFigures, IdleSpan, PriceSource, RunCost};
use cairn_model::{MetricSummary, Run, RunId, RunStatus};

use crate::{experiment, run_in};

const GPUS: [Option<&str>; 4] = [
    None,
    Some("NVIDIA H200"),
    Some("NVIDIA L4"),
    Some("NVIDIA H200"),
];

/// Run `i`'s figures: unpriced every 7th, idle readings on every other (some idle dollars
/// tied, some unpriced), a GPU model or none.
fn figures(i: u64, start_ms: i64) -> RunCost {
    let hours = 0.5 + (i % 5) as f64 * 0.75;
    let gpus = (i % 4) as u32 * 2;
    let gpu_hours = hours * f64::from(gpus);
    let usd = (!i.is_multiple_of(7)).then_some(gpu_hours * 3.5 + hours * 1.25);
    let idle = i.is_multiple_of(2).then(|| {
        // Runs 0, 10, 20 … idle alike: a tie broken by the id.
        let idle_s = if i.is_multiple_of(10) {
            1800.0
        } else {
            60.0 * (i % 13) as f64
        };
        IdleFigures {
            threshold_pct: 5.0,
            gpus: gpus.max(1),
            observed_s: hours * 3600.0,
            idle_s,
            start_s: idle_s / 2.0,
            middle_s: 0.0,
            end_s: idle_s / 2.0,
            unused_s: 0.0,
            spans: vec![IdleSpan {
                gpu: 0,
                start_ms,
                end_ms: start_ms + (idle_s * 1000.0) as i64,
            }],
        }
    });
    let idle_usd = idle
        .as_ref()
        .filter(|_| usd.is_some())
        .map(|f| f.idle_s / 3600.0 * 3.5);
    RunCost {
        usd,
        gpu_usd: gpu_hours * 3.5,
        machine_usd: hours * 1.25,
        source: if usd.is_some() {
            PriceSource::Table
        } else {
            PriceSource::Unpriced
        },
        hours,
        gpus,
        gpu_model: GPUS[(i % 4) as usize].map(str::to_owned),
        gpu_hours,
        unpriced_hours: 0.0,
        note: None,
        usd_per_hour: usd.map_or(0.0, |u| u / hours),
        valid_until_ms: None,
        as_of_ms: start_ms + (hours * 3_600_000.0) as i64,
        running: i.is_multiple_of(11),
        idle,
        idle_usd,
    }
}

/// Three experiments, 60 runs (owners, a `team` tag on most, `acc` on two in three — one NaN —
/// every 17th deleted, starts shared by pairs), each with figures in the projection.
fn fill(cat: &mut Catalog) -> Vec<Run> {
    let exps = [experiment("a"), experiment("b"), experiment("c")];
    for e in &exps {
        cat.create_experiment(e).unwrap();
    }
    let mut runs = Vec::new();
    for i in 0..60u64 {
        let mut run = run_in(&exps[(i % 3) as usize], i);
        // Pairs start at the same instant: the order falls to the id.
        run.start_ms = 1_700_000_000_000 + (i / 2) as i64 * 1000;
        match i % 5 {
            0 => run.owner = None,
            1 => run.owner = Some("carol".into()),
            _ => {}
        }
        match i % 4 {
            0 => {
                run.tags.remove("team");
            }
            1 => {
                run.tags.insert("team".into(), "nlp".into());
            }
            _ => {}
        }
        if !i.is_multiple_of(3) {
            let last = if i == 4 {
                f64::NAN
            } else {
                0.5 + i as f64 / 200.0
            };
            run.metrics.insert(
                "acc".into(),
                MetricSummary {
                    last,
                    step: 1,
                    ts_ms: run.start_ms,
                    min: None,
                    max: None,
                    count: 1,
                },
            );
        }
        if i.is_multiple_of(11) {
            run.status = RunStatus::Running;
        } else {
            run.status = RunStatus::Finished;
        }
        run.deleted = i.is_multiple_of(17);
        runs.push(run);
    }
    cat.create_runs(&runs).unwrap();
    let rows: Vec<CostRow> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| CostRow {
            run: r.id,
            experiment: r.experiment,
            owner: r.owner.clone(),
            status: r.status,
            deleted: r.deleted,
            start_ms: r.start_ms,
            cost: figures(i as u64, r.start_ms),
        })
        .collect();
    let (seq, _) = cat.change_counters().unwrap();
    cat.put_run_costs(
        &rows,
        &[],
        &CostState {
            seen: seq,
            pricing: "p".into(),
            team_heads: Vec::new(),
        },
        seq,
    )
    .unwrap();
    runs
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// The top idle as the report read it before the one pass: an `ORDER BY` over every live row.
fn top_idle_by_query(path: &std::path::Path, scope: Option<&[RunId]>, top: usize) -> Vec<RunId> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.run FROM run_costs c WHERE c.deleted = 0 AND c.idle_s > 0
             ORDER BY coalesce(c.idle_usd, 0) DESC, c.idle_s DESC, c.run",
        )
        .unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|id| id.unwrap().parse::<RunId>().unwrap());
    ids.filter(|id| scope.is_none_or(|s| s.contains(id)))
        .take(top)
        .collect()
}

/// `scan` against the per-query rollups of the same grouping, scope and metric.
fn assert_same_as_queries(
    cat: &Catalog,
    path: &std::path::Path,
    scan: &CostScan,
    (group, scope, metric, top): (&CostGroup, Option<&[RunId]>, Option<&str>, usize),
) {
    let what = format!("{group:?} scope={} metric={metric:?}", scope.is_some());
    let totals = cat.cost_totals(group, scope, &[]).unwrap();
    assert_eq!(scan.families.len(), totals.len(), "{what}");
    let points = cat.cost_points(group, scope, metric).unwrap();
    for (f, t) in scan.families.iter().zip(&totals) {
        let s = &f.totals;
        assert_eq!(
            (&s.key, s.runs, s.priced),
            (&t.key, t.runs, t.priced),
            "{what}"
        );
        for (a, b) in [
            (s.usd, t.usd),
            (s.gpu_hours, t.gpu_hours),
            (s.observed_s, t.observed_s),
            (s.idle_s, t.idle_s),
            (s.idle_usd, t.idle_usd),
        ] {
            assert!(close(a, b), "{what} {:?}: {a} vs {b}", s.key);
        }
        let mine: Vec<_> = points
            .iter()
            .filter(|(k, _)| *k == s.key)
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(f.runs, mine, "{what} {:?}", s.key);
    }
    // Spend inside windows: before every run, across some, around all, an instant.
    let t0 = 1_700_000_000_000;
    let windows = [
        (0, t0),
        (t0 + 5_000, t0 + 3 * 3_600_000),
        (t0 + 20_500, t0 + 20_501),
        (0, i64::MAX / 4),
    ];
    let windowed = cat.cost_totals(group, scope, &windows).unwrap();
    for (f, t) in scan.families.iter().zip(&windowed) {
        for (w, (lo, hi)) in windows.iter().enumerate() {
            let (a, b) = (f.in_window(*lo, *hi), t.in_window[w]);
            assert!(close(a, b), "{what} {:?} window {w}: {a} vs {b}", t.key);
            let one = cat
                .cost_spend(group, t.key.as_deref(), scope, (*lo, *hi))
                .unwrap();
            assert!(close(one, b), "{what} {:?} window {w}: {one} vs {b}", t.key);
        }
    }
    let ids: Vec<RunId> = scan.top_idle.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, top_idle_by_query(path, scope, top), "{what}");
    for (id, cost) in &scan.top_idle {
        let mut stored = cat.run_cost(*id).unwrap().unwrap();
        if let Some(i) = stored.idle.as_mut() {
            i.spans.clear();
        }
        assert_eq!(*cost, stored, "{what}: the figures, without spans");
    }
}

#[test]
fn one_cost_scan_yields_what_the_per_query_rollups_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let mut cat = Catalog::open(&path, "t").unwrap();
    let runs = fill(&mut cat);
    // A scope of every third run, deleted ones included (they stay out).
    let scope: Vec<RunId> = runs.iter().step_by(3).map(|r| r.id).collect();
    let groups = [
        CostGroup::Experiment,
        CostGroup::Owner,
        CostGroup::GpuModel,
        CostGroup::Tag("team".into()),
        CostGroup::All,
    ];
    for group in &groups {
        for scope in [None, Some(scope.as_slice())] {
            for metric in [None, Some("acc"), Some("nothing-logged")] {
                for top in [0, 3, 1000] {
                    let scan = cat.cost_scan(group, scope, metric, top).unwrap();
                    assert_same_as_queries(&cat, &path, &scan, (group, scope, metric, top));
                }
            }
        }
    }
    // What the fixture implies, so the comparison is not of two empty answers.
    let scan = cat
        .cost_scan(&CostGroup::All, None, Some("acc"), 1000)
        .unwrap();
    let live = runs.iter().filter(|r| !r.deleted).count();
    assert_eq!(scan.families.len(), 1);
    assert_eq!(scan.families[0].totals.runs, live as u64);
    let values = scan.families[0].runs.iter().filter(|p| p.value.is_some());
    // Two in three have `acc`; run 4's is NaN, which counts as none.
    let with_acc = runs
        .iter()
        .enumerate()
        .filter(|(i, r)| !r.deleted && i % 3 != 0 && *i != 4)
        .count();
    assert_eq!(values.count(), with_acc);
    // Every live run with idle seconds, most idle dollars first, ties by id.
    let idle = runs
        .iter()
        .enumerate()
        .filter(|(i, r)| !r.deleted && i % 2 == 0 && (i % 10 == 0 || i % 13 != 0))
        .count();
    assert_eq!(scan.top_idle.len(), idle);
    let first = &scan.top_idle[0].1;
    assert_eq!(first.idle.as_ref().unwrap().idle_s, 1800.0);
    assert!(first.idle.as_ref().unwrap().spans.is_empty());
    let running = scan.families[0].runs.iter().filter(|p| p.running).count();
    assert_eq!(
        running,
        runs.iter()
            .filter(|r| !r.deleted && r.status == RunStatus::Running)
            .count()
    );
}

#[test]
fn a_revision_10_catalog_gets_the_rollup_index_and_keeps_its_costs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let (runs, before, state) = {
        let mut cat = Catalog::open(&path, "t").unwrap();
        let runs = fill(&mut cat);
        let before = cat
            .cost_scan(&CostGroup::Experiment, None, Some("acc"), 10)
            .unwrap();
        (runs, before, cat.cost_state().unwrap())
    };
    let index_names = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run_costs'
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(index_names(), ["run_costs_rollup", "run_costs_running"]);
    // As revision 10 left it: the idle index, no rollup index.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX run_costs_rollup;
             CREATE INDEX run_costs_idle ON run_costs(deleted, idle_usd);
             UPDATE meta SET value = '10' WHERE key = 'schema';",
        )
        .unwrap();
    }
    assert_eq!(index_names(), ["run_costs_idle", "run_costs_running"]);
    let cat = Catalog::open(&path, "t").unwrap();
    assert_eq!(index_names(), ["run_costs_rollup", "run_costs_running"]);
    // Every row and the state as they were: nothing to compute again.
    assert_eq!(cat.cost_state().unwrap(), state);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(
            cat.run_cost(r.id).unwrap(),
            Some(figures(i as u64, r.start_ms)),
            "run {i}, idle spans included"
        );
    }
    let after = cat
        .cost_scan(&CostGroup::Experiment, None, Some("acc"), 10)
        .unwrap();
    assert_eq!(after, before);
}
