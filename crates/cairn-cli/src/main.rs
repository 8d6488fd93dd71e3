//! `cairn`: the command-line front end of Cairn. Every command is a thin adapter over
//! `cairn_core::Workspace`; this binary only parses arguments, reads the environment and config,
//! and prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;
mod gc_cmd;
mod team_cmd;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::{
    DemoOptions, LineageRequest, MetricPoint as Point, NewRun, RunLog, RunsPage, RunsQuery,
    Workspace,
};
use cairn_model::{
    Enforcement, FeatureSetVersion, FieldRequirement, ParentKind, RunSchema, RunStatus,
};
use clap::{Args, Parser, Subcommand};

use output::{Table, bytes, duration, metric, short_id, thousands, time};

#[derive(Parser)]
#[command(name = "cairn", version, about = "Local-first ML experiment tracking", long_about = None)]
struct Cli {
    /// Workspace directory [default: CAIRN_WORKSPACE, else the user's data dir, e.g.
    /// ~/.local/share/cairn/default]
    #[arg(long, short = 'w', global = true)]
    workspace: Option<PathBuf>,
    /// Who you are, recorded as the owner of runs you start [default: CAIRN_USER, else your
    /// account's name]
    #[arg(long, global = true)]
    user: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open the default workspace (demo data on first start) and show what is in it
    Start {
        /// Then serve it (the web UI and the tracking API) on 127.0.0.1:5000
        #[arg(long)]
        serve: bool,
    },
    /// Create a workspace
    Init {
        /// Directory [default: --workspace or the default workspace]
        dir: Option<PathBuf>,
    },
    /// Experiments
    #[command(subcommand)]
    Exp(ExpCmd),
    /// Start, log to and end a run
    #[command(subcommand)]
    Run(Box<RunCmd>),
    /// List and inspect runs
    #[command(subcommand)]
    Runs(RunsCmd),
    /// Store and fetch a run's artifacts (content-addressed, verified)
    #[command(subcommand)]
    Artifact(ArtifactCmd),
    /// The mandatory metadata schema runs must satisfy
    #[command(subcommand)]
    Schema(SchemaCmd),
    /// Fill the workspace with a realistic demo catalog
    Demo {
        /// Number of runs
        #[arg(long, default_value_t = 240)]
        runs: u64,
        /// Points per metric curve [default: by size]
        #[arg(long)]
        steps: Option<u32>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Catalog maintenance
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Serve the workspace over HTTP: the MLflow tracking API and Cairn's JSON API
    Serve(ServeArgs),
    /// Your team: create, invite, join, members, remove
    #[command(subcommand)]
    Team(team_cmd::TeamCmd),
    /// Peer sync with teammates: status, sync now
    #[command(subcommand)]
    Sync(team_cmd::SyncCmd),
    /// Free the artifact store: remove the blobs no run keeps (deleted artifacts, deleted
    /// runs' artifacts) that were stored longer than the grace period ago
    Gc(gc_cmd::GcArgs),
    /// Search runs with the query language: MLflow filters plus OR, NOT, (), free text and
    /// "phrases", owner:/tag:/exp:/is: shorthands, lineage fields, ranges, `created > -7d`
    Search {
        #[arg(default_value = "")]
        query: String,
        /// Order: `metrics.acc DESC`, `params.lr`, `created`…
        #[arg(long)]
        sort: Option<String>,
        /// Only this experiment
        #[arg(long, short = 'e')]
        exp: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Extra columns: metrics.acc,params.optimizer,tags.team
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Print CSV instead of a table
        #[arg(long)]
        csv: bool,
        /// Start from a saved view (its query, order and columns; the query argument narrows it)
        #[arg(long)]
        view: Option<String>,
    },
    /// The search index
    #[command(subcommand)]
    Index(IndexCmd),
    /// Tag every run a query matches
    #[command(subcommand)]
    Tag(TagCmd),
    /// Set the owner of every run a query matches
    #[command(subcommand)]
    Owner(OwnerCmd),
    /// Saved views: a named query, order and columns, shared with the team
    #[command(subcommand)]
    View(ViewCmd),
    /// Plot a metric of runs to SVG or PNG (every spike kept, however long the series)
    Plot(Box<PlotArgs>),
    /// Write an HTML report comparing runs: params and lineage diffs, summary, charts
    Compare {
        /// Runs (ids or unique prefixes), at least two
        #[arg(required = true, num_args = 2..)]
        runs: Vec<String>,
        #[arg(long, short = 'o', default_value = "report.html")]
        output: PathBuf,
    },
    /// Run a training command as a Cairn run: lineage before, system metrics and output while,
    /// exit status after; MLflow calls inside land in the run
    Exec(Box<ExecArgs>),
}

#[derive(Args)]
struct PlotArgs {
    /// Runs (ids or unique prefixes)
    runs: Vec<String>,
    /// Or every run of an experiment (the newest --limit)
    #[arg(long, short = 'e')]
    exp: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u64,
    #[arg(long, short = 'm')]
    metric: String,
    /// x axis: step, time, relative, or another metric's key
    #[arg(long, default_value = "step")]
    x: String,
    /// EMA smoothing, 0 to 0.99 (the raw curve stays faint behind)
    #[arg(long, default_value_t = 0.0)]
    smooth: f64,
    /// Logarithmic y axis
    #[arg(long)]
    log: bool,
    /// Group runs by a field, e.g. params.optimizer (mean with a min-max band)
    #[arg(long)]
    group_by: Option<String>,
    /// Zoom into an x range, LO..HI, drawn at full resolution for that range
    #[arg(long, value_name = "LO..HI", value_parser = parse_x_range)]
    x_range: Option<(f64, f64)>,
    #[arg(long, default_value_t = 1200)]
    width: u32,
    #[arg(long, default_value_t = 675)]
    height: u32,
    #[arg(long)]
    dark: bool,
    /// Output file: .svg or .png
    #[arg(long, short = 'o', default_value = "chart.svg")]
    output: PathBuf,
}

fn parse_x_range(s: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a range: expected LO..HI, e.g. 1000..2000"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("'{v}' in '{s}' is not a number"))
    };
    Ok((num(lo)?, num(hi)?))
}

