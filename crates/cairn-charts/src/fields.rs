//! Reading a run's fields by their dotted names (`params.lr`, `tags.team`, `metrics.loss`,
//! `status`, `code.branch`…) for grouping, comparison charts and the compare report, and ordering
//! the values the way people expect (`2 < 10`, `1e-4 < 0.001`).

use std::cmp::Ordering;

use cairn_model::{ParamValue, Run};

/// A value of one run's field, as a chart places it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number: a param that [`ParamValue::infer`] reads as int or float, a metric.
    Number(f64),
    /// Anything else (a string param, a bool, a tag).
    Text(String),
    /// The run has no such field.
    Missing,
}

impl Cell {
    /// The typed view of a param's text.
    pub fn of_text(text: &str) -> Cell {
        match ParamValue::infer(text).as_f64() {
            Some(v) => Cell::Number(v),
            None => Cell::Text(text.to_owned()),
        }
    }

    /// The value as text (numbers in their shortest round-tripping form).
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Number(v) => Some(v.to_string()),
            Cell::Text(t) => Some(t.clone()),
            Cell::Missing => None,
        }
    }
}

/// The text of `run`'s field `field`: `params.NAME`, `tags.NAME`, `metrics.NAME` (last value),
/// `name`, `owner`, `status`, `experiment`, `parent_kind`, `code.commit`, `code.branch`,
/// `code.repo`, `infra.host`, `infra.gpu`, `infra.instance_type`, `dataset` (the dataset names,
/// joined), `feature_set`. A bare name is looked up as a param, then as a tag.
pub fn field_text(run: &Run, field: &str) -> Option<String> {
    if let Some(k) = field.strip_prefix("params.") {
        return run.params.get(k).cloned();
    }
    if let Some(k) = field.strip_prefix("tags.") {
        return run.tags.get(k).cloned();
    }
    if let Some(k) = field.strip_prefix("metrics.") {
        return run.metrics.get(k).map(|m| m.last.to_string());
    }
    let lin = &run.lineage;
    let code = lin.code.as_ref();
    let infra = lin.infra.as_ref();
    match field {
        "name" => Some(run.name.clone()),
        "owner" => run.owner.clone(),
        "status" => Some(run.status.as_str().to_owned()),
        "experiment" => Some(run.experiment.to_string()),
        "parent_kind" => run.parent_kind.map(|k| k.as_str().to_owned()),
        "code.commit" => code.and_then(|c| c.commit.clone()),
        "code.branch" => code.and_then(|c| c.branch.clone()),
        "code.repo" => code.and_then(|c| c.repo.clone()),
        "infra.host" => infra.and_then(|i| i.host.clone()),
        "infra.gpu" => infra.and_then(|i| i.gpus.first().map(|g| g.model.clone())),
        "infra.instance_type" => infra.and_then(|i| i.instance_type.clone()),
        "feature_set" => lin
            .feature_set
            .as_ref()
            .map(|f| format!("{}@{}", f.name, f.version)),
        "dataset" => (!lin.datasets.is_empty())
            .then(|| lin.datasets.keys().cloned().collect::<Vec<_>>().join(",")),
        bare => run.params.get(bare).or_else(|| run.tags.get(bare)).cloned(),
    }
}

/// The group a run falls in when grouping by `field` (`--group-by params.optimizer`); runs
/// without the field go to `"(none)"` so that they are still drawn.
pub fn group_key(run: &Run, field: &str) -> String {
    field_text(run, field).unwrap_or_else(|| "(none)".to_owned())
}

/// `run`'s field as a chart cell: metrics as numbers, params typed by [`ParamValue::infer`].
pub fn field_cell(run: &Run, field: &str) -> Cell {
    if let Some(k) = field.strip_prefix("metrics.") {
        return match run.metrics.get(k) {
            Some(m) => Cell::Number(m.last),
            None => Cell::Missing,
        };
    }
    match field_text(run, field) {
        Some(t) => Cell::of_text(&t),
        None => Cell::Missing,
    }
}

/// Orders numbers numerically, before text; text by its characters.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let num = |s: &str| ParamValue::infer(s).as_f64();
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{ExperimentId, MetricSummary, RunId};

    fn run() -> Run {
        let mut r = Run::new(RunId::new(), ExperimentId::new(), "r1", 0);
        r.params.insert("lr".into(), "1e-3".into());
        r.params.insert("optimizer".into(), "adam".into());
        r.tags.insert("team".into(), "vision".into());
        r.metrics.insert(
            "loss".into(),
            MetricSummary {
                last: 0.25,
                step: 10,
                ts_ms: 0,
                min: None,
                max: None,
                count: 11,
            },
        );
        r
    }

    #[test]
    fn fields_resolve_by_prefix_and_bare_name() {
        let r = run();
        assert_eq!(field_cell(&r, "params.lr"), Cell::Number(1e-3));
        assert_eq!(field_cell(&r, "optimizer"), Cell::Text("adam".into()));
        assert_eq!(field_cell(&r, "metrics.loss"), Cell::Number(0.25));
        assert_eq!(field_cell(&r, "params.missing"), Cell::Missing);
        assert_eq!(group_key(&r, "tags.team"), "vision");
        assert_eq!(group_key(&r, "tags.none"), "(none)");
        assert_eq!(field_text(&r, "status").as_deref(), Some("running"));
    }

    #[test]
    fn natural_order_puts_numbers_first_in_numeric_order() {
        let mut v = vec!["adam", "10", "2", "1e-4", "0.001"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["1e-4", "0.001", "2", "10", "adam"]);
    }
}
