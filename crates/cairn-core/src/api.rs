//! Cairn's own API, each operation declared once: its name, method and path under `/api/v1`,
//! request and response types, the error codes it answers, and the one line that calls the
//! [`Workspace`]. From this list come the HTTP routes (`cairn-server` mounts [`OPERATIONS`] and
//! answers them with [`call`]), the desktop's command (`src-tauri` passes its calls to [`call`]),
//! and, in `cairn-wire`, the UI's typed client (`ui/src/api.gen.ts`) and the OpenAPI document
//! (`ui/src/openapi.gen.json`), both checked for drift by tests.
//!
//! A request is one object: path parameters (`{id}`, and `{*key}` for the rest of the path) are
//! fields of it, beside the query string's (GET, DELETE) or the JSON body's (PUT, POST) fields.
//! Transports hand [`call`] whatever `serde` deserializer fits what they received.
//!
//! What is not here: transfers of unbounded size (a metric's every point, an artifact's bytes),
//! which HTTP streams on routes of its own, and MLflow's REST API, which has its own shapes.
//! Nor backup and restore (`cairn_core::backup`): a backup writes a file of the whole
//! workspace at a path on the serving machine and a restore replaces the workspace a server
//! holds open, so they are the CLI's, run by the machine's user, not operations a client of
//! the server (or a page that reached it) may ask for.

use serde::{Deserialize, Serialize};

use crate::audit::{
    AuditEventView, AuditLogRequest, AuditVerification, DeployRequest, Deployment, Trail,
};
use crate::charts::{ChartRequest, ChartView};
use crate::cost::{
    BudgetList, CostDashboard, CostReport, CostRequest, CostSettings, DashboardRequest, PriceList,
    RunCostRequest, RunCostView, SetBudget, SetPrice,
};
use crate::evaluations::{EvaluationLog, EvaluationView};
use crate::gate::{
    ApprovalsView, GateHistory, GateQuery, GateView, ModelRef, SetGate, VersionAction,
};
use crate::history::FieldChangeView;
use crate::logged_models::{LoggedModelView, RunModel};
use crate::notebooks::{
    ExportedNotebook, NewNotebook, NotebookExport, NotebookHitView, NotebookRef, NotebookSearch,
    NotebookText, NotebookUpdate, RenderedNotebook,
};
use crate::reviews::{
    NewReview, ReviewFilter, ReviewRef, ReviewView, SetActionState, TemplateView,
};
use crate::runs::{RunsPage, RunsQuery};
use crate::search::SavedView;
use crate::stores::{ExperimentSummary, RunView};
use crate::team::{
    Invitation, InviteRequest, JoinRequest, JoinState, MemberRef, MemberView, NewTeam, SyncStatus,
    TeamView,
};
use crate::views::{BucketView, Info, SearchPage, SearchRequest};
use crate::{Code, Error, Workspace};
use cairn_model::gate::{ApprovalView, GateEvaluation};
use cairn_model::notebook::{Notebook, NotebookMeta};

/// An HTTP method, as the routes use it. GET reads; PUT, POST and DELETE change data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// Whether the request carries its fields in a JSON body (else in the query string).
    pub fn has_body(self) -> bool {
        matches!(self, Method::Put | Method::Post)
    }
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The name the desktop command and the TypeScript client call it by.
    pub name: &'static str,
    pub method: Method,
    /// Under `/api/v1`, in axum's syntax: `{id}` is one segment, `{*key}` the rest of the path.
    pub path: &'static str,
    pub doc: &'static str,
    /// The codes it may answer besides `INTERNAL`, `IO` and `CORRUPT`.
    pub errors: &'static [Code],
}

/// A request with no fields.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A run, by id or unique id prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    pub id: String,
}

/// A logged model, by id (`m-` and 32 hex digits).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LoggedModelRef {
    pub id: String,
}

/// A metric of a run, downsampled for a chart: at most `buckets` buckets over the steps
/// `lo..=hi`, or all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct BucketsRequest {
    pub id: String,
    pub key: String,
    pub buckets: Option<usize>,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

