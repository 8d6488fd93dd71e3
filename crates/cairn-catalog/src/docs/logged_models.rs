//! Logged models in the shard docs: created beside their experiment's runs, edited one change
//! per call, read from the projection (fast) or the doc (after other writers), searched
//! through the projection tables.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, Value};
use cairn_model::{LoggedModel, LoggedModelId, RunId};
use rusqlite::Transaction;

use super::Catalog;
use crate::Error;
use crate::logged_model_doc::{self, LoggedModelEdit, model_key, model_value};
use crate::logged_model_project::{self as project, LoggedModelQuery, RunModelLink};

impl Catalog {
    /// Creates a logged model in a shard of its experiment: one `batch_create_object`, one
    /// change, one transaction.
    pub fn create_logged_model(&mut self, model: &LoggedModel) -> Result<(), Error> {
        if self.experiment(model.experiment)?.is_none() {
            return Err(Error::UnknownExperiment(model.experiment));
        }
        // A model does not count against the shard's room for runs: it is small, and a shard
        // of a long experiment keeps its models next to the runs that logged them.
        let (shard, _) = self.shard_with_room(model.experiment)?;
        let name = shard.to_string();
        let key = model_key(&model.id);
        self.write(
            &name,
            |doc| {
                if doc
                    .get(automerge::ROOT, key.as_str())
                    .map_err(Error::automerge(&name))?
                    .is_some()
                {
                    return Err(Error::Corrupt {
                        doc: name.clone(),
                        reason: format!("{key} exists already"),
                    });
                }
                doc.batch_create_object(automerge::ROOT, key.as_str(), &model_value(model), false)
                    .map_err(Error::automerge(&name))?;
                Ok(())
            },
            |tx, _, _| {
                tx.execute(
                    "UPDATE docs SET experiment = coalesce(experiment, ?2) WHERE id = ?1",
                    rusqlite::params![name, model.experiment.to_string()],
                )?;
                project::upsert(tx, model, &name)
            },
        )
    }

    fn model_shard(&self, id: &LoggedModelId) -> Result<String, Error> {
        project::shard_of(self.conn(), id)?.ok_or_else(|| Error::UnknownLoggedModel(id.clone()))
    }

    /// Applies edits to a logged model in one change, and returns it as it now is. `edits`
    /// sees the model as the doc holds it inside the write (after every other writer), so an
    /// edit that depends on what is stored (a metric value that must be the latest, a param
    /// that must not change) decides there; its error stores nothing and is returned as is.
    pub fn update_logged_model<E: From<Error>>(
        &mut self,
        id: &LoggedModelId,
        edits: impl FnOnce(&LoggedModel) -> Result<Vec<LoggedModelEdit>, E>,
    ) -> Result<LoggedModel, E> {
        let shard = self.model_shard(id)?;
        let key = model_key(id);
        let mut refused: Option<E> = None;
        let written = self.write(
            &shard,
            |doc| {
                let obj = match doc
                    .get(automerge::ROOT, key.as_str())
                    .map_err(Error::automerge(&shard))?
                {
                    Some((Value::Object(ObjType::Map), obj)) => obj,
                    _ => return Err(Error::UnknownLoggedModel(id.clone())),
                };
                let before = logged_model_doc::read_model(doc, &shard, id)?
                    .ok_or_else(|| Error::UnknownLoggedModel(id.clone()))?;
                let list = match edits(&before) {
                    Ok(list) => list,
                    Err(e) => {
                        refused = Some(e);
                        return Err(Error::EditRefused);
                    }
                };
                for e in list {
                    logged_model_doc::apply_edit(doc, &obj, &e, &shard)?;
                }
                Ok(())
            },
            |tx, doc, _| project_model(tx, doc, &shard, id),
        );
        match (written, refused) {
            (Err(_), Some(e)) => return Err(e),
            (Err(e), None) => return Err(e.into()),
            (Ok(()), _) => {}
        }
        Ok(self
            .logged_model(id)?
            .ok_or_else(|| Error::UnknownLoggedModel(id.clone()))?)
    }

    /// A logged model as last projected (no doc is loaded), deleted ones included.
    pub fn logged_model(&self, id: &LoggedModelId) -> Result<Option<LoggedModel>, Error> {
        project::get(self.conn(), id)
    }

    /// A logged model read from its shard doc (catches up with other writers first).
    pub fn logged_model_from_doc(&mut self, id: &LoggedModelId) -> Result<LoggedModel, Error> {
        let shard = self.model_shard(id)?;
        self.read(&shard, |doc| {
            logged_model_doc::read_model(doc, &shard, id)?
                .ok_or_else(|| Error::UnknownLoggedModel(id.clone()))
        })
    }

    /// One page of the logged models a query matches.
    pub fn search_logged_models(&self, q: &LoggedModelQuery) -> Result<Vec<LoggedModel>, Error> {
        project::search(self.conn(), q)
    }

    /// The logged models each of `runs` produced or took as input.
    pub fn run_model_links(&self, runs: &[RunId]) -> Result<Vec<RunModelLink>, Error> {
        project::links_of_runs(self.conn(), runs)
    }
}

/// Re-projects one model from its doc.
fn project_model(
    tx: &Transaction<'_>,
    doc: &AutoCommit,
    shard: &str,
    id: &LoggedModelId,
) -> Result<(), Error> {
    let model = logged_model_doc::read_model(doc, shard, id)?
        .ok_or_else(|| Error::UnknownLoggedModel(id.clone()))?;
    project::upsert(tx, &model, shard)
}

/// Re-projects every logged model of a shard doc (a rebuild, or a doc that arrived whole).
pub(crate) fn project_shard(
    tx: &Transaction<'_>,
    doc: &AutoCommit,
    shard: &str,
) -> Result<usize, Error> {
    project::clear_shard(tx, shard)?;
    let ids = logged_model_doc::model_ids(doc, shard)?;
    for id in &ids {
        project_model(tx, doc, shard, id)?;
    }
    Ok(ids.len())
}

/// Re-projects the models among `ids` (keys a sync brought changes to).
pub(crate) fn project_models(
    tx: &Transaction<'_>,
    doc: &AutoCommit,
    shard: &str,
    ids: &[LoggedModelId],
) -> Result<(), Error> {
    for id in ids {
        project_model(tx, doc, shard, id)?;
    }
    Ok(())
}
