//! `cargo wire`: rewrites the generated UI files (`ui/src/wire.gen.ts`, `ui/src/api.gen.ts`) from
//! the Rust; `cargo wire --check` only says whether they are current.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<ExitCode> {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => bail!("unknown argument '{other}': expected nothing or --check"),
    };
    let mut err = std::io::stderr();
    let mut stale = false;
    for (rel, fresh) in cairn_wire::generated() {
        let path = cairn_wire::repo_root().join(rel);
        let committed = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if committed.as_deref() == Some(fresh.as_str()) {
            writeln!(err, "{rel} is current")?;
        } else if check {
            writeln!(
                err,
                "{rel} differs from the Rust: run `{}` and commit it",
                cairn_wire::REGENERATE
            )?;
            stale = true;
        } else {
            std::fs::write(&path, fresh).with_context(|| format!("writing {}", path.display()))?;
            writeln!(err, "wrote {rel}")?;
        }
    }
    Ok(if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
