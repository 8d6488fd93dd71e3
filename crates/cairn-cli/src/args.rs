//! The command line, declared: `Cli`, its `Command`s and every subcommand's arguments (clap).
//! The doc comments here are the `--help` texts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cairn", version, about = "Local-first ML experiment tracking", long_about = None)]
pub struct Cli {
    /// Workspace directory [default: CAIRN_WORKSPACE, else the user's data dir, e.g.
    /// ~/.local/share/cairn/default]
    #[arg(long, short = 'w', global = true)]
    pub workspace: Option<PathBuf>,
    /// Who you are, recorded as the owner of runs you start [default: CAIRN_USER, else your
    /// account's name]
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// The model registry: register a run's model, list, show, download, alias, delete
    #[command(subcommand)]
    Model(ModelCmd),
    /// The mandatory metadata schema runs must satisfy
    #[command(subcommand)]
    Schema(SchemaCmd),
    /// Evaluation outputs: benchmark metrics, metrics per slice, fairness figures
    #[command(subcommand)]
    Eval(EvalCmd),
    /// Fill the workspace with a realistic demo catalog
    Demo(DemoArgs),
    /// Catalog maintenance
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Serve the workspace over HTTP: the MLflow tracking API and Cairn's JSON API
    Serve(ServeArgs),
    /// Your team: create, invite, join, members, remove
    #[command(subcommand)]
    Team(TeamCmd),
    /// Peer sync with teammates: status, sync now
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Notebooks: the team's Markdown documents, with runs, models, queries and charts embedded
    #[command(subcommand)]
    Notebook(NotebookCmd),
    /// Free the artifact store: remove the blobs no run keeps (deleted artifacts, deleted
    /// runs' artifacts) that were stored longer than the grace period ago
    Gc(GcArgs),
    /// Search runs with the query language: MLflow filters plus OR, NOT, (), free text and
    /// "phrases", owner:/tag:/exp:/is: shorthands, lineage fields, ranges, `created > -7d`
    Search(SearchArgs),
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
    Compare(CompareArgs),
    /// Run a training command as a Cairn run: lineage before, system metrics and output while,
    /// exit status after; MLflow calls inside land in the run
    Exec(Box<ExecArgs>),
    /// What runs cost: spend by family (experiment, owner, GPU, tag, saved view), idle GPU
    /// waste, improvement per dollar, budgets; prices and budgets the team keeps. Exits with
    /// status 3 when a budget is crossed
    Cost(Box<CostArgs>),
    /// The audit trail: signed, hash-chained events per device — list them, walk a model
    /// version's trail, verify every chain (or a bundle), export a signed bundle
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Bring history in from other trackers
    #[command(subcommand)]
    Import(ImportCmd),
    /// Back up the whole workspace into one file, consistently, while it is being written
    /// (every database, every blob, the settings; a manifest with each member's BLAKE3)
    Backup(BackupArgs),
    /// Write the runs a query matches, and every point of their metrics, as two tables
    /// (`runs.parquet` and `metrics.parquet`, or `.csv`) for pandas, polars or DuckDB
    Export(ExportArgs),
    /// Restore a backup into the workspace directory (a new or empty one, or `--force`):
    /// every member is checked before anything is written, and the workspace appears whole
    /// or not at all
    Restore(RestoreArgs),
    /// Check every blob and metric chunk against its hash, that every doc loads, that the
    /// projections match the docs, the metric store and the audit chains. Exits 1 when
    /// anything is wrong
    Verify(VerifyArgs),
    /// Structured reviews of runs and experiments: objective, method, result, confidence,
    /// decision, next actions, from the team's template
    #[command(subcommand)]
    Review(ReviewCmd),
}

/// `cairn export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The file format: parquet or csv
    pub format: ExportFormat,
    /// Which runs, in `cairn search`'s query language [default: every live run]
    #[arg(long, short = 'q', default_value = "")]
    pub query: String,
    /// The directory the tables go to (created if missing; refused if it holds files)
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Write into a directory that already holds files, replacing its runs and metrics tables
    #[arg(long)]
    pub force: bool,
}

