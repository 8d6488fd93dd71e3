//! Experiments, runs and metrics of the MLflow tracking API.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use cairn_core::{Lifecycle, LikePattern, NewRun, Point, RunEdit, Workspace};
use cairn_model::{CodeVersion, DatasetSnapshot, Experiment, ExperimentId, ParentKind, Run, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, KeyValue, MetricIn, de_opt_i64};
use super::{JsonBody, MlflowError, Reply, json, parse, query};
use crate::stream;
use crate::{AppState, CallError};

/// MLflow's request limits.
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTITIES_PER_BATCH: usize = 1000;
const MAX_PARAM_VALUE: usize = 6000;
const MAX_TAG_VALUE: usize = 8000;
/// MLflow's server refuses more (`SEARCH_MAX_RESULTS_THRESHOLD`, runs and experiments).
const MAX_SEARCH_RESULTS: u64 = 50_000;
/// The most points one `metrics/get-history` page may ask for: the page size MLflow's client
/// uses and the REST API documents as the maximum. Without `max_results` the whole history
/// comes, streamed.
const MAX_HISTORY_RESULTS: i64 = 25_000;

type CoreResult<T> = Result<T, cairn_core::Error>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The experiment behind an MLflow experiment id ("0" is the workspace's default experiment).
pub(crate) fn resolve_experiment(ws: &mut Workspace, id: &str) -> CoreResult<Experiment> {
    if id == "0" {
        return ws.default_experiment();
    }
    let parsed: ExperimentId = id
        .parse()
        .map_err(|_| cairn_core::Error::UnknownExperiment(id.to_owned()))?;
    ws.experiment_by_id(parsed)
}

/// The experiment behind an MLflow experiment id, for a read: nothing is created, so the default
/// experiment "0" is `None` until the first write that needs it.
pub(crate) fn find_experiment(ws: &mut Workspace, id: &str) -> CoreResult<Option<Experiment>> {
    if id == "0" {
        return ws.default_experiment_if_any();
    }
    let parsed: ExperimentId = id
        .parse()
        .map_err(|_| cairn_core::Error::UnknownExperiment(id.to_owned()))?;
    ws.experiment_by_id(parsed).map(Some)
}

/// The default experiment as reads show it before its first run creates it: "Default", empty.
fn default_placeholder() -> Experiment {
    Experiment {
        id: ExperimentId::new(),
        name: "Default".into(),
        created_ms: 0,
        description: None,
        tags: BTreeMap::new(),
        schema: None,
        deleted: false,
    }
}

/// A full run id (MLflow clients never send prefixes).
pub(crate) fn parse_run_id(id: &str) -> CoreResult<RunId> {
    id.parse().map_err(cairn_core::Error::from)
}

/// MLflow's id for an experiment: "0" for the default experiment, the Cairn id otherwise.
pub(crate) fn mlflow_id(ws: &mut Workspace, e: &Experiment) -> CoreResult<String> {
    Ok(
        if ws
            .default_experiment_if_any()?
            .is_some_and(|d| d.id == e.id)
        {
            "0".into()
        } else {
            e.id.to_string()
        },
    )
}

fn run_json(ws: &mut Workspace, id: RunId) -> CoreResult<Value> {
    let view = ws.run(id)?;
    let exp = ws.experiment_by_id(view.run.experiment)?;
    let mut run = view.run;
    run.metrics.extend(view.live_metrics);
    Ok(dto::run(&run, &mlflow_id(ws, &exp)?))
}

// ---- experiments ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct CreateExperiment {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create_experiment(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateExperiment = parse(b).await?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'"))?;
    let exp = st
        .call(move |ws| {
            let mut e = ws.create_experiment(&name, None)?;
            if !req.tags.is_empty() {
                e.tags
                    .extend(req.tags.into_iter().map(|t| (t.key, t.value)));
                ws.update_experiment(&e)?;
            }
            mlflow_id(ws, &e)
        })
        .await?;
    json(json!({ "experiment_id": exp }))
}

