//! Dataset inputs (`runs/log-inputs`, what `mlflow.log_input` sends): each dataset becomes part
//! of the run's lineage, under the role the workspace gives it (its context, else its name).

use axum::extract::State;
use cairn_model::DatasetSnapshot;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::KeyValue;
use super::{JsonBody, MlflowError, Reply, RunRef, json, parse, write_run};
use crate::AppState;

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
    run_uuid: Option<String>,
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

/// A dataset input as a snapshot of the run's lineage (its context from the
/// `mlflow.data.context` tag, its row count from the profile).
fn snapshot(input: DatasetInput) -> Result<DatasetSnapshot, MlflowError> {
    let d = input.dataset;
    let name = d
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| MlflowError::invalid("a dataset input needs a name"))?;
    let context = input
        .tags
        .into_iter()
        .find(|t| t.key == "mlflow.data.context")
        .map(|t| t.value);
    let rows = d
        .profile
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p.get("num_rows").and_then(Value::as_u64));
    Ok(DatasetSnapshot {
        name: Some(name),
        context,
        uri: d.source.as_deref().map(source_uri),
        digest: d.digest.filter(|x| !x.is_empty()),
        size_bytes: None,
        rows,
        source_type: d.source_type,
        schema: d.schema.filter(|s| !s.is_empty()),
    })
}

pub(crate) async fn log_inputs(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogInputs = parse(b).await?;
    let inputs = req
        .datasets
        .into_iter()
        .map(snapshot)
        .collect::<Result<Vec<_>, _>>()?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    write_run(&st, &run, move |ws, id| ws.add_dataset_inputs(id, inputs)).await?;
    json(json!({}))
}
