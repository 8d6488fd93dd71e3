//! MLflow's model registry REST API, every call the `mlflow` client's registry store makes:
//! registered models (create, get, update, delete, search, tags, latest versions), model
//! versions (create, get, update, delete, search, tags, stage, download URI) and aliases.
//!
//! Shapes are MLflow's, field for field. What differs underneath: a version downloads by the
//! content hash it was pinned to (`get-download-uri` answers `mlflow-artifacts:/_cairn_content/
//! <hash>`, served read-only by `artifacts.rs`), deletions are tombstones, an alias moved
//! concurrently on two peers is listed with both versions and refuses `get` until a promotion
//! settles it, and a rename is refused (a model's name is its identity across peers).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::{get, post};
use cairn_core::{LikePattern, Workspace};
use cairn_model::{ArtifactKind, ModelVersion, RegisteredModel};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{KeyValue, de_opt_i64, kv_list};
use super::{JsonBody, MlflowError, Reply, json, parse, query};
use super::{max_results, parse_run_id};
use crate::AppState;

/// The registry's routes, merged into MLflow's by `mlflow::routes`.
pub(crate) fn routes() -> Router<AppState> {
    let r = |p: &str| format!("{}/{p}", super::API);
    Router::new()
        .route(
            &r("registered-models/create"),
            post(create_registered_model),
        )
        .route(&r("registered-models/get"), get(get_registered_model))
        .route(
            &r("registered-models/update"),
            axum::routing::patch(update_registered_model),
        )
        .route(
            &r("registered-models/rename"),
            post(rename_registered_model),
        )
        .route(
            &r("registered-models/delete"),
            axum::routing::delete(delete_registered_model),
        )
        .route(
            &r("registered-models/search"),
            get(search_registered_models).post(search_registered_models_post),
        )
        .route(
            &r("registered-models/get-latest-versions"),
            post(get_latest_versions).get(get_latest_versions),
        )
        .route(
            &r("registered-models/set-tag"),
            post(set_registered_model_tag),
        )
        .route(
            &r("registered-models/delete-tag"),
            axum::routing::delete(delete_registered_model_tag),
        )
        .route(
            &r("registered-models/alias"),
            post(set_alias).delete(delete_alias).get(get_by_alias),
        )
        .route(&r("model-versions/create"), post(create_model_version))
        .route(&r("model-versions/get"), get(get_model_version))
        .route(
            &r("model-versions/update"),
            axum::routing::patch(update_model_version),
        )
        .route(
            &r("model-versions/delete"),
            axum::routing::delete(delete_model_version),
        )
        .route(
            &r("model-versions/search"),
            get(search_model_versions).post(search_model_versions_post),
        )
        .route(
            &r("model-versions/transition-stage"),
            post(transition_stage),
        )
        .route(&r("model-versions/set-tag"), post(set_model_version_tag))
        .route(
            &r("model-versions/delete-tag"),
            axum::routing::delete(delete_model_version_tag),
        )
        .route(&r("model-versions/get-download-uri"), get(get_download_uri))
}

/// The `mlflow-artifacts` root under which registered content is served by hash.
pub(crate) const CONTENT_ROOT: &str = "_cairn_content";

fn version_json(v: &ModelVersion) -> Value {
    json!({
        "name": v.model,
        "version": v.version.to_string(),
        "creation_timestamp": v.created_ms,
        "last_updated_timestamp": v.updated_ms,
        "user_id": v.user,
        "current_stage": v.stage.clone().unwrap_or_else(|| "None".into()),
        "description": v.description.clone().unwrap_or_default(),
        "source": v.source,
        "run_id": v.run.map(|r| r.to_string()).unwrap_or_default(),
        "status": "READY",
        "tags": kv_list(&v.tags),
        "run_link": "",
        "aliases": v.aliases,
        "model_id": v.model_id.clone().unwrap_or_default(),
    })
}

/// The newest live version in each stage, as MLflow's `latest_versions` lists them.
fn latest_per_stage(m: &RegisteredModel, stages: &[String]) -> Vec<Value> {
    let mut latest: BTreeMap<String, &ModelVersion> = BTreeMap::new();
    for v in m.live_versions() {
        let stage = v.stage.clone().unwrap_or_else(|| "None".into());
        if !stages.is_empty() && !stages.iter().any(|s| s.eq_ignore_ascii_case(&stage)) {
            continue;
        }
        let e = latest.entry(stage).or_insert(v);
        if v.version > e.version {
            *e = v;
        }
    }
    let mut out: Vec<&ModelVersion> = latest.into_values().collect();
    out.sort_by_key(|v| v.version);
    out.into_iter().map(version_json).collect()
}