#[derive(Deserialize)]
pub(crate) struct ExperimentIdQuery {
    experiment_id: Option<String>,
    experiment_name: Option<String>,
}

/// A call's "not found" as MLflow words it for this request.
fn not_found_as(message: String) -> impl FnOnce(CallError) -> MlflowError {
    move |e| match e {
        CallError::Core(e) if e.code() == cairn_core::Code::NotFound => {
            MlflowError::not_found(message)
        }
        other => other.into(),
    }
}

pub(crate) async fn get_experiment(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: ExperimentIdQuery = query(&uri)?;
    let id = q.experiment_id.ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'")
    })?;
    let shown = id.clone();
    let exp = st
        .call(move |ws| {
            Ok(match find_experiment(ws, &id)? {
                Some(e) => dto::experiment(&e, &mlflow_id(ws, &e)?),
                None => dto::experiment(&default_placeholder(), "0"),
            })
        })
        .await
        .map_err(not_found_as(format!(
            "No Experiment with id={shown} exists"
        )))?;
    json(json!({ "experiment": exp }))
}

pub(crate) async fn get_experiment_by_name(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: ExperimentIdQuery = query(&uri)?;
    let name = q.experiment_name.ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_name'")
    })?;
    let shown = name.clone();
    let exp = st
        .call(move |ws| {
            // The default experiment exists from the first question on (until a run is logged
            // into it, as a placeholder: a read creates nothing); deleted ones are found too,
            // marked deleted, as MLflow does.
            let default = ws.default_experiment_if_any()?;
            match ws.experiments_all()?.into_iter().find(|e| e.name == name) {
                Some(e) => {
                    let id = if default.is_some_and(|d| d.id == e.id) {
                        "0".to_owned()
                    } else {
                        e.id.to_string()
                    };
                    Ok(dto::experiment(&e, &id))
                }
                None if default.is_none() && name == "Default" => {
                    Ok(dto::experiment(&default_placeholder(), "0"))
                }
                None => Err(cairn_core::Error::UnknownExperiment(name)),
            }
        })
        .await
        .map_err(not_found_as(format!(
            "Could not find experiment with name '{shown}'"
        )))?;
    json(json!({ "experiment": exp }))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchExperiments {
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    filter: Option<String>,
    page_token: Option<String>,
    view_type: Option<String>,
}

/// One clause of an experiment filter: a field, how it compares, with what.
#[derive(Debug)]
struct Clause {
    field: ExpField,
    test: Test,
}

#[derive(Debug)]
enum ExpField {
    Name,
    Tag(String),
}

#[derive(Debug)]
enum Test {
    Eq(String),
    Ne(String),
    Like(LikePattern),
}

/// `name = 'x'`, `name LIKE 'x%'`, `name ILIKE …`, `tags.k = 'v'`, joined by AND. Patterns are
/// compiled once here, refused when over `cairn_core::MAX_LIKE_PATTERN`.
fn parse_experiment_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for clause in split_and(filter) {
        let clause = clause.trim();
        let (field, op, value) = parse_simple_clause(clause).ok_or_else(|| MlflowError::invalid(format!("unsupported experiment filter '{clause}': expected name or tags.KEY compared with =, !=, LIKE or ILIKE")))?;
        let field = match field.as_str() {
            "name" | "attribute.name" | "attributes.name" => ExpField::Name,
            f => match f.strip_prefix("tags.").or_else(|| f.strip_prefix("tag.")) {
                Some(k) => ExpField::Tag(k.trim_matches('`').to_owned()),
                None => {
                    return Err(MlflowError::invalid(format!(
                        "unknown experiment field '{f}'"
                    )));
                }
            },
        };
        let like_error = |e: cairn_core::LikeError| {
            MlflowError::invalid(format!("experiment filter '{}…': {e}", truncated(clause)))
        };
        let test = match op.as_str() {
            "=" => Test::Eq(value),
            "!=" => Test::Ne(value),
            "LIKE" => Test::Like(LikePattern::case_sensitive(&value).map_err(like_error)?),
            _ => Test::Like(LikePattern::case_insensitive(&value).map_err(like_error)?),
        };
        out.push(Clause { field, test });
    }
    Ok(out)
}

