//! Integration tests of cairn-search: the query language's properties and the index's answers.

mod cost;
mod evals;
mod index;
mod properties;
mod search;

use cairn_model::{
    CodeVersion, DatasetSnapshot, ExperimentId, FeatureSetVersion, GpuGroup, InfraProfile,
    MetricSummary, Run, RunId, RunStatus,
};
use cairn_search::{IndexedRun, Page, SearchIndex, SearchRequest, parse, parse_sort};

pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn metric(v: f64) -> MetricSummary {
    MetricSummary {
        last: v,
        step: 1,
        ts_ms: 1,
        min: None,
        max: None,
        count: 1,
    }
}

/// Run `i` of experiment `exp`, shaped like the catalog's tests: alternating owners, a learning
/// rate, a dataset digest and a commit per run.
pub(crate) fn run_in(exp: ExperimentId, i: u64) -> Run {
    let mut run = Run::new(
        RunId::from_parts((T0 + i as i64) as u64, i as u128),
        exp,
        format!("trial-{i}"),
        T0 + i as i64,
    );
    run.owner = Some(if i.is_multiple_of(2) { "alice" } else { "bob" }.into());
    run.params
        .insert("lr".into(), format!("{}", 0.001 * (i + 1) as f64));
    run.params.insert("optimizer".into(), "adam".into());
    run.tags.insert("team".into(), "vision".into());
    run.lineage.code = Some(CodeVersion {
        commit: Some(format!("{i:040x}")),
        branch: Some(if i < 5 { "main" } else { "exp/warmup" }.into()),
        ..Default::default()
    });
    run.lineage.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            digest: Some(format!("blake3:{i:064x}")),
            rows: Some(50_000),
            ..Default::default()
        },
    );
    run
}

/// An in-memory index holding `runs`, all in an experiment named `exp_name`.
pub(crate) fn index_of(runs: &[Run], exp_name: &str) -> SearchIndex {
    let mut idx = SearchIndex::in_memory().unwrap();
    let items: Vec<IndexedRun<'_>> = runs
        .iter()
        .map(|run| IndexedRun {
            run,
            experiment_name: exp_name,
            cost: None,
            review: None,
        })
        .collect();
    idx.upsert(&items).unwrap();
    idx.commit().unwrap();
    idx
}

/// Searches `q` ordered by `sort` (comma-separated keys), one page.
pub(crate) fn page(idx: &SearchIndex, q: &str, sort: &str, limit: usize, offset: usize) -> Page {
    let req = SearchRequest::new(parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
        .sorted_by(parse_sort(sort).unwrap())
        .page(limit, offset);
    idx.search(&req).unwrap()
}

/// Names of the runs matching `q` in `sort` order, looked up in `runs`.
pub(crate) fn names(idx: &SearchIndex, runs: &[Run], q: &str, sort: &str) -> Vec<String> {
    page(idx, q, sort, 1000, 0)
        .runs
        .iter()
        .map(|id| {
            runs.iter()
                .find(|r| r.id == *id)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| format!("unknown {id}"))
        })
        .collect()
}

pub(crate) fn trials(ids: impl IntoIterator<Item = u64>) -> Vec<String> {
    ids.into_iter().map(|i| format!("trial-{i}")).collect()
}

/// Lineage for the lineage-field tests.
pub(crate) fn with_infra(mut run: Run, host: &str, gpu: &str, fs_version: &str) -> Run {
    run.lineage.infra = Some(InfraProfile {
        host: Some(host.into()),
        gpus: vec![GpuGroup {
            model: gpu.into(),
            count: 8,
            ..Default::default()
        }],
        ..Default::default()
    });
    run.lineage.feature_set = Some(FeatureSetVersion {
        name: "clicks".into(),
        version: fs_version.into(),
    });
    run.status = RunStatus::Finished;
    run
}

#[test]
fn half_open_metric_ranges_select_only_what_they_say() {
    use cairn_model::{ExperimentId, MetricSummary, Run, RunId};
    let exp = ExperimentId::from_parts(1, 1);
    let runs: Vec<Run> = [0.62, 0.72, 0.5, f64::INFINITY]
        .iter()
        .enumerate()
        .map(|(i, acc)| {
            let mut r = Run::new(
                RunId::from_parts(10 + i as u64, i as u128),
                exp,
                format!("r{i}"),
                10 + i as i64,
            );
            r.metrics.insert(
                "acc".into(),
                MetricSummary {
                    last: *acc,
                    step: 1,
                    ts_ms: 1,
                    min: None,
                    max: None,
                    count: 1,
                },
            );
            r
        })
        .collect();
    let mut index = cairn_search::SearchIndex::in_memory().unwrap();
    let items: Vec<cairn_search::IndexedRun<'_>> = runs
        .iter()
        .map(|run| cairn_search::IndexedRun {
            run,
            experiment_name: "e",
            cost: None,
            review: None,
        })
        .collect();
    index.upsert(&items).unwrap();
    index.commit().unwrap();
    let names = |q: &str| -> Vec<String> {
        let page = index
            .search(&cairn_search::SearchRequest::new(cairn_search::parse(q).unwrap()).page(10, 0))
            .unwrap();
        let mut n: Vec<String> = page
            .runs
            .iter()
            .map(|id| runs.iter().find(|r| r.id == *id).unwrap().name.clone())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names("metrics.acc <= 0.61"), ["r2"]);
    assert_eq!(names("metrics.acc < 0.7"), ["r0", "r2"]);
    assert_eq!(names("metrics.acc >= 0.7"), ["r1", "r3"]);
    assert_eq!(names("metrics.acc > 0.6 and metrics.acc < 0.7"), ["r0"]);
}
