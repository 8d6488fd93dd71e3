//! `cargo bench -p cairn-core --bench notebook`: opening a 1 MB notebook with 100 embeds
//! (issue #17, target ≤ 500 ms): reading it from its doc, and rendering it to one HTML page
//! with every embed drawn — 40 run cards, 30 query tables (through the search index), 30 line
//! charts (SVG) — over a workspace of `NB_BENCH_RUNS` (default 200) runs with a 500-point loss
//! curve each. Also a one-line edit of that notebook (the text as a difference from the
//! version read). Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use cairn_core::notebooks::{ExportFormat, NewNotebook, NotebookExport, NotebookUpdate};
use cairn_core::{MetricPoint, NewRun, Workspace};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = env("NB_BENCH_RUNS", 200);
    let dir = tempfile::tempdir().expect("temporary directory");
    let ws = Workspace::create(&dir.path().join("ws"), "bench").expect("workspace");
    let mut ids = Vec::new();
    for i in 0..runs {
        let run = ws
            .start_run(NewRun {
                experiment_name: Some("sweep".into()),
                params: [("lr".to_owned(), format!("{}", 0.001 * (i % 10 + 1) as f64))]
                    .into_iter()
                    .collect(),
                ..Default::default()
            })
            .expect("run");
        let points: Vec<MetricPoint> = (0..500)
            .map(|s| MetricPoint {
                step: s,
                ts_ms: 1_700_000_000_000 + s,
                value: 1.0 / (s + 1 + i as i64) as f64,
            })
            .collect();
        ws.log_metric(run.id, "loss", &points).expect("log");
        ids.push(run.id.to_string());
    }
    // 100 embeds spread through ~1 MB of prose.
    let prose = "Observations on the sweep: the loss falls steadily and warmup helps. ".repeat(15);
    let mut text = String::from("# Sweep notebook\n\n");
    for k in 0..100 {
        let embed = match k % 10 {
            0..=3 => format!("Best: [[run:{}]]\n", &ids[k % ids.len()][..12]),
            4..=6 => format!(
                "{{{{query params.lr = {}}}}}\n",
                0.001 * (k % 10 + 1) as f64
            ),
            _ => format!(
                "{{{{chart runs={},{} metric=loss smooth=0.6}}}}\n",
                ids[k % ids.len()],
                ids[(k + 1) % ids.len()]
            ),
        };
        text.push_str(&embed);
        text.push('\n');
        while text.len() < (k + 1) * 10_400 {
            text.push_str(&prose);
            text.push_str("\n\n");
        }
    }
    let nb = ws
        .notebook_create(&NewNotebook {
            title: "Sweep".into(),
            text: Some(text.clone()),
            ..Default::default()
        })
        .expect("notebook");
    let id = nb.meta.id.to_string();
    println!(
        "notebook: {} bytes, 100 embeds (40 runs, 30 queries, 30 charts); {runs} runs of 500 points",
        text.len()
    );
    // A first render warms the search index and the caches, as a page open after start does.
    let export = NotebookExport {
        id: id.clone(),
        format: ExportFormat::Html,
    };
    ws.notebook_export(&export).expect("warm");
    let (mut read, mut render, mut edit) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for i in 0..7 {
        let t = Instant::now();
        let nb = ws.notebook(&id).expect("read");
        read.push(t.elapsed());
        let t = Instant::now();
        bytes = ws.notebook_export(&export).expect("render").content.len();
        render.push(t.elapsed());
        let t = Instant::now();
        ws.notebook_edit(&NotebookUpdate {
            id: id.clone(),
            text: Some(
                nb.text
                    .replacen("warmup helps", &format!("warmup helps ({i})"), 1),
            ),
            base: Some(nb.heads),
            ..Default::default()
        })
        .expect("edit");
        edit.push(t.elapsed());
    }
    println!("read (doc → text):              median {:?}", median(read));
    println!(
        "open (read + render all embeds): median {:?} → {bytes} bytes of HTML",
        median(render)
    );
    println!("edit (one line, as a diff):      median {:?}", median(edit));
}