/// A TensorBoard logdir to import (a path on the machine that holds the workspace), and the
/// experiment its runs go to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct TensorboardImport {
    pub logdir: String,
    pub experiment: Option<String>,
}

/// An MLflow store to import (`sqlite:///path/mlflow.db`, a path on the machine that holds the
/// workspace), and the experiments to take from it (all when absent or empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct MlflowImport {
    pub source: String,
    pub experiments: Option<Vec<String>>,
}

/// The most buckets one request may ask for.
pub const MAX_BUCKETS: usize = 100_000;

impl BucketsRequest {
    fn range(&self) -> Result<Option<(i64, i64)>, Error> {
        match (self.lo, self.hi) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(Some((lo, hi))),
            (Some(lo), Some(hi)) => Err(Error::Invalid(format!(
                "the step range {lo}..{hi} is empty: lo must not exceed hi"
            ))),
            (None, None) => Ok(None),
            _ => Err(Error::Invalid("give both lo and hi, or neither".into())),
        }
    }
}

/// A file among a run's artifacts, read as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct ArtifactPath {
    pub id: String,
    pub path: String,
    /// The end of the file rather than its start (an output log's last lines).
    pub tail: Option<bool>,
}

/// A text artifact (an output log), or as much of it as a page shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ArtifactText {
    /// At most [`MAX_ARTIFACT_TEXT`] bytes — the start, or the end when asked — as UTF-8
    /// (invalid sequences replaced).
    pub text: String,
    /// The file's whole size in bytes.
    pub size: u64,
    /// True when `text` is only part of the file.
    pub truncated: bool,
}

/// The most of an artifact [`ArtifactText`] carries.
pub const MAX_ARTIFACT_TEXT: usize = 4 << 20;

/// A saved view by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ViewName {
    pub name: String,
}

fn artifact_text(ws: &Workspace, r: &ArtifactPath) -> Result<ArtifactText, Error> {
    let id = ws.resolve_run(&r.id)?;
    let bytes = ws.read_artifact(id, &r.path)?;
    let size = bytes.len() as u64;
    let truncated = bytes.len() > MAX_ARTIFACT_TEXT;
    let shown = if r.tail.unwrap_or(false) {
        &bytes[bytes.len().saturating_sub(MAX_ARTIFACT_TEXT)..]
    } else {
        &bytes[..bytes.len().min(MAX_ARTIFACT_TEXT)]
    };
    Ok(ArtifactText {
        text: String::from_utf8_lossy(shown).into_owned(),
        size,
        truncated,
    })
}

