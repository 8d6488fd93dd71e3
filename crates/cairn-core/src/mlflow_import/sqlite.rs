//! MLflow's SQL store in a SQLite file, read directly (opened read-only, so a store a server
//! is using is never written). The tables are those MLflow 2.x and 3.x create (`experiments`,
//! `runs`, `params`, `tags`, `metrics` with `is_nan`, `latest_metrics`, `inputs`, `datasets`,
//! `input_tags`, `registered_models`, `model_versions`, `registered_model_tags`,
//! `model_version_tags`, `registered_model_aliases`); a file without them is refused by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cairn_metrics::Point;
use cairn_model::DatasetSnapshot;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{MlflowSource, SrcExperiment, SrcModel, SrcRun, SrcVersion};
use crate::Error;

/// The tables an MLflow SQL store has (the registry's and inputs' are read when present: older
/// stores lack them).
const REQUIRED: [&str; 5] = ["experiments", "runs", "params", "tags", "metrics"];

pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens `path` read-only and checks it is an MLflow store.
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let meta = std::fs::metadata(path).map_err(Error::io(path))?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!(
                "{} is not a file (an MLflow SQL store is one SQLite file)",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(path, e))?;
        let store = SqliteStore {
            path: path.to_owned(),
            conn,
        };
        for t in REQUIRED {
            if !store.has_table(t)? {
                return Err(Error::Invalid(format!(
                    "{} is not an MLflow store: it has no `{t}` table",
                    path.display()
                )));
            }
        }
        Ok(store)
    }

    fn has_table(&self, name: &str) -> Result<bool, Error> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.err(e))
    }

    fn has_column(&self, table: &str, column: &str) -> Result<bool, Error> {
        let mut st = self
            .conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .map_err(|e| self.err(e))?;
        let names = st
            .query_map([], |r| r.get::<_, String>(1))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(names.iter().any(|n| n == column))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql_error(&self.path, e)
    }

    /// `(key, value)` rows of `sql` grouped by their third column.
    fn grouped(&self, sql: &str) -> Result<HashMap<String, Vec<(String, String)>>, Error> {
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let k: String = r.get(0).map_err(|e| self.err(e))?;
            let v: Option<String> = r.get(1).map_err(|e| self.err(e))?;
            let owner: String = text(r, 2).map_err(|e| self.err(e))?;
            out.entry(owner)
                .or_default()
                .push((k, v.unwrap_or_default()));
        }
        Ok(out)
    }
}

fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Invalid(format!(
        "{} does not read as an MLflow store: {e}",
        path.display()
    ))
}

/// A column as text whatever SQLite stored in it (ids are integers in some tables and text in
/// others).
fn text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => String::new(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    })
}

/// MLflow's SQL store writes ±inf as ±`f64::MAX` (not every database holds an infinity) and
/// NaN as 0 with `is_nan`: the value as it was logged.
pub(crate) fn logged_value(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else if value == f64::MAX {
        f64::INFINITY
    } else if value == f64::MIN {
        f64::NEG_INFINITY
    } else {
        value
    }
}

