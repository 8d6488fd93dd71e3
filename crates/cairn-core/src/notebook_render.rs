//! A notebook's embeds drawn from the workspace: a run as a card (name, status, a few params
//! and metrics), a model version as a card, a query as a table of its runs (through the search
//! index), a chart as the SVG cairn-charts draws, runs compared side by side (status, the params
//! that differ, the metrics). An embed that names nothing (a run not here,
//! a query that does not parse) says so in place; the rest of the notebook still renders.
//! [`page`] wraps the result in one self-contained HTML file: inline styles and SVG, and a
//! content security policy that forbids every fetch.

use std::collections::HashMap;

use cairn_model::notebook::Notebook;

use crate::notebook_markup::{Embed, EmbedRenderer, escape, escaped, parse, to_html};
use crate::views::SearchRequest;
use crate::{ChartRequest, Workspace};

/// Rows a query embed shows.
pub const QUERY_ROWS: u64 = 20;
/// Params and metrics a run card shows.
const CARD_FIELDS: usize = 4;
/// Params that differ, and metrics, a comparison shows (each).
const COMPARE_ROWS: usize = 40;

struct FromWorkspace<'a> {
    ws: &'a Workspace,
    /// The same embed twice is drawn once.
    drawn: HashMap<String, String>,
}

fn failed(what: &str, why: &str) -> String {
    let mut out = String::from("<span class=\"nb-embed nb-bad\">");
    escape(what, &mut out);
    out.push_str(": ");
    escape(why, &mut out);
    out.push_str("</span>");
    out
}

