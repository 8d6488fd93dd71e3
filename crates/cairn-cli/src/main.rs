//! `cairn`: the command-line front end of Cairn. Every command is a thin adapter over
//! `cairn_core::Workspace`; this file only parses arguments, sets up logging, hands each command
//! to its module under `cmd/` and turns the outcome into an exit status.

#[macro_use]
mod output;
mod args;
mod cmd;
mod common;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Errors reach the user as `error: …`; logs only when asked for (CAIRN_LOG=info).
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // The matches too, not only the parsed arguments: `eval log` reads the order of its -m and
    // --slice arguments from them.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match dispatch(&cli, &matches) {
        Ok(code) => code,
        // `cairn runs list | head`: the reader went away; that is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            0
        }
        Err(e) => {
            errln!("error: {e:#}");
            1
        }
    };
    if code != 0 {
        std::process::exit(code);
    }
}

/// Runs the command; returns the process's exit status (`cairn exec` passes on its child's).
fn dispatch(cli: &Cli, matches: &clap::ArgMatches) -> Result<i32> {
    use cmd::*;
    match &cli.command {
        Command::Start { serve } => start::start(cli, *serve)?,
        Command::Init { dir } => start::init(cli, dir.as_deref())?,
        Command::Exp(c) => exp::exp(cli, c)?,
        Command::Run(c) => run::run(cli, c)?,
        Command::Runs(c) => runs::runs(cli, c)?,
        Command::Artifact(c) => artifact::artifact(cli, c)?,
        Command::Model(c) => model::model(cli, c)?,
        Command::Schema(c) => schema::schema(cli, c)?,
        Command::Eval(c) => eval::eval(cli, c, matches)?,
        Command::Demo(a) => demo::demo(cli, a)?,
        Command::Catalog(c) => catalog::catalog(cli, c)?,
        Command::Serve(a) => serve::serve(cli, a)?,
        Command::Team(c) => team::team(cli, c)?,
        Command::Sync(c) => sync::sync(cli, c)?,
        Command::Notebook(c) => notebook::notebook(cli, c)?,
        Command::Gc(a) => gc::gc(cli, a)?,
        Command::Import(c) => import::import(cli, c)?,
        Command::Backup(a) => backup::backup(cli, a)?,
        Command::Export(a) => export::export(cli, a)?,
        Command::Restore(a) => backup::restore(cli, a)?,
        Command::Verify(a) => return backup::verify(cli, a),
        Command::Search(a) => search::search(cli, a)?,
        Command::Index(c) => search::index(cli, c)?,
        Command::Tag(c) => search::tag(cli, c)?,
        Command::Owner(c) => search::owner(cli, c)?,
        Command::View(c) => search::view(cli, c)?,
        Command::Plot(a) => plot::plot(cli, a)?,
        Command::Compare(a) => plot::compare(cli, a)?,
        Command::Exec(a) => return exec::exec(cli, a),
        Command::Cost(a) => return cost::cost(cli, a),
        Command::Audit(c) => return audit::audit(cli, c),
        Command::Review(c) => review::review(cli, c)?,
    }
    Ok(0)
}
