//! What every command shares: the workspace and the user (from `cairn-settings`), `KEY=VALUE`
//! arguments, run statuses, and the async runtime of the commands that talk to the network.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cairn_core::Workspace;
use cairn_model::RunStatus;

use crate::args::Cli;

/// Who runs the command: `--user`, else `CAIRN_USER`, else the account's name.
pub fn user(cli: &Cli) -> String {
    cairn_settings::user(cli.user.as_deref(), &cairn_settings::ProcessEnv)
}

/// The workspace directory: `--workspace`, else `CAIRN_WORKSPACE`, else the data dir's default.
pub fn workspace_dir(cli: &Cli) -> Result<PathBuf> {
    Ok(cairn_settings::workspace(
        cli.workspace.as_deref(),
        &cairn_settings::ProcessEnv,
    )?)
}

/// Opens the workspace, which must exist.
pub fn open(cli: &Cli) -> Result<Workspace> {
    let dir = workspace_dir(cli)?;
    Ok(Workspace::open(&dir, &user(cli))?)
}

/// Opens the workspace, creating it when missing: its directory, the workspace, and whether it
/// was created.
pub fn open_or_create(cli: &Cli) -> Result<(PathBuf, Workspace, bool)> {
    let dir = workspace_dir(cli)?;
    let (ws, created) = Workspace::open_or_create(&dir, &user(cli))?;
    Ok((dir, ws, created))
}

/// Splits a `KEY=VALUE` argument; `what` names it in the error.
pub fn kv(arg: &str, what: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => bail!("malformed {what} '{arg}': expected KEY=VALUE"),
    }
}

/// A run status as typed: `running`, `finished`, `failed` or `killed`.
pub fn parse_status(s: &str) -> Result<RunStatus> {
    Ok(s.parse::<RunStatus>()?)
}

/// The runtime of the commands that serve or sync; every other command is synchronous.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
