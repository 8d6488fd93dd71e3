//! What searches answer: MLflow's semantics, Cairn's additions, sorting and pages.

use cairn_model::{DatasetSnapshot, ExperimentId, Run, RunId, RunStatus};
use cairn_search::query::{Attribute, Field};
use cairn_search::{IndexedRun, Lifecycle, SearchIndex, SearchRequest, SortKey, parse};

use crate::{T0, index_of, metric, names, page, run_in, trials, with_infra};

/// The catalog's MLflow test (`crates/cairn-catalog/tests/it/main.rs`), case for case.
#[test]
fn mlflow_filters_select_and_order_runs_with_stable_pages() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..30).map(|i| run_in(exp, i)).collect();
    for (i, r) in runs.iter_mut().enumerate() {
        r.params.insert(
            "optimizer".into(),
            if i % 3 == 0 { "sgd" } else { "adam" }.into(),
        );
        r.tags.insert(
            "owner".into(),
            if i % 2 == 0 { "alice" } else { "bob" }.into(),
        );
        r.metrics.insert("acc".into(), metric(i as f64 / 30.0));
        if i == 29 {
            r.status = RunStatus::Failed;
        }
    }
    let idx = index_of(&runs, "e");
    let p = page(
        &idx,
        "metrics.acc > 0.5 and params.optimizer = 'adam' and tags.owner LIKE 'ali%'",
        "metrics.acc DESC",
        100,
        0,
    );
    let expected: Vec<u64> = (16..30)
        .rev()
        .filter(|i| i % 3 != 0 && i % 2 == 0)
        .collect();
    assert_eq!(
        names(
            &idx,
            &runs,
            "metrics.acc > 0.5 and params.optimizer = 'adam' and tags.owner LIKE 'ali%'",
            "metrics.acc DESC"
        ),
        trials(expected.iter().copied())
    );
    assert_eq!(p.total, expected.len() as u64);
    assert_eq!(p.next_offset, None);
    // LIKE is case-sensitive as in MLflow; ILIKE is not.
    assert_eq!(page(&idx, "tags.owner LIKE 'ALI%'", "", 100, 0).total, 0);
    assert_eq!(page(&idx, "tags.owner ILIKE 'ALI%'", "", 100, 0).total, 15);
    assert_eq!(
        page(&idx, "attributes.status = 'FAILED'", "", 100, 0).total,
        1
    );
    assert_eq!(
        page(&idx, "attributes.status IN ('RUNNING')", "", 100, 0).total,
        29
    );
    let digest = runs[4].lineage.datasets["train"].digest.clone().unwrap();
    let hit = page(&idx, &format!("datasets.digest = '{digest}'"), "", 100, 0);
    assert_eq!(hit.runs, vec![runs[4].id]);
    // Pages of 7 ordered by a param with ties: every run exactly once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let p = page(&idx, "", "params.optimizer ASC", 7, offset);
        assert!(p.runs.len() <= 7);
        seen.extend(p.runs);
        match p.next_offset {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    seen.sort();
    let mut all: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn mlflow_comparisons_of_every_kind() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..10).map(|i| run_in(exp, i)).collect();
    runs[3].status = RunStatus::Finished;
    runs[3].end_ms = Some(T0 + 100);
    runs[4].tags.insert("mlflow.user".into(), "carol".into());
    runs[5].metrics.insert("val/loss".into(), metric(-0.5));
    runs[6].metrics.insert("val/loss".into(), metric(0.25));
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "attributes.run_name ASC");
    assert_eq!(n("params.optimizer != 'adam'"), Vec::<String>::new());
    assert_eq!(n("tags.`mlflow.user` = 'carol'"), trials([4]));
    assert_eq!(n("tags.\"mlflow.user\" != 'dave'"), trials([4]));
    assert_eq!(n("tags.mlflow.user IS NULL").len(), 9);
    assert_eq!(n("tags.mlflow.user IS NOT NULL"), trials([4]));
    assert_eq!(n("metrics.`val/loss` < 0"), trials([5]));
    assert_eq!(n("metrics.val/loss >= -0.5"), trials([5, 6]));
    assert_eq!(n("metrics.val/loss = 0.25"), trials([6]));
    assert_eq!(n("metrics.val/loss != 0.25"), trials([5]));
    assert_eq!(
        n("attributes.run_name IN ('trial-1', 'trial-2')"),
        trials([1, 2])
    );
    assert_eq!(
        n("attributes.run_name NOT IN ('trial-1', 'trial-2')").len(),
        8
    );
    assert_eq!(n("attributes.run_name LIKE 'trial-_'").len(), 10);
    assert_eq!(n("attributes.run_name ILIKE 'TRIAL-1%'"), trials([1]));
    assert_eq!(n("attributes.user_id = 'bob'"), trials([1, 3, 5, 7, 9]));
    assert_eq!(n("attributes.status = 'finished'"), trials([3]));
    assert_eq!(n("attributes.end_time > 0"), trials([3]));
    assert_eq!(
        n(&format!("attributes.start_time >= {}", T0 + 8)),
        trials([8, 9])
    );
    assert_eq!(n(&format!("attributes.created < {}", T0 + 1)), trials([0]));
    let id = runs[7].id.to_hex();
    assert_eq!(n(&format!("attributes.run_id = '{id}'")), trials([7]));
    assert_eq!(
        n(&format!("attributes.run_id = '{}'", id.to_uppercase())),
        trials([7])
    );
    assert_eq!(n("datasets.context = 'train'").len(), 10);
    assert_eq!(n("datasets.name = 'train'").len(), 10);
    assert_eq!(n("attributes.artifact_uri = 'x'"), Vec::<String>::new());
    assert_eq!(n("attributes.artifact_uri IS NULL").len(), 10);
}

