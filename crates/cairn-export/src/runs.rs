//! The runs table: one row per run — ids, names, experiment, owner, status, times, lineage,
//! tags, cost, a typed column per param and the final value, minimum and maximum of each metric.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use cairn_core::RunView;
use cairn_core::cost::CostBrief;
use cairn_model::{MetricSummary, ParamValue};

use crate::ExportError;

/// Runs per record batch.
pub(crate) const BATCH_RUNS: usize = 4096;

/// The type a param's column gets: the narrowest that every value of that key (in the runs
/// exported) reads as, by [`ParamValue::infer`]: all integers → `int`, integers and finite
/// floats → `float`, all booleans → `bool`, anything else (or a mix) → `string`, the text as
/// logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Bool,
    Int,
    Float,
    String,
}

impl ParamType {
    pub(crate) fn of(text: &str) -> ParamType {
        match ParamValue::infer(text) {
            ParamValue::Bool(_) => ParamType::Bool,
            ParamValue::Int(_) => ParamType::Int,
            ParamValue::Float(_) => ParamType::Float,
            ParamValue::Str(_) => ParamType::String,
        }
    }

    /// The type both values fit.
    pub(crate) fn join(self, other: ParamType) -> ParamType {
        use ParamType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int, Float) | (Float, Int) => Float,
            _ => String,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            ParamType::Bool => DataType::Boolean,
            ParamType::Int => DataType::Int64,
            ParamType::Float => DataType::Float64,
            ParamType::String => DataType::Utf8,
        }
    }
}

/// What the first pass over the matching runs learned: the columns the table needs.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    pub params: BTreeMap<String, ParamType>,
    pub metrics: BTreeSet<String>,
}

impl Columns {
    pub(crate) fn see(&mut self, params: &BTreeMap<String, String>, metrics: &[&String]) {
        for (k, v) in params {
            let t = ParamType::of(v);
            self.params
                .entry(k.clone())
                .and_modify(|have| *have = have.join(t))
                .or_insert(t);
        }
        for k in metrics {
            if !self.metrics.contains(*k) {
                self.metrics.insert((*k).clone());
            }
        }
    }
}

/// The fixed columns, in order, before the params and metrics.
const FIXED: &[(&str, DataType)] = &[
    ("run_id", DataType::Utf8),
    ("name", DataType::Utf8),
    ("experiment_id", DataType::Utf8),
    ("experiment", DataType::Utf8),
    ("owner", DataType::Utf8),
    ("status", DataType::Utf8),
    ("start_time", DataType::Null), // a timestamp: see `time_type`
    ("end_time", DataType::Null),
    ("parent_id", DataType::Utf8),
    ("parent_kind", DataType::Utf8),
    ("datasets", DataType::Utf8),
    ("feature_set", DataType::Utf8),
    ("feature_set_version", DataType::Utf8),
    ("code_repo", DataType::Utf8),
    ("code_commit", DataType::Utf8),
    ("code_branch", DataType::Utf8),
    ("code_dirty", DataType::Boolean),
    ("infra_host", DataType::Utf8),
    ("infra_instance_type", DataType::Utf8),
    ("infra_gpu_model", DataType::Utf8),
    ("infra_gpu_count", DataType::Int64),
    ("tags", DataType::Utf8),
    ("cost_usd", DataType::Float64),
    ("gpu_idle_share", DataType::Float64),
];

/// Columns that every run has.
const REQUIRED: &[&str] = &[
    "run_id",
    "name",
    "experiment_id",
    "experiment",
    "status",
    "start_time",
];

pub(crate) fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The runs table's schema for these params and metrics.
pub(crate) fn schema(cols: &Columns) -> Arc<Schema> {
    let mut fields: Vec<Field> = FIXED
        .iter()
        .map(|(name, t)| {
            let t = if *t == DataType::Null {
                time_type()
            } else {
                t.clone()
            };
            Field::new(*name, t, !REQUIRED.contains(name))
        })
        .collect();
    for (k, t) in &cols.params {
        fields.push(Field::new(format!("params.{k}"), t.data_type(), true));
    }
    for k in &cols.metrics {
        for prefix in ["metrics", "metrics_min", "metrics_max"] {
            fields.push(Field::new(format!("{prefix}.{k}"), DataType::Float64, true));
        }
    }
    Arc::new(Schema::new(fields))
}

enum Col {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMillisecondBuilder),
}

impl Col {
    fn new(t: &DataType) -> Col {
        match t {
            DataType::Int64 => Col::Int(Int64Builder::new()),
            DataType::Float64 => Col::Float(Float64Builder::new()),
            DataType::Boolean => Col::Bool(BooleanBuilder::new()),
            DataType::Timestamp(..) => Col::Time(TimestampMillisecondBuilder::new()),
            _ => Col::Str(StringBuilder::new()),
        }
    }

    fn str(&mut self, v: Option<&str>) {
        if let Col::Str(b) = self {
            b.append_option(v);
        }
    }
    fn int(&mut self, v: Option<i64>) {
        if let Col::Int(b) = self {
            b.append_option(v);
        }
    }
    fn float(&mut self, v: Option<f64>) {
        if let Col::Float(b) = self {
            b.append_option(v);
        }
    }
    fn bool(&mut self, v: Option<bool>) {
        if let Col::Bool(b) = self {
            b.append_option(v);
        }
    }
    fn time(&mut self, v: Option<i64>) {
        if let Col::Time(b) = self {
            b.append_option(v);
        }
    }

