//! Finding experiments: MLflow's `experiments/search` filter (`name LIKE 'resnet%'`,
//! `tags.team = 'vision'`) read by the one query language and matched with the one `LIKE`
//! (`cairn_search::LikePattern`) the run search uses, so there is no second filter language.

use std::collections::BTreeMap;

use cairn_model::{Experiment, ExperimentId};
use cairn_search::query::{Attribute, Comparison, Field, Op, Query, Value};
use cairn_search::{Lifecycle, LikePattern};

use crate::{Error, Stores, Workspace};

/// Team-doc key of an experiment's artifact location (one key per experiment, written once at
/// creation): where an MLflow client puts the artifacts of the experiment's runs.
const ARTIFACT_LOCATION_KEY: &str = "exp-artifacts/";

/// The longest artifact location MLflow's server takes (`MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH`).
pub const MAX_ARTIFACT_LOCATION: usize = 2048;

/// Schemes whose artifact repositories connect to the host the URI names: MLflow's server
/// refuses them as an experiment's location unless its own artifact storage is on that host.
/// Cairn's is never, so they are refused (Cairn itself never connects to any location).
const HOST_ADDRESSED_SCHEMES: [&str; 10] = [
    "ftp",
    "sftp",
    "hdfs",
    "viewfs",
    "http",
    "https",
    "mlflow-artifacts",
    "r2",
    "b2",
    "abfss",
];

/// Checks an experiment's artifact location as MLflow's server does, in its words. `location`
/// is as the client gave it (a relative path is resolved by the caller, who knows the working
/// directory it is relative to).
pub fn validate_artifact_location(location: &str) -> Result<(), Error> {
    let scheme = match location.split_once(':') {
        Some((s, _))
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            s.to_ascii_lowercase()
        }
        _ => String::new(),
    };
    // Python's urlparse reads `;params` off the last path segment for these schemes only.
    const USES_PARAMS: [&str; 15] = [
        "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip",
        "sips", "mms", "sftp", "tel",
    ];
    let path = location.split(['?', '#']).next().unwrap_or("");
    let last_segment = path.rsplit('/').next().unwrap_or("");
    if location.contains('#')
        || (USES_PARAMS.contains(&scheme.as_str()) && last_segment.contains(';'))
    {
        return Err(Error::Invalid(
            "'artifact_location' URL can't include fragments or params.".into(),
        ));
    }
    if let Some((_, query)) = location.split_once('?')
        && query.contains("..")
    {
        return Err(Error::Invalid("Invalid query string".into()));
    }
    let has_host = location
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.starts_with('/'));
    if HOST_ADDRESSED_SCHEMES.contains(&scheme.as_str())
        && (scheme != "mlflow-artifacts" || has_host)
    {
        return Err(Error::Invalid(format!(
            "'artifact_location' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses \
             a host other than the tracking server's configured artifact storage, so the server \
             would connect to the host named in the URI. Set the \
             MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES environment variable on the server to \
             allow it."
        )));
    }
    if location.starts_with("runs:") {
        return Err(Error::Invalid(format!(
            "Artifact location cannot be a runs:/ URI. Given: '{location}'"
        )));
    }
    if location.len() > MAX_ARTIFACT_LOCATION {
        return Err(Error::Invalid(format!(
            "Invalid artifact path length. The length of the artifact path cannot be greater than \
             {MAX_ARTIFACT_LOCATION} characters. To configure this limit, please set the \
             MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable."
        )));
    }
    Ok(())
}

impl Stores {
    fn artifact_locations(&mut self) -> Result<BTreeMap<ExperimentId, String>, Error> {
        Ok(self
            .catalog_mut()
            .team_entries(ARTIFACT_LOCATION_KEY)?
            .into_iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix(ARTIFACT_LOCATION_KEY)?.parse().ok()?;
                Some((id, v))
            })
            .collect())
    }

    fn live_experiment(&mut self, id: ExperimentId) -> Result<Experiment, Error> {
        let exp = self.experiment_by_id(id)?;
        if exp.deleted {
            return Err(Error::ExperimentDeleted(id));
        }
        Ok(exp)
    }
}

