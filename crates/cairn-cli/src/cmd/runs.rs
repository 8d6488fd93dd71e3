//! `cairn runs list|show|metric|history`: list runs, show one run in full, print a metric's
//! history, print a run's field changes.

use std::collections::BTreeMap;

use anyhow::Result;
use cairn_core::{RunsPage, RunsQuery};

use crate::args::{Cli, RunsCmd};
use crate::common::open;
use crate::output::{Table, bytes, duration, metric, print_json, short_id, thousands, time};

/// Prints a page of runs; returns how many it printed.
pub fn print_runs(page: &RunsPage) -> Result<u64> {
    let rows = &page.runs;
    // The metric columns: those most runs of the page have, up to four.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        for k in r.metrics.keys() {
            *counts.entry(k.as_str()).or_default() += 1;
        }
    }
    let mut keys: Vec<(&str, usize)> = counts.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let keys: Vec<String> = keys
        .into_iter()
        .take(4)
        .map(|(k, _)| k.to_owned())
        .collect();
    let mut headers = vec![
        "id",
        "experiment",
        "name",
        "owner",
        "status",
        "started",
        "duration",
    ];
    headers.extend(keys.iter().map(String::as_str));
    let mut t = Table::new(&headers).right_align(&(6..headers.len()).collect::<Vec<_>>());
    for r in rows {
        let mut status = r.status.to_string();
        if r.incomplete {
            status.push_str(match r.compliance {
                cairn_model::ComplianceState::Refused => "*refused",
                _ => "*",
            });
        }
        let mut cells = vec![
            short_id(&r.id.to_string()).to_owned(),
            r.experiment_name.clone(),
            r.name.clone(),
            r.owner.clone().unwrap_or_else(|| "-".into()),
            status,
            time(r.start_ms),
            r.end_ms
                .map(|e| duration(e - r.start_ms))
                .unwrap_or_else(|| "-".into()),
        ];
        cells.extend(keys.iter().map(|k| {
            r.metrics
                .get(k)
                .map(|v| metric(v.0))
                .unwrap_or_else(|| "-".into())
        }));
        t.row(cells);
    }
    if t.is_empty() {
        outln!("no runs");
    } else {
        out!("{}", t.render());
        if rows.iter().any(|r| r.incomplete) {
            outln!(
                "* incomplete: lacks fields the schema requires (see `cairn runs show`); \
                 refused: ended so under a refusing schema, so it cannot be registered or promoted"
            );
        }
    }
    Ok(rows.len() as u64)
}

/// `cairn runs list|show|metric|history`.
pub fn runs(cli: &Cli, cmd: &RunsCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        RunsCmd::List {
            exp,
            status,
            owner,
            sort,
            limit,
            offset,
        } => {
            let page = ws.runs_page(&RunsQuery {
                experiment: exp.clone(),
                status: status.clone(),
                owner: owner.clone(),
                order: sort.clone(),
                limit: Some(*limit),
                offset: Some(*offset),
            })?;
            if cli.json {
                return print_json(&page.runs);
            }
            let shown = print_runs(&page)?;
            if page.total > shown {
                outln!(
                    "showing {}–{} of {} runs (--limit, --offset for more)",
                    offset + 1,
                    offset + shown,
                    thousands(page.total)
                );
            }
        }
        RunsCmd::Show { run } => {
            let id = ws.resolve_run(run)?;
            let view = ws.run(id)?;
            let models = ws.run_logged_models(&id.to_string())?;
            if cli.json {
                if models.is_empty() {
                    return print_json(&view);
                }
                let mut v = serde_json::to_value(&view)?;
                v["logged_models"] = serde_json::to_value(&models)?;
                return print_json(&v);
            }
            out!("{}", show_run(&view));
            out!("{}", show_models(&models));
        }
        RunsCmd::Metric { run, key } => {
            let id = ws.resolve_run(run)?;
            let points = ws.metric_history(id, key)?;
            if cli.json {
                return print_json(&points);
            }
            let mut t = Table::new(&["step", "time", "value"]).right_align(&[0, 2]);
            for p in points {
                t.row(vec![p.step.to_string(), time(p.ts_ms), metric(p.value)]);
            }
            out!("{}", t.render());
        }
        RunsCmd::History { run } => {
            let changes = ws.run_history(run)?;
            if cli.json {
                return print_json(&changes);
            }
            let mut t = Table::new(&["when", "who", "field", "old", "new"]);
            for c in changes {
                let shown = |v: Option<String>| clip(v.unwrap_or_else(|| "-".into()));
                let mut new = shown(c.new);
                if c.conflict {
                    new.push_str("  (conflict)");
                }
                t.row(vec![time(c.at_ms), c.member, c.field, shown(c.old), new]);
            }
            out!("{}", t.render());
        }
    }
    Ok(())
}

