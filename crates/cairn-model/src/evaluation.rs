//! Evaluation outputs and the fairness figures computed from them.
//!
//! A run records evaluations by benchmark name (`imagenet-val`, `credit-test`): the digest of the
//! dataset snapshot it ran on, overall metrics, the same metrics per *slice* (a named group of the
//! data such as `sex=female`, or an intersection `age=60+&sex=female`), and report artifacts.
//!
//! Fairness figures follow fairlearn's definitions (`MetricFrame.difference()` and `.ratio()` with
//! `method="between_groups"`): for one metric over the slices of one sensitive attribute (or one
//! combination of attributes), the *difference* is `max − min` over the groups and the *ratio*
//! is `min / max`; NaN values are left out, as pandas' `min`/`max` do. Demographic parity is the
//! difference and ratio of `selection_rate`; equalized odds takes the worse of the true- and
//! false-positive-rate figures (the larger difference, the smaller ratio), fairlearn's
//! `agg="worst_case"`.
//!
//! Everything here is pure: parsing, validation, arithmetic.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ModelError, Num, validate_key};

/// Longest benchmark name, in characters.
pub const MAX_BENCHMARK_LEN: usize = 100;
/// Most evaluations one run holds.
pub const MAX_EVALUATIONS: usize = 100;
/// Most metrics in one row (the overall metrics, or one slice's).
pub const MAX_EVAL_METRICS: usize = 200;
/// Most slices one evaluation holds.
pub const MAX_SLICES: usize = 1_000;
/// Most `attribute=value` pairs in one slice (an intersection of sensitive attributes).
pub const MAX_SLICE_PAIRS: usize = 8;
/// Longest attribute name and longest value of a slice, in characters.
pub const MAX_SLICE_TEXT: usize = 250;
/// Most report artifacts of one evaluation.
pub const MAX_REPORTS: usize = 100;

/// One evaluation of a run on a benchmark. The benchmark's name is its key in
/// [`crate::Lineage::evaluations`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Evaluation {
    /// Digest of the dataset snapshot it ran on (`blake3:…` when Cairn hashed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub dataset: Option<String>,
    /// Metrics over the whole dataset.
    #[serde(default)]
    pub metrics: BTreeMap<String, Num>,
    /// Metrics per slice, keyed by the slice's canonical text ([`Slice`]'s `Display`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slices: BTreeMap<String, BTreeMap<String, Num>>,
    /// Logical artifact paths of its reports (`eval/report.html`), resolved through the run's
    /// artifacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<String>,
    /// When it was logged (epoch ms) and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub logged_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub logged_by: Option<String>,
}

fn invalid_as(what: &'static str, value: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidEvaluation {
        what,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn invalid(value: &str, reason: impl Into<String>) -> ModelError {
    invalid_as("slice", value, reason)
}

fn bad_benchmark(value: &str, reason: impl Into<String>) -> ModelError {
    invalid_as("benchmark name", value, reason)
}

/// Whether `c` may appear in a benchmark name: what a bare word of the query language holds,
/// except `.`, which separates the benchmark from the metric in `eval.BENCHMARK.METRIC`.
fn benchmark_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '@')
}

/// Checks a benchmark name: 1–100 letters, digits, `_`, `-`, `/` or `@` (no `.`, no spaces), so
/// that `eval.NAME.METRIC` reads back unambiguously in a query.
pub fn validate_benchmark(name: &str) -> Result<(), ModelError> {
    if name.is_empty() {
        return Err(bad_benchmark(name, "a benchmark name must not be empty"));
    }
    if name.chars().count() > MAX_BENCHMARK_LEN {
        return Err(bad_benchmark(
            name,
            format!("a benchmark name is at most {MAX_BENCHMARK_LEN} characters"),
        ));
    }
    if let Some(c) = name.chars().find(|c| !benchmark_char(*c)) {
        return Err(bad_benchmark(
            name,
            format!(
                "a benchmark name holds letters, digits, '_', '-', '/' and '@' only, not {c:?}"
            ),
        ));
    }
    Ok(())
}