impl Workspace {
    /// Creates an experiment whose runs keep their artifacts at `artifact_location` (MLflow's
    /// `artifact_location`: a path, `s3://…`; checked by [`validate_artifact_location`]), or in
    /// the workspace when `None`. The location is its own team-doc entry, written before the
    /// experiment (an entry naming no experiment is never read) and taken back if the
    /// experiment cannot be created.
    pub fn create_experiment_at(
        &self,
        name: &str,
        tags: &[(String, String)],
        artifact_location: Option<&str>,
    ) -> Result<Experiment, Error> {
        let Some(location) = artifact_location.filter(|l| !l.is_empty()) else {
            return self.create_experiment(name, None, tags);
        };
        validate_artifact_location(location)?;
        self.write("create_experiment_at", |s| {
            let id = ExperimentId::new();
            let key = format!("{ARTIFACT_LOCATION_KEY}{id}");
            s.catalog_mut().put_team_entry(&key, Some(location))?;
            match s.create_experiment_with_id(id, name, tags) {
                Ok(e) => Ok(e),
                Err(e) => {
                    if let Err(undo) = s.catalog_mut().put_team_entry(&key, None) {
                        tracing::warn!(error = %undo, "an unused artifact location entry stays");
                    }
                    Err(e)
                }
            }
        })
    }

    /// The artifact locations experiments were created with (the others have none).
    pub fn experiment_artifact_locations(&self) -> Result<BTreeMap<ExperimentId, String>, Error> {
        self.read("experiment_artifact_locations", |s| s.artifact_locations())
    }

    /// The artifact location `id` was created with, if any.
    pub fn experiment_artifact_location(&self, id: ExperimentId) -> Result<Option<String>, Error> {
        self.read("experiment_artifact_location", |s| {
            s.catalog_mut()
                .team_entry(&format!("{ARTIFACT_LOCATION_KEY}{id}"))
                .map_err(Error::from)
        })
    }

    /// Removes a tag of a live experiment: [`Error::UnknownExperimentTag`] when it has none,
    /// [`Error::ExperimentDeleted`] when it is deleted.
    pub fn delete_experiment_tag(&self, id: ExperimentId, key: &str) -> Result<Experiment, Error> {
        self.write("delete_experiment_tag", |s| {
            let mut exp = s.live_experiment(id)?;
            if exp.tags.remove(key).is_none() {
                return Err(Error::UnknownExperimentTag {
                    experiment: id,
                    key: key.to_owned(),
                });
            }
            s.update_experiment(&exp)?;
            Ok(exp)
        })
    }

    /// Sets a tag of a live experiment ([`Error::ExperimentDeleted`] when it is deleted, as
    /// MLflow refuses it).
    pub fn set_live_experiment_tag(
        &self,
        id: ExperimentId,
        key: &str,
        value: &str,
    ) -> Result<Experiment, Error> {
        self.write("set_live_experiment_tag", |s| {
            s.live_experiment(id)?;
            s.set_experiment_tag(id, key, value)
        })
    }
}

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

/// What experiments can be ordered by (MLflow's experiment attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExperimentOrderKey {
    Name,
    /// MLflow's id: the default experiment ("0") first, then the others as they were created.
    ExperimentId,
    CreationTime,
    /// An experiment's last change; Cairn keeps its creation time.
    LastUpdateTime,
}

/// One clause of an experiment ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExperimentOrder {
    pub key: ExperimentOrderKey,
    pub ascending: bool,
}

/// The keys MLflow's error lists, in the order its message shows them.
const ORDER_KEYS: &str = "{'name', 'last_update_time', 'creation_time', 'experiment_id'}";