/// The start of a long text, for a message that names it.
fn truncated(text: &str) -> String {
    text.chars().take(40).collect()
}

fn experiment_matches(e: &Experiment, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| {
        let actual = match &c.field {
            ExpField::Name => Some(e.name.as_str()),
            ExpField::Tag(k) => e.tags.get(k).map(String::as_str),
        };
        actual.is_some_and(|actual| match &c.test {
            Test::Eq(v) => actual == v,
            Test::Ne(v) => actual != v,
            Test::Like(p) => p.matches(actual),
        })
    })
}

fn split_and(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let words: Vec<&str> = s.split(' ').collect();
    for w in words {
        for c in w.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '\'' || c == '"' => quote = Some(c),
                _ => {}
            }
        }
        if quote.is_none() && w.eq_ignore_ascii_case("and") {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(w);
            cur.push(' ');
        }
    }
    out.push(cur);
    out
}

fn parse_simple_clause(c: &str) -> Option<(String, String, String)> {
    for op in ["!=", "=", " ILIKE ", " LIKE ", " ilike ", " like "] {
        if let Some((l, r)) = c.split_once(op) {
            let v = r.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))?;
            return Some((
                l.trim().to_owned(),
                op.trim().to_ascii_uppercase(),
                v.to_owned(),
            ));
        }
    }
    None
}

/// A `max_results` within `1..=max` (`default` when absent), as MLflow's server checks it.
pub(crate) fn max_results(
    given: Option<i64>,
    default: i64,
    max: i64,
) -> Result<usize, MlflowError> {
    let n = given.unwrap_or(default);
    if n < 1 || n > max {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied: it must be between 1 and {max}"
        )));
    }
    Ok(n as usize)
}

async fn search_experiments_with(st: AppState, req: SearchExperiments) -> Reply {
    let max = max_results(req.max_results, 1000, MAX_SEARCH_RESULTS as i64)?;
    let offset = dto::parse_page_token(req.page_token.as_deref())? as usize;
    let view = req.view_type.unwrap_or_else(|| "ACTIVE_ONLY".into());
    let clauses = parse_experiment_filter(req.filter.as_deref().unwrap_or(""))?;
    let body = st
        .call(move |ws| {
            let default = ws.default_experiment_if_any()?;
            let mut all = ws.experiments_all()?;
            let default = match default {
                Some(d) => d.id,
                None => {
                    let placeholder = default_placeholder();
                    let id = placeholder.id;
                    all.insert(0, placeholder);
                    id
                }
            };
            let hits: Vec<&Experiment> = all
                .iter()
                .filter(|e| match view.as_str() {
                    "DELETED_ONLY" => e.deleted,
                    "ALL" => true,
                    _ => !e.deleted,
                })
                .filter(|e| experiment_matches(e, &clauses))
                .collect();
            let next = (hits.len() > offset + max).then_some((offset + max) as u64);
            let page: Vec<Value> = hits
                .iter()
                .skip(offset)
                .take(max)
                .map(|e| {
                    let id = if e.id == default {
                        "0".to_owned()
                    } else {
                        e.id.to_string()
                    };
                    dto::experiment(e, &id)
                })
                .collect();
            Ok(
                json!({ "experiments": page, "next_page_token": dto::page_token(next) })
                    .to_string(),
            )
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub(crate) async fn search_experiments(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchExperiments = parse(b).await?;
    search_experiments_with(st, req).await
}

pub(crate) async fn search_experiments_get(State(st): State<AppState>, uri: Uri) -> Reply {
    let req: SearchExperiments = query(&uri)?;
    search_experiments_with(st, req).await
}

#[derive(Deserialize)]
pub(crate) struct ExperimentEdit {
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn edit_experiment(
    st: AppState,
    b: axum::body::Bytes,
    edit: fn(&mut Experiment, &ExperimentEdit) -> Result<(), MlflowError>,
) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = req.experiment_id.clone().ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'")
    })?;
    let mut exp = st.call(move |ws| resolve_experiment(ws, &id)).await?;
    edit(&mut exp, &req)?;
    st.call(move |ws| ws.update_experiment(&exp)).await?;
    json(json!({}))
}

pub(crate) async fn update_experiment(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    edit_experiment(st, b, |e, r| {
        e.name = r
            .new_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| {
                MlflowError::invalid("Missing value for required parameter 'new_name'")
            })?;
        Ok(())
    })
    .await
}