/// `cairn export`'s formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

/// `cairn backup`.
#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The backup file to write (refused if it exists)
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Also back up this device's key (and its peer ledger). Restoring it on another machine
    /// makes that machine this device: only for moving a device, never for copying one (two
    /// machines with one key are one device to the team, and their audit chains fork)
    #[arg(long)]
    pub include_key: bool,
}

/// `cairn restore`.
#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The backup file
    pub file: PathBuf,
    /// Replace the workspace that is there (stop `cairn serve` and the app first)
    #[arg(long)]
    pub force: bool,
    /// Only check the backup (every member against its BLAKE3); restore nothing
    #[arg(long)]
    pub check: bool,
}

/// `cairn verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Then rebuild the derived state (projections from the docs, the search index) and say
    /// what was rebuilt; the source of truth (docs, blobs, chunks, audit chains) is never
    /// touched
    #[arg(long)]
    pub repair: bool,
}

/// `cairn review …`.
#[derive(Debug, Subcommand)]
pub enum ReviewCmd {
    /// Write a review of runs (--run, repeatable) or an experiment (--exp), from flags and/or
    /// a file (JSON, or `field: value` lines); refused naming every field the team's template
    /// requires and it lacks
    New {
        /// A run it reviews (id or unique prefix; repeatable)
        #[arg(long = "run", value_name = "RUN")]
        runs: Vec<String>,
        /// The experiment it reviews (name or id)
        #[arg(long)]
        exp: Option<String>,
        /// The review as JSON (the API's fields) or `field: value` lines (objective, method,
        /// result, confidence, reason, decision, text, `action: OWNER: TEXT`, `extra.NAME:
        /// VALUE`); flags given override it
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long)]
        objective: Option<String>,
        #[arg(long)]
        method: Option<String>,
        /// The result, summarised
        #[arg(long)]
        result: Option<String>,
        /// low, medium, high, or a calibrated probability 0-1 (then --reason)
        #[arg(long)]
        confidence: Option<String>,
        /// Why the calibrated confidence is what it is
        #[arg(long)]
        reason: Option<String>,
        /// adopt, iterate or abandon
        #[arg(long)]
        decision: Option<String>,
        /// A next action, OWNER:TEXT (repeatable)
        #[arg(long = "action", value_name = "OWNER:TEXT")]
        actions: Vec<String>,
        /// Free text
        #[arg(long)]
        text: Option<String>,
        /// A template's extra field, NAME=VALUE (repeatable)
        #[arg(long = "field", value_name = "NAME=VALUE")]
        fields: Vec<String>,
    },
    /// Reviews, newest first
    List {
        /// Of this run
        #[arg(long)]
        run: Option<String>,
        /// Of this experiment (or its runs)
        #[arg(long)]
        exp: Option<String>,
        /// With a next action this member owns
        #[arg(long)]
        owner: Option<String>,
        /// adopt, iterate or abandon
        #[arg(long)]
        decision: Option<String>,
        /// Only those with an open next action (with --owner: one that member owns)
        #[arg(long)]
        open: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One review with its next actions' states
    Show { id: String },
    /// Close a next action (done, or dropped with --drop; --reopen opens it again)
    CloseAction {
        /// The review (id or unique prefix)
        id: String,
        /// The action's number, as `review show` lists it
        action: u32,
        #[arg(long, conflicts_with = "reopen")]
        drop: bool,
        #[arg(long)]
        reopen: bool,
        #[arg(long)]
        note: Option<String>,
    },
    /// The team's review template
    #[command(subcommand)]
    Template(ReviewTemplateCmd),
}

/// `cairn review template …`.
#[derive(Debug, Subcommand)]
pub enum ReviewTemplateCmd {
    /// The template in force (the default when the team set none)
    Show,
    /// Set the team's template from a JSON file ({"required": [...], "extra": [{"name", "kind",
    /// "options"}]}) and/or flags
    Set {
        #[arg(long)]
        file: Option<PathBuf>,
        /// A required field: objective, method, result, confidence, decision, actions, text,
        /// or an extra field's name (repeatable; replaces the file's list)
        #[arg(long = "require", value_name = "FIELD")]
        required: Vec<String>,
        /// An extra field: NAME:KIND where KIND is text, number, bool or
        /// choice=A|B|C (repeatable; added to the file's)
        #[arg(long = "extra", value_name = "NAME:KIND")]
        extra: Vec<String>,
    },
}