/// Declares the operations: each entry is
/// `/// doc` `name: METHOD "path", Request => Response, [codes], |ws, request| body;`.
macro_rules! operations {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $method:ident $path:literal, $req:ty => $resp:ty, [$($code:ident),*],
        |$ws:ident, $r:pat_param| $body:expr;
    )*) => {
        /// Every operation, in the order declared.
        pub const OPERATIONS: &[Operation] = &[$(
            Operation {
                name: stringify!($name),
                method: Method::$method,
                path: $path,
                doc: concat!($($doc, "\n"),+),
                errors: &[$(Code::$code),*],
            },
        )*];

        /// Runs the operation `name` with the request `request` decodes to; answers its
        /// response as JSON. An unknown name is `NOT_FOUND`, a request that does not decode is
        /// `INVALID_ARGUMENT` naming the operation and what was wrong.
        pub fn call<'de, D>(ws: &Workspace, name: &str, request: D) -> Result<serde_json::Value, Error>
        where
            D: serde::Deserializer<'de>,
        {
            match name {
                $(stringify!($name) => {
                    let $r: $req = Deserialize::deserialize(request).map_err(|e| {
                        Error::BadRequest {
                            op: stringify!($name),
                            reason: e.to_string(),
                        }
                    })?;
                    let $ws = ws;
                    let out: $resp = $body?;
                    serde_json::to_value(&out).map_err(|e| Error::Invalid(format!(
                        "{} could not encode its answer: {e}",
                        stringify!($name)
                    )))
                })*
                other => Err(Error::UnknownOperation(other.to_owned())),
            }
        }

        /// The request and response types of each operation, for `cairn-wire`.
        #[cfg(feature = "ts")]
        pub mod types {
            #[allow(unused_imports)]
            use super::*;

            /// An operation's TypeScript signature.
            #[derive(Debug, Clone)]
            pub struct Signature {
                pub name: &'static str,
                pub request: String,
                pub response: String,
            }

            /// Visits every request and response type (and what they refer to).
            pub fn visit(v: &mut impl ts_rs::TypeVisitor) {
                $(
                    v.visit::<$req>();
                    v.visit::<$resp>();
                )*
            }

            /// Each operation's request (as the object schema whose properties are its fields)
            /// and response (a reference where the type is named) as JSON Schemas, for the
            /// OpenAPI document; named types land in `generator`'s definitions.
            pub fn schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema, schemars::Schema)> {
                vec![$(
                    (
                        stringify!($name),
                        <$req as schemars::JsonSchema>::json_schema(generator),
                        generator.subschema_for::<$resp>(),
                    ),
                )*]
            }

            /// Each operation's request and response as TypeScript type expressions.
            pub fn signatures(cfg: &ts_rs::Config) -> Vec<Signature> {
                vec![$(
                    Signature {
                        name: stringify!($name),
                        request: <$req as ts_rs::TS>::name(cfg),
                        response: <$resp as ts_rs::TS>::name(cfg),
                    },
                )*]
            }
        }
    };
}