/// A named group of the data: one or more `attribute=value` pairs, kept sorted by attribute so
/// one group has one spelling. Written `sex=female` or `age=60+&sex=female`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slice {
    pairs: Vec<(String, String)>,
}

impl Slice {
    /// A slice of `pairs`, checked: attributes and values not empty, at most 250 characters,
    /// no control characters; attributes without `=` or `&`, values without `&`; no attribute
    /// twice; at most [`MAX_SLICE_PAIRS`] pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Slice, ModelError> {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let joined = pairs
            .iter()
            .map(|(a, v)| format!("{a}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let shown = || joined.clone();
        if pairs.is_empty() {
            return Err(invalid("", "a slice needs at least one ATTRIBUTE=VALUE"));
        }
        if pairs.len() > MAX_SLICE_PAIRS {
            return Err(invalid(
                &shown(),
                format!("a slice combines at most {MAX_SLICE_PAIRS} attributes"),
            ));
        }
        for (a, v) in &pairs {
            let bad = |what: &str, reason: &str| {
                Err(invalid(
                    &shown(),
                    format!(
                        "slice {what} '{}': {reason}",
                        if what == "attribute" { a } else { v }
                    ),
                ))
            };
            if a.trim().is_empty() {
                return bad("attribute", "must not be empty");
            }
            if v.is_empty() {
                return bad("value", "must not be empty (write ATTRIBUTE=VALUE)");
            }
            if a.chars().count() > MAX_SLICE_TEXT || v.chars().count() > MAX_SLICE_TEXT {
                return Err(invalid(
                    &shown(),
                    format!("slice attributes and values are at most {MAX_SLICE_TEXT} characters"),
                ));
            }
            if a.chars().chain(v.chars()).any(char::is_control) {
                return Err(invalid(&shown(), "a slice holds no control characters"));
            }
            if a.contains(['=', '&']) {
                return bad("attribute", "must not contain '=' or '&'");
            }
            if v.contains('&') {
                return bad("value", "must not contain '&' (it joins attributes)");
            }
        }
        pairs.sort();
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(invalid(
                &shown(),
                format!("attribute '{}' is given twice in one slice", w[0].0),
            ));
        }
        Ok(Slice { pairs })
    }

    /// Parses `sex=female` or `age=60+&sex=female`: pairs joined by `&`, each split at its first
    /// `=`. A text without `=` is an error that says what was expected.
    pub fn parse(text: &str) -> Result<Slice, ModelError> {
        let mut pairs = Vec::new();
        for part in text.split('&') {
            let Some((a, v)) = part.split_once('=') else {
                return Err(invalid(
                    text,
                    format!(
                        "a slice is ATTRIBUTE=VALUE (e.g. sex=female), joined by '&' for an \
                         intersection; '{part}' has no '='"
                    ),
                ));
            };
            pairs.push((a.trim().to_owned(), v.trim().to_owned()));
        }
        Slice::new(pairs)
    }

    /// The `(attribute, value)` pairs, sorted by attribute.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The sensitive attribute the slice belongs to: its attribute names joined by `&`
    /// (`sex`, or `age&sex` for an intersection). Fairness figures compare the slices of one
    /// attribute.
    pub fn attribute(&self) -> String {
        self.pairs
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join("&")
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            write!(f, "{a}={v}")?;
        }
        Ok(())
    }
}

/// Checks one row of metrics (overall or one slice's): at most [`MAX_EVAL_METRICS`] keys, each
/// a valid metric key. `row` names the row in the error.
pub fn validate_eval_metrics<'a>(
    row: &str,
    keys: impl ExactSizeIterator<Item = &'a String>,
) -> Result<(), ModelError> {
    if keys.len() > MAX_EVAL_METRICS {
        return Err(invalid_as(
            "evaluation row",
            row,
            format!(
                "{} metrics; one row holds at most {MAX_EVAL_METRICS}",
                keys.len()
            ),
        ));
    }
    for k in keys {
        validate_key("evaluation metric", k)?;
    }
    Ok(())
}