fn model_json(m: &RegisteredModel) -> Value {
    // An alias in conflict is listed once per version it points at (a client's dict keeps the
    // last); `get` by alias refuses it until a promotion settles it.
    let aliases: Vec<Value> = m
        .aliases
        .iter()
        .flat_map(|a| {
            a.targets
                .iter()
                .map(|t| json!({ "alias": a.name, "version": t.number.to_string() }))
        })
        .collect();
    json!({
        "name": m.name,
        "creation_timestamp": m.created_ms,
        "last_updated_timestamp": m.updated_ms,
        "user_id": m.created_by,
        "description": m.description.clone().unwrap_or_default(),
        "tags": kv_list(&m.tags),
        "aliases": aliases,
        "latest_versions": latest_per_stage(m, &[]),
    })
}

fn parse_version(v: &str) -> Result<u32, MlflowError> {
    v.trim().parse().map_err(|_| {
        MlflowError::invalid(format!(
            "invalid model version '{v}': expected a positive whole number"
        ))
    })
}

fn required(value: Option<String>, name: &str) -> Result<String, MlflowError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        MlflowError::invalid(format!("Missing value for required parameter '{name}'"))
    })
}

/// Who deleted through MLflow: the reason a tombstone records.
fn api_reason(what: &str) -> String {
    format!("{what} deleted through the MLflow API")
}

