//! Read models for the UI and other API clients: a search page of run summaries, the workspace's
//! identity. Front ends (HTTP, Tauri) return these as they are.

use std::collections::BTreeMap;

use cairn_model::{ExperimentId, Run, RunId, RunStatus};
use serde::Serialize;

use crate::{Error, Stores};

/// A search: a filter in the query language, narrowed by a saved view and to the user's own runs
/// when asked, an order, an experiment, a page.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub q: Option<String>,
    /// A saved view whose query this search narrows (and whose order it takes when it has none).
    pub view: Option<String>,
    /// Only the workspace user's own runs.
    pub mine: Option<bool>,
    /// `metrics.acc DESC`, `params.lr`, `attributes.start_time DESC`…; newest first when absent.
    pub order: Option<String>,
    /// An experiment name or id.
    pub experiment: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// One run as a result row: what a table shows and filters on.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunSummary {
    pub id: RunId,
    pub experiment: ExperimentId,
    pub experiment_name: String,
    pub name: String,
    pub owner: Option<String>,
    pub status: RunStatus,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// Not compliant with its schema (see `compliance`).
    pub incomplete: bool,
    pub compliance: cairn_model::ComplianceState,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, cairn_model::Num>,
    /// What it cost and how idle its GPUs were (absent until the cost projection has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub cost: Option<crate::cost::CostBrief>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct SearchPage {
    pub total: u64,
    pub next_offset: Option<u64>,
    pub runs: Vec<RunSummary>,
}

/// Who and where: what a UI shows in its header.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Info {
    pub version: &'static str,
    pub workspace: String,
    pub user: String,
    pub demo: bool,
}

/// A number as a JSON value, keeping NaN and the infinities as strings ([`cairn_model::num`]).
pub fn json_number(v: f64) -> serde_json::Value {
    match cairn_model::num::text_of(v) {
        Some(text) => serde_json::Value::String(text.into()),
        None => serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
    }
}

/// One point of a metric series as the API sends it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MetricPoint {
    pub step: i64,
    /// When it was measured, in Unix milliseconds.
    pub ts_ms: i64,
    #[serde(with = "cairn_model::num")]
    #[cfg_attr(
        feature = "ts",
        ts(as = "cairn_model::Num"),
        schemars(with = "cairn_model::Num")
    )]
    pub value: f64,
}

impl From<cairn_metrics::Point> for MetricPoint {
    fn from(p: cairn_metrics::Point) -> MetricPoint {
        MetricPoint {
            step: p.step,
            ts_ms: p.ts_ms,
            value: p.value,
        }
    }
}

impl MetricPoint {
    pub(crate) fn to_point(self) -> cairn_metrics::Point {
        cairn_metrics::Point {
            step: self.step,
            ts_ms: self.ts_ms,
            value: self.value,
        }
    }
}

pub(crate) fn summary(r: Run, experiment_name: String) -> RunSummary {
    RunSummary {
        id: r.id,
        experiment: r.experiment,
        experiment_name,
        name: r.name,
        owner: r.owner,
        status: r.status,
        start_ms: r.start_ms,
        end_ms: r.end_ms,
        incomplete: !r.compliance.is_compliant(),
        compliance: r.compliance.state,
        params: r.params,
        tags: r.tags,
        metrics: r
            .metrics
            .into_iter()
            .map(|(k, m)| (k, cairn_model::Num(m.last)))
            .collect(),
        cost: None,
    }
}

/// A downsampled bucket of a metric as clients read it (non-finite values as strings).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BucketView {
    pub step_lo: i64,
    pub step_hi: i64,
    pub count: u64,
    pub min: cairn_model::Num,
    pub max: cairn_model::Num,
    pub first: cairn_model::Num,
    pub last: cairn_model::Num,
    pub nonfinite: u64,
}

impl From<cairn_metrics::Bucket> for BucketView {
    fn from(b: cairn_metrics::Bucket) -> BucketView {
        BucketView {
            step_lo: b.step_lo,
            step_hi: b.step_hi,
            count: b.count,
            min: b.min.into(),
            max: b.max.into(),
            first: b.first.into(),
            last: b.last.into(),
            nonfinite: b.nonfinite,
        }
    }
}

impl Stores {
    /// A metric of the run whose id starts with `run`, downsampled to at most `buckets` buckets
    /// (over the steps in `range`, or all).
    pub(crate) fn metric_buckets(
        &self,
        run: &str,
        key: &str,
        range: Option<(i64, i64)>,
        buckets: usize,
    ) -> Result<Vec<BucketView>, Error> {
        let id = self.resolve_run(run)?;
        Ok(self
            .metric_downsampled(id, key, range, buckets.clamp(1, 100_000))?
            .into_iter()
            .map(BucketView::from)
            .collect())
    }
}