impl MlflowSource for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:///{}", self.path.display())
    }

    fn base_dir(&self) -> Option<PathBuf> {
        self.path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned))
    }

    fn experiments(&mut self) -> Result<Vec<SrcExperiment>, Error> {
        let mut tags = if self.has_table("experiment_tags")? {
            self.grouped("SELECT key, value, experiment_id FROM experiment_tags ORDER BY key")?
        } else {
            HashMap::new()
        };
        let mut st = self
            .conn
            .prepare(
                "SELECT experiment_id, name, lifecycle_stage FROM experiments \
                 ORDER BY experiment_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(SrcExperiment {
                    id: text(r, 0)?,
                    name: r.get(1)?,
                    deleted: r.get::<_, Option<String>>(2)?.as_deref() == Some("deleted"),
                    tags: Vec::new(),
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|mut e| {
                e.tags = tags.remove(&e.id).unwrap_or_default();
                e
            })
            .collect())
    }

    fn runs(&mut self, experiments: &[String]) -> Result<Vec<SrcRun>, Error> {
        let wanted: std::collections::HashSet<&str> =
            experiments.iter().map(String::as_str).collect();
        let mut params =
            self.grouped("SELECT key, value, run_uuid FROM params ORDER BY run_uuid, key")?;
        let mut tags =
            self.grouped("SELECT key, value, run_uuid FROM tags ORDER BY run_uuid, key")?;
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        {
            // `latest_metrics` has a row per series; stores that predate it are read from
            // `metrics` (slower: every point).
            let sql = if self.has_table("latest_metrics")? {
                "SELECT run_uuid, key FROM latest_metrics ORDER BY run_uuid, key"
            } else {
                "SELECT DISTINCT run_uuid, key FROM metrics ORDER BY run_uuid, key"
            };
            let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
            let mut rows = st.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let run: String = r.get(0).map_err(|e| self.err(e))?;
                keys.entry(run)
                    .or_default()
                    .push(r.get(1).map_err(|e| self.err(e))?);
            }
        }
        let mut datasets = self.datasets()?;
        let mut st = self
            .conn
            .prepare(
                "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, \
                 lifecycle_stage, artifact_uri FROM runs ORDER BY start_time, run_uuid",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let get = |e: rusqlite::Error| sql_error(&self.path, e);
            let experiment = text(r, 1).map_err(get)?;
            if !wanted.contains(experiment.as_str()) {
                continue;
            }
            let id: String = r.get(0).map_err(get)?;
            out.push(SrcRun {
                params: params.remove(&id).unwrap_or_default(),
                tags: tags.remove(&id).unwrap_or_default(),
                metric_keys: keys.remove(&id).unwrap_or_default(),
                datasets: datasets.remove(&id).unwrap_or_default(),
                experiment,
                name: r.get(2).map_err(get)?,
                user: r.get(3).map_err(get)?,
                status: r
                    .get::<_, Option<String>>(4)
                    .map_err(get)?
                    .unwrap_or_default(),
                start_ms: r.get(5).map_err(get)?,
                end_ms: r.get(6).map_err(get)?,
                deleted: r.get::<_, Option<String>>(7).map_err(get)?.as_deref() == Some("deleted"),
                artifact_uri: r.get(8).map_err(get)?,
                id,
            });
        }
        Ok(out)
    }

    fn points(
        &mut self,
        run: &str,
        sink: &mut dyn FnMut(&str, Point) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?1 \
                 ORDER BY key, step, timestamp, is_nan, value",
            )
            .map_err(|e| sql_error(&self.path, e))?;
        let mut rows = st
            .query(params![run])
            .map_err(|e| sql_error(&self.path, e))?;
        let mut key = String::new();
        while let Some(r) = rows.next().map_err(|e| sql_error(&self.path, e))? {
            let get = |e: rusqlite::Error| sql_error(&self.path, e);
            let k = r
                .get_ref(0)
                .map_err(get)?
                .as_str()
                .map_err(|e| get(e.into()))?;
            if k != key {
                key.clear();
                key.push_str(k);
            }
            let value: f64 = r.get(1).map_err(get)?;
            let is_nan: bool = r.get::<_, Option<bool>>(4).map_err(get)?.unwrap_or(false);
            sink(
                &key,
                Point {
                    step: r.get::<_, Option<i64>>(3).map_err(get)?.unwrap_or(0),
                    ts_ms: r.get(2).map_err(get)?,
                    value: logged_value(value, is_nan),
                },
            )?;
        }
        Ok(())
    }

    fn counts(&mut self, run: &str) -> Result<Option<HashMap<String, u64>>, Error> {
        // From the `(run_uuid, key, step)` index alone: no point is read.
        let mut st = self
            .conn
            .prepare_cached("SELECT key, COUNT(*) FROM metrics WHERE run_uuid = ?1 GROUP BY key")
            .map_err(|e| sql_error(&self.path, e))?;
        let rows = st
            .query_map(params![run], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, n) = row.map_err(|e| sql_error(&self.path, e))?;
            out.insert(k, n.max(0) as u64);
        }
        Ok(Some(out))
    }

    fn models(&mut self) -> Result<Vec<SrcModel>, Error> {
        if !self.has_table("registered_models")? || !self.has_table("model_versions")? {
            return Ok(Vec::new());
        }
        let mut tags = if self.has_table("registered_model_tags")? {
            self.grouped("SELECT key, value, name FROM registered_model_tags ORDER BY key")?
        } else {
            HashMap::new()
        };
        let mut vtags = if self.has_table("model_version_tags")? {
            self.grouped(
                "SELECT key, value, name || char(0) || version FROM model_version_tags \
                 ORDER BY key",
            )?
        } else {
            HashMap::new()
        };
        let mut aliases: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        if self.has_table("registered_model_aliases")? {
            let mut st = self
                .conn
                .prepare("SELECT name, alias, version FROM registered_model_aliases ORDER BY alias")
                .map_err(|e| self.err(e))?;
            let mut rows = st.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let get = |e: rusqlite::Error| sql_error(&self.path, e);
                aliases
                    .entry(r.get(0).map_err(get)?)
                    .or_default()
                    .push((r.get(1).map_err(get)?, r.get(2).map_err(get)?));
            }
        }
        let mut versions: HashMap<String, Vec<SrcVersion>> = HashMap::new();
        {
            let mut st = self
                .conn
                .prepare(
                    "SELECT name, version, source, run_id, description, current_stage \
                     FROM model_versions ORDER BY name, version",
                )
                .map_err(|e| self.err(e))?;
            let mut rows = st.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let get = |e: rusqlite::Error| sql_error(&self.path, e);
                let name: String = r.get(0).map_err(get)?;
                let version: u32 = r.get(1).map_err(get)?;
                let stage: Option<String> = r.get(5).map_err(get)?;
                let deleted = stage.as_deref() == Some("Deleted_Internal");
                versions.entry(name.clone()).or_default().push(SrcVersion {
                    version,
                    source: r.get(2).map_err(get)?,
                    run_id: r
                        .get::<_, Option<String>>(3)
                        .map_err(get)?
                        .filter(|r| !r.is_empty()),
                    description: r
                        .get::<_, Option<String>>(4)
                        .map_err(get)?
                        .filter(|d| !d.is_empty()),
                    stage: stage
                        .filter(|s| !deleted && !s.is_empty() && !s.eq_ignore_ascii_case("none")),
                    deleted,
                    tags: vtags
                        .remove(&format!("{name}\0{version}"))
                        .unwrap_or_default(),
                });
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT name, description FROM registered_models ORDER BY creation_time, name")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(name, description)| SrcModel {
                tags: tags.remove(&name).unwrap_or_default(),
                versions: versions.remove(&name).unwrap_or_default(),
                aliases: aliases.remove(&name).unwrap_or_default(),
                description: description.filter(|d| !d.is_empty()),
                name,
            })
            .collect())
    }
}