/// A request read from the JSON body, or from the query string when the body is empty (the
/// client sends GET parameters in the query string and everything else as JSON).
async fn request<T: serde::de::DeserializeOwned + Send + 'static>(
    uri: &Uri,
    b: axum::body::Bytes,
) -> Result<T, MlflowError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        query(uri)
    } else {
        parse(b).await
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateModel {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create_registered_model(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: CreateModel = parse(b).await?;
    let name = required(req.name, "name")?;
    let tags = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let m = st
        .write(move |ws| ws.create_registered_model(&name, req.description.as_deref(), tags))
        .await?;
    json(json!({ "registered_model": model_json(&m) }))
}

#[derive(Deserialize)]
pub(crate) struct NameQuery {
    name: Option<String>,
    version: Option<String>,
    alias: Option<String>,
    key: Option<String>,
    description: Option<String>,
    new_name: Option<String>,
}

impl NameQuery {
    fn name(&self) -> Result<String, MlflowError> {
        required(self.name.clone(), "name")
    }

    fn version(&self) -> Result<u32, MlflowError> {
        parse_version(&required(self.version.clone(), "version")?)
    }
}

pub(crate) async fn get_registered_model(State(st): State<AppState>, uri: Uri) -> Reply {
    let name = query::<NameQuery>(&uri)?.name()?;
    let m = st.call(move |ws| ws.registered_model(&name)).await?;
    json(json!({ "registered_model": model_json(&m) }))
}

pub(crate) async fn update_registered_model(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let m = st
        .write(move |ws| ws.set_model_meta(&name, "description", q.description.as_deref()))
        .await?;
    json(json!({ "registered_model": model_json(&m) }))
}

pub(crate) async fn rename_registered_model(JsonBody(b): JsonBody) -> Reply {
    let q: NameQuery = parse(b).await?;
    let name = q.name()?;
    let new_name = required(q.new_name, "new_name")?;
    Err(MlflowError::invalid(format!(
        "Cairn does not rename registered models ('{name}' to '{new_name}'): a model's name is \
         its identity across peers, which versions, aliases and approvals refer to; create \
         '{new_name}' and register the versions there"
    )))
}

pub(crate) async fn delete_registered_model(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    st.write(move |ws| ws.delete_registered_model(&name, &api_reason("model")))
        .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct TagReq {
    name: Option<String>,
    version: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub(crate) async fn set_registered_model_tag(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TagReq = parse(b).await?;
    let name = required(req.name, "name")?;
    let key = required(req.key, "key")?;
    let value = req.value.unwrap_or_default();
    st.write(move |ws| ws.set_model_meta(&name, &format!("tag/{key}"), Some(&value)))
        .await?;
    json(json!({}))
}

pub(crate) async fn delete_registered_model_tag(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let key = required(q.key, "key")?;
    st.write(move |ws| {
        let m = ws.registered_model(&name)?;
        if !m.tags.contains_key(&key) {
            return Err(cairn_core::Error::Invalid(format!(
                "registered model '{name}' has no tag '{key}'"
            )));
        }
        ws.set_model_meta(&name, &format!("tag/{key}"), None)
    })
    .await?;
    json(json!({}))
}

/// The search parameters of both searches; `order_by` may repeat in a query string.
#[derive(Debug, Default)]
pub(crate) struct SearchReq {
    filter: Option<String>,
    max_results: Option<i64>,
    order_by: Vec<String>,
    page_token: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchBody {
    filter: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

impl SearchReq {
    fn from_query(uri: &Uri) -> Result<SearchReq, MlflowError> {
        let mut req = SearchReq::default();
        for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "filter" => req.filter = Some(v.into_owned()),
                "max_results" => {
                    req.max_results = Some(v.trim().parse().map_err(|_| {
                        MlflowError::invalid(format!(
                            "Invalid value '{v}' for parameter 'max_results': expected an integer"
                        ))
                    })?)
                }
                "order_by" => req.order_by.push(v.into_owned()),
                "page_token" => req.page_token = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(req)
    }

    fn from_body(b: SearchBody) -> SearchReq {
        SearchReq {
            filter: b.filter,
            max_results: b.max_results,
            order_by: b.order_by,
            page_token: b.page_token,
        }
    }
}

/// One comparison of a registry search filter.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Ne,
    Like,
    ILike,
    In,
}

#[derive(Debug, Clone)]
struct Clause {
    field: String,
    op: Op,
    values: Vec<String>,
}

/// The most clauses and `IN` values a filter may hold.
const MAX_CLAUSES: usize = 100;
const MAX_FILTER: usize = 64 * 1024;

/// Parses MLflow's registry filter grammar: clauses `field op value` joined by `AND`, `op` one
/// of `=`, `!=`, `LIKE`, `ILIKE`, `IN`; values quoted with `'` or `"` (`IN` takes a list in
/// parentheses); fields `name`, `run_id`, `source_path`, `version_number`, `tags.<key>` (and
/// backquoted keys).
fn parse_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    if filter.len() > MAX_FILTER {
        return Err(MlflowError::invalid(format!(
            "the filter is {} bytes long (at most {MAX_FILTER})",
            filter.len()
        )));
    }
    let bad = |why: String| MlflowError::invalid(format!("Invalid filter '{filter}': {why}"));
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let quoted = |i: &mut usize| -> Result<String, MlflowError> {
        let q = chars[*i];
        *i += 1;
        let start = *i;
        while *i < chars.len() && chars[*i] != q {
            *i += 1;
        }
        if *i >= chars.len() {
            return Err(bad(format!("an unterminated {q}-quoted value")));
        }
        let s: String = chars[start..*i].iter().collect();
        *i += 1;
        Ok(s)
    };
    // A bare word; `dots` lets it hold '.' (a tag key, a value), else it stops there.
    let word = |i: &mut usize, dots: bool| -> String {
        let start = *i;
        while *i < chars.len()
            && (chars[*i].is_alphanumeric()
                || matches!(chars[*i], '_' | '-')
                || (dots && chars[*i] == '.'))
        {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    let mut out = Vec::new();
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        if out.len() >= MAX_CLAUSES {
            return Err(bad(format!("more than {MAX_CLAUSES} clauses")));
        }
        // The field: a word, `tags.<key>` with the key in backquotes, quotes or bare.
        let mut field = word(&mut i, false);
        if field.eq_ignore_ascii_case("tags") || field.eq_ignore_ascii_case("tag") {
            if chars.get(i) != Some(&'.') {
                return Err(bad("expected '.' after 'tags'".into()));
            }
            i += 1;
            let key = match chars.get(i) {
                Some('`' | '"' | '\'') => quoted(&mut i)?,
                _ => word(&mut i, true),
            };
            if key.is_empty() {
                return Err(bad("a tag key after 'tags.'".into()));
            }
            field = format!("tags.{key}");
        } else if field.is_empty() {
            return Err(bad(format!("expected a field at character {}", i + 1)));
        }
        skip_ws(&mut i);
        let op = if chars[i..].starts_with(&['!', '=']) {
            i += 2;
            Op::Ne
        } else if chars.get(i) == Some(&'=') {
            i += 1;
            Op::Eq
        } else {
            let w = word(&mut i, false).to_uppercase();
            match w.as_str() {
                "LIKE" => Op::Like,
                "ILIKE" => Op::ILike,
                "IN" => Op::In,
                _ => {
                    return Err(bad(format!(
                        "expected =, !=, LIKE, ILIKE or IN, found '{w}'"
                    )));
                }
            }
        };
        skip_ws(&mut i);
        let mut values = Vec::new();
        if op == Op::In {
            if chars.get(i) != Some(&'(') {
                return Err(bad("IN takes a list in parentheses".into()));
            }
            i += 1;
            loop {
                skip_ws(&mut i);
                match chars.get(i) {
                    Some(')') => {
                        i += 1;
                        break;
                    }
                    Some(',') => i += 1,
                    Some('\'' | '"') => values.push(quoted(&mut i)?),
                    _ => return Err(bad("an IN list holds quoted values".into())),
                }
                if values.len() > 10_000 {
                    return Err(bad("an IN list holds at most 10,000 values".into()));
                }
            }
        } else {
            match chars.get(i) {
                Some('\'' | '"') => values.push(quoted(&mut i)?),
                Some(_) => values.push(word(&mut i, true)),
                None => return Err(bad("a comparison without a value".into())),
            }
        }
        out.push(Clause { field, op, values });
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let and = word(&mut i, false);
        if !and.eq_ignore_ascii_case("AND") {
            return Err(bad(format!("expected AND between clauses, found '{and}'")));
        }
    }
    Ok(out)
}

fn clause_matches(c: &Clause, value: Option<&str>) -> Result<bool, MlflowError> {
    let Some(value) = value else {
        return Ok(c.op == Op::Ne);
    };
    let like = |p: &str, ci: bool| {
        let pat = if ci {
            LikePattern::case_insensitive(p)
        } else {
            LikePattern::case_sensitive(p)
        };
        pat.map(|m| m.matches(value))
            .map_err(|e| MlflowError::invalid(e.to_string()))
    };
    let first = c.values.first().map(String::as_str).unwrap_or("");
    Ok(match c.op {
        Op::Eq => value == first,
        Op::Ne => value != first,
        Op::Like => like(first, false)?,
        Op::ILike => like(first, true)?,
        Op::In => c.values.iter().any(|v| v == value),
    })
}

fn model_matches(m: &RegisteredModel, clauses: &[Clause]) -> Result<bool, MlflowError> {
    for c in clauses {
        let value = if c.field == "name" {
            Some(m.name.as_str())
        } else if let Some(key) = c.field.strip_prefix("tags.") {
            m.tags.get(key).map(String::as_str)
        } else {
            return Err(MlflowError::invalid(format!(
                "Invalid attribute key '{}' specified: registered models are searched by name \
                 and tags.<key>",
                c.field
            )));
        };
        if !clause_matches(c, value)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn version_matches(v: &ModelVersion, clauses: &[Clause]) -> Result<bool, MlflowError> {
    for c in clauses {
        let number = v.version.to_string();
        let run = v.run.map(|r| r.to_string());
        let value = match c.field.as_str() {
            "name" => Some(v.model.as_str()),
            "run_id" => run.as_deref(),
            "source_path" | "source" => Some(v.source.as_str()),
            "version_number" | "version" => Some(number.as_str()),
            f => match f.strip_prefix("tags.") {
                Some(key) => v.tags.get(key).map(String::as_str),
                None => {
                    return Err(MlflowError::invalid(format!(
                        "Invalid attribute key '{f}' specified: model versions are searched by \
                         name, run_id, source_path, version_number and tags.<key>"
                    )));
                }
            },
        };
        if !clause_matches(c, value)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sorts by MLflow's `order_by` (`name`, `version_number`, `creation_timestamp`,
/// `last_updated_timestamp`, each `ASC` or `DESC`); ties keep `default`'s order.
fn order<T>(
    items: &mut [T],
    order_by: &[String],
    key: impl Fn(&T, &str) -> Option<Value>,
) -> Result<(), MlflowError> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for o in order_by {
        let mut parts = o.split_whitespace();
        let field = parts.next().unwrap_or("").to_owned();
        let desc = match parts.next().map(str::to_uppercase).as_deref() {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => {
                return Err(MlflowError::invalid(format!(
                    "Invalid order_by clause '{o}': expected ASC or DESC, found '{other}'"
                )));
            }
        };
        if !matches!(
            field.as_str(),
            "name"
                | "version_number"
                | "creation_timestamp"
                | "timestamp"
                | "last_updated_timestamp"
        ) {
            return Err(MlflowError::invalid(format!(
                "Invalid order_by clause '{o}': order by name, version_number, \
                 creation_timestamp or last_updated_timestamp"
            )));
        }
        keys.push((field, desc));
    }
    let cmp = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    };
    items.sort_by(|a, b| {
        for (field, desc) in &keys {
            let (x, y) = (key(a, field), key(b, field));
            let o = cmp(&x.unwrap_or(Value::Null), &y.unwrap_or(Value::Null));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}

async fn search_models(st: AppState, req: SearchReq) -> Reply {
    // MLflow's server refuses more than 1,000 (`SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD`).
    let max = max_results(req.max_results, 100, 1000)?;
    let offset = super::dto::parse_page_token(req.page_token.as_deref())? as usize;
    let clauses = parse_filter(req.filter.as_deref().unwrap_or(""))?;
    let models = st.call(|ws| ws.registered_models()).await?;
    let mut hits: Vec<&RegisteredModel> = Vec::new();
    for m in &models {
        if model_matches(m, &clauses)? {
            hits.push(m);
        }
    }
    order(&mut hits, &req.order_by, |m, f| match f {
        "name" => Some(json!(m.name)),
        "creation_timestamp" | "timestamp" => Some(json!(m.created_ms)),
        "last_updated_timestamp" => Some(json!(m.updated_ms)),
        _ => None,
    })?;
    let next = (hits.len() > offset + max).then_some((offset + max) as u64);
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(max)
        .map(|m| model_json(m))
        .collect();
    json(json!({ "registered_models": page, "next_page_token": super::dto::page_token(next) }))
}

pub(crate) async fn search_registered_models(State(st): State<AppState>, uri: Uri) -> Reply {
    search_models(st, SearchReq::from_query(&uri)?).await
}

pub(crate) async fn search_registered_models_post(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    search_models(st, SearchReq::from_body(parse(b).await?)).await
}

async fn search_versions(st: AppState, req: SearchReq) -> Reply {
    // MLflow's server refuses more than 200,000 (`SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD`).
    let max = max_results(req.max_results, 10_000, 200_000)?;
    let offset = super::dto::parse_page_token(req.page_token.as_deref())? as usize;
    let clauses = parse_filter(req.filter.as_deref().unwrap_or(""))?;
    // `name = 'x'` reads one model, anything else every model.
    let one = clauses
        .iter()
        .find(|c| c.field == "name" && c.op == Op::Eq)
        .and_then(|c| c.values.first().cloned());
    let models = st
        .call(move |ws: &Workspace| match one {
            Some(name) => match ws.registered_model(&name) {
                Ok(m) => Ok(vec![m]),
                Err(e) if e.code() == cairn_core::Code::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            },
            None => ws.registered_models(),
        })
        .await?;
    let mut hits: Vec<&ModelVersion> = Vec::new();
    for v in models.iter().flat_map(|m| m.live_versions()) {
        if version_matches(v, &clauses)? {
            hits.push(v);
        }
    }
    // MLflow's default: newest first within a name.
    let order_by = if req.order_by.is_empty() {
        vec!["name ASC".to_owned(), "version_number DESC".to_owned()]
    } else {
        req.order_by
    };
    order(&mut hits, &order_by, |v, f| match f {
        "name" => Some(json!(v.model)),
        "version_number" => Some(json!(v.version)),
        "creation_timestamp" | "timestamp" => Some(json!(v.created_ms)),
        "last_updated_timestamp" => Some(json!(v.updated_ms)),
        _ => None,
    })?;
    let next = (hits.len() > offset + max).then_some((offset + max) as u64);
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(max)
        .map(|v| version_json(v))
        .collect();
    json(json!({ "model_versions": page, "next_page_token": super::dto::page_token(next) }))
}

pub(crate) async fn search_model_versions(State(st): State<AppState>, uri: Uri) -> Reply {
    search_versions(st, SearchReq::from_query(&uri)?).await
}

pub(crate) async fn search_model_versions_post(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    search_versions(st, SearchReq::from_body(parse(b).await?)).await
}

/// What a search does with a JSON body before it reads the workspace (for `fuzz.rs`).
pub(crate) fn fuzz_search_body(b: &axum::body::Bytes) -> Result<(), String> {
    let req = SearchReq::from_body(super::body::<SearchBody>(b).map_err(|e| e.message)?);
    parse_filter(req.filter.as_deref().unwrap_or(""))
        .map(drop)
        .map_err(|e| e.message)
}

/// What a search does with a query string before it reads the workspace (for `fuzz.rs`).
pub(crate) fn fuzz_search_query(uri: &Uri) -> Result<(), String> {
    let req = SearchReq::from_query(uri).map_err(|e| e.message)?;
    parse_filter(req.filter.as_deref().unwrap_or(""))
        .map(drop)
        .map_err(|e| e.message)
}

#[derive(Deserialize)]
pub(crate) struct LatestReq {
    name: Option<String>,
    #[serde(default)]
    stages: Vec<String>,
}

pub(crate) async fn get_latest_versions(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: LatestReq = if b.iter().all(u8::is_ascii_whitespace) {
        let mut r = LatestReq {
            name: None,
            stages: Vec::new(),
        };
        for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "name" => r.name = Some(v.into_owned()),
                "stages" => r.stages.push(v.into_owned()),
                _ => {}
            }
        }
        r
    } else {
        parse(b).await?
    };
    let name = required(req.name, "name")?;
    let m = st.call(move |ws| ws.registered_model(&name)).await?;
    json(json!({ "model_versions": latest_per_stage(&m, &req.stages) }))
}

#[derive(Deserialize)]
pub(crate) struct CreateVersion {
    name: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create_model_version(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: CreateVersion = parse(b).await?;
    let name = required(req.name, "name")?;
    let source = required(req.source, "source")?;
    if let Some(refused) = super::sources::local_source_refusal(&source, req.run_id.as_deref()) {
        return Err(refused);
    }
    let tags = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let v = st
        .write(move |ws| {
            let run = req
                .run_id
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(parse_run_id)
                .transpose()?;
            ws.create_model_version(&name, &source, run, req.description.as_deref(), tags)
        })
        .await?;
    json(json!({ "model_version": version_json(&v) }))
}

pub(crate) async fn get_model_version(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let version = q.version()?;
    let v = st
        .call(move |ws| ws.model_version(&name, version))
        .await
        .map_err(version_not_found(&q, version))?;
    json(json!({ "model_version": version_json(&v) }))
}

/// An unknown version as MLflow words it.
fn version_not_found(
    q: &NameQuery,
    version: u32,
) -> impl FnOnce(crate::CallError) -> MlflowError + '_ {
    move |e| match e {
        crate::CallError::Core(cairn_core::Error::UnknownModelVersion { .. }) => {
            MlflowError::not_found(format!(
                "Model Version (name={}, version={version}) not found",
                q.name.as_deref().unwrap_or("")
            ))
        }
        other => other.into(),
    }
}

pub(crate) async fn update_model_version(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let version = q.version()?;
    let description = q.description.clone();
    let v = st
        .write(move |ws| ws.set_version_meta(&name, version, "description", description.as_deref()))
        .await
        .map_err(version_not_found(&q, version))?;
    json(json!({ "model_version": version_json(&v) }))
}

#[derive(Deserialize)]
pub(crate) struct StageReq {
    name: Option<String>,
    version: Option<String>,
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: bool,
}

/// MLflow's deprecated stages: `None`, `Staging`, `Production`, `Archived` (any case).
fn canonical_stage(stage: &str) -> Result<&'static str, MlflowError> {
    ["None", "Staging", "Production", "Archived"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid Model Version stage: {stage}. Value must be one of None, Staging, \
                 Production, Archived."
            ))
        })
}

pub(crate) async fn transition_stage(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: StageReq = parse(b).await?;
    let name = required(req.name, "name")?;
    let version = parse_version(&required(req.version, "version")?)?;
    let stage = canonical_stage(&required(req.stage, "stage")?)?;
    let archive = req.archive_existing_versions && matches!(stage, "Staging" | "Production");
    let v = st
        .write(move |ws| {
            if archive {
                let m = ws.registered_model(&name)?;
                for other in m.live_versions() {
                    if other.version != version && other.stage.as_deref() == Some(stage) {
                        ws.set_version_meta(&name, other.version, "stage", Some("Archived"))?;
                    }
                }
            }
            ws.set_version_meta(&name, version, "stage", Some(stage))
        })
        .await?;
    json(json!({ "model_version": version_json(&v) }))
}

pub(crate) async fn delete_model_version(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let version = q.version()?;
    st.write(move |ws| ws.delete_model_version(&name, version, &api_reason("version")))
        .await
        .map_err(version_not_found(&q, version))?;
    json(json!({}))
}

pub(crate) async fn set_model_version_tag(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TagReq = parse(b).await?;
    let name = required(req.name, "name")?;
    let version = parse_version(&required(req.version, "version")?)?;
    let key = required(req.key, "key")?;
    let value = req.value.unwrap_or_default();
    st.write(move |ws| ws.set_version_meta(&name, version, &format!("tag/{key}"), Some(&value)))
        .await?;
    json(json!({}))
}

pub(crate) async fn delete_model_version_tag(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let version = q.version()?;
    let key = required(q.key, "key")?;
    st.write(move |ws| {
        let v = ws.model_version(&name, version)?;
        if !v.tags.contains_key(&key) {
            return Err(cairn_core::Error::Invalid(format!(
                "version {version} of registered model '{name}' has no tag '{key}'"
            )));
        }
        ws.set_version_meta(&name, version, &format!("tag/{key}"), None)
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct AliasReq {
    name: Option<String>,
    alias: Option<String>,
    version: Option<String>,
}

pub(crate) async fn set_alias(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: AliasReq = parse(b).await?;
    let name = required(req.name, "name")?;
    let alias = required(req.alias, "alias")?;
    let version = parse_version(&required(req.version, "version")?)?;
    st.write(move |ws| ws.set_model_alias(&name, &alias, version, None))
        .await?;
    json(json!({}))
}

pub(crate) async fn delete_alias(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = request(&uri, b).await?;
    let name = q.name()?;
    let alias = required(q.alias, "alias")?;
    st.write(move |ws| ws.delete_model_alias(&name, &alias))
        .await?;
    json(json!({}))
}

pub(crate) async fn get_by_alias(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let alias = required(q.alias, "alias")?;
    let v = st
        .call(move |ws| ws.model_version_by_alias(&name, &alias))
        .await?;
    json(json!({ "model_version": version_json(&v) }))
}

/// Where a version's files are: what `models:/name/1` and `models:/name@alias` resolve to. A
/// version pinned to content here downloads that content by its hash, whatever happened to
/// the run's artifacts since; one whose files live elsewhere answers its source.
pub(crate) async fn get_download_uri(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let version = q.version()?;
    let v = st
        .call(move |ws| ws.model_version(&name, version))
        .await
        .map_err(version_not_found(&q, version))?;
    let uri = match (v.content, v.content_kind) {
        (Some(hash), Some(ArtifactKind::File)) => {
            let file = v
                .path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or("model");
            format!("mlflow-artifacts:/{CONTENT_ROOT}/{hash}/{file}")
        }
        (Some(hash), _) => format!("mlflow-artifacts:/{CONTENT_ROOT}/{hash}"),
        (None, _) => v.source,
    };
    json(json!({ "artifact_uri": uri }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_mlflow_writes_them() {
        let c = parse_filter("name = 'churn' AND tags.`team x` = \"a\"").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].field.as_str(), &c[0].op), ("name", &Op::Eq));
        assert_eq!(c[1].field, "tags.team x");
        let c = parse_filter("run_id IN ('a', 'b') and name ILIKE '%Churn%'").unwrap();
        assert_eq!(c[0].values, ["a", "b"]);
        assert_eq!(c[1].op, Op::ILike);
        for bad in [
            "name",
            "name = 'x' OR name = 'y'",
            "name ~ 'x'",
            "name = 'x",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        assert!(parse_filter("").unwrap().is_empty());
    }
}