/// Deletes (or restores) an experiment together with its runs, as MLflow's SQL store does.
async fn set_experiment_deleted(st: AppState, b: axum::body::Bytes, deleted: bool) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = req.experiment_id.clone().ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'")
    })?;
    st.call(move |ws| {
        let e = resolve_experiment(ws, &id)?;
        if deleted && ws.default_experiment()?.id == e.id {
            return Err(cairn_core::Error::Invalid(
                "Cannot delete the default experiment '0'".into(),
            ));
        }
        if deleted {
            ws.delete_experiment(e.id)
        } else {
            ws.restore_experiment(e.id)
        }
    })
    .await?;
    json(json!({}))
}

pub(crate) async fn delete_experiment(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    set_experiment_deleted(st, b, true).await
}

pub(crate) async fn restore_experiment(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    set_experiment_deleted(st, b, false).await
}

pub(crate) async fn set_experiment_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    edit_experiment(st, b, |e, r| {
        let key =
            r.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
                MlflowError::invalid("Missing value for required parameter 'key'")
            })?;
        e.tags.insert(key, r.value.clone().unwrap_or_default());
        Ok(())
    })
    .await
}

// ---- runs ----------------------------------------------------------------------------------

/// MLflow's system tags that carry lineage, applied as Cairn fields.
fn lineage_edits(run: &Run, tags: &[(String, String)]) -> Vec<RunEdit> {
    let mut edits = Vec::new();
    let mut code = run.lineage.code.clone();
    for (k, v) in tags {
        match k.as_str() {
            "mlflow.runName" if !v.trim().is_empty() => edits.push(RunEdit::Name(v.clone())),
            "mlflow.note.content" => edits.push(RunEdit::Notes(v.clone())),
            "mlflow.user" if run.owner.is_none() && !v.is_empty() => {
                edits.push(RunEdit::Owner(Some(v.clone())))
            }
            "mlflow.parentRunId" => {
                if let Ok(p) = v.parse::<RunId>() {
                    edits.push(RunEdit::Parent(Some(p), Some(ParentKind::Child)));
                }
            }
            "mlflow.source.git.commit" => {
                code.get_or_insert_with(CodeVersion::default).commit = Some(v.clone())
            }
            "mlflow.source.git.branch" => {
                code.get_or_insert_with(CodeVersion::default).branch = Some(v.clone())
            }
            "mlflow.source.git.repoURL" => {
                code.get_or_insert_with(CodeVersion::default).repo = Some(v.clone())
            }
            _ => {}
        }
    }
    if code != run.lineage.code {
        edits.push(RunEdit::Code(code));
    }
    edits
}

fn check_tag(t: &KeyValue) -> Result<(), MlflowError> {
    if t.value.chars().count() > MAX_TAG_VALUE {
        return Err(MlflowError::invalid(format!(
            "tag '{}' has a value of {} characters; the limit is {MAX_TAG_VALUE}",
            t.key,
            t.value.chars().count()
        )));
    }
    Ok(())
}

fn check_param(p: &KeyValue) -> Result<(), MlflowError> {
    if p.value.chars().count() > MAX_PARAM_VALUE {
        return Err(MlflowError::invalid(format!(
            "param '{}' has a value of {} characters; the limit is {MAX_PARAM_VALUE}",
            p.key,
            p.value.chars().count()
        )));
    }
    Ok(())
}