impl Evaluation {
    /// Checks everything about an evaluation to be stored under `benchmark`: the name, the
    /// bounds ([`MAX_SLICES`], [`MAX_EVAL_METRICS`], [`MAX_REPORTS`]), every metric key, every
    /// slice (which must be in its canonical spelling: see [`Evaluation::canonical_slices`]),
    /// and the report paths.
    pub fn validate(&self, benchmark: &str) -> Result<(), ModelError> {
        validate_benchmark(benchmark)?;
        validate_eval_metrics(&format!("{benchmark} (overall)"), self.metrics.keys())?;
        if self.slices.len() > MAX_SLICES {
            return Err(invalid_as(
                "evaluation",
                benchmark,
                format!(
                    "{} slices; one evaluation holds at most {MAX_SLICES}",
                    self.slices.len()
                ),
            ));
        }
        for (text, metrics) in &self.slices {
            let slice = Slice::parse(text)?;
            if slice.to_string() != *text {
                return Err(invalid(
                    text,
                    format!("not in its canonical spelling '{slice}'"),
                ));
            }
            validate_eval_metrics(&format!("{benchmark} slice {text}"), metrics.keys())?;
        }
        if self.reports.len() > MAX_REPORTS {
            return Err(invalid_as(
                "evaluation",
                benchmark,
                format!("one evaluation lists at most {MAX_REPORTS} reports"),
            ));
        }
        for r in &self.reports {
            crate::validate_artifact_path(r)?;
        }
        if let Some(d) = &self.dataset
            && (d.trim().is_empty() || d.len() > 1000 || d.chars().any(char::is_control))
        {
            return Err(invalid_as(
                "dataset digest",
                d,
                "a dataset digest is 1-1000 printable characters",
            ));
        }
        Ok(())
    }

    /// Rewrites the slice keys into their canonical spelling (`sex = female` →
    /// `sex=female`, `sex=f&age=1` → `age=1&sex=f`), refusing a key that is no slice and
    /// two keys that name one slice.
    pub fn canonical_slices(
        slices: BTreeMap<String, BTreeMap<String, Num>>,
    ) -> Result<BTreeMap<String, BTreeMap<String, Num>>, ModelError> {
        if slices.len() > MAX_SLICES {
            return Err(invalid_as(
                "evaluation",
                &format!("{} slices", slices.len()),
                format!("one evaluation holds at most {MAX_SLICES} slices"),
            ));
        }
        let mut out = BTreeMap::new();
        for (text, metrics) in slices {
            let canon = Slice::parse(&text)?.to_string();
            if out.insert(canon.clone(), metrics).is_some() {
                return Err(invalid(&text, format!("'{canon}' is given twice")));
            }
        }
        Ok(out)
    }
}

/// One fairness figure: how far apart one metric is over the slices of one sensitive attribute
/// of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FairnessFigure {
    pub benchmark: String,
    /// The metric compared, or `demographic_parity` / `equalized_odds`.
    pub metric: String,
    /// The sensitive attribute (`sex`), or attributes joined by `&` for intersections.
    pub attribute: String,
    /// `max − min` over the groups (0 for one group).
    pub difference: Num,
    /// `min / max` over the groups (NaN when both are 0).
    pub ratio: Num,
    /// How many groups had a value.
    pub groups: u32,
    /// The slice with the lowest value and the one with the highest.
    pub lowest: String,
    pub highest: String,
}

/// The names under which a metric feeds a derived figure.
const SELECTION_RATE: &[&str] = &["selection_rate"];
const TRUE_POSITIVE_RATE: &[&str] = &["true_positive_rate", "tpr"];
const FALSE_POSITIVE_RATE: &[&str] = &["false_positive_rate", "fpr"];