fn num(v: f64) -> String {
    if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

impl FromWorkspace<'_> {
    fn run(&self, prefix: &str) -> String {
        let view = match self.ws.run_by_prefix(prefix) {
            Ok(v) => v,
            Err(e) => return failed(&format!("run {prefix}"), &e.to_string()),
        };
        let run = &view.run;
        let mut out = format!(
            "<span class=\"nb-embed nb-run\" data-run=\"{id}\"><a href=\"#/run/{id}\">",
            id = run.id
        );
        escape(&run.name, &mut out);
        out.push_str("</a> <span class=\"nb-status\">");
        out.push_str(run.status.as_str());
        out.push_str("</span>");
        for (k, v) in run.params.iter().take(CARD_FIELDS) {
            out.push_str(" <span class=\"nb-param\">");
            escape(k, &mut out);
            out.push('=');
            escape(v, &mut out);
            out.push_str("</span>");
        }
        for (k, m) in view.live_metrics.iter().take(CARD_FIELDS) {
            out.push_str(" <span class=\"nb-metric\">");
            escape(k, &mut out);
            out.push(' ');
            out.push_str(&num(m.last));
            out.push_str("</span>");
        }
        out.push_str("</span>");
        out
    }

    fn model(&self, name: &str, version: u32) -> String {
        let v = match self
            .ws
            .read("notebook_model", |s| s.model_version(name, version))
        {
            Ok(v) => v,
            Err(e) => return failed(&format!("model {name}@{version}"), &e.to_string()),
        };
        let mut out = String::from("<span class=\"nb-embed nb-model\">");
        escape(&v.model, &mut out);
        out.push_str(&format!(" v{}", v.version));
        if let Some(run) = v.run {
            out.push_str(&format!(" from run <a href=\"#/run/{run}\">{run}</a>"));
        }
        out.push_str(" by ");
        escape(&v.user, &mut out);
        out.push_str("</span>");
        out
    }

    fn query(&self, q: &str) -> String {
        let page = match self.ws.search(&SearchRequest {
            q: Some(q.to_owned()),
            view: None,
            mine: None,
            order: None,
            experiment: None,
            limit: Some(QUERY_ROWS),
            offset: None,
        }) {
            Ok(p) => p,
            Err(e) => return failed(&format!("query {q}"), &e.to_string()),
        };
        let metrics: Vec<&String> = {
            let mut keys: Vec<&String> = page.runs.iter().flat_map(|r| r.metrics.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().take(CARD_FIELDS).collect()
        };
        let mut out = String::from("<table class=\"nb-embed nb-query\"><caption>");
        escape(q, &mut out);
        out.push_str(&format!(
            " — {} of {} runs</caption><thead><tr><th>run</th><th>experiment</th><th>status</th>",
            page.runs.len(),
            page.total
        ));
        for m in &metrics {
            out.push_str("<th>");
            escape(m, &mut out);
            out.push_str("</th>");
        }
        out.push_str("</tr></thead><tbody>");
        for r in &page.runs {
            out.push_str(&format!("<tr><td><a href=\"#/run/{}\">", r.id));
            escape(&r.name, &mut out);
            out.push_str("</a></td><td>");
            escape(&r.experiment_name, &mut out);
            out.push_str("</td><td>");
            out.push_str(r.status.as_str());
            out.push_str("</td>");
            for m in &metrics {
                out.push_str("<td>");
                if let Some(v) = r.metrics.get(*m) {
                    out.push_str(&num(v.0));
                }
                out.push_str("</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        out
    }

    fn chart(&self, runs: &[String], metric: &str, smooth: f64) -> String {
        let req = ChartRequest {
            runs: runs.to_vec(),
            metric: Some(metric.to_owned()),
            smooth,
            ..ChartRequest::default()
        };
        match self.ws.chart(&req) {
            Ok(view) => format!("<figure class=\"nb-embed nb-chart\">{}</figure>", view.svg),
            Err(e) => failed(&format!("chart of {metric}"), &e.to_string()),
        }
    }
}

impl FromWorkspace<'_> {
    /// Runs side by side: status, the params whose values differ (the rest counted) and every
    /// metric's last value (which way is better is not known here, so nothing is marked).
    fn compare(&self, prefixes: &[String]) -> String {
        let mut runs = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            match self.ws.run_by_prefix(p) {
                Ok(v) => runs.push(v),
                Err(e) => return failed(&format!("run {p}"), &e.to_string()),
            }
        }
        let mut out = format!(
            "<table class=\"nb-embed nb-compare\"><caption>{} runs compared</caption><thead><tr><th></th>",
            runs.len()
        );
        for v in &runs {
            out.push_str(&format!(
                "<th data-run=\"{id}\"><a href=\"#/run/{id}\">",
                id = v.run.id
            ));
            escape(&v.run.name, &mut out);
            out.push_str("</a></th>");
        }
        out.push_str("</tr></thead><tbody><tr><th>status</th>");
        for v in &runs {
            out.push_str("<td>");
            out.push_str(v.run.status.as_str());
            out.push_str("</td>");
        }
        out.push_str("</tr>");
        let mut keys: Vec<&String> = runs.iter().flat_map(|v| v.run.params.keys()).collect();
        keys.sort();
        keys.dedup();
        let (differ, same): (Vec<&String>, Vec<&String>) = keys.into_iter().partition(|k| {
            let first = runs[0].run.params.get(*k);
            runs.iter().any(|v| v.run.params.get(*k) != first)
        });
        for k in differ.iter().take(COMPARE_ROWS) {
            out.push_str("<tr class=\"nb-param\"><th>");
            escape(k, &mut out);
            out.push_str("</th>");
            for v in &runs {
                out.push_str("<td>");
                if let Some(val) = v.run.params.get(*k) {
                    escape(val, &mut out);
                }
                out.push_str("</td>");
            }
            out.push_str("</tr>");
        }
        let mut metrics: Vec<&String> = runs.iter().flat_map(|v| v.live_metrics.keys()).collect();
        metrics.sort();
        metrics.dedup();
        for k in metrics.iter().take(COMPARE_ROWS) {
            out.push_str("<tr class=\"nb-metric\"><th>");
            escape(k, &mut out);
            out.push_str("</th>");
            for v in &runs {
                out.push_str("<td>");
                if let Some(m) = v.live_metrics.get(*k) {
                    out.push_str(&num(m.last));
                }
                out.push_str("</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        if !same.is_empty() {
            out.push_str(&format!(
                "<p class=\"nb-embed nb-compare-same\">{} params the same in every run</p>",
                same.len()
            ));
        }
        out
    }
}

impl EmbedRenderer for FromWorkspace<'_> {
    fn render(&mut self, e: &Embed) -> String {
        let key = format!("{e:?}");
        if let Some(html) = self.drawn.get(&key) {
            return html.clone();
        }
        let html = match e {
            Embed::Run(id) => self.run(id),
            Embed::Model { name, version } => self.model(name, *version),
            Embed::Query(q) => self.query(q),
            Embed::Chart {
                runs,
                metric,
                smooth,
            } => self.chart(runs, metric, *smooth),
            Embed::Compare { runs } => self.compare(runs),
            Embed::Bad { raw, why } => failed(raw, why),
        };
        self.drawn.insert(key, html.clone());
        html
    }
}

/// The text as an HTML fragment with its embeds drawn.
pub(crate) fn fragment(ws: &Workspace, text: &str) -> String {
    let mut embeds = FromWorkspace {
        ws,
        drawn: HashMap::new(),
    };
    to_html(&parse(text), &mut embeds)
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#1d2430}\
pre{background:#f4f5f7;padding:.6em;overflow:auto}code{font-family:ui-monospace,monospace}\
blockquote{border-left:3px solid #ccd;margin:0;padding-left:1em;color:#555}\
.nb-embed{display:inline-block;border:1px solid #d5d9e0;border-radius:4px;padding:0 .4em;background:#fafbfc}\
.nb-bad{border-color:#e0a0a0;background:#fff5f5;color:#900}.nb-status{font-weight:600}\
.nb-param,.nb-metric{color:#555;font-size:90%}table.nb-query{border-collapse:collapse;display:table}\
table.nb-query td,table.nb-query th{border:1px solid #d5d9e0;padding:.2em .5em;text-align:left}\
figure.nb-chart{display:block;margin:1em 0}.nb-block{margin:1em 0}header p{color:#666}";

/// One self-contained HTML file of the notebook: nothing it holds fetches anything.
pub(crate) fn page(ws: &Workspace, nb: &Notebook) -> Result<String, crate::Error> {
    let body = fragment(ws, &nb.text);
    let m = &nb.meta;
    Ok(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>{title}</title><style>{STYLE}</style></head>\n<body><header><h1>{title}</h1>\
<p>by {owners} · updated by {by} · tags: {tags}</p></header>\n<article>\n{body}</article></body></html>\n",
        title = escaped(&m.title),
        owners = escaped(&m.owners.join(", ")),
        by = escaped(&m.updated_by),
        tags = escaped(&m.tags.join(", ")),
    ))
}
