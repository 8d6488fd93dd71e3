//! Evaluations and compliance in a search: `eval.BENCHMARK.METRIC` reads an evaluation's overall
//! metric, `fairness.METRIC.difference` / `.ratio` the worst figure of a metric over the run's
//! evaluations and sensitive attributes, and `is:compliant` / `is:incomplete` the run's
//! compliance with its schema.

use std::collections::BTreeMap;

use cairn_model::{Compliance, ComplianceState, Evaluation, ExperimentId, Num, Run};
use cairn_search::{parse, parse_sort};

use crate::{index_of, names, run_in, trials};

fn nums(pairs: &[(&str, f64)]) -> BTreeMap<String, Num> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Num(*v)))
        .collect()
}

fn evaluate(
    run: &mut Run,
    benchmark: &str,
    overall: &[(&str, f64)],
    slices: &[(&str, &[(&str, f64)])],
) {
    run.lineage.evaluations.insert(
        benchmark.into(),
        Evaluation {
            metrics: nums(overall),
            slices: slices
                .iter()
                .map(|(s, m)| ((*s).to_owned(), nums(m)))
                .collect(),
            ..Default::default()
        },
    );
}

fn comply(run: &mut Run, state: ComplianceState) {
    run.compliance = Compliance {
        state,
        missing: if state == ComplianceState::Compliant {
            vec![]
        } else {
            vec!["code.commit is missing".into()]
        },
    };
}

fn fixture() -> Vec<Run> {
    let exp = ExperimentId::new();
    let mut runs: Vec<Run> = (0..7).map(|i| run_in(exp, i)).collect();
    // acc over sex: 0.97 - 0.93 = 0.04.
    evaluate(
        &mut runs[0],
        "imagenet-val",
        &[("acc", 0.95), ("top.5", 0.99)],
        &[("sex=f", &[("acc", 0.93)]), ("sex=m", &[("acc", 0.97)])],
    );
    // acc over sex 0.10, over age 0.06: the worst is 0.10, its ratio 0.80 / 0.90.
    evaluate(
        &mut runs[1],
        "imagenet-val",
        &[("acc", 0.85)],
        &[
            ("sex=f", &[("acc", 0.80)]),
            ("sex=m", &[("acc", 0.90)]),
            ("age=young", &[("acc", 0.88)]),
            ("age=old", &[("acc", 0.82)]),
        ],
    );
    evaluate(&mut runs[2], "imagenet-val", &[("acc", 0.91)], &[]);
    // Selection rates 0.2 and 0.4: demographic parity ratio 0.5. Two benchmarks: the worst
    // acc difference is over both (0.01 here, 0.07 there).
    evaluate(
        &mut runs[3],
        "credit-test",
        &[("acc", 0.99)],
        &[
            ("sex=f", &[("selection_rate", 0.2), ("acc", 0.98)]),
            ("sex=m", &[("selection_rate", 0.4), ("acc", 0.99)]),
        ],
    );
    evaluate(
        &mut runs[3],
        "holdout",
        &[("acc", 0.9)],
        &[("sex=f", &[("acc", 0.86)]), ("sex=m", &[("acc", 0.93)])],
    );
    evaluate(&mut runs[5], "cifar/10@v2", &[("acc", 0.5)], &[]);
    comply(&mut runs[1], ComplianceState::Incomplete);
    comply(&mut runs[2], ComplianceState::Refused);
    comply(&mut runs[3], ComplianceState::Pending);
    runs
}

#[test]
fn evaluation_metrics_are_fields_of_a_search() {
    let runs = fixture();
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("eval.imagenet-val.acc > 0.9"), trials([0, 2]));
    assert_eq!(n("eval.imagenet-val.acc <= 0.9"), trials([1]));
    assert_eq!(n("eval.imagenet-val.top.5 = 0.99"), trials([0]));
    assert_eq!(
        n("eval.credit-test.acc > 0.9 and eval.holdout.acc > 0.8"),
        trials([3])
    );
    assert_eq!(n("eval.cifar/10@v2.acc = 0.5"), trials([5]));
    assert_eq!(n("eval.imagenet-val.acc IS NULL"), trials([3, 4, 5, 6]));
    assert_eq!(n("0.8 < eval.imagenet-val.acc < 0.92"), trials([1, 2]));
    // Ordered by an evaluation metric, runs without it last.
    assert_eq!(
        names(&idx, &runs, "", "eval.imagenet-val.acc DESC"),
        trials([0, 2, 1, 3, 4, 5, 6])
    );
    // The printed query reads back the same.
    let q = parse("eval.imagenet-val.top.5 > 0.9").unwrap();
    assert_eq!(q.to_string(), "eval.imagenet-val.top.5 > 0.9");
    assert_eq!(parse(&q.to_string()).unwrap(), q);
    parse_sort("eval.imagenet-val.acc DESC").unwrap();
}

#[test]
fn fairness_fields_read_the_worst_figure_of_a_metric() {
    let runs = fixture();
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("fairness.acc.difference < 0.05"), trials([0]));
    // Run 3's worst acc difference is its holdout one (0.07), not credit-test's 0.01.
    assert_eq!(n("fairness.acc.difference >= 0.05"), trials([1, 3]));
    assert_eq!(n("fairness.acc.difference > 0.09"), trials([1]));
    assert_eq!(n("fairness.acc.ratio < 0.9"), trials([1]));
    assert_eq!(n("fairness.demographic_parity.ratio < 0.8"), trials([3]));
    assert_eq!(n("fairness.selection_rate.difference > 0.15"), trials([3]));
    // A run without slices has no fairness figures.
    assert_eq!(n("fairness.acc.difference IS NULL"), trials([2, 4, 5, 6]));
}

#[test]
fn compliance_is_a_shorthand_and_an_attribute() {
    let runs = fixture();
    let idx = index_of(&runs, "e");
    let n = |q: &str| names(&idx, &runs, q, "name");
    assert_eq!(n("is:compliant"), trials([0, 4, 5, 6]));
    // Incomplete is every run that lacks what its schema requires, pending and refused too.
    assert_eq!(n("is:incomplete"), trials([1, 2, 3]));
    assert_eq!(n("is:refused"), trials([2]));
    assert_eq!(n("is:pending"), trials([3]));
    assert_eq!(n("compliance = 'incomplete'"), trials([1]));
    assert_eq!(n("compliance = 'REFUSED'"), trials([2]));
    assert_eq!(
        n("is:incomplete and eval.imagenet-val.acc > 0.9"),
        trials([2])
    );
    assert_eq!(n("not is:compliant and is:running"), trials([1, 2, 3]));
}

#[test]
fn malformed_evaluation_fields_say_what_was_expected() {
    for (q, expected) in [
        ("eval.imagenet-val > 0.9", "BENCHMARK.METRIC after 'eval.'"),
        ("eval.acc > 1", "BENCHMARK.METRIC after 'eval.'"),
        (
            "fairness.acc > 0.1",
            "METRIC.difference or METRIC.ratio after 'fairness.'",
        ),
        (
            "fairness.acc.gap < 0.1",
            "METRIC.difference or METRIC.ratio after 'fairness.'",
        ),
        ("eval.imagenet-val.acc > 'high'", "is not a number"),
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.to_string().contains(expected), "{q}: {e}");
    }
    let e = parse("is:bogus").unwrap_err();
    assert!(
        e.to_string()
            .contains("compliant, incomplete, pending or refused"),
        "{e}"
    );
}
