//! The run comparison report (`cairn compare RUN… -o report.html`): one self-contained HTML page
//! with the runs side by side — what differs in their params and lineage first, their summary
//! metrics, and charts rendered by this crate inline as SVG. No scripts, no external resources.

use std::collections::BTreeSet;

use cairn_model::Run;

use crate::axis::civil_from_days;
use crate::fields::natural_cmp;
use crate::theme::Theme;

/// What the report shows.
#[derive(Debug, Clone)]
pub struct CompareReport<'a> {
    pub title: String,
    /// The runs, in the order of the report's columns.
    pub runs: &'a [Run],
    /// Charts to embed: a caption and SVG text (from [`render_svg`](crate::render_svg)).
    pub charts: Vec<(String, String)>,
    pub theme: Theme,
    /// Offset of the times shown, as for charts.
    pub utc_offset_minutes: i32,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2024-05-01 12:00:00` for ms since the epoch shifted by the offset.
fn timestamp(ms: i64, offset_min: i32) -> String {
    let local = ms + i64::from(offset_min) * 60_000;
    let (days, rem) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let s = rem / 1000;
    format!(
        "{y}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A table row: a name and one value per run.
type Row = (String, Vec<Option<String>>);

fn differs(values: &[Option<String>]) -> bool {
    values.windows(2).any(|w| w[0] != w[1])
}

/// A table of rows, the differing ones first; identical ones folded away.
fn diff_table(out: &mut String, heading: &str, runs: &[Run], rows: Vec<Row>) {
    out.push_str(&format!("<h2>{}</h2>\n", esc(heading)));
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">none recorded</p>\n");
        return;
    }
    let (diff, same): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|(_, v)| differs(v));
    let head = |out: &mut String| {
        out.push_str("<table><thead><tr><th></th>");
        for r in runs {
            out.push_str(&format!("<th>{}</th>", esc(&r.name)));
        }
        out.push_str("</tr></thead><tbody>\n");
    };
    let body = |out: &mut String, rows: &[Row], class: &str| {
        for (name, values) in rows {
            out.push_str(&format!("<tr class=\"{class}\"><th>{}</th>", esc(name)));
            for v in values {
                match v {
                    Some(v) => {
                        out.push_str(&format!("<td>{}</td>", esc(v)));
                    }
                    None => out.push_str("<td class=\"muted\">—</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
    };
    if diff.is_empty() {
        out.push_str("<p class=\"muted\">identical in every run</p>\n");
    } else {
        head(out);
        body(out, &diff, "diff");
        out.push_str("</tbody></table>\n");
    }
    if !same.is_empty() {
        out.push_str(&format!(
            "<details><summary>{} identical</summary>\n",
            same.len()
        ));
        head(out);
        body(out, &same, "same");
        out.push_str("</tbody></table></details>\n");
    }
}

fn lineage_rows(runs: &[Run]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut add = |name: String, f: &dyn Fn(&Run) -> Option<String>| {
        let values: Vec<Option<String>> = runs.iter().map(f).collect();
        if values.iter().any(Option::is_some) {
            rows.push((name, values));
        }
    };
    let datasets: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.lineage.datasets.keys().cloned())
        .collect();
    for ds in &datasets {
        let get = |r: &Run| r.lineage.datasets.get(ds).cloned();
        add(format!("dataset {ds} uri"), &|r| get(r).and_then(|d| d.uri));
        add(format!("dataset {ds} digest"), &|r| {
            get(r).and_then(|d| d.digest)
        });
        add(format!("dataset {ds} rows"), &|r| {
            get(r).and_then(|d| d.rows).map(|v| v.to_string())
        });
    }
    add("feature set".into(), &|r| {
        r.lineage
            .feature_set
            .as_ref()
            .map(|f| format!("{}@{}", f.name, f.version))
    });
    let code = |r: &Run| r.lineage.code.clone();
    add("code repo".into(), &|r| code(r).and_then(|c| c.repo));
    add("code commit".into(), &|r| code(r).and_then(|c| c.commit));
    add("code branch".into(), &|r| code(r).and_then(|c| c.branch));
    add("code dirty".into(), &|r| {
        code(r).map(|c| c.dirty.to_string())
    });
    let infra = |r: &Run| r.lineage.infra.clone();
    add("host".into(), &|r| infra(r).and_then(|i| i.host));
    add("os".into(), &|r| infra(r).and_then(|i| i.os));
    add("cpu".into(), &|r| infra(r).and_then(|i| i.cpu_model));
    add("gpus".into(), &|r| {
        infra(r).filter(|i| !i.gpus.is_empty()).map(|i| {
            i.gpus
                .iter()
                .map(|g| format!("{}× {}", g.count, g.model))
                .collect::<Vec<_>>()
                .join(", ")
        })
    });
    add("container".into(), &|r| {
        infra(r).and_then(|i| i.container_image)
    });
    add("instance type".into(), &|r| {
        infra(r).and_then(|i| i.instance_type)
    });
    add("hourly price (USD)".into(), &|r| {
        infra(r)
            .and_then(|i| i.hourly_price_usd)
            .map(|p| p.to_string())
    });
    let evals: BTreeSet<(String, String)> = runs
        .iter()
        .flat_map(|r| {
            r.lineage
                .evaluations
                .iter()
                .flat_map(|(e, ev)| ev.metrics.keys().map(move |m| (e.clone(), m.clone())))
        })
        .collect();
    for (e, m) in &evals {
        add(format!("eval {e} {m}"), &|r| {
            r.lineage
                .evaluations
                .get(e)
                .and_then(|ev| ev.metrics.get(m))
                .map(|v| v.0.to_string())
        });
    }
    rows
}

/// The params (as `params.NAME`, in natural order) whose values are not the same in every run
/// (missing counts as a value): the axes worth drawing in a [`ParallelChart`](crate::ParallelChart)
/// of the runs, before the metric.
pub fn differing_params(runs: &[Run]) -> Vec<String> {
    let mut keys: Vec<String> = runs
        .iter()
        .flat_map(|r| r.params.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| {
            let values: Vec<Option<&String>> = runs.iter().map(|r| r.params.get(k)).collect();
            values.windows(2).any(|w| w[0] != w[1])
        })
        .collect();
    keys.sort_by(|a, b| natural_cmp(a, b));
    keys.into_iter().map(|k| format!("params.{k}")).collect()
}

/// The report as one HTML page.
pub fn compare_html(report: &CompareReport<'_>) -> String {
    let runs = report.runs;
    let (bg, fg, muted, line, diff) = match report.theme {
        Theme::Light => ("#ffffff", "#212529", "#5a626a", "#e6e8eb", "#fff4d6"),
        Theme::Dark => ("#181a1e", "#e2e4e7", "#a0a6ae", "#34383e", "#3a3320"),
    };
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:{bg};color:{fg};\
         margin:2rem auto;max-width:1280px;padding:0 1rem;line-height:1.4}}\
         h1{{font-size:1.5rem}}h2{{font-size:1.15rem;margin-top:2rem}}\
         table{{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}}\
         th,td{{border-bottom:1px solid {line};padding:.3rem .7rem;text-align:left;vertical-align:top}}\
         td{{font-variant-numeric:tabular-nums}}tbody th{{font-weight:600}}\
         tr.diff td{{background:{diff}}}.muted{{color:{muted}}}\
         summary{{cursor:pointer;color:{muted};margin:.5rem 0}}\
         figure{{margin:1.5rem 0}}figure svg{{max-width:100%;height:auto}}\
         figcaption{{color:{muted};font-size:.9rem}}</style></head><body>\n\
         <h1>{title}</h1>\n<p class=\"muted\">{n} runs compared. Rows where the runs differ are \
         highlighted and listed first.</p>\n",
        title = esc(&report.title),
        n = runs.len(),
    ));

    // Runs.
    out.push_str("<h2>Runs</h2><table><thead><tr><th>name</th><th>id</th><th>status</th><th>owner</th><th>started</th><th>duration</th></tr></thead><tbody>\n");
    for r in runs {
        let duration = r
            .end_ms
            .map(|e| crate::axis::format_duration(((e - r.start_ms) as f64 / 1000.0).round(), 1.0))
            .unwrap_or_else(|| "—".to_owned());
        out.push_str(&format!(
            "<tr><th>{}</th><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&r.name),
            esc(&r.id.to_string()),
            r.status.as_str(),
            esc(r.owner.as_deref().unwrap_or("—")),
            timestamp(r.start_ms, report.utc_offset_minutes),
            esc(&duration),
        ));
    }
    out.push_str("</tbody></table>\n");

    // Params.
    let mut keys: Vec<String> = runs
        .iter()
        .flat_map(|r| r.params.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    keys.sort_by(|a, b| natural_cmp(a, b));
    let params = keys
        .into_iter()
        .map(|k| {
            let values = runs.iter().map(|r| r.params.get(&k).cloned()).collect();
            (k, values)
        })
        .collect();
    diff_table(&mut out, "Params", runs, params);
    diff_table(&mut out, "Lineage", runs, lineage_rows(runs));

    // Summary metrics.
    let metric_keys: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    let metrics = metric_keys
        .into_iter()
        .map(|k| {
            let values = runs
                .iter()
                .map(|r| {
                    r.metrics.get(&k).map(|m| match (m.min, m.max) {
                        (Some(lo), Some(hi)) => {
                            format!("{} (min {lo}, max {hi}, step {})", m.last, m.step)
                        }
                        _ => format!("{} (step {})", m.last, m.step),
                    })
                })
                .collect();
            (k, values)
        })
        .collect();
    diff_table(&mut out, "Summary metrics (last value)", runs, metrics);

    if !report.charts.is_empty() {
        out.push_str("<h2>Charts</h2>\n");
        for (caption, svg) in &report.charts {
            // The SVG comes from this crate (its text is escaped by plotters); drop any XML
            // prologue so it embeds inline.
            let body = svg.trim_start();
            let body = match body.strip_prefix("<?xml") {
                Some(rest) => rest.split_once("?>").map(|(_, b)| b).unwrap_or(body),
                None => body,
            };
            out.push_str(&format!(
                "<figure>{body}<figcaption>{}</figcaption></figure>\n",
                esc(caption)
            ));
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{ExperimentId, RunId};

    #[test]
    fn differing_params_come_first_and_text_is_escaped() {
        let exp = ExperimentId::new();
        let mut a = Run::new(RunId::new(), exp, "a<b>", 1_714_564_800_000);
        let mut b = Run::new(RunId::new(), exp, "b", 1_714_564_800_000);
        for (r, lr) in [(&mut a, "0.1"), (&mut b, "0.01")] {
            r.params.insert("lr".into(), lr.into());
            r.params.insert("seed".into(), "1".into());
        }
        let (a2, b2) = (a.clone(), b.clone());
        let html = compare_html(&CompareReport {
            title: "sweep".into(),
            runs: &[a, b],
            charts: vec![("loss".into(), "<svg></svg>".into())],
            theme: Theme::Light,
            utc_offset_minutes: 0,
        });
        assert!(html.contains("a&lt;b&gt;"));
        assert!(html.contains("2024-05-01 12:00:00"));
        let lr = html
            .find("<tr class=\"diff\"><th>lr</th>")
            .expect("lr differs");
        let seed = html
            .find("<tr class=\"same\"><th>seed</th>")
            .expect("seed is the same");
        assert!(lr < seed);
        assert!(html.contains("<figure><svg></svg><figcaption>loss</figcaption></figure>"));
        assert_eq!(differing_params(&[a2, b2]), ["params.lr"]);
    }
}