#[derive(Args)]
struct ExecArgs {
    /// Experiment name (created when missing) [default: Default]
    #[arg(long, short = 'e')]
    exp: Option<String>,
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// A param, KEY=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A tag, KEY=VALUE (repeatable)
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A dataset to hash into the lineage, NAME=PATH (repeatable; cached by size and mtime)
    #[arg(long = "dataset", short = 'd', value_name = "NAME=PATH")]
    datasets: Vec<String>,
    /// Do not record the git state of the working directory
    #[arg(long)]
    no_git: bool,
    #[arg(long)]
    instance_type: Option<String>,
    /// What the machine costs per hour, in USD
    #[arg(long)]
    hourly_price: Option<f64>,
    /// Seconds between system-metric samples
    #[arg(long, default_value_t = 5.0)]
    interval: f64,
    /// The command to run
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Port (0 picks a free one)
    #[arg(long, short = 'p', default_value_t = 5000)]
    port: u16,
    /// Address to listen on; anything but loopback requires a token (--token-file or CAIRN_TOKEN)
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// A file whose first line is the bearer token clients must send (MLflow clients:
    /// MLFLOW_TRACKING_TOKEN); or set CAIRN_TOKEN
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Refused: a token on the command line is shown by `ps` to every local user
    #[arg(long, hide = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Another host name clients may use to reach this server (e.g. the machine's DNS name)
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// The built web UI to serve at / [default: ui/dist of the source tree this binary was built in]
    #[arg(long, env = "CAIRN_UI_DIR")]
    ui_dir: Option<PathBuf>,
    #[command(flatten)]
    sync: team_cmd::SyncServeArgs,
}

/// `ui/dist` of the checkout the binary was built from (`target/<profile>/cairn` → `ui/dist`).
fn default_ui_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .map(|d| d.join("ui").join("dist"))
        .find(|d| d.join("index.html").is_file())
}