/// Sets tags and the lineage they carry, in one step.
fn apply_tags(ws: &mut Workspace, id: RunId, tags: Vec<(String, String)>) -> CoreResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let run = ws.run(id)?.run;
    let mut edits: Vec<RunEdit> = tags
        .iter()
        .map(|(k, v)| RunEdit::Tag(k.clone(), v.clone()))
        .collect();
    edits.extend(lineage_edits(&run, &tags));
    ws.update_run(id, &edits).map(drop)
}

#[derive(Deserialize)]
pub(crate) struct CreateRun {
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create_run(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateRun = parse(b).await?;
    for t in &req.tags {
        check_tag(t)?;
    }
    let v = st
        .call(move |ws| {
            let exp = resolve_experiment(ws, req.experiment_id.as_deref().unwrap_or("0"))?;
            let tags: Vec<(String, String)> =
                req.tags.into_iter().map(|t| (t.key, t.value)).collect();
            let mut new = NewRun {
                experiment: Some(exp.id),
                name: req.run_name.filter(|n| !n.is_empty()),
                owner: req.user_id.filter(|u| !u.is_empty()),
                start_ms: req.start_time,
                ..Default::default()
            };
            // Lineage the client already knows (git state, parent, notes) counts for the schema.
            let mut probe = cairn_model::Run::new(RunId::new(), exp.id, "", 0);
            probe.owner = new.owner.clone();
            for e in lineage_edits(&probe, &tags) {
                match e {
                    RunEdit::Name(n) if new.name.is_none() => new.name = Some(n),
                    RunEdit::Owner(o) if new.owner.is_none() => new.owner = o,
                    RunEdit::Notes(n) => new.notes = n,
                    RunEdit::Code(c) => new.lineage.code = c,
                    RunEdit::Parent(Some(p), Some(k)) => new.parent = Some((p, k)),
                    _ => {}
                }
            }
            new.tags = tags.into_iter().collect();
            let run = ws.start_run(new)?;
            Ok(dto::run(&run, &mlflow_id(ws, &exp)?))
        })
        .await?;
    json(json!({ "run": v }))
}

#[derive(Deserialize)]
pub(crate) struct RunIdQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunIdQuery {
    fn id(&self) -> Result<String, MlflowError> {
        self.run_id
            .clone()
            .or_else(|| self.run_uuid.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'"))
    }
}

/// Runs `f` on the run an MLflow request names; an unknown run is MLflow's 404.
pub(crate) async fn with_run<T, F>(st: &AppState, id: String, f: F) -> Result<T, MlflowError>
where
    T: Send + 'static,
    F: FnOnce(&mut Workspace, RunId) -> CoreResult<T> + Send + 'static,
{
    let shown = id.clone();
    st.call(move |ws| {
        let rid = parse_run_id(&id)?;
        f(ws, rid)
    })
    .await
    .map_err(run_not_found(&shown))
}

pub(crate) fn run_not_found(id: &str) -> impl FnOnce(CallError) -> MlflowError + '_ {
    move |e| match e {
        CallError::Core(e) if e.is_unknown_run() => {
            MlflowError::not_found(format!("Run '{id}' not found"))
        }
        other => other.into(),
    }
}

pub(crate) async fn get_run(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: RunIdQuery = query(&uri)?;
    let id = q.id()?;
    let shown = id.clone();
    let v = st
        .call(move |ws| run_json(ws, parse_run_id(&id)?))
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({ "run": v }))
}

