//! Search through the handle: a query narrowed by a saved view and to the user's own runs is
//! combined as syntax trees; query errors say where and what, as fields.

use cairn_core::{Code, ErrorBody, SavedView, SearchRequest};

use crate::{start, workspace};

fn names(page: &cairn_core::SearchPage) -> Vec<String> {
    let mut v: Vec<String> = page.runs.iter().map(|r| r.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn mine_narrows_the_whole_query_not_its_last_term() {
    let (_d, ws) = workspace();
    for (name, owner, opt) in [
        ("a-alice", "alice", "adam"),
        ("b-bob", "bob", "adam"),
        ("c-alice", "alice", "sgd"),
        ("d-bob", "bob", "sgd"),
    ] {
        ws.start_run(cairn_core::NewRun {
            experiment_name: Some("e".into()),
            name: Some(name.into()),
            owner: Some(owner.into()),
            params: [("opt".to_owned(), opt.to_owned())].into(),
            ..Default::default()
        })
        .unwrap();
    }
    // Joining "a or b" and "mine" as text gives "a or (b and mine)": bob's adam run slipped in.
    let page = ws
        .search(&SearchRequest {
            q: Some("params.opt = 'adam' or params.opt = 'sgd'".into()),
            mine: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(names(&page), ["a-alice", "c-alice"]);

    ws.save_view(&SavedView {
        name: "adam".into(),
        query: "params.opt = 'adam' or params.opt = 'none'".into(),
        order: Some("name DESC".into()),
        columns: vec![],
    })
    .unwrap();
    let page = ws
        .search(&SearchRequest {
            view: Some("adam".into()),
            q: Some("owner:bob or owner:carol".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(names(&page), ["b-bob"]);
    // The view's order applies when the search gives none.
    let page = ws
        .search(&SearchRequest {
            view: Some("adam".into()),
            ..Default::default()
        })
        .unwrap();
    let order: Vec<&str> = page.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["b-bob", "a-alice"]);
}

#[test]
fn a_query_error_carries_its_column_and_expectation_as_fields() {
    let (_d, ws) = workspace();
    start(&ws, "e", &[]);
    let e = ws
        .search(&SearchRequest {
            q: Some("metrics.acc > ".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let body = ErrorBody::from(&e);
    assert_eq!(body.column, Some(15));
    assert_eq!(body.expected.as_deref(), Some("a value"));
    assert_eq!(body.found.as_deref(), Some("the end of the query"));
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(json["code"], "INVALID_ARGUMENT");
    assert_eq!(json["column"], 15);
}

#[test]
fn missing_things_are_not_found_not_invalid() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    let cases = [
        ws.view("nope").unwrap_err(),
        ws.delete_view("nope").unwrap_err(),
        ws.delete_tag(id, "nope").unwrap_err(),
        ws.search(&SearchRequest {
            view: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err(),
        ws.experiment("nope").unwrap_err(),
        ws.run_by_prefix("ffffffff").unwrap_err(),
    ];
    for e in cases {
        assert_eq!(e.code(), Code::NotFound, "{e}");
    }
}

#[test]
fn edits_reach_search_at_once_and_streamed_metrics_soon_after() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    let point = |step: i64, value: f64| cairn_core::MetricPoint {
        step,
        ts_ms: step,
        value,
    };
    let hits = |q: &str| {
        ws.search(&SearchRequest {
            q: Some(q.into()),
            ..Default::default()
        })
        .unwrap()
        .total
    };
    assert_eq!(hits("tag:stage=a"), 0);
    ws.set_tags(id, &[("stage".into(), "a".into())]).unwrap();
    // A tag is an edit of the run: the next search sees it.
    assert_eq!(hits("tag:stage=a"), 1);
    // A metric logged while the run streams may show a moment later (see METRICS_LAG).
    ws.log_metric(id, "loss", &[point(0, 9.0)]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while hits("metrics.loss > 5") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a logged metric never reached search"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // And an edit after it carries it at once.
    ws.log_metric(id, "loss", &[point(1, 1.0)]).unwrap();
    ws.set_tags(id, &[("stage".into(), "b".into())]).unwrap();
    assert_eq!(hits("tag:stage=b and metrics.loss < 5"), 1);
}