impl SqliteStore {
    /// The dataset inputs of every run, by run id.
    fn datasets(&self) -> Result<HashMap<String, Vec<DatasetSnapshot>>, Error> {
        let mut out: HashMap<String, Vec<DatasetSnapshot>> = HashMap::new();
        if !self.has_table("inputs")? || !self.has_table("datasets")? {
            return Ok(out);
        }
        let input_tags = if self.has_table("input_tags")? {
            self.grouped("SELECT name, value, input_uuid FROM input_tags ORDER BY name")?
        } else {
            HashMap::new()
        };
        let profile = if self.has_column("datasets", "dataset_profile")? {
            "d.dataset_profile"
        } else {
            "NULL"
        };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, \
                 d.dataset_source, d.dataset_schema, {profile} FROM inputs i JOIN datasets d \
                 ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' \
                 AND i.destination_type = 'RUN' ORDER BY i.destination_id, d.name"
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let get = |e: rusqlite::Error| sql_error(&self.path, e);
            let run: String = r.get(0).map_err(get)?;
            let input: String = r.get(1).map_err(get)?;
            let mut context = None;
            let mut tags = std::collections::BTreeMap::new();
            for (k, v) in input_tags.get(&input).into_iter().flatten() {
                if k == "mlflow.data.context" {
                    context = Some(v.clone());
                } else {
                    tags.insert(k.clone(), v.clone());
                }
            }
            let source: Option<String> = r.get(5).map_err(get)?;
            let profile: Option<String> = r.get(7).map_err(get)?;
            out.entry(run).or_default().push(DatasetSnapshot {
                name: r.get(2).map_err(get)?,
                context,
                uri: source.as_deref().map(source_uri),
                digest: r
                    .get::<_, Option<String>>(3)
                    .map_err(get)?
                    .filter(|d| !d.is_empty()),
                size_bytes: None,
                rows: profile
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                    .and_then(|p| p.get("num_rows").and_then(serde_json::Value::as_u64)),
                source_type: r.get(4).map_err(get)?,
                schema: r
                    .get::<_, Option<String>>(6)
                    .map_err(get)?
                    .filter(|s| !s.is_empty()),
                source,
                profile: profile.filter(|p| !p.is_empty()),
                tags,
            });
        }
        Ok(out)
    }
}

