//! `cairn schema show|set`: the metadata schema runs must satisfy.

use anyhow::Result;
use cairn_model::{Enforcement, FieldRequirement, RunSchema};

use crate::args::{Cli, SchemaCmd};
use crate::common::open;
use crate::output::print_json;

/// `cairn schema show|set`.
pub fn schema(cli: &Cli, cmd: &SchemaCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        SchemaCmd::Show { exp } => {
            let id = exp
                .as_deref()
                .map(|e| ws.experiment(e).map(|e| e.id))
                .transpose()?;
            let s = ws.schema(id)?;
            if cli.json {
                return print_json(&s);
            }
            let mode = match s.enforcement {
                Enforcement::Refuse => "refused",
                Enforcement::MarkIncomplete => "kept and marked incomplete",
            };
            outln!("runs lacking a required field are {mode}");
            for f in s.describe() {
                outln!("  {f}");
            }
        }
        SchemaCmd::Set {
            fields,
            refuse,
            exp,
        } => {
            let required: Vec<FieldRequirement> =
                fields.iter().map(|f| f.parse()).collect::<Result<_, _>>()?;
            let schema = RunSchema {
                required,
                enforcement: if *refuse {
                    Enforcement::Refuse
                } else {
                    Enforcement::MarkIncomplete
                },
            };
            let id = exp
                .as_deref()
                .map(|e| ws.experiment(e).map(|e| e.id))
                .transpose()?;
            ws.set_schema(id, schema)?;
            if !cli.json {
                outln!("schema set");
            }
        }
    }
    Ok(())
}