#[derive(Deserialize)]
pub(crate) struct UpdateRun {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

pub(crate) async fn update_run(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: UpdateRun = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    }
    .id()?;
    let status = req.status.as_deref().map(dto::status_in).transpose()?;
    let v = with_run(&st, id, move |ws, rid| {
        if let Some(name) = req.run_name.filter(|n| !n.is_empty()) {
            ws.update_run(
                rid,
                &[
                    RunEdit::Name(name.clone()),
                    RunEdit::Tag("mlflow.runName".into(), name),
                ],
            )?;
        }
        match status {
            Some(s) if s.is_final() => {
                ws.end_run(rid, s, req.end_time)?;
            }
            Some(s) => {
                ws.update_run(
                    rid,
                    &[RunEdit::Status {
                        status: s,
                        end_ms: None,
                    }],
                )?;
            }
            None => {}
        }
        let view = ws.run(rid)?;
        let exp = ws.experiment_by_id(view.run.experiment)?;
        Ok(dto::run_info(&view.run, &mlflow_id(ws, &exp)?))
    })
    .await?;
    json(json!({ "run_info": v }))
}

#[derive(Deserialize)]
pub(crate) struct RunOnly {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

pub(crate) async fn delete_run(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: RunOnly = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    }
    .id()?;
    with_run(&st, id, move |ws, rid| ws.delete_run(rid)).await?;
    json(json!({}))
}

pub(crate) async fn restore_run(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: RunOnly = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    }
    .id()?;
    with_run(&st, id, move |ws, rid| ws.restore_run(rid)).await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

pub(crate) async fn search_runs(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchRuns = parse(b).await?;
    let filter = req.filter.clone().unwrap_or_default();
    let order = req.order_by.clone();
    let limit = req.max_results.unwrap_or(1000);
    if limit < 1 || limit as u64 > MAX_SEARCH_RESULTS {
        return Err(MlflowError::invalid(format!(
            "Invalid value {limit} for parameter 'max_results': it must be between 1 and {MAX_SEARCH_RESULTS}"
        )));
    }
    let offset = dto::parse_page_token(req.page_token.as_deref())?;
    let lifecycle = match req.run_view_type.as_deref() {
        Some("DELETED_ONLY") => Lifecycle::Deleted,
        Some("ALL") => Lifecycle::All,
        _ => Lifecycle::Active,
    };
    let (runs, next) = st
        .call(move |ws| {
            let mut exps = Vec::new();
            for id in &req.experiment_ids {
                // "0" before its first run is an empty experiment: nothing of it to find.
                exps.extend(find_experiment(ws, id)?);
            }
            if exps.is_empty() && !req.experiment_ids.is_empty() {
                return Ok((Vec::new(), None));
            }
            let experiments = exps.iter().map(|e| e.id).collect();
            let (runs, next) = ws.search_runs_by_query(
                &filter,
                &order,
                experiments,
                lifecycle,
                limit as usize,
                offset as usize,
            )?;
            let mut ids: BTreeMap<ExperimentId, String> = exps
                .iter()
                .map(|e| Ok((e.id, mlflow_id(ws, e)?)))
                .collect::<CoreResult<_>>()?;
            let mut out = Vec::with_capacity(runs.len());
            for r in &runs {
                if let std::collections::btree_map::Entry::Vacant(slot) = ids.entry(r.experiment) {
                    let e = ws.experiment_by_id(r.experiment)?;
                    slot.insert(mlflow_id(ws, &e)?);
                }
                out.push(dto::run(r, &ids[&r.experiment]));
            }
            Ok((out, next))
        })
        .await?;
    json(json!({ "runs": runs, "next_page_token": dto::page_token(next) }))
}

#[derive(Deserialize)]
pub(crate) struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(flatten)]
    metric: MetricIn,
}

pub(crate) async fn log_metric(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogMetric = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    }
    .id()?;
    let shown = id.clone();
    let m = req.metric;
    st.call(move |ws| {
        let p = Point {
            step: m.step.unwrap_or(0),
            ts_ms: m.timestamp.unwrap_or_else(now_ms),
            value: m.value,
        };
        ws.log_metric(parse_run_id(&id)?, &m.key, &[p])
    })
    .await
    .map_err(run_not_found(&shown))?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct LogParam {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
    #[serde(default)]
    value: String,
}