/// The uri inside MLflow's source JSON (`{"uri": …}`, `{"url": …}`, `{"path": …}`, a table),
/// or the text itself (what `runs/log-inputs` stores as the snapshot's uri).
pub(crate) fn source_uri(source: &str) -> String {
    serde_json::from_str::<serde_json::Value>(source)
        .ok()
        .and_then(|v| {
            ["uri", "url", "path", "table_name", "delta_table_name"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| source.to_owned())
}

/// The tables of MLflow 3's SQL store this importer reads, as MLflow creates them (columns,
/// keys and indexes copied from a store `mlflow` 3.x made), for tests and benchmarks that
/// write a store without MLflow.
pub const SCHEMA: &str = r#"
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
CREATE TABLE experiments (
    experiment_id INTEGER NOT NULL, name VARCHAR(256) NOT NULL,
    artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), creation_time BIGINT,
    last_update_time BIGINT, workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),
    CONSTRAINT uq_experiments_workspace_name UNIQUE (workspace, name));
CREATE TABLE experiment_tags (
    "key" VARCHAR(250) NOT NULL, value TEXT, experiment_id INTEGER NOT NULL,
    CONSTRAINT experiment_tag_pk PRIMARY KEY ("key", experiment_id));
CREATE TABLE runs (
    run_uuid VARCHAR(32) NOT NULL, name VARCHAR(250), source_type VARCHAR(20),
    source_name VARCHAR(500), entry_point_name VARCHAR(50), user_id VARCHAR(256),
    status VARCHAR(9), start_time BIGINT, end_time BIGINT, source_version VARCHAR(50),
    lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER,
    deleted_time BIGINT, CONSTRAINT run_pk PRIMARY KEY (run_uuid));
CREATE TABLE params (
    "key" VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL, run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT param_pk PRIMARY KEY ("key", run_uuid));
CREATE INDEX index_params_run_uuid ON params (run_uuid);
CREATE TABLE tags (
    "key" VARCHAR(250) NOT NULL, value VARCHAR(8000), run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT tag_pk PRIMARY KEY ("key", run_uuid));
CREATE INDEX index_tags_run_uuid ON tags (run_uuid);
CREATE TABLE metrics (
    "key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL,
    is_nan BOOLEAN DEFAULT '0' NOT NULL,
    CONSTRAINT metric_pk PRIMARY KEY ("key", timestamp, step, run_uuid, value, is_nan));
CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid);
CREATE INDEX index_metrics_run_uuid_key_step ON metrics (run_uuid, "key", step);
CREATE TABLE latest_metrics (
    "key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT, step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL, run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT latest_metric_pk PRIMARY KEY ("key", run_uuid));
CREATE INDEX index_latest_metrics_run_uuid ON latest_metrics (run_uuid);
CREATE TABLE datasets (
    dataset_uuid VARCHAR(36) NOT NULL, experiment_id INTEGER NOT NULL, name VARCHAR(500) NOT NULL,
    digest VARCHAR(36) NOT NULL, dataset_source_type VARCHAR(36) NOT NULL,
    dataset_source TEXT NOT NULL, dataset_schema TEXT, dataset_profile TEXT,
    CONSTRAINT dataset_pk PRIMARY KEY (experiment_id, name, digest));
CREATE TABLE inputs (
    input_uuid VARCHAR(36) NOT NULL, source_type VARCHAR(36) NOT NULL,
    source_id VARCHAR(36) NOT NULL, destination_type VARCHAR(36) NOT NULL,
    destination_id VARCHAR(36) NOT NULL, step BIGINT DEFAULT '0' NOT NULL,
    CONSTRAINT inputs_pk PRIMARY KEY (source_type, source_id, destination_type, destination_id));
CREATE TABLE input_tags (
    input_uuid VARCHAR(36) NOT NULL, name VARCHAR(255) NOT NULL, value VARCHAR(500) NOT NULL,
    CONSTRAINT input_tags_pk PRIMARY KEY (input_uuid, name));
CREATE TABLE registered_models (
    name VARCHAR(256) NOT NULL, creation_time BIGINT, last_updated_time BIGINT,
    description VARCHAR(5000), workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT registered_model_pk PRIMARY KEY (workspace, name));
CREATE TABLE model_versions (
    name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, creation_time BIGINT,
    last_updated_time BIGINT, description VARCHAR(5000), user_id VARCHAR(256),
    current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32), status VARCHAR(20),
    status_message VARCHAR(500), run_link VARCHAR(500), storage_location VARCHAR(500),
    workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT model_version_pk PRIMARY KEY (workspace, name, version));
CREATE TABLE registered_model_tags (
    "key" VARCHAR(250) NOT NULL, value VARCHAR(5000), name VARCHAR(256) NOT NULL,
    workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT registered_model_tag_pk PRIMARY KEY (workspace, "key", name));
CREATE TABLE model_version_tags (
    "key" VARCHAR(250) NOT NULL, value TEXT, name VARCHAR(256) NOT NULL,
    version INTEGER NOT NULL, workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT model_version_tag_pk PRIMARY KEY (workspace, "key", name, version));
CREATE TABLE registered_model_aliases (
    alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, name VARCHAR(256) NOT NULL,
    workspace VARCHAR(63) DEFAULT 'default' NOT NULL,
    CONSTRAINT registered_model_alias_pk PRIMARY KEY (workspace, name, alias));
INSERT INTO alembic_version VALUES ('dc11669786a5');
INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time,
    last_update_time) VALUES (0, 'Default', 'mlruns/0', 'active', 0, 0);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_and_nan_come_back_as_logged() {
        assert_eq!(logged_value(f64::MAX, false), f64::INFINITY);
        assert_eq!(logged_value(f64::MIN, false), f64::NEG_INFINITY);
        assert!(logged_value(0.0, true).is_nan());
        assert_eq!(logged_value(0.25, false), 0.25);
    }

    #[test]
    fn dataset_sources_give_their_uri() {
        assert_eq!(
            source_uri(r#"{"uri": "s3://b/t.parquet"}"#),
            "s3://b/t.parquet"
        );
        assert_eq!(source_uri("plain"), "plain");
    }
}
