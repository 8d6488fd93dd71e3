//! `cairn catalog rebuild|compact`: catalog maintenance.

use anyhow::Result;

use crate::args::{CatalogCmd, Cli};
use crate::common::open;
use crate::output::thousands;

/// `cairn catalog rebuild|compact`.
pub fn catalog(cli: &Cli, cmd: &CatalogCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        CatalogCmd::Rebuild => {
            let n = ws.rebuild_projections()?;
            outln!("rebuilt projections of {} runs", thousands(n));
        }
        CatalogCmd::Compact => {
            let n = ws.compact()?;
            outln!("compacted {n} documents");
        }
    }
    Ok(())
}