impl LogParam {
    /// The run it names and the key/value it carries.
    fn split(self) -> Result<(String, KeyValue), MlflowError> {
        let id = RunIdQuery {
            run_id: self.run_id,
            run_uuid: self.run_uuid,
        }
        .id()?;
        Ok((
            id,
            KeyValue {
                key: self.key,
                value: self.value,
            },
        ))
    }
}

pub(crate) async fn log_param(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let (id, kv) = parse::<LogParam>(b).await?.split()?;
    check_param(&kv)?;
    with_run(&st, id, move |ws, rid| {
        ws.log_params(rid, &[(kv.key, kv.value)])
    })
    .await?;
    json(json!({}))
}

pub(crate) async fn set_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let (id, kv) = parse::<LogParam>(b).await?.split()?;
    check_tag(&kv)?;
    with_run(&st, id, move |ws, rid| {
        apply_tags(ws, rid, vec![(kv.key, kv.value)])
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct DeleteTag {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
}

pub(crate) async fn delete_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: DeleteTag = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    }
    .id()?;
    with_run(&st, id, move |ws, rid| ws.delete_tag(rid, &req.key)).await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct LogBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    // MLflow's batch limits, checked while the body is decoded: a batch of a million metrics is
    // refused at the 1,001st, before it is held in memory.
    #[serde(default, deserialize_with = "batch_metrics")]
    metrics: Vec<MetricIn>,
    #[serde(default, deserialize_with = "batch_params")]
    params: Vec<KeyValue>,
    #[serde(default, deserialize_with = "batch_tags")]
    tags: Vec<KeyValue>,
}

fn batch_metrics<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<MetricIn>, D::Error> {
    dto::de_at_most(d, MAX_METRICS_PER_BATCH, "metrics")
}

fn batch_params<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
    dto::de_at_most(d, MAX_PARAMS_PER_BATCH, "params")
}

fn batch_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
    dto::de_at_most(d, MAX_TAGS_PER_BATCH, "tags")
}