impl ExperimentOrder {
    /// One clause of MLflow's experiment `order_by` (`name`, `attribute.creation_time DESC`),
    /// refused in MLflow's words.
    pub fn parse_mlflow(clause: &str) -> Result<ExperimentOrder, Error> {
        let unparsable = || {
            Error::Invalid(format!(
                "Invalid order_by clause '{clause}'. Could not be parsed."
            ))
        };
        let tokens: Vec<&str> = clause.split_whitespace().collect();
        let (identifier, ascending) = match tokens.as_slice() {
            [id] => (*id, true),
            [id, dir] => match dir.to_ascii_lowercase().as_str() {
                "asc" => (*id, true),
                "desc" => (*id, false),
                _ => {
                    return Err(Error::Invalid(format!(
                        "Invalid ordering key in order_by clause '{clause}'."
                    )));
                }
            },
            _ => return Err(unparsable()),
        };
        let (entity, key) = match identifier.split_once('.') {
            None => ("attribute", identifier),
            Some((entity, key)) => (entity, key),
        };
        if !matches!(entity, "attribute" | "tag" | "tags") {
            return Err(Error::Invalid(format!(
                "Invalid entity type '{entity}'. Valid entity types are ('attribute', 'tag', 'tags')"
            )));
        }
        let key = key.trim_matches(|c| matches!(c, '`' | '"' | '\''));
        if entity != "attribute" {
            return Err(Error::Invalid("Invalid order_by entity: tag".into()));
        }
        let key = match key {
            "name" => ExperimentOrderKey::Name,
            "experiment_id" => ExperimentOrderKey::ExperimentId,
            "creation_time" => ExperimentOrderKey::CreationTime,
            "last_update_time" => ExperimentOrderKey::LastUpdateTime,
            other => {
                return Err(Error::Invalid(format!(
                    "Invalid attribute key '{other}' specified. Valid keys are '{ORDER_KEYS}'"
                )));
            }
        };
        Ok(ExperimentOrder { key, ascending })
    }
}

/// A search of experiments: a filter, which lifecycle, an order, a page.
#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    pub filter: String,
    pub lifecycle: Lifecycle,
    /// Empty: MLflow's default, the newest first (`creation_time DESC, experiment_id ASC`).
    pub order: Vec<ExperimentOrder>,
    pub limit: usize,
    pub offset: usize,
}