#[derive(Subcommand)]
enum ExpCmd {
    /// List experiments with their run counts
    List,
    /// Create an experiment
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunCmd {
    /// Start a run and print its id
    Start(Box<StartArgs>),
    /// Log metrics, params and tags to a run
    Log(LogArgs),
    /// End a run
    End {
        run: String,
        /// finished, failed or killed
        #[arg(long, default_value = "finished")]
        status: String,
    },
}

#[derive(Args)]
struct StartArgs {
    /// Experiment name (created when missing) [default: Default]
    #[arg(long, short = 'e')]
    exp: Option<String>,
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Owner [default: --user]
    #[arg(long)]
    owner: Option<String>,
    /// A param, KEY=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A tag, KEY=VALUE (repeatable)
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A dataset, NAME=PATH (hashed with BLAKE3 when PATH exists locally) or NAME=URI
    #[arg(long = "dataset", short = 'd', value_name = "NAME=PATH|URI")]
    datasets: Vec<String>,
    /// A dataset's digest when Cairn cannot hash it, NAME=DIGEST
    #[arg(long = "dataset-digest", value_name = "NAME=DIGEST")]
    dataset_digests: Vec<String>,
    /// A dataset's row count, NAME=ROWS
    #[arg(long = "dataset-rows", value_name = "NAME=ROWS")]
    dataset_rows: Vec<String>,
    /// Feature-set version, NAME@VERSION
    #[arg(long, value_name = "NAME@VERSION")]
    feature_set: Option<String>,
    /// Record the git state (repo, commit, branch, dirty flag, diff digest) of this directory
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    git: Option<PathBuf>,
    #[arg(long)]
    code_repo: Option<String>,
    #[arg(long)]
    code_commit: Option<String>,
    #[arg(long)]
    code_branch: Option<String>,
    #[arg(long)]
    code_dirty: bool,
    /// Do not record this machine's infrastructure profile
    #[arg(long)]
    no_infra: bool,
    #[arg(long)]
    instance_type: Option<String>,
    /// What the machine costs per hour, in USD
    #[arg(long)]
    hourly_price: Option<f64>,
    #[arg(long)]
    container_image: Option<String>,
    /// Parent run (id or unique prefix)
    #[arg(long)]
    parent: Option<String>,
    /// sweep, fork, resume or child
    #[arg(long, default_value = "child")]
    parent_kind: String,
    #[arg(long, default_value = "")]
    notes: String,
}

#[derive(Args)]
struct LogArgs {
    run: String,
    /// A metric value, KEY=VALUE (repeatable; NaN and inf accepted)
    #[arg(long = "metric", short = 'm', value_name = "KEY=VALUE")]
    metrics: Vec<String>,
    /// Step of the metrics given with --metric
    #[arg(long, default_value_t = 0)]
    step: i64,
    /// A param, KEY=VALUE (params cannot change once logged)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A tag, KEY=VALUE
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// Import metric curves from a CSV file: a step column, an optional time column
    /// (unix_ms / timestamp), and one column per metric
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Notes (replaces the run's notes)
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Subcommand)]
enum RunsCmd {
    /// List runs, newest first
    List {
        #[arg(long, short = 'e')]
        exp: Option<String>,
        /// running, finished, failed or killed
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// Order, as search orders: `metrics.acc DESC`, `metrics.loss`, `created ASC`
        #[arg(long)]
        sort: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Show one run: lineage, params, metrics, artifacts, conflicts
    Show { run: String },
    /// Print a metric's full history (step, time, value)
    Metric { run: String, key: String },
}

#[derive(Subcommand)]
enum ArtifactCmd {
    /// Store a file or directory as an artifact of a run
    Add {
        run: String,
        path: PathBuf,
        /// Logical path in the run [default: the file name]
        #[arg(long = "as")]
        logical: Option<String>,
    },
    /// Write a run's artifact to disk, verified against its hash
    Get {
        run: String,
        logical: String,
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Delete an artifact's content for good (a leaked secret): here at once, and on every
    /// teammate's device at its next sync, through a tombstone signed by this device
    Purge {
        run: String,
        path: String,
        /// Why, recorded in the tombstone teammates see
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum SchemaCmd {
    /// Show the schema in force (the project's, or an experiment's)
    Show {
        #[arg(long, short = 'e')]
        exp: Option<String>,
    },
    /// Set the required fields, e.g. `owner dataset.digest code.commit "params.lr: float"`
    Set {
        fields: Vec<String>,
        /// Refuse runs that lack a field (default: keep them, marked incomplete)
        #[arg(long)]
        refuse: bool,
        /// Set it for one experiment instead of the whole project
        #[arg(long, short = 'e')]
        exp: Option<String>,
    },
}

#[derive(Subcommand)]
enum TagCmd {
    /// `cairn tag add 'exp:resnet and metrics.acc > 0.9' candidate` (or KEY=VALUE)
    Add { query: String, tag: String },
}

#[derive(Subcommand)]
enum OwnerCmd {
    /// `cairn owner set 'attributes.user_id IS NULL' alice`
    Set { query: String, user: String },
}

#[derive(Subcommand)]
enum ViewCmd {
    /// Save a view (replacing one of the same name)
    Save {
        name: String,
        query: String,
        #[arg(long)]
        sort: Option<String>,
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
    },
    /// List the saved views
    List,
    /// Delete a saved view
    Rm { name: String },
}

#[derive(Subcommand)]
enum IndexCmd {
    /// Rebuild the search index from the catalog
    Rebuild,
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Recompute the projection tables from the automerge docs
    Rebuild,
    /// Compact every doc into a fresh snapshot
    Compact,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Errors reach the user as `error: …`; logs only when asked for (CAIRN_LOG=info).
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // `cairn runs list | head`: the reader went away; that is not an error.
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return;
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn user(cli: &Cli) -> String {
    cairn_settings::user(cli.user.as_deref(), &cairn_settings::ProcessEnv)
}

fn workspace_dir(cli: &Cli) -> Result<PathBuf> {
    Ok(cairn_settings::workspace(
        cli.workspace.as_deref(),
        &cairn_settings::ProcessEnv,
    )?)
}

fn open(cli: &Cli) -> Result<Workspace> {
    let dir = workspace_dir(cli)?;
    Ok(Workspace::open(&dir, &user(cli))?)
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn kv(arg: &str, what: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => bail!("malformed {what} '{arg}': expected KEY=VALUE"),
    }
}

fn parse_value(text: &str, key: &str) -> Result<f64> {
    match text.trim() {
        "nan" | "NaN" => Ok(f64::NAN),
        "inf" | "+inf" | "Infinity" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-Infinity" | "-infinity" => Ok(f64::NEG_INFINITY),
        t => t
            .parse::<f64>()
            .map_err(|_| anyhow!("metric '{key}': '{text}' is not a number")),
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Start { serve: and_serve } => {
            start(&cli)?;
            if *and_serve {
                let args = ServeArgs {
                    port: 5000,
                    host: [127, 0, 0, 1].into(),
                    token: None,
                    token_file: None,
                    allow_hosts: Vec::new(),
                    ui_dir: None,
                    sync: team_cmd::SyncServeArgs::off(),
                };
                serve(&cli, &args)?;
            }
            Ok(())
        }
        Command::Init { dir } => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => workspace_dir(&cli)?,
            };
            let ws = Workspace::create(&dir, &user(&cli))?;
            if cli.json {
                return print_json(&ws.workspace_info());
            }
            outln!("created workspace {}", dir.display());
            Ok(())
        }
        Command::Exp(cmd) => exp(&cli, cmd),
        Command::Run(cmd) => run_cmd(&cli, cmd),
        Command::Runs(cmd) => runs(&cli, cmd),
        Command::Artifact(cmd) => artifact(&cli, cmd),
        Command::Schema(cmd) => schema(&cli, cmd),
        Command::Demo { runs, steps, seed } => {
            let dir = workspace_dir(&cli)?;
            let (ws, _) = Workspace::open_or_create(&dir, &user(&cli))?;
            let report = demo(
                &ws,
                &DemoOptions {
                    runs: *runs,
                    steps: *steps,
                    seed: *seed,
                },
            )?;
            if cli.json {
                return print_json(&report);
            }
            outln!(
                "demo data: {} experiments, {} runs, {} metric points in {:.1}s → {}",
                report.experiments,
                thousands(report.runs),
                thousands(report.points),
                report.seconds,
                dir.display()
            );
            Ok(())
        }
        Command::Serve(args) => serve(&cli, args),
        Command::Gc(args) => gc_cmd::gc(&cli, args),
        Command::Team(cmd) => team_cmd::team(&cli, cmd),
        Command::Sync(cmd) => team_cmd::sync(&cli, cmd),
        Command::Exec(args) => exec(&cli, args),
        Command::Plot(args) => plot(&cli, args),
        Command::Tag(TagCmd::Add { query, tag }) => {
            let ws = open(&cli)?;
            let (k, v) = tag.split_once('=').unwrap_or((tag.as_str(), "true"));
            let n = ws.tag_matching(query, k, v)?;
            outln!("tagged {} runs with {k}={v}", thousands(n as u64));
            Ok(())
        }
        Command::Owner(OwnerCmd::Set { query, user }) => {
            let ws = open(&cli)?;
            let n = ws.set_owner_matching(query, user)?;
            outln!("{} runs now owned by {user}", thousands(n as u64));
            Ok(())
        }
        Command::View(cmd) => {
            let ws = open(&cli)?;
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
        Command::Index(IndexCmd::Rebuild) => {
            let ws = open(&cli)?;
            let n = ws.rebuild_index()?;
            outln!("indexed {} runs", thousands(n));
            Ok(())
        }
        Command::Search {
            query,
            sort,
            exp,
            limit,
            offset,
            columns,
            csv,
            view,
        } => {
            let ws = open(&cli)?;
            // A saved view's columns, when none are given; its query and order are combined
            // with these by the workspace.
            let cols = match view {
                Some(name) if columns.is_empty() => ws.view(name)?.columns,
                _ => columns.clone(),
            };
            let req = cairn_core::SearchRequest {
                q: Some(query.clone()),
                view: view.clone(),
                mine: None,
                order: sort.clone(),
                experiment: exp.clone(),
                limit: Some(*limit),
                offset: Some(*offset),
            };
            let page = ws.search(&req)?;
            if cli.json {
                return print_json(&page);
            }
            print_search(&page, &cols, *csv, *offset)
        }
        Command::Compare { runs, output } => {
            let ws = open(&cli)?;
            let ids: Vec<cairn_model::RunId> = runs
                .iter()
                .map(|r| ws.resolve_run(r))
                .collect::<Result<_, _>>()?;
            let html = ws.compare_report(&ids)?;
            std::fs::write(output, html)
                .with_context(|| format!("writing {}", output.display()))?;
            if !cli.json {
                outln!("wrote {} ({} runs)", output.display(), ids.len());
            }
            Ok(())
        }
        Command::Catalog(CatalogCmd::Rebuild) => {
            let ws = open(&cli)?;
            let n = ws.rebuild_projections()?;
            outln!("rebuilt projections of {} runs", thousands(n));
            Ok(())
        }
        Command::Catalog(CatalogCmd::Compact) => {
            let ws = open(&cli)?;
            let n = ws.compact()?;
            outln!("compacted {n} documents");
            Ok(())
        }
    }
}

fn plot(cli: &Cli, a: &PlotArgs) -> Result<()> {
    let ws = open(cli)?;
    let mut ids: Vec<cairn_model::RunId> = a
        .runs
        .iter()
        .map(|r| ws.resolve_run(r))
        .collect::<Result<_, _>>()?;
    if let Some(e) = &a.exp {
        let page = ws.runs_page(&RunsQuery {
            experiment: Some(e.clone()),
            limit: Some(a.limit),
            ..Default::default()
        })?;
        ids.extend(
            page.runs
                .into_iter()
                .filter(|r| r.metrics.contains_key(&a.metric))
                .map(|r| r.id),
        );
    }
    if ids.is_empty() {
        bail!(
            "nothing to plot: give runs, or --exp NAME with runs that logged '{}'",
            a.metric
        );
    }
    let format =
        cairn_core::ChartFormat::from_file_name(&a.output.to_string_lossy()).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {}: use .svg or .png",
                a.output.display()
            )
        })?;
    let spec = cairn_core::PlotSpec {
        runs: ids,
        metric: a.metric.clone(),
        x: a.x.clone(),
        smooth: a.smooth,
        log_y: a.log,
        group_by: a.group_by.clone(),
        x_range: a.x_range,
        width: a.width,
        height: a.height,
        dark: a.dark,
    };
    let out = ws.plot(&spec, format)?;
    std::fs::write(&a.output, &out.bytes)
        .with_context(|| format!("writing {}", a.output.display()))?;
    if cli.json {
        // What was drawn where: axis ranges and the series as drawn, for scripts and UIs.
        return print_json(
            &serde_json::json!({ "output": a.output, "runs": spec.runs.len(), "map": out.map }),
        );
    }
    outln!("wrote {} ({} runs)", a.output.display(), spec.runs.len());
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

/// An hourly price must be a real amount of money.
fn check_price(price: Option<f64>) -> Result<()> {
    if let Some(p) = price
        && (!p.is_finite() || p < 0.0)
    {
        bail!("invalid --hourly-price '{p}': expected a price in USD of 0 or more");
    }
    Ok(())
}

fn exec(cli: &Cli, a: &ExecArgs) -> Result<()> {
    if !a.interval.is_finite() || a.interval < 0.1 {
        bail!(
            "invalid --interval '{}': expected at least 0.1 seconds",
            a.interval
        );
    }
    check_price(a.hourly_price)?;
    let dir = workspace_dir(cli)?;
    let (ws, _) = Workspace::open_or_create(&dir, &user(cli))?;
    let mut opts = cairn_exec::ExecOptions {
        experiment: a.exp.clone(),
        name: a.name.clone(),
        params: BTreeMap::new(),
        tags: BTreeMap::new(),
        datasets: Vec::new(),
        git: !a.no_git,
        instance_type: a.instance_type.clone(),
        hourly_price_usd: a.hourly_price,
        interval: std::time::Duration::from_secs_f64(a.interval),
        cwd: std::env::current_dir().context("reading the current directory")?,
        command: a.command.clone(),
    };
    for p in &a.params {
        let (k, v) = kv(p, "param")?;
        opts.params.insert(k, v);
    }
    for t in &a.tags {
        let (k, v) = kv(t, "tag")?;
        opts.tags.insert(k, v);
    }
    for d in &a.datasets {
        let (k, v) = kv(d, "dataset")?;
        opts.datasets.push((k, PathBuf::from(v)));
    }
    let outcome = cairn_exec::exec(ws, &opts, |run, addr| {
        eprintln!(
            "cairn: run {} ({}) started; MLflow calls go to http://{addr}",
            run.id, run.name
        );
    })?;
    for w in &outcome.warnings {
        eprintln!("cairn: warning: {w}");
    }
    eprintln!(
        "cairn: run {} {} (exit {}), {} system samples, output kept as logs/output.log",
        outcome.run, outcome.status, outcome.exit_code, outcome.samples
    );
    if outcome.exit_code != 0 {
        std::process::exit(outcome.exit_code);
    }
    Ok(())
}

/// The bearer token: from `--token-file`, else `CAIRN_TOKEN`. Never from the command line, where
/// `ps` shows it to every user of the machine.
fn serve_token(args: &ServeArgs) -> Result<Option<String>> {
    if args.token.is_some() {
        bail!(
            "--token on the command line is visible to every local user (ps); put the token in \
             a file and pass --token-file FILE, or set CAIRN_TOKEN"
        );
    }
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        return Ok(Some(token));
    }
    Ok(std::env::var("CAIRN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty()))
}

fn serve(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let dir = workspace_dir(cli)?;
    let (ws, created) = Workspace::open_or_create(&dir, &user(cli))?;
    if created {
        eprintln!("created workspace {}", dir.display());
    }
    let config = cairn_server::ServerConfig {
        bind: std::net::SocketAddr::new(args.host, args.port),
        token: serve_token(args)?,
        allowed_hosts: args.allow_hosts.clone(),
        ui_dir: args.ui_dir.clone().or_else(default_ui_dir),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let sync_node = team_cmd::start_for_serve(&ws, &args.sync).await?;
        let server = cairn_server::Server::bind(ws, config).await?;
        let addr = server.local_addr()?;
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "Cairn is serving {} at http://{addr}", dir.display())?;
        writeln!(out, "  export MLFLOW_TRACKING_URI=http://{addr}")?;
        out.flush()?;
        drop(out);
        server
            .run(async {
                // Ctrl-C or SIGTERM: finish the requests in flight, then stop.
                let ctrl_c = tokio::signal::ctrl_c();
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .ok();
                    let term = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
                }
                #[cfg(not(unix))]
                {
                    let _ = ctrl_c.await;
                }
            })
            .await?;
        if let Some(node) = sync_node {
            node.shutdown().await;
        }
        anyhow::Ok(())
    })
}

fn demo(ws: &Workspace, opts: &DemoOptions) -> Result<cairn_core::DemoReport> {
    let tty = std::io::stderr().is_terminal();
    let mut last_pct = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct != last_pct && (tty || pct.is_multiple_of(10)) {
            last_pct = pct;
            if tty {
                eprint!(
                    "\rgenerating demo data: {}/{} runs ({pct}%)",
                    thousands(done),
                    thousands(total)
                );
            } else {
                eprintln!(
                    "generating demo data: {}/{} runs ({pct}%)",
                    thousands(done),
                    thousands(total)
                );
            }
        }
    };
    let report = ws.generate_demo(opts, &mut progress)?;
    if tty {
        eprintln!();
    }
    Ok(report)
}

