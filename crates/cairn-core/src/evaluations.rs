//! Evaluations, first class: a run records what it scored on a benchmark — the dataset snapshot
//! it ran on, overall metrics, metrics per slice (`sex=female`), report artifacts — and the
//! fairness figures computed from the slices (`cairn_model::fairness`, projected by the catalog
//! when the evaluation changes). Ways in: [`Workspace::log_evaluation`] (the CLI's `cairn eval
//! log`, `/api/v1`), a by-group file (`crate::by_group`), and MLflow clients, whose metrics
//! logged against a dataset (what `mlflow.evaluate` sends) become an evaluation on it.

use std::collections::BTreeMap;

use cairn_catalog::RunEdit;
use cairn_model::{
    Evaluation, FairnessFigure, MAX_EVAL_METRICS, MAX_EVALUATIONS, Num, RunId, validate_benchmark,
};
use serde::{Deserialize, Serialize};

use crate::stores::now_ms;
use crate::{Error, Stores, Workspace};

/// What a caller logs: an evaluation of run `id` on `benchmark`. It replaces any evaluation of
/// that benchmark the run had.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct EvaluationLog {
    /// The run, by id or unique id prefix.
    pub id: String,
    pub benchmark: String,
    /// Digest of the dataset snapshot it ran on.
    pub dataset: Option<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, Num>,
    /// Metrics per slice: `sex=female` (or `age=60+&sex=female`) → metrics.
    #[serde(default)]
    pub slices: BTreeMap<String, BTreeMap<String, Num>>,
    /// Artifact paths of the run that report on it.
    #[serde(default)]
    pub reports: Vec<String>,
}

/// One evaluation of a run, with its fairness figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct EvaluationView {
    pub benchmark: String,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Per sensitive attribute and metric: difference and ratio over the slices.
    pub fairness: Vec<FairnessFigure>,
}

/// The artifact files `mlflow.evaluate` writes that report on the evaluation it logged (with
/// any `metric_prefix` before them).
const MLFLOW_REPORTS: &[&str] = &[
    "eval_results_table.json",
    "confusion_matrix.png",
    "roc_curve_plot.png",
    "precision_recall_curve_plot.png",
    "calibration_curve_plot.png",
    "lift_curve_plot.png",
];

/// A benchmark name made from an MLflow dataset's name: characters a benchmark may not hold
/// become `-`, at most 100 kept; an empty name is `mlflow-evaluate`.
fn benchmark_from_dataset(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(cairn_model::MAX_BENCHMARK_LEN)
        .collect();
    if cleaned.is_empty() {
        "mlflow-evaluate".into()
    } else {
        cleaned
    }
}

impl Stores {
    /// Records an evaluation whole (see [`Workspace::log_evaluation`]).
    pub(crate) fn log_evaluation(
        &mut self,
        id: RunId,
        benchmark: &str,
        mut eval: Evaluation,
    ) -> Result<EvaluationView, Error> {
        validate_benchmark(benchmark)?;
        let run = self.run_record(id)?;
        if run.deleted {
            return Err(Error::Conflict(format!(
                "run {id} is deleted: restore it before logging to it"
            )));
        }
        eval.slices = Evaluation::canonical_slices(std::mem::take(&mut eval.slices))?;
        eval.dataset = eval
            .dataset
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        eval.validate(benchmark)?;
        if eval.metrics.is_empty() && eval.slices.values().all(BTreeMap::is_empty) {
            return Err(Error::Invalid(format!(
                "evaluation '{benchmark}' has no metrics: give overall or per-slice metrics"
            )));
        }
        if !run.lineage.evaluations.contains_key(benchmark)
            && run.lineage.evaluations.len() >= MAX_EVALUATIONS
        {
            return Err(Error::Invalid(format!(
                "run {id} already has {MAX_EVALUATIONS} evaluations, the most a run holds"
            )));
        }
        for path in &eval.reports {
            self.require_artifact(&run, path)?;
        }
        eval.logged_ms = Some(now_ms());
        eval.logged_by = Some(self.user().to_owned());
        let draft = self
            .draft(cairn_audit::kind::EVALUATION_LOGGED)
            .subject(format!("run:{id}"))
            .field("benchmark", benchmark)
            .field_opt("dataset", eval.dataset.clone())
            .field(
                "metrics",
                serde_json::to_string(&eval.metrics).unwrap_or_default(),
            )
            .field(
                "slices",
                blake3::hash(
                    serde_json::to_string(&eval.slices)
                        .unwrap_or_default()
                        .as_bytes(),
                )
                .to_hex()
                .to_string(),
            )
            .field(
                "reports",
                serde_json::to_string(&eval.reports).unwrap_or_default(),
            );
        self.record_event(draft)?;
        self.catalog_mut()
            .update_run(id, &[RunEdit::Evaluation(benchmark.to_owned(), eval)])?;
        self.evaluations(id)?
            .into_iter()
            .find(|e| e.benchmark == benchmark)
            .ok_or_else(|| Error::Invalid(format!("evaluation '{benchmark}' was not recorded")))
    }

    /// Whether `path` is one of the run's artifacts: a file, a directory, or a file inside one.
    fn require_artifact(&self, run: &cairn_model::Run, path: &str) -> Result<(), Error> {
        let p = path.trim_matches('/');
        let bound = run.artifacts.contains_key(p)
            || run
                .artifacts
                .keys()
                .any(|k| p.starts_with(&format!("{k}/")) || k.starts_with(&format!("{p}/")));
        if bound {
            Ok(())
        } else {
            Err(Error::UnknownArtifact {
                run: run.id.to_string(),
                path: path.to_owned(),
            })
        }
    }

