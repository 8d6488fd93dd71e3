//! `cairn start` and `cairn init`: open the default workspace (demo data on first start) and
//! show what is in it; create a workspace.

use std::path::Path;

use anyhow::Result;
use cairn_core::{DemoOptions, RunsQuery, Workspace};

use crate::args::{Cli, ServeArgs, SyncServeArgs};
use crate::cmd::{demo, runs, serve};
use crate::common::{open_or_create, user, workspace_dir};
use crate::output::{Table, print_json, thousands};

/// `cairn start [--serve]`: show the workspace, then serve it on 127.0.0.1:5000 when asked.
pub fn start(cli: &Cli, and_serve: bool) -> Result<()> {
    show(cli)?;
    if and_serve {
        let args = ServeArgs {
            port: 5000,
            host: [127, 0, 0, 1].into(),
            token: None,
            token_file: None,
            allow_hosts: Vec::new(),
            ui_dir: None,
            sync: SyncServeArgs::off(),
        };
        serve::serve(cli, &args)?;
    }
    Ok(())
}

/// `cairn init [DIR]`.
pub fn init(cli: &Cli, dir: Option<&Path>) -> Result<()> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => workspace_dir(cli)?,
    };
    let ws = Workspace::create(&dir, &user(cli))?;
    if cli.json {
        return print_json(&ws.workspace_info());
    }
    outln!("created workspace {}", dir.display());
    Ok(())
}

/// The README's first command: open the default workspace, with demo data on first start.
fn show(cli: &Cli) -> Result<()> {
    let (dir, ws, created) = open_or_create(cli)?;
    if created {
        errln!(
            "first start: creating a demo workspace in {}",
            dir.display()
        );
        demo::generate(&ws, &DemoOptions::default())?;
    }
    let exps = ws.experiments()?;
    if cli.json {
        return print_json(&exps);
    }
    let demo_note = if ws.workspace_info().demo {
        "  (demo data: remove the directory to start fresh)"
    } else {
        ""
    };
    outln!("workspace {}{demo_note}\n", dir.display());
    let mut t = Table::new(&["experiment", "runs"]).right_align(&[1]);
    for e in &exps {
        t.row(vec![e.experiment.name.clone(), thousands(e.runs)]);
    }
    if t.is_empty() {
        outln!("No experiments yet. Start a run with `cairn run start --exp NAME`.");
    } else {
        out!("{}", t.render());
    }
    outln!("\nlatest runs:");
    runs::print_runs(&ws.runs_page(&RunsQuery {
        limit: Some(10),
        ..Default::default()
    })?)?;
    outln!(
        "\nnext: `cairn runs show RUN` for a run's lineage, `cairn runs list --exp NAME` to browse"
    );
    Ok(())
}