/// The README's first command: open the default workspace, with demo data on first start.
fn start(cli: &Cli) -> Result<()> {
    let dir = workspace_dir(cli)?;
    let (ws, created) = Workspace::open_or_create(&dir, &user(cli))?;
    if created {
        eprintln!(
            "first start: creating a demo workspace in {}",
            dir.display()
        );
        demo(&ws, &DemoOptions::default())?;
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
    print_runs(&ws.runs_page(&RunsQuery {
        limit: Some(10),
        ..Default::default()
    })?)?;
    outln!(
        "\nnext: `cairn runs show RUN` for a run's lineage, `cairn runs list --exp NAME` to browse"
    );
    Ok(())
}

fn exp(cli: &Cli, cmd: &ExpCmd) -> Result<()> {
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

fn parse_status(s: &str) -> Result<RunStatus> {
    Ok(s.parse::<RunStatus>()?)
}

fn run_cmd(cli: &Cli, cmd: &RunCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        RunCmd::Start(a) => {
            let new = new_run(&ws, a)?;
            let run = ws.start_run(new)?;
            if cli.json {
                return print_json(&run);
            }
            outln!("{}", run.id);
            if !run.incomplete.is_empty() {
                eprintln!(
                    "note: run is marked incomplete: {}",
                    run.incomplete.join("; ")
                );
            }
        }
        RunCmd::Log(a) => {
            let id = ws.resolve_run(&a.run)?;
            let params: Vec<(String, String)> = a
                .params
                .iter()
                .map(|p| kv(p, "param"))
                .collect::<Result<_>>()?;
            let tags: Vec<(String, String)> =
                a.tags.iter().map(|t| kv(t, "tag")).collect::<Result<_>>()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut metrics: Vec<(String, Vec<Point>)> = Vec::new();
            for m in &a.metrics {
                let (k, v) = kv(m, "metric")?;
                let value = parse_value(&v, &k)?;
                metrics.push((
                    k,
                    vec![Point {
                        step: a.step,
                        ts_ms: now,
                        value,
                    }],
                ));
            }
            if let Some(path) = &a.csv {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let imported = cairn_core::csv_import::parse(&text, now)
                    .with_context(|| format!("importing {}", path.display()))?;
                metrics.extend(imported);
            }
            // The workspace checks everything before it writes anything: a refused call stores
            // nothing.
            let log = RunLog {
                params: params.clone(),
                tags: tags.clone(),
                notes: a.notes.clone(),
                series: metrics,
            };
            ws.log_run(id, &log)?;
            let metrics = log.series;
            let points: usize = metrics.iter().map(|(_, p)| p.len()).sum();
            if !cli.json {
                outln!(
                    "logged {} params, {} tags, {} metric points to {}",
                    params.len(),
                    tags.len(),
                    thousands(points as u64),
                    short_id(&id.to_string())
                );
            }
        }
        RunCmd::End { run, status } => {
            let id = ws.resolve_run(run)?;
            let status = parse_status(status)?;
            if !status.is_final() {
                bail!("a run ends as finished, failed or killed, not {status}");
            }
            let run = ws.set_status(id, status, None)?;
            if cli.json {
                return print_json(&run);
            }
            outln!("run {} {}", short_id(&id.to_string()), run.status);
            if !run.incomplete.is_empty() {
                eprintln!("note: run is incomplete: {}", run.incomplete.join("; "));
            }
        }
    }
    Ok(())
}

fn new_run(ws: &Workspace, a: &StartArgs) -> Result<NewRun> {
    let mut new = NewRun {
        name: a.name.clone(),
        owner: a.owner.clone(),
        notes: a.notes.clone(),
        ..Default::default()
    };
    new.experiment_name = a.exp.clone();
    for p in &a.params {
        let (k, v) = kv(p, "param")?;
        new.params.insert(k, v);
    }
    for t in &a.tags {
        let (k, v) = kv(t, "tag")?;
        new.tags.insert(k, v);
    }
    let mut req = LineageRequest {
        cwd: std::env::current_dir().context("the current directory")?,
        git: a.git.clone(),
        git_required: true,
        code_repo: a.code_repo.clone(),
        code_commit: a.code_commit.clone(),
        code_branch: a.code_branch.clone(),
        code_dirty: a.code_dirty,
        infra: !a.no_infra,
        instance_type: a.instance_type.clone(),
        hourly_price_usd: a.hourly_price,
        container_image: a.container_image.clone(),
        ..Default::default()
    };
    for d in &a.datasets {
        req.datasets.push(kv(d, "dataset")?);
    }
    for d in &a.dataset_digests {
        req.dataset_digests.push(kv(d, "dataset digest")?);
    }
    for d in &a.dataset_rows {
        let (name, rows) = kv(d, "dataset rows")?;
        let rows = rows
            .parse()
            .map_err(|_| anyhow!("dataset '{name}': rows '{rows}' is not a whole number"))?;
        req.dataset_rows.push((name, rows));
    }
    if let Some(fs) = &a.feature_set {
        let (name, version) = fs
            .split_once('@')
            .ok_or_else(|| anyhow!("malformed feature set '{fs}': expected NAME@VERSION"))?;
        req.feature_set = Some(FeatureSetVersion {
            name: name.into(),
            version: version.into(),
        });
    }
    new.lineage = ws.lineage_here(&req)?;
    if let Some(p) = &a.parent {
        let kind: ParentKind = a.parent_kind.parse()?;
        new.parent = Some((ws.resolve_run(p)?, kind));
    }
    Ok(new)
}

/// Prints a page of runs; returns how many it printed.
fn print_runs(page: &RunsPage) -> Result<u64> {
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
            status.push('*');
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
            outln!("* incomplete: lacks fields the schema requires (see `cairn runs show`)");
        }
    }
    Ok(rows.len() as u64)
}