/// A value on one table line: the first line, at most 60 characters.
fn clip(text: String) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut out: String = first.chars().take(60).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `cairn runs show`'s logged models: those the run produced (at a step) or read.
fn show_models(models: &[cairn_core::RunModel]) -> String {
    let mut o = String::new();
    if models.is_empty() {
        return o;
    }
    line(&mut o, format!("\nlogged models ({})", models.len()));
    for m in models {
        let lm = &m.model;
        let role = match m.role.as_str() {
            "output" => format!("output at step {}", m.step),
            other => other.to_owned(),
        };
        let deleted = if lm.deleted.is_some() {
            "  DELETED"
        } else {
            ""
        };
        line(
            &mut o,
            format!("  {}  {}  {}  {role}{deleted}", lm.id, lm.name, lm.status),
        );
        if !lm.params.is_empty() {
            line(&mut o, format!("    params   {}", lm.params.len()));
        }
        for x in &lm.metrics {
            let on = x
                .dataset_name
                .as_ref()
                .map(|d| format!("  on {d}"))
                .unwrap_or_default();
            line(
                &mut o,
                format!(
                    "    metric   {} = {} (step {}){on}",
                    x.key,
                    metric(x.value),
                    x.step
                ),
            );
        }
        let size: u64 = lm.artifacts.values().map(|a| a.size).sum();
        if !lm.artifacts.is_empty() {
            line(
                &mut o,
                format!("    files    {}, {}", lm.artifacts.len(), bytes(size)),
            );
        }
    }
    o
}

