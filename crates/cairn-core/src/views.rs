//! Read models for the UI and other API clients: a search page of run summaries, the workspace's
//! identity. Front ends (HTTP, Tauri) return these as they are.

use std::collections::BTreeMap;

use cairn_model::{ExperimentId, Run, RunId, RunStatus};
use serde::Serialize;

use crate::{Error, Workspace};

/// A search: a filter in the query language, an order, an experiment, a page.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SearchRequest {
    pub q: Option<String>,
    /// `metrics.acc DESC`, `params.lr`, `attributes.start_time DESC`…; newest first when absent.
    pub order: Option<String>,
    /// An experiment name or id.
    pub experiment: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// One run as a result row: what a table shows and filters on.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunSummary {
    pub id: RunId,
    pub experiment: ExperimentId,
    pub experiment_name: String,
    pub name: String,
    pub owner: Option<String>,
    pub status: RunStatus,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub incomplete: bool,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Latest value of each metric; non-finite values as "NaN", "Infinity", "-Infinity".
    #[cfg_attr(feature = "ts", ts(as = "BTreeMap<String, cairn_model::ts::Num>"))]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchPage {
    pub total: u64,
    pub next_offset: Option<u64>,
    pub runs: Vec<RunSummary>,
}

/// Who and where: what a UI shows in its header.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Info {
    pub version: &'static str,
    pub workspace: String,
    pub user: String,
    pub demo: bool,
}

/// A number as JSON, keeping NaN and the infinities as strings.
pub fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or_else(
        || {
            serde_json::Value::String(
                if v.is_nan() {
                    "NaN"
                } else if v > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        },
        Into::into,
    )
}

impl Workspace {
    pub fn info(&self) -> Info {
        Info {
            version: env!("CARGO_PKG_VERSION"),
            workspace: self.dir().display().to_string(),
            user: self.user().to_owned(),
            demo: self.workspace_info().demo,
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
        incomplete: !r.incomplete.is_empty(),
        params: r.params,
        tags: r.tags,
        metrics: r
            .metrics
            .into_iter()
            .map(|(k, m)| (k, json_number(m.last)))
            .collect(),
    }
}

/// A downsampled bucket of a metric as clients read it (non-finite values as strings).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BucketView {
    pub step_lo: i64,
    pub step_hi: i64,
    pub count: u64,
    #[cfg_attr(feature = "ts", ts(as = "cairn_model::ts::Num"))]
    pub min: serde_json::Value,
    #[cfg_attr(feature = "ts", ts(as = "cairn_model::ts::Num"))]
    pub max: serde_json::Value,
    #[cfg_attr(feature = "ts", ts(as = "cairn_model::ts::Num"))]
    pub first: serde_json::Value,
    #[cfg_attr(feature = "ts", ts(as = "cairn_model::ts::Num"))]
    pub last: serde_json::Value,
    pub nonfinite: u64,
}

impl From<cairn_metrics::Bucket> for BucketView {
    fn from(b: cairn_metrics::Bucket) -> BucketView {
        BucketView {
            step_lo: b.step_lo,
            step_hi: b.step_hi,
            count: b.count,
            min: json_number(b.min),
            max: json_number(b.max),
            first: json_number(b.first),
            last: json_number(b.last),
            nonfinite: b.nonfinite,
        }
    }
}

impl Workspace {
    /// A metric of the run whose id starts with `run`, downsampled to at most `buckets` buckets
    /// (over the steps in `range`, or all).
    pub fn metric_buckets(
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