#[test]
fn or_not_and_parentheses() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..10).map(|i| run_in(exp, i)).collect();
    for (i, r) in runs.iter_mut().enumerate() {
        r.metrics.insert("acc".into(), metric(i as f64 / 10.0));
    }
    runs[9].metrics.clear();
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(
        n("metrics.acc > 0.75 or owner = 'bob' and metrics.acc < 0.2"),
        trials([1, 8])
    );
    assert_eq!(
        n("(metrics.acc > 0.75 or owner = 'bob') and metrics.acc < 0.2"),
        trials([1])
    );
    // NOT keeps runs without the value: trial-9 has no acc.
    assert_eq!(n("NOT metrics.acc < 0.7"), trials([7, 8, 9]));
    assert_eq!(
        n("not (owner = 'alice' or metrics.acc >= 0.5)"),
        trials([1, 3, 9])
    );
    assert_eq!(n("NOT NOT owner:bob"), trials([1, 3, 5, 7, 9]));
    assert_eq!(n("owner:alice -0.5 < metrics.acc < 0.3"), trials([0, 2]));
}

#[test]
fn free_text_matches_words_and_phrases_with_stemming() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..6).map(|i| run_in(exp, i)).collect();
    runs[0].notes = "Baseline with label smoothing 0.1 and a cosine schedule.".into();
    runs[1].notes = "Tried label smoothing 0.2: slightly worse calibration.".into();
    runs[2].notes = "Smoothing of the label noise did not help.".into();
    runs[3].notes = "Warmup for 5% of steps; loss spikes disappear.".into();
    runs[4]
        .params
        .insert("label_smoothing".into(), "0.1".into());
    runs[5]
        .tags
        .insert("note".into(), "compare with smoothed labels".into());
    runs[5].name = "Café-run".into();
    let idx = index_of(&runs, "resnet-sweep");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("\"label smoothing\""), trials([0, 1]));
    assert_eq!(n("'label smoothing'"), trials([0, 1]));
    // Stemmed: "smoothed labels" is "smooth label" as is "label smoothing" (other order).
    let mut with_cafe = trials([0, 1, 2]);
    with_cafe.insert(0, "Café-run".to_owned());
    assert_eq!(n("smooth"), with_cafe);
    assert_eq!(n("\"smoothed labels\""), vec!["Café-run".to_owned()]);
    assert_eq!(n("label smoothing"), with_cafe);
    assert_eq!(n("WARMUP"), trials([3]));
    // MLflow reads notes as a tag, and filters on it.
    assert_eq!(
        n("tags.\"mlflow.note.content\" LIKE '%loss spikes%'"),
        trials([3])
    );
    assert_eq!(n("\"label smoothing\" owner:bob"), trials([1]));
    assert_eq!(n("\"label smoothing\" OR warmup"), trials([0, 1, 3]));
    assert_eq!(n("resnet").len(), 6);
    assert_eq!(n("alice").len(), 3);
    assert_eq!(n("nothing-like-this"), Vec::<String>::new());
    assert_eq!(n("\"...\"").len(), 6);
    // Accents fold to ASCII.
    assert_eq!(n("cafe"), vec!["Café-run".to_owned()]);
    assert_eq!(n("CAFÉ"), vec!["Café-run".to_owned()]);
}

