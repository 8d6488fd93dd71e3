//! `cairn exp list|create`: experiments.

use anyhow::Result;

use crate::args::{Cli, ExpCmd};
use crate::common::open;
use crate::output::{Table, print_json, short_id, thousands, time};

/// `cairn exp list|create`.
pub fn exp(cli: &Cli, cmd: &ExpCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        ExpCmd::List => {
            let exps = ws.experiments()?;
            if cli.json {
                return print_json(&exps);
            }
            let mut t = Table::new(&["id", "name", "runs", "created"]).right_align(&[2]);
            for e in exps {
                t.row(vec![
                    short_id(&e.experiment.id.to_string()).to_owned(),
                    e.experiment.name,
                    thousands(e.runs),
                    time(e.experiment.created_ms),
                ]);
            }
            out!("{}", t.render());
        }
        ExpCmd::Create { name, description } => {
            let e = ws.create_experiment(name, description.as_deref(), &[])?;
            if cli.json {
                return print_json(&e);
            }
            outln!("{}", e.id);
        }
    }
    Ok(())
}
