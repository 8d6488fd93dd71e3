//! The cost fields: `cost.usd`, `cost.idle_share`, …, the bare `cost` and `idle`, sorting by
//! them, and an unpriced run's missing dollars.

use cairn_model::ExperimentId;
use cairn_search::query::{CostField, Field};
use cairn_search::{IndexedCost, IndexedRun, SearchIndex, parse, parse_sort};

use crate::{page, run_in};

#[test]
fn cost_fields_filter_sort_and_an_unpriced_run_has_no_dollars() {
    let exp = ExperimentId::new();
    let runs: Vec<_> = (0..4).map(|i| run_in(exp, i)).collect();
    let costs = [
        Some(IndexedCost {
            usd: Some(120.0),
            idle_usd: Some(30.0),
            idle_share: Some(0.25),
            gpu_hours: Some(16.0),
        }),
        Some(IndexedCost {
            usd: Some(80.0),
            idle_usd: Some(40.0),
            idle_share: Some(0.5),
            gpu_hours: Some(8.0),
        }),
        // Unpriced: GPU-hours known, dollars not.
        Some(IndexedCost {
            usd: None,
            idle_usd: None,
            idle_share: Some(0.9),
            gpu_hours: Some(4.0),
        }),
        None,
    ];
    let mut idx = SearchIndex::in_memory().unwrap();
    let items: Vec<IndexedRun<'_>> = runs
        .iter()
        .zip(costs)
        .map(|(run, cost)| IndexedRun {
            run,
            experiment_name: "e",
            cost,
            review: None,
        })
        .collect();
    idx.upsert(&items).unwrap();
    idx.commit().unwrap();
    let names = |q: &str, sort: &str| -> Vec<String> {
        page(&idx, q, sort, 10, 0)
            .runs
            .iter()
            .map(|id| runs.iter().find(|r| r.id == *id).unwrap().name.clone())
            .collect()
    };
    assert_eq!(names("cost.usd > 100", ""), ["trial-0"]);
    assert_eq!(names("cost > 50", "cost DESC"), ["trial-0", "trial-1"]);
    assert_eq!(names("idle >= 0.5", "idle"), ["trial-1", "trial-2"]);
    assert_eq!(names("cost.usd IS NULL", "created"), ["trial-2", "trial-3"]);
    assert_eq!(
        names("cost.gpu_hours <= 8 AND cost.idle_usd > 0", ""),
        ["trial-1"]
    );
    // Sorted by dollars, the ones without come last either way.
    let sorted = names("", "cost.usd ASC");
    assert_eq!(sorted[..2], ["trial-1", "trial-0"]);
    let mut rest = sorted[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["trial-2", "trial-3"]);
    assert_eq!(names("", "cost.usd DESC")[..2], ["trial-0", "trial-1"]);
}

#[test]
fn cost_fields_parse_print_back_and_bad_names_say_what_exists() {
    assert_eq!(
        parse("cost.usd > 100").unwrap().to_string(),
        "cost.usd > 100"
    );
    assert_eq!(parse("cost > 1").unwrap().to_string(), "cost.usd > 1");
    assert_eq!(
        parse("idle >= 0.3").unwrap().to_string(),
        "cost.idle_share >= 0.3"
    );
    assert_eq!(
        parse_sort("cost").unwrap()[0].field,
        Field::Cost(CostField::Usd)
    );
    let e = parse("cost.euros > 1").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown field 'cost.euros' at column 1: expected one of usd, idle_usd, idle_share, gpu_hours after 'cost.'"
    );
    let e = parse("cost.usd LIKE '1%'").unwrap_err().to_string();
    assert!(e.contains("is a number"), "{e}");
    let e = parse("cost.usd > 'lots'").unwrap_err().to_string();
    assert!(e.contains("'lots' is not a number"), "{e}");
    // A bare word without a comparison stays free text.
    assert_eq!(parse("cost").unwrap().to_string(), "cost");
}