/// `cairn runs show`: the run, its lineage, params, metrics, artifacts and conflicts.
fn show_run(v: &cairn_core::RunView) -> String {
    let mut o = String::new();
    let r = &v.run;
    line(&mut o, format!("run {}  {}", r.id, r.name));
    let field = |o: &mut String, k: &str, val: String| line(o, format!("  {k:<13} {val}"));
    field(&mut o, "experiment", v.experiment_name.clone());
    let ran = match r.end_ms {
        Some(e) => format!("  (ran {})", duration(e - r.start_ms)),
        None => String::new(),
    };
    field(&mut o, "status", format!("{}{ran}", r.status));
    field(&mut o, "started", time(r.start_ms));
    if let Some(e) = r.end_ms {
        field(&mut o, "ended", time(e));
    }
    field(
        &mut o,
        "owner",
        r.owner.clone().unwrap_or_else(|| "-".into()),
    );
    if let (Some(p), Some(k)) = (r.parent, r.parent_kind) {
        field(&mut o, "parent", format!("{p} ({})", k.as_str()));
    }
    if !r.tags.is_empty() {
        field(
            &mut o,
            "tags",
            r.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("  "),
        );
    }
    if !r.notes.is_empty() {
        field(&mut o, "notes", r.notes.clone());
    }
    field(&mut o, "compliance", r.compliance.explain());

    line(&mut o, String::new());
    line(&mut o, "lineage".to_string());
    let l = &r.lineage;
    if l.is_empty() {
        line(&mut o, "  (none recorded)".to_string());
    }
    for (name, d) in &l.datasets {
        let mut parts = vec![
            d.uri.clone().unwrap_or_else(|| "-".into()),
            d.digest.clone().unwrap_or_else(|| "no digest".into()),
        ];
        if let Some(rows) = d.rows {
            parts.push(format!("{} rows", thousands(rows)));
        }
        if let Some(s) = d.size_bytes {
            parts.push(bytes(s));
        }
        field(&mut o, &format!("dataset {name}"), parts.join("  "));
    }
    if let Some(f) = &l.feature_set {
        field(&mut o, "feature set", format!("{} {}", f.name, f.version));
    }
    if let Some(c) = &l.code {
        let mut parts = vec![];
        if let Some(repo) = &c.repo {
            parts.push(repo.clone());
        }
        parts.push(format!("commit {}", c.commit.as_deref().unwrap_or("-")));
        if let Some(b) = &c.branch {
            parts.push(format!("branch {b}"));
        }
        if c.dirty {
            parts.push(format!(
                "DIRTY (diff {})",
                c.diff_digest.as_deref().unwrap_or("not hashed")
            ));
        }
        field(&mut o, "code", parts.join("  "));
    }
    if let Some(i) = &l.infra {
        let mut parts = vec![];
        parts.extend(i.host.clone());
        parts.extend(i.os.clone());
        if let Some(cpu) = &i.cpu_model {
            parts.push(format!(
                "{cpu}{}",
                i.cpu_cores.map(|c| format!(" ×{c}")).unwrap_or_default()
            ));
        }
        if let Some(m) = i.memory_bytes {
            parts.push(format!("{} RAM", bytes(m)));
        }
        for g in &i.gpus {
            parts.push(format!(
                "{}× {}{}",
                g.count,
                g.model,
                g.driver
                    .as_ref()
                    .map(|d| format!(" (driver {d})"))
                    .unwrap_or_default()
            ));
        }
        parts.extend(i.container_image.clone());
        parts.extend(i.instance_type.clone());
        if let Some(p) = i.hourly_price_usd {
            parts.push(format!("${p:.2}/h"));
        }
        field(&mut o, "infra", parts.join(" · "));
    }
    for (name, e) in &l.evaluations {
        let ms = e
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", metric(v.0)))
            .collect::<Vec<_>>()
            .join("  ");
        let mut extra = String::new();
        if !e.slices.is_empty() {
            extra.push_str(&format!("  {} slices", e.slices.len()));
        }
        for r in &e.reports {
            extra.push_str(&format!("  report {r}"));
        }
        field(&mut o, &format!("eval {name}"), format!("{ms}{extra}"));
    }

    if !r.params.is_empty() {
        line(&mut o, format!("\nparams ({})", r.params.len()));
        let w = r
            .params
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, v) in &r.params {
            line(&mut o, format!("  {k:<w$}  {v}"));
        }
    }
    let metrics = if v.live_metrics.is_empty() {
        &r.metrics
    } else {
        &v.live_metrics
    };
    if !metrics.is_empty() {
        line(&mut o, format!("\nmetrics ({})", metrics.len()));
        let mut t = Table::new(&["  key", "last", "step", "min", "max", "points"])
            .right_align(&[1, 2, 3, 4, 5]);
        for (k, m) in metrics {
            t.row(vec![
                format!("  {k}"),
                metric(m.last),
                m.step.to_string(),
                m.min.map(metric).unwrap_or_else(|| "-".into()),
                m.max.map(metric).unwrap_or_else(|| "-".into()),
                thousands(m.count),
            ]);
        }
        o.push_str(&t.render());
    }
    if !r.artifacts.is_empty() {
        line(&mut o, format!("\nartifacts ({})", r.artifacts.len()));
        for (path, a) in &r.artifacts {
            let kind = match a.kind {
                cairn_model::ArtifactKind::File => "file",
                cairn_model::ArtifactKind::Dir => "dir",
            };
            line(
                &mut o,
                format!(
                    "  {path}  {kind}  {}  blake3:{}",
                    bytes(a.size),
                    &a.hash.to_hex()[..16]
                ),
            );
        }
    }
    if !r.conflicts.is_empty() {
        line(&mut o, String::new());
        line(
            &mut o,
            "conflicts (concurrent edits kept; the first value is shown above)".to_string(),
        );
        for c in &r.conflicts {
            line(
                &mut o,
                format!(
                    "  {}: {}",
                    c.field,
                    c.values
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            );
        }
    }
    o
}

/// Appends one line to `o`.
fn line(o: &mut String, text: String) {
    o.push_str(&text);
    o.push('\n');
}