fn runs(cli: &Cli, cmd: &RunsCmd) -> Result<()> {
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
            if cli.json {
                return print_json(&view);
            }
            out!("{}", show_run(&view));
        }
        RunsCmd::Metric { run, key } => {
            let id = ws.resolve_run(run)?;
            let points = ws.metric_history(id, key)?;
            if cli.json {
                let rows: Vec<serde_json::Value> = points
                    .iter()
                    .map(|p| serde_json::json!({"step": p.step, "ts_ms": p.ts_ms, "value": if p.value.is_finite() { serde_json::json!(p.value) } else if p.value.is_nan() { serde_json::json!("NaN") } else if p.value > 0.0 { serde_json::json!("Infinity") } else { serde_json::json!("-Infinity") }}))
                    .collect();
                return print_json(&rows);
            }
            let mut t = Table::new(&["step", "time", "value"]).right_align(&[0, 2]);
            for p in points {
                t.row(vec![p.step.to_string(), time(p.ts_ms), metric(p.value)]);
            }
            out!("{}", t.render());
        }
    }
    Ok(())
}

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
    if !r.incomplete.is_empty() {
        field(&mut o, "incomplete", r.incomplete.join("; "));
    }

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
            .map(|(k, v)| format!("{k}={}", metric(*v)))
            .collect::<Vec<_>>()
            .join("  ");
        let report = e
            .report
            .as_ref()
            .map(|r| format!("  report {r}"))
            .unwrap_or_default();
        field(&mut o, &format!("eval {name}"), format!("{ms}{report}"));
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