/// The derived figures' metric names.
pub const DEMOGRAPHIC_PARITY: &str = "demographic_parity";
pub const EQUALIZED_ODDS: &str = "equalized_odds";

/// Difference (`max − min`) and ratio (`min / max`) of `values`, NaN left out; `None` when no
/// value is left. The ratio follows IEEE division, as fairlearn's pandas division does.
pub fn difference_and_ratio(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let mut lo = f64::NAN;
    let mut hi = f64::NAN;
    let mut any = false;
    for v in values.into_iter().filter(|v| !v.is_nan()) {
        if !any || v < lo {
            lo = v;
        }
        if !any || v > hi {
            hi = v;
        }
        any = true;
    }
    any.then(|| (hi - lo, lo / hi))
}

/// One attribute's slices, by metric: metric → [(slice, value)].
type MetricGroups<'a> = BTreeMap<&'a str, Vec<(&'a str, f64)>>;

/// Every fairness figure of one evaluation: per sensitive attribute and per metric, its
/// difference and ratio; plus demographic parity (from `selection_rate`) and equalized odds
/// (from `true_positive_rate` and `false_positive_rate`, also spelled `tpr`, `fpr`) where
/// those metrics are given. Sorted by attribute, then metric.
pub fn fairness(benchmark: &str, eval: &Evaluation) -> Vec<FairnessFigure> {
    let mut by_attr: BTreeMap<String, MetricGroups<'_>> = BTreeMap::new();
    for (text, metrics) in &eval.slices {
        // Slices are validated when stored; one that does not parse (a peer's doc) is skipped.
        let Ok(slice) = Slice::parse(text) else {
            continue;
        };
        let entry = by_attr.entry(slice.attribute()).or_default();
        for (m, v) in metrics {
            if !v.0.is_nan() {
                entry
                    .entry(m.as_str())
                    .or_default()
                    .push((text.as_str(), v.0));
            }
        }
    }
    let mut out = Vec::new();
    for (attribute, metrics) in by_attr {
        let mut figures: Vec<FairnessFigure> = Vec::new();
        for (metric, groups) in metrics {
            let Some((difference, ratio)) = difference_and_ratio(groups.iter().map(|g| g.1)) else {
                continue;
            };
            let pick = |better: fn(f64, f64) -> bool| {
                groups
                    .iter()
                    .fold(None::<(&str, f64)>, |acc, &(s, v)| match acc {
                        Some((_, best)) if !better(v, best) => acc,
                        _ => Some((s, v)),
                    })
                    .map_or(String::new(), |(s, _)| s.to_owned())
            };
            figures.push(FairnessFigure {
                benchmark: benchmark.to_owned(),
                metric: metric.to_owned(),
                attribute: attribute.clone(),
                difference: Num(difference),
                ratio: Num(ratio),
                groups: groups.len() as u32,
                lowest: pick(|v, best| v < best),
                highest: pick(|v, best| v > best),
            });
        }
        let find = |names: &[&str]| {
            figures
                .iter()
                .find(|f| names.contains(&f.metric.as_str()))
                .cloned()
        };
        let mut derived = Vec::new();
        if let Some(sr) = find(SELECTION_RATE) {
            derived.push(FairnessFigure {
                metric: DEMOGRAPHIC_PARITY.to_owned(),
                ..sr
            });
        }
        if let (Some(tpr), Some(fpr)) = (find(TRUE_POSITIVE_RATE), find(FALSE_POSITIVE_RATE)) {
            // The worse component names the groups: the larger difference (ties: TPR).
            let worse = if fpr.difference.0 > tpr.difference.0 {
                &fpr
            } else {
                &tpr
            };
            derived.push(FairnessFigure {
                metric: EQUALIZED_ODDS.to_owned(),
                difference: Num(tpr.difference.0.max(fpr.difference.0)),
                ratio: Num(tpr.ratio.0.min(fpr.ratio.0)),
                groups: tpr.groups.min(fpr.groups),
                lowest: worse.lowest.clone(),
                highest: worse.highest.clone(),
                ..tpr.clone()
            });
        }
        figures.extend(derived);
        figures.sort_by(|a, b| a.metric.cmp(&b.metric));
        out.extend(figures);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(pairs: &[(&str, f64)]) -> BTreeMap<String, Num> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Num(*v)))
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn slices_have_one_spelling_and_bad_ones_say_what_is_wrong() {
        let s = Slice::parse(" sex = female & age=60+").unwrap();
        assert_eq!(s.to_string(), "age=60+&sex=female");
        assert_eq!(s.attribute(), "age&sex");
        assert_eq!(
            Slice::parse("age=[40, 60)").unwrap().to_string(),
            "age=[40, 60)"
        );
        assert_eq!(Slice::parse("k=a=b").unwrap().pairs()[0].1, "a=b");
        for (bad, why) in [
            ("female", "'female' has no '='"),
            ("sex=", "must not be empty"),
            ("=f", "must not be empty"),
            ("sex=f&sex=m", "'sex' is given twice"),
            ("a\u{7}=1", "control"),
        ] {
            let e = Slice::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let many = (0..9)
            .map(|i| format!("a{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(
            Slice::parse(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 8")
        );
    }

    #[test]
    fn benchmark_names_read_back_from_a_query() {
        for ok in ["imagenet-val", "credit/test@2024", "a_b", "2024"] {
            validate_benchmark(ok).unwrap();
        }
        for bad in ["", "a.b", "with space", &"x".repeat(101)] {
            assert!(validate_benchmark(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_evaluation_is_bounded_and_its_slices_canonical() {
        let mut e = Evaluation {
            metrics: nums(&[("acc", 0.9)]),
            ..Default::default()
        };
        e.slices.insert("sex=female".into(), nums(&[("acc", 0.8)]));
        e.validate("b").unwrap();
        e.slices.insert("sex = male".into(), nums(&[("acc", 0.8)]));
        assert!(
            e.validate("b")
                .unwrap_err()
                .to_string()
                .contains("canonical")
        );
        let too_many: BTreeMap<_, _> = (0..=MAX_SLICES)
            .map(|i| (format!("id={i}"), BTreeMap::new()))
            .collect();
        let err = Evaluation::canonical_slices(too_many)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1001 slices") && err.contains("at most 1000"),
            "{err}"
        );
        let dup = BTreeMap::from([
            ("sex=f&age=1".to_owned(), BTreeMap::new()),
            ("age=1&sex=f".to_owned(), BTreeMap::new()),
        ]);
        assert!(
            Evaluation::canonical_slices(dup)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let wide = nums(
            &(0..=MAX_EVAL_METRICS)
                .map(|i| (Box::leak(format!("m{i}").into_boxed_str()) as &str, 1.0))
                .collect::<Vec<_>>(),
        );
        let e = Evaluation {
            metrics: wide,
            ..Default::default()
        };
        assert!(
            e.validate("b")
                .unwrap_err()
                .to_string()
                .contains("at most 200")
        );
    }

    /// Hand-computed: acc over sex {0.91, 0.85} → difference 0.06, ratio 0.85/0.91; over age
    /// {0.95, 0.80, 0.88} → 0.15, 0.80/0.95; the overall row takes no part.
    #[test]
    fn difference_and_ratio_are_max_minus_min_and_min_over_max_per_attribute() {
        let mut e = Evaluation {
            metrics: nums(&[("acc", 0.2)]),
            ..Default::default()
        };
        for (s, acc) in [
            ("sex=female", 0.85),
            ("sex=male", 0.91),
            ("age=<30", 0.95),
            ("age=30-60", 0.80),
            ("age=60+", 0.88),
        ] {
            e.slices.insert(s.into(), nums(&[("acc", acc)]));
        }
        let f = fairness("b", &e);
        assert_eq!(f.len(), 2);
        let age = &f[0];
        assert_eq!(
            (age.attribute.as_str(), age.metric.as_str()),
            ("age", "acc")
        );
        assert!(close(age.difference.0, 0.15) && close(age.ratio.0, 0.80 / 0.95));
        assert_eq!(
            (age.lowest.as_str(), age.highest.as_str()),
            ("age=30-60", "age=<30")
        );
        assert_eq!(age.groups, 3);
        let sex = &f[1];
        assert!(close(sex.difference.0, 0.06) && close(sex.ratio.0, 0.85 / 0.91));
        assert_eq!(
            (sex.lowest.as_str(), sex.highest.as_str()),
            ("sex=female", "sex=male")
        );
    }

    /// Demographic parity from selection rates {0.30, 0.45, 0.40}: difference 0.15, ratio
    /// 0.30/0.45. Equalized odds from TPR {0.80, 0.70} (difference 0.10, ratio 0.875) and FPR
    /// {0.10, 0.25} (difference 0.15, ratio 0.4): the worse of each, 0.15 and 0.4.
    #[test]
    fn demographic_parity_and_equalized_odds_are_derived_as_fairlearn_does() {
        let mut e = Evaluation::default();
        for (s, sr, tpr, fpr) in [
            ("race=a", 0.30, 0.80, 0.10),
            ("race=b", 0.45, 0.70, 0.25),
            ("race=c", 0.40, f64::NAN, f64::NAN),
        ] {
            e.slices.insert(
                s.into(),
                nums(&[
                    ("selection_rate", sr),
                    ("tpr", tpr),
                    ("false_positive_rate", fpr),
                ]),
            );
        }
        let f = fairness("b", &e);
        let get = |m: &str| f.iter().find(|x| x.metric == m).unwrap();
        let dp = get(DEMOGRAPHIC_PARITY);
        assert!(close(dp.difference.0, 0.15) && close(dp.ratio.0, 0.30 / 0.45));
        assert_eq!(dp.groups, 3);
        let eo = get(EQUALIZED_ODDS);
        assert!(
            close(eo.difference.0, 0.15) && close(eo.ratio.0, 0.4),
            "{eo:?}"
        );
        // NaN groups are left out, as pandas' min and max skip them.
        assert_eq!(get("tpr").groups, 2);
        assert_eq!(
            (eo.lowest.as_str(), eo.highest.as_str()),
            ("race=a", "race=b")
        );
    }

    #[test]
    fn edge_cases_follow_ieee_division_like_pandas() {
        assert_eq!(difference_and_ratio([]), None);
        assert_eq!(difference_and_ratio([f64::NAN]), None);
        let (d, r) = difference_and_ratio([0.5]).unwrap();
        assert_eq!((d, r), (0.0, 1.0));
        let (d, r) = difference_and_ratio([0.0, 0.0]).unwrap();
        assert!(d == 0.0 && r.is_nan());
        let (d, r) = difference_and_ratio([-1.0, 0.0]).unwrap();
        assert!(d == 1.0 && r == f64::NEG_INFINITY);
    }

    #[test]
    fn intersections_are_their_own_attribute() {
        let mut e = Evaluation::default();
        e.slices.insert("age=1&sex=f".into(), nums(&[("acc", 0.5)]));
        e.slices.insert("age=1&sex=m".into(), nums(&[("acc", 0.7)]));
        e.slices.insert("sex=f".into(), nums(&[("acc", 0.6)]));
        let f = fairness("b", &e);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].attribute, "age&sex");
        assert!(close(f[0].difference.0, 0.2));
        assert_eq!((f[1].attribute.as_str(), f[1].groups), ("sex", 1));
    }

    #[test]
    fn non_finite_metrics_survive_json() {
        let e = Evaluation {
            metrics: nums(&[("a", f64::NAN), ("b", f64::INFINITY)]),
            ..Default::default()
        };
        let back: Evaluation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert!(back.metrics["a"].0.is_nan() && back.metrics["b"].0 == f64::INFINITY);
    }
}
