//! `cairn search`, `index`, `tag`, `owner` and `view`: the query language over runs, its index,
//! bulk edits by query, and saved views.

use anyhow::Result;

use crate::args::{Cli, IndexCmd, OwnerCmd, SearchArgs, TagCmd, ViewCmd};
use crate::common::open;
use crate::output::{Table, metric, print_json, short_id, thousands, time};

/// `cairn search [QUERY]`.
pub fn search(cli: &Cli, a: &SearchArgs) -> Result<()> {
    let ws = open(cli)?;
    // A saved view's columns, when none are given; its query and order are combined
    // with these by the workspace.
    let cols = match &a.view {
        Some(name) if a.columns.is_empty() => ws.view(name)?.columns,
        _ => a.columns.clone(),
    };
    let req = cairn_core::SearchRequest {
        q: Some(a.query.clone()),
        view: a.view.clone(),
        mine: None,
        order: a.sort.clone(),
        experiment: a.exp.clone(),
        limit: Some(a.limit),
        offset: Some(a.offset),
    };
    let page = ws.search(&req)?;
    if cli.json {
        return print_json(&page);
    }
    print_search(&page, &cols, a.csv, a.offset)
}

/// `cairn index rebuild`.
pub fn index(cli: &Cli, cmd: &IndexCmd) -> Result<()> {
    let IndexCmd::Rebuild = cmd;
    let ws = open(cli)?;
    let n = ws.rebuild_index()?;
    outln!("indexed {} runs", thousands(n));
    Ok(())
}

/// `cairn tag add QUERY TAG`.
pub fn tag(cli: &Cli, cmd: &TagCmd) -> Result<()> {
    let TagCmd::Add { query, tag } = cmd;
    let ws = open(cli)?;
    let (k, v) = tag.split_once('=').unwrap_or((tag.as_str(), "true"));
    let n = ws.tag_matching(query, k, v)?;
    outln!("tagged {} runs with {k}={v}", thousands(n as u64));
    Ok(())
}

/// `cairn owner set QUERY USER`.
pub fn owner(cli: &Cli, cmd: &OwnerCmd) -> Result<()> {
    let OwnerCmd::Set { query, user } = cmd;
    let ws = open(cli)?;
    let n = ws.set_owner_matching(query, user)?;
    outln!("{} runs now owned by {user}", thousands(n as u64));
    Ok(())
}

/// `cairn view save|list|rm`.
pub fn view(cli: &Cli, cmd: &ViewCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        ViewCmd::Save {
            name,
            query,
            sort,
            columns,
        } => {
            ws.save_view(&cairn_core::SavedView {
                name: name.clone(),
                query: query.clone(),
                order: sort.clone(),
                columns: columns.clone(),
            })?;
            outln!("saved view '{name}'");
        }
        ViewCmd::List => {
            let views = ws.views()?;
            if cli.json {
                return print_json(&views);
            }
            let mut t = Table::new(&["view", "query", "sort", "columns"]);
            for v in views {
                t.row(vec![
                    v.name,
                    v.query,
                    v.order.unwrap_or_default(),
                    v.columns.join(","),
                ]);
            }
            out!("{}", t.render());
        }
        ViewCmd::Rm { name } => {
            ws.delete_view(name)?;
            outln!("deleted view '{name}'");
        }
    }
    Ok(())
}

/// A search result as a table (or CSV): the run, its experiment, owner, status, start, and the
/// chosen columns.
fn print_search(
    page: &cairn_core::SearchPage,
    columns: &[String],
    csv: bool,
    offset: u64,
) -> Result<()> {
    let cell = |r: &cairn_core::RunSummary, c: &str| -> String {
        match c.split_once('.') {
            Some(("metrics", k)) => r
                .metrics
                .get(k)
                .map(|v| metric(v.0))
                .unwrap_or_else(|| "-".into()),
            Some(("params", k)) => r.params.get(k).cloned().unwrap_or_else(|| "-".into()),
            Some(("tags", k)) => r.tags.get(k).cloned().unwrap_or_else(|| "-".into()),
            _ => "-".into(),
        }
    };
    let mut headers = vec!["id", "experiment", "name", "owner", "status", "started"];
    headers.extend(columns.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = page
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![
                if csv {
                    r.id.to_string()
                } else {
                    short_id(&r.id.to_string()).to_owned()
                },
                r.experiment_name.clone(),
                r.name.clone(),
                r.owner.clone().unwrap_or_else(|| "-".into()),
                r.status.to_string(),
                time(r.start_ms),
            ];
            row.extend(columns.iter().map(|c| cell(r, c)));
            row
        })
        .collect();
    if csv {
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        outln!("{}", headers.join(","));
        for row in rows {
            outln!(
                "{}",
                row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
            );
        }
        return Ok(());
    }
    let mut t = Table::new(&headers).right_align(&(6..headers.len()).collect::<Vec<_>>());
    let shown = rows.len() as u64;
    for row in rows {
        t.row(row);
    }
    if t.is_empty() {
        outln!("no runs match");
    } else {
        out!("{}", t.render());
        outln!(
            "{}–{} of {} runs",
            offset + 1,
            offset + shown,
            thousands(page.total)
        );
    }
    Ok(())
}