#[test]
fn shorthands_find_owners_tags_experiments_and_status() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..6).map(|i| run_in(exp, i)).collect();
    runs[1].tags.insert("baseline".into(), "true".into());
    runs[2].tags.insert("stage".into(), "candidate".into());
    runs[3].status = RunStatus::Finished;
    runs[4].status = RunStatus::Failed;
    runs[5].owner = None;
    let mut idx = index_of(&runs, "resnet-sweep");
    let other = run_in(ExperimentId::new(), 6);
    idx.upsert(&[IndexedRun {
        run: &other,
        experiment_name: "bert base",
        cost: None,
        review: None,
    }])
    .unwrap();
    idx.commit().unwrap();
    runs.push(other);
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("owner:alice"), trials([0, 2, 4, 6]));
    assert_eq!(n("owner IS NULL"), trials([5]));
    assert_eq!(n("tag:baseline"), trials([1]));
    assert_eq!(n("tag:stage=candidate"), trials([2]));
    assert_eq!(n("tag:stage=baseline"), Vec::<String>::new());
    assert_eq!(n("param:optimizer=adam").len(), 7);
    assert_eq!(n("param:lr").len(), 7);
    assert_eq!(n("exp:resnet-sweep").len(), 6);
    assert_eq!(n("exp:\"bert base\""), trials([6]));
    assert_eq!(n("is:running"), trials([0, 1, 2, 5, 6]));
    assert_eq!(n("is:finished OR status:FAILED"), trials([3, 4]));
    assert_eq!(n("status = 'failed'"), trials([4]));
}

#[test]
fn lineage_fields_filter_runs() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..6).map(|i| run_in(exp, i)).collect();
    runs[1] = with_infra(runs[1].clone(), "gpu-box-1", "NVIDIA A100-SXM4-80GB", "v3");
    runs[2] = with_infra(runs[2].clone(), "gpu-box-2", "NVIDIA H100", "v4");
    runs[3].lineage.datasets.insert(
        "eval".into(),
        DatasetSnapshot {
            name: Some("imagenet-val".into()),
            uri: Some("s3://acme/imagenet/val".into()),
            digest: Some("blake3:eval".into()),
            ..Default::default()
        },
    );
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n(&format!("code.commit = '{:040x}'", 2)), trials([2]));
    assert_eq!(n("code.branch = 'main'"), trials([0, 1, 2, 3, 4]));
    assert_eq!(n("code.branch LIKE 'exp/%'"), trials([5]));
    assert_eq!(n("infra.gpu LIKE '%A100%'"), trials([1]));
    assert_eq!(
        n("infra.host IN ('gpu-box-1', 'gpu-box-2')"),
        trials([1, 2])
    );
    assert_eq!(n("feature_set.version = 'v4'"), trials([2]));
    assert_eq!(n("feature_set.name = 'clicks'"), trials([1, 2]));
    assert_eq!(n("dataset.digest = 'blake3:eval'"), trials([3]));
    assert_eq!(n("dataset.name = 'imagenet-val'"), trials([3]));
    assert_eq!(n("dataset.uri LIKE 's3://acme/%'"), trials([3]));
    // Any of a run's datasets: trial-3's eval set is not the train set.
    assert_eq!(n("datasets.context != 'train'"), trials([3]));
    assert_eq!(n("infra.gpu IS NULL").len(), 4);
}

#[test]
fn ranges_compare_numbers_in_params_tags_and_metrics() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..20).map(|i| run_in(exp, i)).collect();
    // lr of trial-i is 0.001 * (i + 1).
    runs[0].params.insert("batch_size".into(), "64".into());
    runs[1].params.insert("batch_size".into(), "64.0".into());
    runs[2].params.insert("batch_size".into(), "big".into());
    runs[3].tags.insert("epochs".into(), "30".into());
    runs[4].tags.insert("epochs".into(), "90".into());
    for (i, r) in runs.iter_mut().enumerate() {
        r.metrics.insert("acc".into(), metric(i as f64 / 20.0));
    }
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("0.001 <= params.lr < 0.004"), trials([0, 1, 2]));
    assert_eq!(n("0.004 > params.lr >= 0.002"), trials([1, 2]));
    assert_eq!(n("params.lr > 0.0185"), trials([18, 19]));
    assert_eq!(n("params.lr > '0.0185'"), trials([18, 19]));
    // A number compares with the param's value; quoted text with its text, as in MLflow.
    assert_eq!(n("params.batch_size = 64"), trials([0, 1]));
    assert_eq!(n("params.batch_size = '64'"), trials([0]));
    assert_eq!(n("params.batch_size != 64"), Vec::<String>::new());
    assert_eq!(n("params.batch_size != '64'"), trials([1, 2]));
    assert_eq!(n("tags.epochs >= 50"), trials([4]));
    assert_eq!(n("10 < tags.epochs <= 30"), trials([3]));
    assert_eq!(n("0.2 <= metrics.acc <= 0.3"), trials([4, 5, 6]));
    assert_eq!(n("0.2 < metrics.acc < 0.3"), trials([5]));
    assert_eq!(n("'trial-17' <= name < 'trial-19'"), trials([17, 18]));
}

