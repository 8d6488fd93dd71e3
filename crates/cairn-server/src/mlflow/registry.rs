//! The MLflow model registry calls that `mlflow.register_model` and
//! `MlflowClient.set_registered_model_alias` make: registered models, versions, aliases.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Uri;
use cairn_model::{ModelVersion, RegisteredModel};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{KeyValue, de_opt_i64, kv_list};
use super::{JsonBody, MlflowError, Reply, json, parse, query};
use super::{max_results, parse_run_id};
use crate::AppState;

fn version_json(name: &str, v: &ModelVersion, aliases: &BTreeMap<String, u32>) -> Value {
    json!({
        "name": name,
        "version": v.version.to_string(),
        "creation_timestamp": v.created_ms,
        "last_updated_timestamp": v.created_ms,
        "user_id": v.user.clone().unwrap_or_default(),
        "current_stage": "None",
        "description": v.description.clone().unwrap_or_default(),
        "source": v.source,
        "run_id": v.run.map(|r| r.to_string()).unwrap_or_default(),
        "status": "READY",
        "tags": kv_list(&v.tags),
        "aliases": aliases.iter().filter(|(_, n)| **n == v.version).map(|(a, _)| a.clone()).collect::<Vec<_>>(),
    })
}

fn model_json(m: &RegisteredModel) -> Value {
    json!({
        "name": m.name,
        "creation_timestamp": m.created_ms,
        "last_updated_timestamp": m.updated_ms,
        "description": m.description.clone().unwrap_or_default(),
        "tags": kv_list(&m.tags),
        "aliases": m.aliases.iter().map(|(a, v)| json!({ "alias": a, "version": v.to_string() })).collect::<Vec<_>>(),
        "latest_versions": m.versions.last().map(|v| vec![version_json(&m.name, v, &m.aliases)]).unwrap_or_default(),
    })
}

fn parse_version(v: &str) -> Result<u32, MlflowError> {
    v.trim().parse().map_err(|_| {
        MlflowError::invalid(format!(
            "invalid model version '{v}': expected a positive whole number"
        ))
    })
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
    let name = req
        .name
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'"))?;
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
}

impl NameQuery {
    fn name(&self) -> Result<String, MlflowError> {
        self.name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'"))
    }
}

pub(crate) async fn get_registered_model(State(st): State<AppState>, uri: Uri) -> Reply {
    let name = query::<NameQuery>(&uri)?.name()?;
    let m = st.call(move |ws| ws.registered_model(&name)).await?;
    json(json!({ "registered_model": model_json(&m) }))
}

pub(crate) async fn delete_registered_model(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = if b.is_empty() {
        query(&uri)?
    } else {
        parse(b).await?
    };
    let name = q.name()?;
    st.write(move |ws| ws.delete_registered_model(&name))
        .await?;
    json(json!({}))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchModels {
    filter: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn search_models(st: AppState, req: SearchModels) -> Reply {
    // MLflow's server refuses more than 1,000 (`SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD`).
    let max = max_results(req.max_results, 100, 1000)?;
    let offset = super::dto::parse_page_token(req.page_token.as_deref())? as usize;
    // `name = 'x'` and `name LIKE 'x%'` (what clients send); anything else lists all.
    let wanted = req.filter.as_deref().and_then(|f| {
        f.split_once('=')
            .map(|(_, v)| v.trim().trim_matches('\'').trim_matches('"').to_owned())
    });
    let models = st.call(|ws| ws.registered_models()).await?;
    let hits: Vec<&RegisteredModel> = models
        .iter()
        .filter(|m| wanted.as_ref().is_none_or(|w| &m.name == w))
        .collect();
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
    search_models(st, query(&uri)?).await
}

pub(crate) async fn search_registered_models_post(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    search_models(st, parse(b).await?).await
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
    let name = req
        .name
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'"))?;
    let source = req
        .source
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'source'"))?;
    if let Some(refused) = super::sources::local_source_refusal(&source, req.run_id.as_deref()) {
        return Err(refused);
    }
    let tags = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let (v, aliases) = st
        .write(move |ws| {
            let run = req
                .run_id
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(parse_run_id)
                .transpose()?;
            let v =
                ws.create_model_version(&name, &source, run, req.description.as_deref(), tags)?;
            Ok((v, ws.registered_model(&name)?))
        })
        .await?;
    json(json!({ "model_version": version_json(&aliases.name, &v, &aliases.aliases) }))
}

pub(crate) async fn get_model_version(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let version = parse_version(q.version.as_deref().unwrap_or(""))?;
    let m = st.call(move |ws| ws.registered_model(&name)).await?;
    let v = m
        .versions
        .iter()
        .find(|v| v.version == version)
        .ok_or_else(|| {
            MlflowError::not_found(format!(
                "Model Version (name={}, version={version}) not found",
                m.name
            ))
        })?;
    json(json!({ "model_version": version_json(&m.name, v, &m.aliases) }))
}

#[derive(Deserialize)]
pub(crate) struct AliasReq {
    name: Option<String>,
    alias: Option<String>,
    version: Option<String>,
}

pub(crate) async fn set_alias(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: AliasReq = parse(b).await?;
    let name = req
        .name
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'"))?;
    let alias = req
        .alias
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'alias'"))?;
    let version = parse_version(req.version.as_deref().unwrap_or(""))?;
    st.write(move |ws| ws.set_model_alias(&name, &alias, version))
        .await?;
    json(json!({}))
}

pub(crate) async fn delete_alias(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    let q: NameQuery = if b.is_empty() {
        query(&uri)?
    } else {
        parse(b).await?
    };
    let name = q.name()?;
    let alias = q
        .alias
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'alias'"))?;
    st.write(move |ws| ws.delete_model_alias(&name, &alias))
        .await?;
    json(json!({}))
}

pub(crate) async fn get_by_alias(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let alias = q
        .alias
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'alias'"))?;
    let (v, m) = st
        .call(move |ws| {
            let v = ws.model_version_by_alias(&name, &alias)?;
            Ok((v, ws.registered_model(&name)?))
        })
        .await?;
    json(json!({ "model_version": version_json(&m.name, &v, &m.aliases) }))
}

/// Where a version's files are: what `models:/name/1` and `models:/name@alias` resolve to.
pub(crate) async fn get_download_uri(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: NameQuery = query(&uri)?;
    let name = q.name()?;
    let version = parse_version(q.version.as_deref().unwrap_or(""))?;
    let v = st.call(move |ws| ws.model_version(&name, version)).await?;
    json(json!({ "artifact_uri": v.source }))
}
