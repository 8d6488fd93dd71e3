//! Finding experiments: MLflow's `experiments/search` filter (`name LIKE 'resnet%'`,
//! `tags.team = 'vision'`) read by the one query language and matched with the one `LIKE`
//! (`cairn_search::LikePattern`) the run search uses, so there is no second filter language.

use cairn_model::Experiment;
use cairn_search::query::{Attribute, Comparison, Field, Op, Query, Value};
use cairn_search::{Lifecycle, LikePattern};

use crate::{Error, Stores};

/// What an experiment filter may test.
const FIELDS: &str =
    "experiments are filtered by name and tags.KEY, compared with =, !=, LIKE, ILIKE or IN";

/// An experiment filter, checked and compiled: an `AND`/`OR`/`NOT` of tests on the name and
/// tags.
enum Test {
    All,
    And(Vec<Test>),
    Or(Vec<Test>),
    Not(Box<Test>),
    Field {
        tag: Option<String>,
        matcher: Matcher,
    },
}

enum Matcher {
    Eq(String),
    Ne(String),
    Like(LikePattern),
    In(Vec<String>),
    NotIn(Vec<String>),
    Present(bool),
}

fn compile(q: &Query) -> Result<Test, Error> {
    Ok(match q {
        Query::All => Test::All,
        Query::And(parts) => Test::And(parts.iter().map(compile).collect::<Result<_, _>>()?),
        Query::Or(parts) => Test::Or(parts.iter().map(compile).collect::<Result<_, _>>()?),
        Query::Not(inner) => Test::Not(Box::new(compile(inner)?)),
        Query::Compare(Comparison { field, op, value }) => {
            let tag = match field {
                Field::Attribute(Attribute::RunName) => None,
                Field::Tag(k) => Some(k.clone()),
                other => {
                    return Err(Error::Invalid(format!("{FIELDS}, not by {other}")));
                }
            };
            let text = |v: &Value| match v {
                Value::Text(t) => Ok(t.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(Error::Invalid(format!(
                    "{FIELDS}: {field} {op} needs a text value"
                ))),
            };
            let like = |v: &Value, ci: bool| -> Result<Matcher, Error> {
                let t = text(v)?;
                let p = if ci {
                    LikePattern::case_insensitive(&t)
                } else {
                    LikePattern::case_sensitive(&t)
                };
                Ok(Matcher::Like(p.map_err(|e| {
                    Error::Invalid(format!("experiment filter: {e}"))
                })?))
            };
            let matcher = match (op, value) {
                (Op::Eq, v) => Matcher::Eq(text(v)?),
                (Op::Ne, v) => Matcher::Ne(text(v)?),
                (Op::Like, v) => like(v, false)?,
                (Op::ILike, v) => like(v, true)?,
                (Op::In, Value::List(items)) => Matcher::In(items.clone()),
                (Op::NotIn, Value::List(items)) => Matcher::NotIn(items.clone()),
                (Op::IsNull, _) => Matcher::Present(false),
                (Op::IsNotNull, _) => Matcher::Present(true),
                (op, _) => {
                    return Err(Error::Invalid(format!("{FIELDS}, not with {op}")));
                }
            };
            Test::Field { tag, matcher }
        }
        Query::Range(_) | Query::Text(_) => {
            return Err(Error::Invalid(format!(
                "{FIELDS}; free text and ranges are for runs"
            )));
        }
    })
}

impl Test {
    fn matches(&self, e: &Experiment) -> bool {
        match self {
            Test::All => true,
            Test::And(parts) => parts.iter().all(|t| t.matches(e)),
            Test::Or(parts) => parts.iter().any(|t| t.matches(e)),
            Test::Not(inner) => !inner.matches(e),
            Test::Field { tag, matcher } => {
                let actual = match tag {
                    None => Some(e.name.as_str()),
                    Some(k) => e.tags.get(k).map(String::as_str),
                };
                match (matcher, actual) {
                    (Matcher::Present(want), a) => a.is_some() == *want,
                    (_, None) => false,
                    (Matcher::Eq(v), Some(a)) => a == v,
                    (Matcher::Ne(v), Some(a)) => a != v,
                    (Matcher::Like(p), Some(a)) => p.matches(a),
                    (Matcher::In(vs), Some(a)) => vs.iter().any(|v| v == a),
                    (Matcher::NotIn(vs), Some(a)) => vs.iter().all(|v| v != a),
                }
            }
        }
    }
}

/// A search of experiments: a filter, which lifecycle, a page.
#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    pub filter: String,
    pub lifecycle: Lifecycle,
    pub limit: usize,
    pub offset: usize,
}

impl Stores {
    /// The experiments a filter matches, by creation, one page of them and the offset of the
    /// next.
    pub(crate) fn search_experiments(
        &self,
        s: &ExperimentSearch,
    ) -> Result<(Vec<Experiment>, Option<usize>), Error> {
        let query = cairn_search::parse(&s.filter).map_err(|source| Error::Query {
            what: "experiment filter",
            source,
        })?;
        let test = compile(&query)?;
        let hits: Vec<Experiment> = self
            .experiments_all()?
            .into_iter()
            .filter(|e| match s.lifecycle {
                Lifecycle::Active => !e.deleted,
                Lifecycle::Deleted => e.deleted,
                Lifecycle::All => true,
            })
            .filter(|e| test.matches(e))
            .collect();
        let next = (hits.len() > s.offset + s.limit).then_some(s.offset + s.limit);
        let page = hits.into_iter().skip(s.offset).take(s.limit).collect();
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cairn_model::ExperimentId;

    use super::*;

    fn exp(name: &str, tags: &[(&str, &str)]) -> Experiment {
        Experiment {
            id: ExperimentId::new(),
            name: name.into(),
            created_ms: 0,
            description: None,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            schema: None,
            deleted: false,
        }
    }

    fn matching(filter: &str) -> Vec<String> {
        let test = compile(&cairn_search::parse(filter).unwrap()).unwrap();
        [
            exp("resnet50-imagenet", &[("team", "vision")]),
            exp("ResNet-tiny", &[]),
            exp("bert-glue", &[("team", "nlp")]),
        ]
        .iter()
        .filter(|e| test.matches(e))
        .map(|e| e.name.clone())
        .collect()
    }

    #[test]
    fn mlflow_experiment_filters_mean_what_they_mean_in_mlflow() {
        assert_eq!(matching("name LIKE 'resnet%'"), ["resnet50-imagenet"]);
        assert_eq!(
            matching("name ILIKE 'resnet%'"),
            ["resnet50-imagenet", "ResNet-tiny"]
        );
        assert_eq!(matching("tags.team = 'nlp'"), ["bert-glue"]);
        assert_eq!(
            matching("attributes.name != 'bert-glue' and tags.team = 'vision'"),
            ["resnet50-imagenet"]
        );
        assert_eq!(matching("tags.team IS NULL"), ["ResNet-tiny"]);
        assert_eq!(
            matching(""),
            ["resnet50-imagenet", "ResNet-tiny", "bert-glue"]
        );
        // The one LIKE: linear even on a hostile pattern.
        assert!(matching(&format!("name LIKE '{}x'", "%".repeat(500))).is_empty());
    }

    #[test]
    fn filters_on_what_experiments_lack_are_refused_naming_what_they_have() {
        for bad in ["metrics.acc > 1", "smoothing", "params.lr = '1'"] {
            let e = compile(&cairn_search::parse(bad).unwrap()).err().unwrap();
            assert!(e.to_string().contains("name and tags.KEY"), "{bad}: {e}");
        }
    }
}