#[test]
fn relative_and_calendar_times() {
    let exp = ExperimentId::new();
    let now = 1_714_521_600_000; // 2024-05-01
    let day = 86_400_000;
    let runs: Vec<Run> = [1, 3, 10, 40]
        .iter()
        .enumerate()
        .map(|(i, days_ago)| {
            let mut r = Run::new(
                RunId::from_parts((now - days_ago * day) as u64, i as u128),
                exp,
                format!("trial-{i}"),
                now - days_ago * day,
            );
            r.end_ms = Some(now - days_ago * day + 3_600_000);
            r
        })
        .collect();
    let idx = index_of(&runs, "e");
    let n = |q: &str| {
        let req = SearchRequest {
            now_ms: Some(now),
            sort: vec![SortKey::asc(Field::Attribute(Attribute::RunName))],
            ..SearchRequest::new(parse(q).unwrap())
        };
        idx.search(&req)
            .unwrap()
            .runs
            .iter()
            .map(|id| runs.iter().find(|r| r.id == *id).unwrap().name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(n("created > -7d"), trials([0, 1]));
    assert_eq!(n("created > -2w"), trials([0, 1, 2]));
    assert_eq!(n("created > -36h"), trials([0]));
    assert_eq!(n("created > -1500m"), trials([0]));
    assert_eq!(n("-12d < created < -2d"), trials([1, 2]));
    assert_eq!(n("ended < -2d"), trials([1, 2, 3]));
    assert_eq!(n("created >= '2024-04-01'"), trials([0, 1, 2]));
    assert_eq!(n("created < '2024-04-21T00:00Z'"), trials([3]));
    assert_eq!(n("created < '2024-04-21T00:01Z'"), trials([2, 3]));
    assert_eq!(n("attributes.start_time > -7d"), trials([0, 1]));
}

#[test]
fn sorts_by_metric_param_and_attribute_with_missing_last() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..8).map(|i| run_in(exp, i)).collect();
    let accs = [0.5, 0.9, 0.1, 0.9, 0.7, f64::NAN, 0.3, 0.2];
    for (r, a) in runs.iter_mut().zip(accs) {
        r.metrics.insert("acc".into(), metric(a));
    }
    runs[6].metrics.clear();
    runs[2].params.insert("lr".into(), "fast".into());
    runs[4].params.remove("lr");
    runs[0].owner = None;
    let idx = index_of(&runs, "e");
    let n = |sort: &str| names(&idx, &runs, "", sort);
    // Ties (0.9) by run id; NaN and missing last either way.
    assert_eq!(n("metrics.acc DESC"), trials([1, 3, 4, 0, 7, 2, 5, 6]));
    assert_eq!(n("metrics.acc ASC"), trials([2, 7, 0, 4, 1, 3, 5, 6]));
    // Params: numbers by value, then text, then missing.
    assert_eq!(n("params.lr"), trials([0, 1, 3, 5, 6, 7, 2, 4]));
    assert_eq!(n("params.lr DESC"), trials([2, 7, 6, 5, 3, 1, 0, 4]));
    assert_eq!(
        n("attributes.start_time DESC"),
        trials([7, 6, 5, 4, 3, 2, 1, 0])
    );
    assert_eq!(n("created"), trials([0, 1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(n("owner DESC, name DESC"), trials([7, 5, 3, 1, 6, 4, 2, 0]));
    assert_eq!(n("owner, created DESC"), trials([6, 4, 2, 7, 5, 3, 1, 0]));
    assert_eq!(n("id DESC"), trials([7, 6, 5, 4, 3, 2, 1, 0]));
    // The default order is newest first.
    assert_eq!(n(""), trials([7, 6, 5, 4, 3, 2, 1, 0]));
}

#[test]
fn pages_are_stable_across_segments_and_ties() {
    let exp = ExperimentId::new();
    let runs: Vec<Run> = (0..57)
        .map(|i| {
            let mut r = run_in(exp, i);
            r.metrics.insert("acc".into(), metric((i % 4) as f64));
            r.tags.insert("bucket".into(), format!("b{}", i % 3));
            r
        })
        .collect();
    // Several commits make several segments.
    let mut idx = SearchIndex::in_memory().unwrap();
    for chunk in runs.chunks(10) {
        let items: Vec<IndexedRun<'_>> = chunk
            .iter()
            .map(|run| IndexedRun {
                run,
                experiment_name: "e",
                cost: None,
                review: None,
            })
            .collect();
        idx.upsert(&items).unwrap();
        idx.commit().unwrap();
    }
    for sort in [
        "metrics.acc DESC",
        "tags.bucket",
        "tags.bucket DESC, metrics.acc",
        "",
    ] {
        let all = page(&idx, "", sort, 1000, 0).runs;
        assert_eq!(all.len(), 57);
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let p = page(&idx, "", sort, 6, offset);
            assert_eq!(p.total, 57);
            paged.extend(p.runs);
            match p.next_offset {
                Some(o) => offset = o,
                None => break,
            }
        }
        assert_eq!(paged, all, "{sort}");
    }
    let past = page(&idx, "", "", 10, 100);
    assert!(past.runs.is_empty() && past.next_offset.is_none() && past.total == 57);
    let count = page(&idx, "owner:alice", "", 0, 0);
    assert_eq!((count.runs.len(), count.total), (0, 29));
}

#[test]
fn upserts_replace_runs_and_deletes_remove_them() {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..4).map(|i| run_in(exp, i)).collect();
    let mut idx = index_of(&runs, "e");
    assert_eq!(idx.len(), 4);

    // A new run is searchable once committed.
    let new = run_in(exp, 4);
    idx.upsert(&[IndexedRun {
        run: &new,
        experiment_name: "e",
        cost: None,
        review: None,
    }])
    .unwrap();
    assert_eq!(page(&idx, "name = 'trial-4'", "", 10, 0).total, 0);
    idx.commit().unwrap();
    assert_eq!(page(&idx, "name = 'trial-4'", "", 10, 0).runs, vec![new.id]);
    runs.push(new);

    // An edited run replaces its old document.
    runs[1].tags.insert("stage".into(), "candidate".into());
    runs[1].metrics.insert("acc".into(), metric(0.99));
    idx.upsert(&[IndexedRun {
        run: &runs[1],
        experiment_name: "e",
        cost: None,
        review: None,
    }])
    .unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.len(), 5);
    assert_eq!(
        page(&idx, "tag:stage=candidate metrics.acc > 0.9", "", 10, 0).runs,
        vec![runs[1].id]
    );

    // A soft-deleted run leaves active searches but stays findable among deleted ones.
    runs[2].deleted = true;
    idx.upsert(&[IndexedRun {
        run: &runs[2],
        experiment_name: "e",
        cost: None,
        review: None,
    }])
    .unwrap();
    idx.commit().unwrap();
    assert_eq!(page(&idx, "", "", 10, 0).total, 4);
    let deleted = SearchRequest {
        lifecycle: Lifecycle::Deleted,
        ..Default::default()
    };
    assert_eq!(idx.search(&deleted).unwrap().runs, vec![runs[2].id]);
    let all = SearchRequest {
        lifecycle: Lifecycle::All,
        ..Default::default()
    };
    assert_eq!(idx.search(&all).unwrap().total, 5);

    // Purged runs are gone.
    idx.delete(&[runs[0].id, runs[2].id]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.search(&all).unwrap().total, 3);
    assert_eq!(idx.len(), 3);
}

#[test]
fn searches_are_scoped_to_experiments() {
    let (a, b) = (ExperimentId::new(), ExperimentId::new());
    let runs: Vec<Run> = (0..6)
        .map(|i| run_in(if i < 4 { a } else { b }, i))
        .collect();
    let idx = index_of(&runs, "e");
    let scoped = |exps: Vec<ExperimentId>| {
        idx.search(&SearchRequest::new(parse("owner:alice").unwrap()).in_experiments(exps))
            .unwrap()
            .total
    };
    assert_eq!(scoped(vec![a]), 2);
    assert_eq!(scoped(vec![b]), 1);
    assert_eq!(scoped(vec![a, b]), 3);
    assert_eq!(scoped(vec![]), 3);
    assert_eq!(
        page(&idx, &format!("experiment_id = '{b}'"), "", 10, 0).total,
        2
    );
}