pub(crate) async fn log_batch(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogBatch = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id.clone(),
        run_uuid: req.run_uuid.clone(),
    }
    .id()?;
    let total = req.metrics.len() + req.params.len() + req.tags.len();
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(MlflowError::invalid(format!(
            "A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, params and tags in total; got {total}"
        )));
    }
    // Everything that can be refused is checked before anything is stored.
    let bad_key = |what: &'static str, k: &str| {
        cairn_model::validate_key(what, k).map_err(|e| MlflowError::invalid(e.to_string()))
    };
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &req.params {
        check_param(p)?;
        bad_key("param key", &p.key)?;
        if let Some(other) = seen.insert(&p.key, &p.value)
            && other != p.value
        {
            return Err(MlflowError::invalid(format!(
                "Duplicate parameter keys have been submitted: '{}' with values '{other}' and '{}'",
                p.key, p.value
            )));
        }
    }
    for t in &req.tags {
        check_tag(t)?;
        bad_key("tag key", &t.key)?;
    }
    for m in &req.metrics {
        bad_key("metric key", &m.key)?;
    }
    with_run(&st, id, move |ws, rid| {
        let params: Vec<(String, String)> =
            req.params.into_iter().map(|p| (p.key, p.value)).collect();
        // Params first: a param that would change refuses the whole batch before anything is stored.
        if !params.is_empty() {
            ws.log_params(rid, &params)?;
        }
        if !req.metrics.is_empty() {
            let now = now_ms();
            let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
            for m in req.metrics {
                series.entry(m.key).or_default().push(Point {
                    step: m.step.unwrap_or(0),
                    ts_ms: m.timestamp.unwrap_or(now),
                    value: m.value,
                });
            }
            let batches: Vec<(&str, &[Point])> = series
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            ws.log_metrics(rid, &batches)?;
        }
        apply_tags(
            ws,
            rid,
            req.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        )
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct DatasetIn {
    name: Option<String>,
    digest: Option<String>,
    source_type: Option<String>,
    source: Option<String>,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DatasetInput {
    dataset: DatasetIn,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

#[derive(Deserialize)]
pub(crate) struct LogInputs {
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
}

/// The uri inside MLflow's source JSON (`{"uri": …}`, `{"url": …}`, `{"path": …}`), or the text.
fn source_uri(source: &str) -> String {
    serde_json::from_str::<Value>(source)
        .ok()
        .and_then(|v| {
            ["uri", "url", "path", "table_name"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| source.to_owned())
}

pub(crate) async fn log_inputs(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogInputs = parse(b).await?;
    let id = RunIdQuery {
        run_id: req.run_id,
        run_uuid: None,
    }
    .id()?;
    let mut inputs = Vec::new();
    for input in req.datasets {
        let d = input.dataset;
        let name = d
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| MlflowError::invalid("a dataset input needs a name"))?;
        let context = input
            .tags
            .iter()
            .find(|t| t.key == "mlflow.data.context")
            .map(|t| t.value.clone());
        let rows = d
            .profile
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("num_rows").and_then(Value::as_u64));
        let snap = DatasetSnapshot {
            name: Some(name),
            context,
            uri: d.source.as_deref().map(source_uri),
            digest: d.digest.filter(|x| !x.is_empty()),
            size_bytes: None,
            rows,
            source_type: d.source_type,
            schema: d.schema.filter(|s| !s.is_empty()),
        };
        inputs.push(snap);
    }
    with_run(&st, id, move |ws, rid| {
        // A run names its datasets by role: the context ("training"), or the dataset's name.
        // Two different datasets in one context are both kept, the second as "context:name".
        let mut datasets = ws.run(rid)?.run.lineage.datasets;
        let mut edits = Vec::new();
        for snap in inputs {
            let name = snap.name.clone().unwrap_or_default();
            let base = snap.context.clone().unwrap_or_else(|| name.clone());
            let key = match datasets.get(&base) {
                Some(existing) if existing.name.as_deref() != Some(name.as_str()) => {
                    format!("{base}:{name}")
                }
                _ => base,
            };
            datasets.insert(key.clone(), snap.clone());
            edits.push(RunEdit::Dataset(key, snap));
        }
        ws.update_run(rid, &edits).map(drop)
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

pub(crate) async fn get_metric_history(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: HistoryQuery = query(&uri)?;
    let id = RunIdQuery {
        run_id: q.run_id,
        run_uuid: q.run_uuid,
    }
    .id()?;
    let key = q
        .metric_key
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'metric_key'"))?;
    let offset = dto::parse_page_token(q.page_token.as_deref())?;
    let limit = q
        .max_results
        .map(|m| max_results(Some(m), m, MAX_HISTORY_RESULTS))
        .transpose()?;
    let shown = id.clone();
    let k = key.clone();
    let (run, len) = st
        .call(move |ws| {
            let rid = parse_run_id(&id)?;
            ws.run(rid)?;
            match ws.metric_len(rid, &k) {
                Ok(n) => Ok((rid, n)),
                Err(cairn_core::Error::UnknownMetric { .. }) => Ok((rid, 0)),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(run_not_found(&shown))?;
    let key_json = Value::String(key.clone()).to_string();
    let write: stream::PointWriter = std::sync::Arc::new(move |out, p| {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        write!(
            out,
            r#"{{"key":{key_json},"value":{},"timestamp":{},"step":{}}}"#,
            dto::f64_json(p.value),
            p.ts_ms,
            p.step
        )
        .unwrap_or(());
    });
    let (to, close) = match limit {
        // A page: what is left of it, and the token of the next one.
        Some(l) if len.saturating_sub(offset) > l as u64 => {
            let next = offset + l as u64;
            let token = dto::page_token(Some(next));
            (next, format!(r#"],"next_page_token":{token}}}"#))
        }
        _ => (len, r#"],"next_page_token":null}"#.to_owned()),
    };
    let body = stream::History {
        st,
        run,
        key,
        from: offset,
        to,
        open: r#"{"metrics":["#,
        close,
        write,
    }
    .into_body();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