/// `cairn import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// A TensorBoard logdir: every directory holding event files becomes a run (scalars with
    /// step and wall time, hparams as params, status and final metrics, text as notes, the
    /// directory path as tags). Event files are checked whole before anything is stored; a
    /// second import adds only what the files gained
    Tensorboard {
        /// The logdir (what `tensorboard --logdir` is given)
        logdir: PathBuf,
        /// The experiment the runs go to [default: the logdir's name]
        #[arg(long)]
        exp: Option<String>,
    },
    /// An MLflow store (`sqlite:///path/mlflow.db`, `./mlruns`) or a running MLflow server
    /// (`http://host:5000`): experiments, runs (their MLflow ids kept), params, tags, every
    /// metric point, datasets, artifacts, registered models, versions and aliases. Everything
    /// but the points and artifacts is read and checked before anything is stored; a second
    /// import adds only what is new, and one that was stopped finishes
    Mlflow {
        /// The source: sqlite:///path/to/mlflow.db, an mlruns directory, or a server's URL
        /// (http://host:5000; credentials as http://user:password@host)
        source: String,
        /// Import only this experiment (repeat for more) [default: every experiment]
        #[arg(long = "experiment", value_name = "NAME")]
        experiments: Vec<String>,
    },
}

/// `cairn audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Events, newest first: who did what, to which record, when
    Log {
        /// A model (NAME) or one version (NAME@VERSION)
        #[arg(long)]
        model: Option<String>,
        /// A run (id or unique prefix)
        #[arg(long)]
        run: Option<String>,
        /// A person, as they sign
        #[arg(long)]
        member: Option<String>,
        /// Only events this recent (30d, 12h, …)
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Where a model version's data came from, who approved it on what evidence and why it was
    /// deployed: version → run → datasets, feature set, code, parents → evaluations → gate
    /// checks → approvals → promotions → deployments
    Trail {
        /// NAME@VERSION (a number) or NAME@ALIAS
        version: String,
    },
    /// Check every signature and chain held here (gaps, forks, forged or edited events,
    /// unknown signers, events signed after a removal, records no event attests); exits 1 on
    /// any finding. With --bundle: check an exported bundle, no workspace needed
    Verify {
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Write every chain as a signed bundle (jsonl, html: verifiable with `verify --bundle`;
    /// csv: a table for spreadsheets)
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Attest, signed by this device, the governed records written before this workspace kept
    /// an audit trail (once, after upgrading)
    Baseline,
}

/// `cairn demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Number of runs
    #[arg(long, default_value_t = 240)]
    pub runs: u64,
    /// Points per metric curve [default: by size]
    #[arg(long)]
    pub steps: Option<u32>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `cairn search`.
#[derive(Args)]
pub struct SearchArgs {
    #[arg(default_value = "")]
    pub query: String,
    /// Order: `metrics.acc DESC`, `params.lr`, `created`…
    #[arg(long)]
    pub sort: Option<String>,
    /// Only this experiment
    #[arg(long, short = 'e')]
    pub exp: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Extra columns: metrics.acc,params.optimizer,tags.team
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Print CSV instead of a table
    #[arg(long)]
    pub csv: bool,
    /// Start from a saved view (its query, order and columns; the query argument narrows it)
    #[arg(long)]
    pub view: Option<String>,
}

/// `cairn compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// Runs (ids or unique prefixes), at least two
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<String>,
    #[arg(long, short = 'o', default_value = "report.html")]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct PlotArgs {
    /// Runs (ids or unique prefixes)
    pub runs: Vec<String>,
    /// Or every run of an experiment (the newest --limit)
    #[arg(long, short = 'e')]
    pub exp: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    #[arg(long, short = 'm')]
    pub metric: String,
    /// x axis: step, time, relative, or another metric's key
    #[arg(long, default_value = "step")]
    pub x: String,
    /// EMA smoothing, 0 to 0.99 (the raw curve stays faint behind)
    #[arg(long, default_value_t = 0.0)]
    pub smooth: f64,
    /// Logarithmic y axis
    #[arg(long)]
    pub log: bool,
    /// Group runs by a field, e.g. params.optimizer (mean with a min-max band)
    #[arg(long)]
    pub group_by: Option<String>,
    /// Zoom into an x range, LO..HI, drawn at full resolution for that range
    #[arg(long, value_name = "LO..HI", value_parser = parse_x_range)]
    pub x_range: Option<(f64, f64)>,
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    #[arg(long, default_value_t = 675)]
    pub height: u32,
    #[arg(long)]
    pub dark: bool,
    /// Output file: .svg or .png
    #[arg(long, short = 'o', default_value = "chart.svg")]
    pub output: PathBuf,
}

pub fn parse_x_range(s: &str) -> Result<(f64, f64), String> {
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
pub struct ExecArgs {
    /// Experiment name (created when missing) [default: Default]
    #[arg(long, short = 'e')]
    pub exp: Option<String>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// A param, KEY=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A tag, KEY=VALUE (repeatable)
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// A dataset to hash into the lineage, NAME=PATH (repeatable; cached by size and mtime)
    #[arg(long = "dataset", short = 'd', value_name = "NAME=PATH")]
    pub datasets: Vec<String>,
    /// Do not record the git state of the working directory
    #[arg(long)]
    pub no_git: bool,
    #[arg(long)]
    pub instance_type: Option<String>,
    /// What the machine costs per hour, in USD
    #[arg(long)]
    pub hourly_price: Option<f64>,
    /// Seconds between system-metric samples
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// The command to run
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Port (0 picks a free one)
    #[arg(long, short = 'p', default_value_t = 5000)]
    pub port: u16,
    /// Address to listen on; anything but loopback requires a token (--token-file or CAIRN_TOKEN)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// A file whose first line is the bearer token clients must send (MLflow clients:
    /// MLFLOW_TRACKING_TOKEN); or set CAIRN_TOKEN
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a token on the command line is shown by `ps` to every local user
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Another host name clients may use to reach this server (e.g. the machine's DNS name)
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// A built web UI to serve at / instead of the one inside the binary (for working on the UI)
    #[arg(long, env = "CAIRN_UI_DIR")]
    pub ui_dir: Option<PathBuf>,
    #[command(flatten)]
    pub sync: SyncServeArgs,
}

#[derive(Subcommand)]
pub enum ExpCmd {
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
pub enum RunCmd {
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
pub struct StartArgs {
    /// Experiment name (created when missing) [default: Default]
    #[arg(long, short = 'e')]
    pub exp: Option<String>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Owner [default: --user]
    #[arg(long)]
    pub owner: Option<String>,
    /// A param, KEY=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A tag, KEY=VALUE (repeatable)
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// A dataset, NAME=PATH (hashed with BLAKE3 when PATH exists locally) or NAME=URI
    #[arg(long = "dataset", short = 'd', value_name = "NAME=PATH|URI")]
    pub datasets: Vec<String>,
    /// A dataset's digest when Cairn cannot hash it, NAME=DIGEST
    #[arg(long = "dataset-digest", value_name = "NAME=DIGEST")]
    pub dataset_digests: Vec<String>,
    /// A dataset's row count, NAME=ROWS
    #[arg(long = "dataset-rows", value_name = "NAME=ROWS")]
    pub dataset_rows: Vec<String>,
    /// Feature-set version, NAME@VERSION
    #[arg(long, value_name = "NAME@VERSION")]
    pub feature_set: Option<String>,
    /// Record the git state (repo, commit, branch, dirty flag, diff digest) of this directory
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub git: Option<PathBuf>,
    #[arg(long)]
    pub code_repo: Option<String>,
    #[arg(long)]
    pub code_commit: Option<String>,
    #[arg(long)]
    pub code_branch: Option<String>,
    #[arg(long)]
    pub code_dirty: bool,
    /// Do not record this machine's infrastructure profile
    #[arg(long)]
    pub no_infra: bool,
    #[arg(long)]
    pub instance_type: Option<String>,
    /// What the machine costs per hour, in USD
    #[arg(long)]
    pub hourly_price: Option<f64>,
    #[arg(long)]
    pub container_image: Option<String>,
    /// Parent run (id or unique prefix)
    #[arg(long)]
    pub parent: Option<String>,
    /// sweep, fork, resume or child
    #[arg(long, default_value = "child")]
    pub parent_kind: String,
    #[arg(long, default_value = "")]
    pub notes: String,
}

#[derive(Args)]
pub struct LogArgs {
    pub run: String,
    /// A metric value, KEY=VALUE (repeatable; NaN and inf accepted)
    #[arg(long = "metric", short = 'm', value_name = "KEY=VALUE")]
    pub metrics: Vec<String>,
    /// Step of the metrics given with --metric
    #[arg(long, default_value_t = 0)]
    pub step: i64,
    /// A param, KEY=VALUE (params cannot change once logged)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A tag, KEY=VALUE
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Import metric curves from a CSV file: a step column, an optional time column
    /// (unix_ms / timestamp), and one column per metric
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Import a GPU utilisation trace: `nvidia-smi --query-gpu=timestamp,index,
    /// utilization.gpu,utilization.memory,memory.used,power.draw --format=csv -lms N` output
    /// (idle GPU time and its cost are computed from it)
    #[arg(long, value_name = "FILE")]
    pub util_trace: Option<PathBuf>,
    /// Notes (replaces the run's notes)
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(Subcommand)]
pub enum RunsCmd {
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
    /// Every field change of a run: when, who, field, old → new (from the run's own history,
    /// the same on every peer)
    History { run: String },
}

#[derive(Subcommand)]
pub enum ArtifactCmd {
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
pub enum NotebookCmd {
    /// Create a notebook; its text from --file (or empty)
    New {
        title: String,
        /// Read the text from this file (`-`: standard input)
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        #[arg(long, short = 't')]
        tag: Vec<String>,
        /// The experiment it belongs to (name or id)
        #[arg(long, short = 'e')]
        exp: Option<String>,
    },
    /// Every notebook, most recently updated first; with --query, the ones whose title, tags,
    /// owners or text match, best first
    List {
        /// Words (each a prefix, all required), "phrases", title:, tag:, owner:
        #[arg(long, short = 'q')]
        query: Option<String>,
    },
    /// A notebook's description and text
    Show { id: String },
    /// Edit a notebook's text in $EDITOR (or set it from --file); only the difference is
    /// written, so a teammate's edits elsewhere in the notebook are kept
    Edit {
        id: String,
        /// Take the new text from this file instead of an editor (`-`: standard input)
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        add_tag: Vec<String>,
        #[arg(long)]
        remove_tag: Vec<String>,
    },
    /// Write a notebook to a file: Markdown, or one self-contained HTML page
    Export {
        id: String,
        #[arg(long, conflicts_with = "html")]
        md: bool,
        #[arg(long)]
        html: bool,
        /// The file [default: the title, with .md or .html]
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum SchemaCmd {
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
pub enum EvalCmd {
    /// Record an evaluation of a run, e.g. `cairn eval log RUN --benchmark credit-test
    /// --dataset data/test.csv -m acc=0.93 --slice sex=female -m acc=0.91 --slice sex=male
    /// -m acc=0.94` (it replaces any evaluation of that benchmark the run had)
    Log(EvalLogArgs),
    /// A run's evaluations: benchmark, dataset, metrics, slices, the widest fairness gap
    List {
        /// Run id or unique prefix
        run: String,
    },
    /// A run's evaluations in full: every slice's metrics and the fairness figures
    Show {
        /// Run id or unique prefix
        run: String,
        /// Only this benchmark
        benchmark: Option<String>,
    },
}

#[derive(Args)]
pub struct EvalLogArgs {
    /// Run id or unique prefix
    pub run: String,
    /// The benchmark's name: letters, digits, '_', '-', '/', '@' (it is `eval.NAME.METRIC`
    /// in a search)
    #[arg(long, short = 'b')]
    pub benchmark: String,
    /// The dataset snapshot it ran on: a file or directory (digested as a run's datasets are)
    /// or a digest
    #[arg(long, short = 'd', value_name = "DIGEST|PATH")]
    pub dataset: Option<String>,
    /// A metric: before any --slice an overall metric, after one that slice's
    #[arg(long = "metric", short = 'm', value_name = "NAME=VALUE")]
    pub metrics: Vec<String>,
    /// Starts a slice, ATTRIBUTE=VALUE (an intersection joined by '&': age=60+&sex=female);
    /// the -m that follow are its metrics
    #[arg(long = "slice", value_name = "ATTRIBUTE=VALUE")]
    pub slices: Vec<String>,
    /// Metrics by group from a file: fairlearn's `MetricFrame.by_group` written with
    /// `to_csv()` or `to_json()` (orient columns, table, split or records), or an MLflow table
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The sensitive attribute the file's groups belong to where the file does not name it
    /// (pandas' default JSON, orient split): one per index level, in order
    #[arg(long = "attribute", value_name = "NAME", value_delimiter = ',')]
    pub attributes: Vec<String>,
    /// A report: a local file (stored as the run's artifact eval/BENCHMARK/FILE) or an
    /// artifact path the run has
    #[arg(long = "report", value_name = "FILE|PATH")]
    pub reports: Vec<String>,
}

#[derive(Subcommand)]
pub enum TagCmd {
    /// `cairn tag add 'exp:resnet and metrics.acc > 0.9' candidate` (or KEY=VALUE)
    Add { query: String, tag: String },
}

#[derive(Subcommand)]
pub enum OwnerCmd {
    /// `cairn owner set 'attributes.user_id IS NULL' alice`
    Set { query: String, user: String },
}

#[derive(Subcommand)]
pub enum ViewCmd {
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
pub enum IndexCmd {
    /// Rebuild the search index from the catalog
    Rebuild,
}

#[derive(Subcommand)]
pub enum CatalogCmd {
    /// Recompute the projection tables from the automerge docs
    Rebuild,
    /// Compact every doc into a fresh snapshot
    Compact,
}

#[derive(Subcommand)]
pub enum TeamCmd {
    /// Start a team with this device as its first member
    Create {
        name: String,
        /// Your email, shown to teammates
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Print a one-time invitation ticket for a teammate's device
    Invite {
        /// Address to put in the ticket [default: where `cairn serve --sync` last listened]
        #[arg(long = "addr")]
        addrs: Vec<SocketAddr>,
        /// How long the ticket stays valid
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Join a team with a ticket, then sync with the inviter
    Join {
        ticket: String,
        /// Your email, shown to teammates
        #[arg(long, default_value = "")]
        email: String,
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// The devices on the team's roster
    Members,
    /// Remove a member (id prefix, name or email): refused from now on, sent nothing new
    Remove { member: String },
}

#[derive(Subcommand)]
pub enum SyncCmd {
    /// This device, its team, and each peer: last seen, last sync, whether changes are pending
    Status,
    /// Sync once with every teammate this device knows an address for
    Now {
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// Fetch a run's artifacts that are not here yet (sync sends blobs up to 8 MiB; larger
    /// ones are fetched on demand)
    Fetch {
        run: String,
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
}

/// `cairn serve --sync`: a headless always-on peer next to the HTTP server.
#[derive(Args, Debug, Clone)]
pub struct SyncServeArgs {
    /// Also run this device's sync node: accept teammates, push changes as they happen
    #[arg(long)]
    pub sync: bool,
    /// Where the sync node listens (0.0.0.0:PORT on a LAN)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sync_bind: SocketAddr,
    /// Address teammates dial [default: the bound address]
    #[arg(long)]
    pub advertise: Vec<SocketAddr>,
    /// Pull from every teammate this often even when nothing changed
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,
}

impl SyncServeArgs {
    /// No sync node (`cairn start --serve`).
    pub fn off() -> SyncServeArgs {
        SyncServeArgs {
            sync: false,
            sync_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: Vec::new(),
            resync: Duration::from_secs(30),
        }
    }
}

/// `cairn gc`.
#[derive(Args, Debug, Clone)]
pub struct GcArgs {
    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Keep blobs stored within this long even when nothing references them (a writer binds
    /// what it stored right after storing it)
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

#[derive(Subcommand)]
pub enum ModelCmd {
    /// Register a run's artifact path as a new version of a model (created when new): the
    /// version is pinned to the files' content hash and the path is locked in the run
    Register {
        name: String,
        /// The run (id or unique prefix)
        run: String,
        /// The artifact path inside the run
        #[arg(default_value = "model")]
        path: String,
        #[arg(long)]
        description: Option<String>,
        /// A version tag, KEY=VALUE (repeatable)
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Every registered model: versions, latest, aliases
    List,
    /// One model: its aliases (conflicts shown), versions and where each came from
    Show { name: String },
    /// A model's versions: number, content hash, run, who and when
    Versions {
        name: String,
        /// Deleted versions too, with their tombstones
        #[arg(long)]
        all: bool,
    },
    /// Write a version's files to disk, read by its content hash and verified
    Download {
        name: String,
        /// A number, or @ALIAS
        version: String,
        /// Where [default: NAME-vVERSION]
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Show an alias, point it at a version (through the model's gate, when it has one), or
    /// remove it
    Alias {
        name: String,
        alias: String,
        /// The version to point it at
        version: Option<String>,
        /// Remove the alias
        #[arg(long, conflicts_with = "version")]
        delete: bool,
        /// Why, recorded with the move (and the gate evaluation)
        #[arg(long)]
        rationale: Option<String>,
    },
    /// Delete a model, or one version: a tombstone recording who and why
    Delete {
        name: String,
        version: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Move an alias to a version through its gate: every check listed with value, threshold
    /// and verdict; refused unless all pass (the check is kept either way)
    Promote {
        name: String,
        /// A number, or @ALIAS
        version: String,
        /// The alias to move
        #[arg(long = "to", default_value = "champion")]
        alias: String,
        /// Why, recorded with the move and the gate evaluation
        #[arg(long)]
        rationale: Option<String>,
    },
    /// Check a version against the gate of an alias without moving it (the check is kept)
    Check {
        name: String,
        version: String,
        #[arg(long = "to", default_value = "champion")]
        alias: String,
    },
    /// Approve a version for an alias: signed with this device's key over the version's
    /// content hash, the gate policy and the figures it was judged on
    Approve {
        name: String,
        version: String,
        #[arg(long = "to", default_value = "champion")]
        alias: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// A version's approvals, each verified: who, whether it counts, and why not
    Approvals {
        name: String,
        version: String,
        #[arg(long = "to", default_value = "champion")]
        alias: String,
    },
    /// Promotion gates: set, show, and the history of every check
    #[command(subcommand)]
    Gate(GateCmd),
    /// Record a deployment: which version went to which target and why (Cairn records, it
    /// does not deploy). Without --target: list the model's deployments
    Deploy {
        /// NAME@ALIAS or NAME@VERSION (a number)
        version: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        rationale: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GateCmd {
    /// Set the gate of a model (or, without NAME, the project's default), for one alias or any;
    /// no thresholds at all lifts the gate there
    Set {
        /// The model; omit for the project's default
        name: Option<String>,
        /// Only for this alias [default: any alias without its own]
        #[arg(long)]
        alias: Option<String>,
        /// BENCH.METRIC>=VALUE (or <=: lower is better); VALUE as +N is a change against the
        /// alias's current holder, +N% a relative one (repeatable)
        #[arg(long = "metric", value_name = "SPEC")]
        metrics: Vec<String>,
        /// BENCH.METRIC.ATTRIBUTE.difference<=N or ….ratio>=N, e.g.
        /// val.acc.sex.difference<=0.03, val.selection_rate.sex.ratio>=0.8 (repeatable)
        #[arg(long = "fairness", value_name = "SPEC")]
        fairness: Vec<String>,
        /// An evaluation the run must have: BENCH, or BENCH=DATASET_DIGEST (repeatable)
        #[arg(long = "require", value_name = "BENCH[=DIGEST]")]
        require: Vec<String>,
        /// The run must comply with the project's schema
        #[arg(long)]
        compliant: bool,
        /// Signed approvals needed from members other than the author
        #[arg(long, default_value_t = 0)]
        approvals: u32,
        /// The version's run must have a review whose decision is adopt
        #[arg(long = "require-review")]
        review: bool,
    },
    /// The gate that guards an alias of a model, and where it was set
    Show {
        name: String,
        #[arg(long, default_value = "champion")]
        alias: String,
    },
    /// Every check of a model's gates, newest first: who, when, version, verdict, rationale
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// `cairn cost`: the report, or one of its subcommands.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CostArgs {
    #[command(subcommand)]
    pub cmd: Option<CostCmd>,
    #[command(flatten)]
    pub report: CostReportArgs,
}

/// The report's options.
#[derive(Args)]
pub struct CostReportArgs {
    /// Families: exp, owner, gpu, tag:KEY or view:NAME
    #[arg(long, default_value = "exp")]
    pub by: String,
    /// Only the runs this query matches
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    /// The metric improvement per dollar is measured on (e.g. val_loss)
    #[arg(long, short = 'm')]
    pub metric: Option<String>,
    /// max or min [default: from the metric's name: loss, error… are min]
    #[arg(long)]
    pub direction: Option<String>,
    /// Spend per day, week or month (UTC)
    #[arg(long, default_value = "week")]
    pub every: String,
    /// How many periods, up to now
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// Marginal improvement per dollar over the last N runs of each family
    #[arg(long, default_value_t = 10)]
    pub last: u32,
    /// A registered model whose @champion is the baseline
    #[arg(long)]
    pub champion: Option<String>,
    /// How many top idle wasters to list
    #[arg(long, default_value_t = 10)]
    pub top: u32,
    /// Print CSV (one row per family, a column per period) instead of tables
    #[arg(long)]
    pub csv: bool,
}

#[derive(Subcommand)]
pub enum CostCmd {
    /// One run's cost and idle GPU time
    Run {
        /// Run id or unique prefix
        run: String,
    },
    /// The team's price table
    #[command(subcommand)]
    Price(PriceCmd),
    /// Budgets per family
    #[command(subcommand)]
    Budget(BudgetCmd),
    /// Set the idle threshold: a GPU below this utilisation (percent) is idle [default 5]
    Threshold { pct: f64 },
}

#[derive(Subcommand)]
pub enum PriceCmd {
    /// Add a price: `cairn cost price set "NVIDIA H200" 3.50` (per GPU-hour), or
    /// `--per hour` for an instance type or host. Earlier runs keep the price they had
    Set {
        /// A GPU model as nvidia-smi names it, an instance type, or a host name
        target: String,
        /// US dollars per unit
        usd: f64,
        /// gpu-hour (a GPU model) or hour (a machine)
        #[arg(long, default_value = "gpu-hour")]
        per: String,
        /// From when: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), or always [default: always for
        /// a target's first price, now for a change]
        #[arg(long)]
        from: Option<String>,
    },
    /// List the prices
    List,
}

#[derive(Subcommand)]
pub enum BudgetCmd {
    /// Set a family's budget: `cairn cost budget set exp:resnet 5000 --period month`
    Set {
        /// exp:NAME, owner:NAME, gpu:MODEL, tag:KEY=VALUE or view:NAME
        family: String,
        /// US dollars per period
        usd: f64,
        /// day, week, month or total
        #[arg(long, default_value = "month")]
        period: String,
    },
    /// Lift a family's budget
    Rm { family: String },
    /// The budgets in effect and what is spent of them
    List,
}