    /// A param's text in its column's type; a value that does not read as that type (a param
    /// first seen after the columns were chosen) is left null rather than guessed.
    fn param(&mut self, text: Option<&str>) {
        match self {
            Col::Str(b) => b.append_option(text),
            Col::Int(b) => b.append_option(text.and_then(|t| match ParamValue::infer(t) {
                ParamValue::Int(i) => Some(i),
                _ => None,
            })),
            Col::Float(b) => b.append_option(text.and_then(|t| ParamValue::infer(t).as_f64())),
            Col::Bool(b) => b.append_option(text.and_then(|t| match ParamValue::infer(t) {
                ParamValue::Bool(v) => Some(v),
                _ => None,
            })),
            Col::Time(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::Int(b) => Arc::new(b.finish()),
            Col::Float(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish().with_timezone("UTC")),
        }
    }
}

/// Rows of the runs table being gathered into a record batch.
pub(crate) struct RunRows {
    schema: Arc<Schema>,
    params: Vec<String>,
    metrics: Vec<String>,
    cols: Vec<Col>,
    len: usize,
}

impl std::fmt::Debug for RunRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRows").field("len", &self.len).finish()
    }
}

impl RunRows {
    pub(crate) fn new(cols: &Columns) -> RunRows {
        let schema = schema(cols);
        let builders = schema
            .fields()
            .iter()
            .map(|f| Col::new(f.data_type()))
            .collect();
        RunRows {
            schema,
            params: cols.params.keys().cloned().collect(),
            metrics: cols.metrics.iter().cloned().collect(),
            cols: builders,
            len: 0,
        }
    }

    pub(crate) fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a run: its metric summaries are the catalog's, updated by the metric store's live
    /// ones (what `cairn runs show` reports as `live_metrics`).
    pub(crate) fn push(&mut self, view: &RunView, cost: Option<&CostBrief>) {
        let run = &view.run;
        let lineage = &run.lineage;
        let code = lineage.code.as_ref();
        let infra = lineage.infra.as_ref();
        let json_of = |empty: bool, v: Result<String, serde_json::Error>| {
            if empty { None } else { v.ok() }
        };
        let datasets = json_of(
            lineage.datasets.is_empty(),
            serde_json::to_string(&lineage.datasets),
        );
        let tags = json_of(run.tags.is_empty(), serde_json::to_string(&run.tags));
        let gpu_models = infra.filter(|i| !i.gpus.is_empty()).map(|i| {
            let mut models: Vec<&str> = i.gpus.iter().map(|g| g.model.as_str()).collect();
            models.dedup();
            models.join(",")
        });
        let gpu_count = infra
            .filter(|i| !i.gpus.is_empty())
            .map(|i| i.gpus.iter().map(|g| i64::from(g.count)).sum::<i64>());

        let mut c = self.cols.iter_mut();
        let mut next = || c.next().expect("a builder per column");
        next().str(Some(&run.id.to_string()));
        next().str(Some(&run.name));
        next().str(Some(&run.experiment.to_string()));
        next().str(Some(&view.experiment_name));
        next().str(run.owner.as_deref());
        next().str(Some(run.status.as_str()));
        next().time(Some(run.start_ms));
        next().time(run.end_ms);
        next().str(run.parent.map(|p| p.to_string()).as_deref());
        next().str(run.parent_kind.map(|k| k.as_str()));
        next().str(datasets.as_deref());
        next().str(lineage.feature_set.as_ref().map(|f| f.name.as_str()));
        next().str(lineage.feature_set.as_ref().map(|f| f.version.as_str()));
        next().str(code.and_then(|c| c.repo.as_deref()));
        next().str(code.and_then(|c| c.commit.as_deref()));
        next().str(code.and_then(|c| c.branch.as_deref()));
        next().bool(code.map(|c| c.dirty));
        next().str(infra.and_then(|i| i.host.as_deref()));
        next().str(infra.and_then(|i| i.instance_type.as_deref()));
        next().str(gpu_models.as_deref());
        next().int(gpu_count);
        next().str(tags.as_deref());
        next().float(cost.and_then(|c| c.usd));
        next().float(cost.and_then(|c| c.idle_share));
        for k in &self.params {
            next().param(run.params.get(k).map(String::as_str));
        }
        for k in &self.metrics {
            let s: Option<&MetricSummary> = view.live_metrics.get(k).or(run.metrics.get(k));
            next().float(s.map(|s| s.last));
            next().float(s.and_then(|s| s.min));
            next().float(s.and_then(|s| s.max));
        }
        self.len += 1;
    }

    /// The rows gathered so far as a record batch; starts a new one.
    pub(crate) fn take(&mut self) -> Result<RecordBatch, ExportError> {
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.len = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|source| ExportError::Arrow {
            table: "runs",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ParamType::{self, *};

    #[test]
    fn a_param_column_takes_the_narrowest_type_every_value_fits() {
        let of = |values: &[&str]| {
            values
                .iter()
                .map(|v| ParamType::of(v))
                .reduce(ParamType::join)
                .unwrap()
        };
        assert_eq!(of(&["1", "32", "-7"]), Int);
        assert_eq!(of(&["1", "0.5", "1e-05"]), Float);
        assert_eq!(of(&["true", "False"]), Bool);
        assert_eq!(of(&["adam", "sgd"]), String);
        assert_eq!(of(&["1", "adam"]), String);
        assert_eq!(of(&["true", "1"]), String);
        // Non-finite spellings are text to the inference, so the column is text.
        assert_eq!(of(&["0.1", "nan"]), String);
    }
}