fn artifact(cli: &Cli, cmd: &ArtifactCmd) -> Result<()> {
    if let ArtifactCmd::Purge { run, path, reason } = cmd {
        return gc_cmd::purge(cli, run, path, reason);
    }
    let ws = open(cli)?;
    match cmd {
        ArtifactCmd::Add { run, path, logical } => {
            let id = ws.resolve_run(run)?;
            let (logical, r, skipped) = ws.add_artifact(id, path, logical.as_deref())?;
            for p in &skipped {
                eprintln!(
                    "warning: not stored (a symlink or special file): {}",
                    p.display()
                );
            }
            if cli.json {
                return print_json(&serde_json::json!({"path": logical, "artifact": r}));
            }
            outln!("{logical}  blake3:{}  {}", r.hash, bytes(r.size));
        }
        ArtifactCmd::Get {
            run,
            logical,
            output,
        } => {
            let id = ws.resolve_run(run)?;
            let dest = output
                .clone()
                .unwrap_or_else(|| PathBuf::from(logical.rsplit('/').next().unwrap_or(logical)));
            let n = ws.get_artifact(id, logical, &dest)?;
            if !cli.json {
                outln!("wrote {} ({}), verified", dest.display(), bytes(n));
            }
        }
        ArtifactCmd::Purge { .. } => {}
    }
    Ok(())
}

fn schema(cli: &Cli, cmd: &SchemaCmd) -> Result<()> {
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