    /// The run's evaluations, by benchmark, with their projected fairness figures.
    pub(crate) fn evaluations(&self, id: RunId) -> Result<Vec<EvaluationView>, Error> {
        let run = self.run_record(id)?;
        let mut figures: BTreeMap<String, Vec<FairnessFigure>> = BTreeMap::new();
        for f in self.catalog().fairness(id)? {
            figures.entry(f.benchmark.clone()).or_default().push(f);
        }
        Ok(run
            .lineage
            .evaluations
            .into_iter()
            .map(|(benchmark, evaluation)| EvaluationView {
                fairness: figures.remove(&benchmark).unwrap_or_default(),
                benchmark,
                evaluation,
            })
            .collect())
    }

    /// The edits that file metrics logged against a dataset (MLflow 3's `dataset_name` and
    /// `dataset_digest` on a metric, what `mlflow.evaluate` sends) under an evaluation on that
    /// dataset: its name is the benchmark, its digest the evaluation's dataset. The metrics stay
    /// run metrics too. What would exceed an evaluation's bounds is left out, with a warning:
    /// the client's batch itself is not refused for it.
    pub(crate) fn mlflow_eval_edits(
        &self,
        run: &cairn_model::Run,
        metrics: &[crate::MetricValue],
    ) -> Vec<RunEdit> {
        let mut groups: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
        for m in metrics {
            if let Some(d) = &m.dataset
                && d.digest.len() <= 1000
                && !d.digest.chars().any(char::is_control)
            {
                // The last value of a key in one batch is the one kept, as in the series.
                groups
                    .entry((benchmark_from_dataset(&d.name), d.digest.clone()))
                    .or_default()
                    .insert(m.key.clone(), m.value);
            }
        }
        let mut known = run.lineage.evaluations.len();
        let mut edits = Vec::new();
        for ((benchmark, digest), metrics) in groups {
            let existing = run.lineage.evaluations.get(&benchmark);
            if existing.is_none() {
                if known >= MAX_EVALUATIONS {
                    tracing::warn!(run = %run.id, %benchmark, "the run has the most evaluations a run holds; metrics logged against the dataset stay run metrics only");
                    continue;
                }
                known += 1;
            }
            let have = existing.map_or(0, |e| e.metrics.len());
            let new = metrics
                .keys()
                .filter(|k| existing.is_none_or(|e| !e.metrics.contains_key(*k)))
                .count();
            if have + new > MAX_EVAL_METRICS {
                tracing::warn!(run = %run.id, %benchmark, "an evaluation holds at most {MAX_EVAL_METRICS} metrics; the rest stay run metrics only");
                continue;
            }
            edits.push(RunEdit::EvalMetrics {
                benchmark,
                slice: None,
                metrics: metrics.into_iter().collect(),
                dataset: (!digest.trim().is_empty()).then_some(digest),
            });
        }
        edits
    }

    /// When `path` is a report `mlflow.evaluate` writes, the edit that lists it on the run's
    /// most recently logged evaluation.
    pub(crate) fn mlflow_report_edit(&self, run: &cairn_model::Run, path: &str) -> Option<RunEdit> {
        let file = path.rsplit('/').next().unwrap_or(path);
        if !MLFLOW_REPORTS.iter().any(|r| file.ends_with(r)) {
            return None;
        }
        let (benchmark, e) = run
            .lineage
            .evaluations
            .iter()
            .max_by_key(|(_, e)| e.logged_ms.unwrap_or(0))?;
        if e.reports.iter().any(|r| r == path) || e.reports.len() >= cairn_model::MAX_REPORTS {
            return None;
        }
        Some(RunEdit::EvalReport {
            benchmark: benchmark.clone(),
            path: path.to_owned(),
        })
    }
}

impl Workspace {
    /// Records an evaluation of run `id` on `benchmark`, replacing any of that benchmark:
    /// validated whole first (the name, every metric key and slice, the bounds — at most 1,000
    /// slices of 200 metrics — and the reports, which must be artifacts of the run). Answers it
    /// with its fairness figures.
    pub fn log_evaluation(
        &self,
        id: RunId,
        benchmark: &str,
        eval: Evaluation,
    ) -> Result<EvaluationView, Error> {
        self.write("log_evaluation", |s| s.log_evaluation(id, benchmark, eval))
    }

    /// [`Workspace::log_evaluation`] as the API's request carries it.
    pub fn log_evaluation_request(&self, req: EvaluationLog) -> Result<EvaluationView, Error> {
        let id = self.resolve_run(&req.id)?;
        self.log_evaluation(
            id,
            &req.benchmark,
            Evaluation {
                dataset: req.dataset,
                metrics: req.metrics,
                slices: req.slices,
                reports: req.reports,
                ..Default::default()
            },
        )
    }

    /// The run's evaluations with their fairness figures.
    pub fn evaluations(&self, id: RunId) -> Result<Vec<EvaluationView>, Error> {
        self.read("evaluations", |s| s.evaluations(id))
    }

    /// [`Workspace::evaluations`] of a run given by id prefix.
    pub fn evaluations_by_prefix(&self, prefix: &str) -> Result<Vec<EvaluationView>, Error> {
        self.read("evaluations", |s| {
            let id = s.resolve_run(prefix)?;
            s.evaluations(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_dataset_names_become_benchmark_names() {
        assert_eq!(benchmark_from_dataset("iris test.csv"), "iris-test-csv");
        assert_eq!(benchmark_from_dataset(""), "mlflow-evaluate");
        assert_eq!(benchmark_from_dataset(&"x".repeat(300)).len(), 100);
        validate_benchmark(&benchmark_from_dataset("a.b c:d")).unwrap();
    }
}
