//! `cargo wire`: rewrites `ui/src/wire.gen.ts` from the Rust types; `cargo wire --check` only
//! says whether it is current.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<ExitCode> {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => bail!("unknown argument '{other}': expected nothing or --check"),
    };
    let path = cairn_wire::bindings_path();
    let fresh = cairn_wire::bindings();
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let current = committed.as_deref() == Some(fresh.as_str());
    let mut err = std::io::stderr();
    if check {
        if current {
            writeln!(err, "{} is current", cairn_wire::BINDINGS_PATH)?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(
            err,
            "{} differs from the Rust types: run `{}` and commit it",
            cairn_wire::BINDINGS_PATH,
            cairn_wire::REGENERATE
        )?;
        return Ok(ExitCode::FAILURE);
    }
    if current {
        writeln!(err, "{} is current", cairn_wire::BINDINGS_PATH)?;
    } else {
        std::fs::write(&path, fresh).with_context(|| format!("writing {}", path.display()))?;
        writeln!(err, "wrote {}", cairn_wire::BINDINGS_PATH)?;
    }
    Ok(ExitCode::SUCCESS)
}