operations! {
    /// Who and where: the workspace, its user, Cairn's version.
    info: Get "/info", Empty => crate::views::Info, [],
        |ws, _| Ok::<Info, Error>(ws.info());
    /// Every live experiment with its run count.
    experiments: Get "/experiments", Empty => Vec<ExperimentSummary>, [],
        |ws, _| ws.experiments();
    /// A page of the run listing: by experiment, status and owner, newest first or by a
    /// metric.
    runs: Get "/runs", RunsQuery => RunsPage, [InvalidArgument, NotFound],
        |ws, q| ws.runs_page(&q);
    /// A page of runs matching a query, narrowed by a saved view and to the user's own runs.
    search: Get "/search", SearchRequest => SearchPage, [InvalidArgument, NotFound],
        |ws, q| ws.search(&q);
    /// A run with its lineage, params, tags, metrics (live) and artifacts.
    run: Get "/runs/{id}", RunRef => RunView, [NotFound, InvalidArgument],
        |ws, r| ws.run_by_prefix(&r.id);
    /// The logged models a run produced (outputs, with their step) or took as input.
    run_models: Get "/runs/{id}/models", RunRef => Vec<RunModel>, [NotFound, InvalidArgument],
        |ws, r| ws.run_logged_models(&r.id);
    /// A run's history: every field a change set or removed, old → new, by whom (the roster's
    /// name for the device the change names) and when, oldest first. Metric summaries are left
    /// out (they follow the series).
    run_history: Get "/runs/{id}/history", RunRef => Vec<FieldChangeView>, [NotFound, InvalidArgument],
        |ws, r| ws.run_history(&r.id);
    /// Every notebook without its text, most recently updated first.
    notebooks: Get "/notebooks", Empty => Vec<NotebookMeta>, [],
        |ws, _| ws.notebooks();
    /// Creates a notebook (Markdown held as text that merges between devices); the user is
    /// its creator and, unless owners are given, its owner.
    notebook_create: Post "/notebooks", NewNotebook => Notebook, [InvalidArgument, AlreadyExists],
        |ws, r| ws.notebook_create(&r);
    /// The notebooks whose title, tags, owners or text match a query (words as prefixes,
    /// `"phrases"`, `title:`, `tag:`, `owner:`), best first, each with a snippet of its text.
    notebook_search: Get "/search/notebooks", NotebookSearch => Vec<NotebookHitView>,
        [InvalidArgument],
        |ws, r| ws.notebook_search(&r);
    /// A notebook with its text, by id or unique id prefix.
    notebook: Get "/notebooks/{id}", NotebookRef => Notebook, [NotFound, InvalidArgument],
        |ws, r| ws.notebook(&r.id);
    /// Changes a notebook: title, tags, owners, experiment, and the text — the whole new
    /// text, of which only the difference is written, so a teammate's edits elsewhere stay.
    notebook_edit: Put "/notebooks/{id}", NotebookUpdate => Notebook, [NotFound, InvalidArgument],
        |ws, r| ws.notebook_edit(&r);
    /// A notebook as a file: its Markdown, or one self-contained HTML page (embeds drawn,
    /// charts inline as SVG, nothing fetched).
    notebook_export: Get "/notebooks/{id}/export", NotebookExport => ExportedNotebook,
        [NotFound, InvalidArgument],
        |ws, r| ws.notebook_export(&r);
    /// Markdown rendered as a notebook page shows it, its embeds (runs, models, queries,
    /// charts) drawn from this workspace. Changes nothing.
    notebook_render: Post "/notebooks/render", NotebookText => RenderedNotebook, [InvalidArgument],
        |ws, r| ws.notebook_render(&r.text);
    /// A logged model (MLflow 3) with its params, metrics, tags and files; a deleted one with
    /// its tombstone.
    logged_model: Get "/logged-models/{id}", LoggedModelRef => LoggedModelView, [NotFound, InvalidArgument],
        |ws, r| ws.logged_model_view(&r.id);
    /// A metric of a run, downsampled into buckets (min, max, first, last per bucket).
    buckets: Get "/runs/{id}/buckets/{*key}", BucketsRequest => Vec<BucketView>,
        [NotFound, InvalidArgument],
        |ws, r| ws.metric_buckets(
            &r.id,
            &r.key,
            r.range()?,
            r.buckets.unwrap_or(1000).clamp(1, MAX_BUCKETS),
        );
    /// A text artifact, its start or its end (up to 4 MiB), for a page to show.
    artifact_text: Get "/runs/{id}/text/{*path}", ArtifactPath => ArtifactText,
        [NotFound, InvalidArgument],
        |ws, r| artifact_text(ws, &r);
    /// A chart drawn by cairn-charts: the SVG and the map of what it drew.
    chart: Get "/chart", ChartRequest => ChartView, [InvalidArgument, NotFound],
        |ws, r| ws.chart(&r);
    /// This device, its team and its peers: last seen, last sync, what is pending.
    sync: Get "/sync", Empty => SyncStatus, [],
        |ws, _| ws.sync_status();
    /// This device and its team (`null` before it has one), the sync node this process hosts
    /// (where teammates reach it), and where a join asked for here stands.
    team: Get "/team", Empty => TeamView, [],
        |ws, _| ws.team_view();
    /// Creates a team with this device as its first member (a signed `team.created` event) and
    /// starts the hosted sync node.
    team_create: Post "/team", NewTeam => TeamView, [InvalidArgument],
        |ws, r| ws.team_create_view(&r);
    /// Issues a one-time invitation (default a day, 60 s to 30 days): the ticket, when it
    /// expires, the addresses it carries, and the ticket as a QR code (SVG).
    team_invite: Post "/team/invitations", InviteRequest => Invitation, [InvalidArgument],
        |ws, r| ws.team_invitation(&r);
    /// Joins the team a ticket invites to, through the hosted sync node, in the background:
    /// answers at once (`joining`), and `team`'s `join` says how it ends (joined, or failed
    /// with the inviter's reason). A ticket that does not decode is refused naming why.
    team_join: Post "/team/join", JoinRequest => JoinState,
        [InvalidArgument, Conflict, Unavailable],
        |ws, r| ws.team_join(&r);
    /// The team's members (people, by email or name) and their devices, removed ones flagged.
    team_members: Get "/team/members", Empty => Vec<MemberView>, [],
        |ws, _| ws.team_member_views();
    /// Removes a device from the team (a signed `member.removed` event): from now on it is
    /// refused and sent nothing new. Answers the members after it.
    team_remove: Post "/team/members/remove", MemberRef => Vec<MemberView>,
        [InvalidArgument, Conflict],
        |ws, r| ws.team_remove_view(&r);
    /// The saved views (named queries), shared with the team.
    views: Get "/views", Empty => Vec<SavedView>, [],
        |ws, _| ws.views();
    /// Saves (or replaces) a view; its query and order must parse.
    save_view: Put "/views/{name}", SavedView => SavedView, [InvalidArgument],
        |ws, v| ws.save_view(&v).map(|()| v);
    /// Deletes a saved view.
    delete_view: Delete "/views/{name}", ViewName => Empty, [NotFound],
        |ws, v| ws.delete_view(&v.name).map(|()| Empty {});
    /// What each family of runs spent (in all, per period, against its budget), how much of
    /// it paid for idle GPUs, and how much improvement each dollar bought.
    cost: Get "/cost", CostRequest => CostReport, [InvalidArgument, NotFound],
        |ws, r| ws.cost_report(&r);
    /// The cost dashboard: the report, spend over time stacked by family, and a family's
    /// cost-vs-metric frontier, drawn by cairn-charts.
    cost_dashboard: Get "/cost/dashboard", DashboardRequest => CostDashboard,
        [InvalidArgument, NotFound],
        |ws, r| ws.cost_dashboard(&r);
    /// One run's cost, idle share and GPU utilisation chart with the idle stretches shaded.
    run_cost: Get "/runs/{id}/cost", RunCostRequest => RunCostView, [NotFound, InvalidArgument],
        |ws, r| ws.run_cost(&r);
    /// The team's price table (GPU models, instance types, hosts) and idle threshold.
    prices: Get "/cost/prices", Empty => PriceList, [],
        |ws, _| ws.prices();
    /// Adds a price from a date on (earlier runs keep the price they had).
    set_price: Post "/cost/prices", SetPrice => cairn_model::cost::PriceEntry, [InvalidArgument],
        |ws, r| ws.set_price(&r);
    /// The budget in effect for each family.
    budgets: Get "/cost/budgets", Empty => BudgetList, [],
        |ws, _| ws.budgets();
    /// Sets (or, without an amount, lifts) a family's budget.
    set_budget: Post "/cost/budgets", SetBudget => cairn_model::cost::BudgetEntry,
        [InvalidArgument, NotFound],
        |ws, r| ws.set_budget(&r);
    /// Sets the idle threshold (percent GPU utilisation below which a GPU counts as idle).
    set_cost_settings: Put "/cost/settings", CostSettings => CostSettings, [InvalidArgument],
        |ws, r| ws.set_cost_settings(&r);
    /// Every registered model: its versions (content hash, run, tombstones) and aliases (a
    /// conflict shows every target).
    registered_models: Get "/models", Empty => Vec<cairn_model::RegisteredModel>, [],
        |ws, _| ws.registered_models();
    /// One registered model by name.
    registered_model: Get "/models/{name}", ModelRef => cairn_model::RegisteredModel,
        [NotFound],
        |ws, r| ws.registered_model(&r.name);
    /// The gate that guards an alias of a model (default `champion`), and where it was set;
    /// `null` when moves are not gated.
    gate: Get "/models/{name}/gate", GateQuery => Option<GateView>, [InvalidArgument],
        |ws, r| ws.gate_for(&r.name, r.alias());
    /// Sets the gate of a model (or the project's default) for one alias or any; a policy
    /// with no thresholds lifts it there.
    set_gate: Put "/gates", SetGate => GateView, [NotFound, InvalidArgument],
        |ws, r| ws.set_gate(&r.scope(), r.policy);
    /// The newest kept checks of a model's gates, newest first (`limit`: default 100, at most
    /// 10,000).
    gate_evaluations: Get "/models/{name}/gate-evaluations", GateHistory => Vec<GateEvaluation>,
        [],
        |ws, r| ws.gate_evaluations(&r.name, r.limit());
    /// Checks a version against the gate of an alias without moving it (the check is kept).
    check_gate: Post "/models/{name}/versions/{version}/check", VersionAction => GateEvaluation,
        [NotFound, InvalidArgument],
        |ws, r| ws.check_gate(&r.name, r.number()?, r.alias());
    /// Moves an alias to a version through its gate; refused (`CONFLICT`, every failed check
    /// named) unless all pass.
    promote: Post "/models/{name}/versions/{version}/promote", VersionAction => GateEvaluation,
        [NotFound, InvalidArgument, Conflict],
        |ws, r| ws.promote(&r.name, r.number()?, r.alias(), r.rationale.as_deref());
    /// Signs this device's approval of a version for an alias.
    approve: Post "/models/{name}/versions/{version}/approve", VersionAction => ApprovalView,
        [NotFound, InvalidArgument],
        |ws, r| ws.approve(&r.name, r.number()?, r.alias(), r.comment.as_deref().unwrap_or(""));
    /// A version's approvals, each verified: whether it counts, and why not.
    approvals: Get "/models/{name}/versions/{version}/approvals", VersionAction => ApprovalsView,
        [NotFound, InvalidArgument],
        |ws, r| ws.approvals(&r.name, r.number()?, r.alias());
    /// A run's evaluations (benchmark, dataset, overall and per-slice metrics, reports) with
    /// their fairness figures (difference and ratio per metric and sensitive attribute).
    evaluations: Get "/runs/{id}/evaluations", RunRef => Vec<EvaluationView>,
        [NotFound, InvalidArgument],
        |ws, r| ws.evaluations_by_prefix(&r.id);
    /// Records an evaluation of a run on a benchmark, replacing any of that benchmark.
    log_evaluation: Post "/runs/{id}/evaluations", EvaluationLog => EvaluationView,
        [NotFound, InvalidArgument, Conflict],
        |ws, r| ws.log_evaluation_request(r);
    /// A run's traces (its `mlflow.sourceRun` and those linked to it), newest first, narrowed
    /// by text found in a trace's id, name, previews or spans.
    run_traces: Get "/runs/{id}/traces", crate::traces::RunTracesRequest => crate::traces::TracesPage,
        [NotFound, InvalidArgument],
        |ws, r| ws.run_traces(&r);
    /// A trace with its span tree: each span's place, timing, status, inputs, outputs and
    /// attributes, and the trace's assessments.
    trace: Get "/traces/{id}", crate::traces::TraceRef => crate::traces::TraceView,
        [NotFound, InvalidArgument],
        |ws, r| ws.trace_view(&r.id);
    /// Audit events, newest first, about a model (`NAME` or `NAME@VERSION`), a run, a member,
    /// since a time (`limit`: default 100, at most 10,000).
    audit_events: Get "/audit/events", AuditLogRequest => Vec<AuditEventView>,
        [NotFound, InvalidArgument],
        |ws, r| ws.audit_log(&r);
    /// Checks every chain held here and every governed record against the events: the
    /// verification badge.
    audit_verify: Get "/audit/verify", Empty => AuditVerification, [],
        |ws, _| ws.audit_verify();
    /// A version's trail: its run and lineage (datasets, feature set, code, parents),
    /// evaluations, gate checks, approvals, alias moves and deployments, each with who, when
    /// and why, and whether every event on it verifies.
    audit_trail: Get "/models/{name}/versions/{version}/trail", VersionAction => Trail,
        [NotFound, InvalidArgument],
        |ws, r| ws.audit_trail(&r.name, r.number()?);
    /// Records a deployment of a version (`version`) or of what an alias names (`alias`):
    /// the target and the rationale, as a signed audit event.
    deploy: Post "/models/{name}/deployments", DeployRequest => Deployment,
        [NotFound, InvalidArgument],
        |ws, r| ws.deploy(&r.name, r.version, r.alias.as_deref(), &r.target, &r.rationale);
    /// A model's recorded deployments, newest first.
    deployments: Get "/models/{name}/deployments", ModelRef => Vec<Deployment>, [NotFound],
        |ws, r| ws.deployments(&r.name);
    /// Imports a TensorBoard logdir on the machine that holds the workspace: every directory
    /// with event files a run of one experiment (`experiment`, default the logdir's name). A
    /// bad file stores nothing and is named with its byte; a second import adds only what the
    /// files gained.
    import_tensorboard: Post "/import/tensorboard", TensorboardImport => crate::TensorboardReport,
        [NotFound, InvalidArgument, Conflict, SchemaViolation],
        |ws, r| ws.import_tensorboard(std::path::Path::new(&r.logdir), r.experiment.as_deref(), &mut |_| {});
    /// Imports an MLflow store on the machine that holds the workspace (`sqlite:///…/mlflow.db`,
    /// an `mlruns` directory) or a running MLflow server (`http://host:5000`, through its REST
    /// API): experiments, runs (MLflow ids kept), params, tags, every metric point, datasets,
    /// artifacts and the registry, with counts on both sides and what was skipped. A second
    /// import adds only what is new.
    import_mlflow: Post "/import/mlflow", MlflowImport => crate::MlflowReport,
        [NotFound, InvalidArgument, Conflict, SchemaViolation, Unavailable],
        |ws, r| ws.import_mlflow(&r.source, r.experiments.as_deref().unwrap_or_default(), &mut |_| {});
    /// Checks the workspace end to end: every blob and metric chunk against its BLAKE3, that
    /// every doc loads, that the projections match the docs, the audit chains. Reads only.
    verify: Get "/verify", Empty => crate::backup::VerifyReport, [],
        |ws, _| ws.verify();
    /// Verifies, then rebuilds the derived state (the projections from the docs, the search
    /// index) and says what it rebuilt and what is still wrong; never changes the docs,
    /// blobs, chunks or audit chains.
    repair: Post "/verify/repair", Empty => crate::backup::VerifyReport, [],
        |ws, _| ws.repair();
    /// Reviews, newest first, narrowed by run, experiment (its own and its runs'), an action
    /// owner, a decision, and to those with open next actions.
    reviews: Get "/reviews", ReviewFilter => Vec<ReviewView>, [NotFound, InvalidArgument],
        |ws, r| ws.reviews(&r);
    /// Writes a review of runs or an experiment; refused (`INVALID_ARGUMENT`) naming every
    /// field the team's template requires and it lacks.
    create_review: Post "/reviews", NewReview => ReviewView, [NotFound, InvalidArgument],
        |ws, r| ws.create_review(&r);
    /// One review by id or unique prefix, with its next actions' states.
    review: Get "/reviews/{id}", ReviewRef => ReviewView, [NotFound, InvalidArgument],
        |ws, r| ws.review(&r.id);
    /// Sets a next action's state (done, dropped, or open again), recording who and when.
    set_action_state: Post "/reviews/{id}/actions", SetActionState => ReviewView,
        [NotFound, InvalidArgument],
        |ws, r| ws.set_action_state(&r);
    /// The team's review template (required fields, extra fields), or the default.
    review_template: Get "/review-template", Empty => TemplateView, [],
        |ws, _| ws.review_template();
    /// Sets the team's review template.
    set_review_template: Put "/review-template", cairn_model::review::ReviewTemplate => TemplateView,
        [InvalidArgument],
        |ws, t| ws.set_review_template(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_paths_well_formed() {
        let mut names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len());
        let mut routes: Vec<(&str, &str)> = OPERATIONS
            .iter()
            .map(|o| (o.method.as_str(), o.path))
            .collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(
            routes.len(),
            OPERATIONS.len(),
            "two operations share a route"
        );
        for op in OPERATIONS {
            assert!(op.path.starts_with('/'), "{}", op.name);
            assert!(!op.doc.trim().is_empty(), "{} has no doc", op.name);
            if let Some(i) = op.path.find("{*") {
                assert!(
                    op.path[i..].ends_with('}') && !op.path[i..].contains('/'),
                    "{}: a rest-of-path parameter must come last",
                    op.name
                );
            }
        }
    }
}