/// Sorts experiments as MLflow's SQL store does: by each clause in turn, then by id (descending,
/// MLflow's tie-breaker) unless the id was among the clauses. Names compare byte by byte
/// (SQLite's BINARY collation); ids compare as MLflow's integers do, the default experiment
/// ("0") first, then by creation (Cairn's ids are time-ordered).
fn sort_experiments(exps: &mut [Experiment], order: &[ExperimentOrder], default: ExperimentId) {
    use std::cmp::Ordering;
    let default_order = [
        ExperimentOrder {
            key: ExperimentOrderKey::CreationTime,
            ascending: false,
        },
        ExperimentOrder {
            key: ExperimentOrderKey::ExperimentId,
            ascending: true,
        },
    ];
    let mut clauses: Vec<ExperimentOrder> = if order.is_empty() {
        default_order.to_vec()
    } else {
        order.to_vec()
    };
    if !clauses
        .iter()
        .any(|c| c.key == ExperimentOrderKey::ExperimentId)
    {
        clauses.push(ExperimentOrder {
            key: ExperimentOrderKey::ExperimentId,
            ascending: false,
        });
    }
    let id_key = |e: &Experiment| (e.id != default, e.id);
    exps.sort_by(|a, b| {
        for c in &clauses {
            let o = match c.key {
                ExperimentOrderKey::Name => a.name.as_bytes().cmp(b.name.as_bytes()),
                ExperimentOrderKey::ExperimentId => id_key(a).cmp(&id_key(b)),
                ExperimentOrderKey::CreationTime | ExperimentOrderKey::LastUpdateTime => {
                    a.created_ms.cmp(&b.created_ms)
                }
            };
            let o = if c.ascending { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

impl Stores {
    /// The experiments a filter matches, in the search's order, one page of them and the offset
    /// of the next.
    pub(crate) fn search_experiments(
        &mut self,
        s: &ExperimentSearch,
    ) -> Result<(Vec<Experiment>, Option<usize>), Error> {
        let query = cairn_search::parse(&s.filter).map_err(|source| Error::Query {
            what: "experiment filter",
            source,
        })?;
        let test = compile(&query)?;
        let default = self.default_experiment()?.id;
        let mut hits: Vec<Experiment> = self
            .experiments_all()?
            .into_iter()
            .filter(|e| match s.lifecycle {
                Lifecycle::Active => !e.deleted,
                Lifecycle::Deleted => e.deleted,
                Lifecycle::All => true,
            })
            .filter(|e| test.matches(e))
            .collect();
        sort_experiments(&mut hits, &s.order, default);
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

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn mlflow_order_clauses_parse_or_are_refused_in_mlflows_words() {
        let ok = |c: &str| ExperimentOrder::parse_mlflow(c).unwrap();
        assert_eq!(
            ok("name"),
            ExperimentOrder {
                key: ExperimentOrderKey::Name,
                ascending: true
            }
        );
        assert_eq!(
            ok("attribute.creation_time DESC"),
            ExperimentOrder {
                key: ExperimentOrderKey::CreationTime,
                ascending: false
            }
        );
        assert_eq!(
            ok("`experiment_id` asc").key,
            ExperimentOrderKey::ExperimentId
        );
        let err = |c: &str| ExperimentOrder::parse_mlflow(c).unwrap_err().to_string();
        assert_eq!(err("tags.x"), "Invalid order_by entity: tag");
        assert_eq!(
            err("metrics.x"),
            "Invalid entity type 'metrics'. Valid entity types are ('attribute', 'tag', 'tags')"
        );
        assert_eq!(
            err("foo"),
            "Invalid attribute key 'foo' specified. Valid keys are '{'name', 'last_update_time', \
             'creation_time', 'experiment_id'}'"
        );
        assert_eq!(
            err("name sideways"),
            "Invalid ordering key in order_by clause 'name sideways'."
        );
        assert_eq!(
            err("name asc desc"),
            "Invalid order_by clause 'name asc desc'. Could not be parsed."
        );
    }

    fn exp(name: &str, created_ms: i64) -> Experiment {
        Experiment {
            id: ExperimentId::new(),
            name: name.into(),
            created_ms,
            description: None,
            tags: BTreeMap::new(),
            schema: None,
            deleted: false,
        }
    }

    #[test]
    fn experiments_sort_as_mlflows_sql_store_sorts_them() {
        let default = exp("Default", 1);
        let a = exp("beta", 5);
        let b = exp("Alpha", 5);
        let c = exp("alpha", 9);
        let names = |order: &[ExperimentOrder]| {
            let mut v = vec![b.clone(), default.clone(), c.clone(), a.clone()];
            sort_experiments(&mut v, order, default.id);
            v.into_iter().map(|e| e.name).collect::<Vec<_>>()
        };
        // Newest first; a tie in time goes by id (creation).
        assert_eq!(names(&[]), ["alpha", "beta", "Alpha", "Default"]);
        // Byte order: capitals first; ties by id, descending.
        let by_name = ExperimentOrder::parse_mlflow("name").unwrap();
        assert_eq!(names(&[by_name]), ["Alpha", "Default", "alpha", "beta"]);
        let by_id = ExperimentOrder::parse_mlflow("experiment_id").unwrap();
        assert_eq!(names(&[by_id]), ["Default", "beta", "Alpha", "alpha"]);
        let oldest = ExperimentOrder::parse_mlflow("creation_time ASC").unwrap();
        assert_eq!(names(&[oldest]), ["Default", "Alpha", "beta", "alpha"]);
    }

    #[test]
    fn artifact_locations_are_checked_as_mlflow_checks_them() {
        for ok in [
            "s3://bucket/p",
            "/data/z",
            "art/x",
            "file:///data/w",
            "gs://b/p?x=1",
        ] {
            assert!(validate_artifact_location(ok).is_ok(), "{ok}");
        }
        let err = |l: &str| validate_artifact_location(l).unwrap_err().to_string();
        assert_eq!(
            err("runs:/abc/x"),
            "Artifact location cannot be a runs:/ URI. Given: 'runs:/abc/x'"
        );
        assert_eq!(
            err("s3://b/p#frag"),
            "'artifact_location' URL can't include fragments or params."
        );
        assert_eq!(err("s3://b/p?a=../x"), "Invalid query string");
        assert!(
            err("http://example.com/p")
                .starts_with("'artifact_location' cannot use the 'http' scheme")
        );
        assert!(validate_artifact_location("mlflow-artifacts:/7").is_ok());
        assert!(err(&format!("/{}", "x".repeat(2048))).starts_with("Invalid artifact path length"));
    }
}
