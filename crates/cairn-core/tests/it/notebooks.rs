//! Notebooks through the API: create, list, show, edit (the text as a difference from the
//! version read), export as Markdown and as one self-contained HTML page with the embeds drawn.

use cairn_core::Code;
use cairn_core::notebooks::{ExportFormat, NewNotebook, NotebookExport, NotebookUpdate};

use crate::{start, workspace};

#[test]
fn a_notebook_is_created_edited_and_exported_with_its_embeds_drawn() {
    let (_dir, ws) = workspace();
    let run = start(&ws, "lr-sweep", &[("lr", "0.01")]);
    ws.log_metric(
        run,
        "loss",
        &(0..20)
            .map(|i| cairn_core::MetricPoint {
                step: i,
                ts_ms: 1_700_000_000_000 + i,
                value: 1.0 / (i + 1) as f64,
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let id = run.to_string();
    let text = format!(
        "# Sweep <notes>\n\nBest so far: [[run:{}]] and [[run:ffff]].\n\n{{{{query params.lr = 0.01}}}}\n\n{{{{chart runs={id} metric=loss smooth=0.6}}}}\n",
        &id[..10]
    );
    let nb = ws
        .notebook_create(&NewNotebook {
            title: "LR <sweep>".into(),
            text: Some(text.clone()),
            tags: Some(vec!["lr".into()]),
            experiment: Some("lr-sweep".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(nb.meta.owners, ["alice"]);
    assert_eq!(nb.meta.created_by, "alice");
    assert!(nb.meta.experiment.is_some());
    let listed = ws.notebooks().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].title, "LR <sweep>");
    let prefix = &nb.meta.id.to_string()[..12];
    assert_eq!(ws.notebook(prefix).unwrap().text, text);

    // An edit from the version read keeps a change made since (here: by another call).
    let read = ws.notebook(prefix).unwrap();
    ws.notebook_edit(&NotebookUpdate {
        id: prefix.into(),
        text: Some(format!("{}\nA late line.\n", read.text)),
        ..Default::default()
    })
    .unwrap();
    let after = ws
        .notebook_edit(&NotebookUpdate {
            id: prefix.into(),
            text: Some(read.text.replace("Best so far", "Best so far (seed 1)")),
            base: Some(read.heads.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        after.text.contains("Best so far (seed 1)"),
        "{}",
        after.text
    );
    assert!(after.text.contains("A late line."), "{}", after.text);

    let md = ws
        .notebook_export(&NotebookExport {
            id: prefix.into(),
            format: ExportFormat::Md,
        })
        .unwrap();
    assert_eq!(md.content, after.text);
    assert_eq!(md.file_name, "LR-sweep.md");
    let html = ws
        .notebook_export(&NotebookExport {
            id: prefix.into(),
            format: ExportFormat::Html,
        })
        .unwrap()
        .content;
    // The run card, the query's table, the chart as inline SVG; the title and text escaped;
    // an unknown run said in place; nothing that fetches.
    assert!(html.contains(&format!("data-run=\"{id}\"")), "{html}");
    assert!(html.contains("lr=0.01"), "{html}");
    assert!(
        html.contains("<table class=\"nb-embed nb-query\">"),
        "{html}"
    );
    assert!(html.contains("1 of 1 runs"), "{html}");
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("LR &lt;sweep&gt;") && html.contains("Sweep &lt;notes&gt;"));
    assert!(html.contains("run ffff: "), "{html}");
    assert!(!html.contains("src=\"http") && !html.contains("<script") && !html.contains("<link"));
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn bad_notebook_input_is_refused_naming_it() {
    let (_dir, ws) = workspace();
    let err = ws
        .notebook_create(&NewNotebook {
            title: " ".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("title"), "{err}");
    let err = ws.notebook("0123abcd").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = ws.notebook("<x>").unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let nb = ws
        .notebook_create(&NewNotebook {
            title: "t".into(),
            ..Default::default()
        })
        .unwrap();
    let err = ws
        .notebook_edit(&NotebookUpdate {
            id: nb.meta.id.to_string(),
            text: Some("x".repeat(cairn_model::notebook::MAX_NOTEBOOK_BYTES + 1)),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = ws
        .notebook_edit(&NotebookUpdate {
            id: nb.meta.id.to_string(),
            text: Some("y".into()),
            base: Some(vec!["ab".repeat(32)]),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict, "{err}");
    assert_eq!(ws.notebook(&nb.meta.id.to_string()).unwrap().text, "");
}

#[test]
fn notebooks_are_searched_by_words_and_fields_and_a_bad_query_is_refused_naming_it() {
    use cairn_core::notebooks::NotebookSearch;
    let (_dir, ws) = workspace();
    let warm = ws
        .notebook_create(&NewNotebook {
            title: "Warmup study".into(),
            text: Some("A linear warmup of 500 steps helps.\n".into()),
            tags: Some(vec!["lr".into()]),
            ..Default::default()
        })
        .unwrap();
    ws.notebook_create(&NewNotebook {
        title: "Augmentation".into(),
        text: Some("RandAugment on CIFAR.\n".into()),
        ..Default::default()
    })
    .unwrap();
    let search = |q: &str| {
        ws.notebook_search(&NotebookSearch {
            q: q.into(),
            limit: None,
        })
    };
    let hits = search("warm steps").unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].meta.id, warm.meta.id);
    assert!(hits[0].snippet.contains("500 steps"), "{}", hits[0].snippet);
    assert_eq!(search("tag:lr").unwrap().len(), 1);
    assert_eq!(search("owner:alice").unwrap().len(), 2);
    assert_eq!(search("").unwrap().len(), 2);
    let err = search(&"x".repeat(2_000)).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("at most 1000 bytes"), "{err}");
}

#[test]
fn a_comparison_embed_sets_runs_side_by_side_with_the_params_that_differ() {
    let (_dir, ws) = workspace();
    let a = start(
        &ws,
        "cmp",
        &[("lr", "0.01"), ("batch", "64"), ("opt", "adam")],
    );
    let b = start(
        &ws,
        "cmp",
        &[("lr", "0.1"), ("batch", "64"), ("opt", "adam")],
    );
    for (run, v) in [(a, 0.25), (b, 0.5)] {
        ws.log_metric(
            run,
            "loss",
            &[cairn_core::MetricPoint {
                step: 0,
                ts_ms: 1_700_000_000_000,
                value: v,
            }],
        )
        .unwrap();
    }
    let text = format!("{{{{compare runs={},{}}}}}\n", &a.to_string()[..12], b);
    let html = ws.notebook_render(&text).unwrap().html;
    assert!(html.contains("2 runs compared"), "{html}");
    for run in [a, b] {
        assert!(html.contains(&format!("data-run=\"{run}\"")), "{html}");
    }
    // lr differs and is a row; batch and opt are the same and only counted.
    assert!(
        html.contains("<th>lr</th><td>0.01</td><td>0.1</td>"),
        "{html}"
    );
    assert!(!html.contains("<th>batch</th>"), "{html}");
    assert!(html.contains("2 params the same in every run"), "{html}");
    assert!(
        html.contains("<th>loss</th><td>0.25</td><td>0.5</td>"),
        "{html}"
    );
    // A run that is not here is said in place.
    let html = ws
        .notebook_render(&format!("{{{{compare runs={a},ffff}}}}\n"))
        .unwrap()
        .html;
    assert!(
        html.contains("nb-bad") && html.contains("run ffff"),
        "{html}"
    );
}
