//! The model registry, kept in the team doc so it syncs with the catalog: registered models,
//! append-only versions, aliases.

use std::collections::BTreeMap;

use cairn_model::{ArtifactKind, ModelVersion, RegisteredModel, RunId};

use crate::stores::now_ms;
use crate::{Error, Stores};

fn key(name: &str) -> String {
    format!("model/{name}")
}

fn validate_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid model name '{name}': must be 1-256 printable characters"
        )));
    }
    Ok(())
}

impl Stores {
    fn store_model(&mut self, model: &RegisteredModel) -> Result<(), Error> {
        let text = serde_json::to_string(model).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self
            .catalog_mut()
            .put_team_entry(&key(&model.name), Some(&text))?)
    }

    /// A registered model by name.
    pub fn registered_model(&mut self, name: &str) -> Result<RegisteredModel, Error> {
        let text = self
            .catalog_mut()
            .team_entry(&key(name))?
            .ok_or_else(|| Error::UnknownModel(name.to_owned()))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("registered model '{name}' is unreadable: {e}")))
    }

    pub fn registered_models(&mut self) -> Result<Vec<RegisteredModel>, Error> {
        self.catalog_mut()
            .team_entries("model/")?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v)
                    .map_err(|e| Error::Invalid(format!("{k} is unreadable: {e}")))
            })
            .collect()
    }

    pub fn create_registered_model(
        &mut self,
        name: &str,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<RegisteredModel, Error> {
        validate_name(name)?;
        if self.catalog_mut().team_entry(&key(name))?.is_some() {
            return Err(Error::ModelExists(name.to_owned()));
        }
        let now = now_ms();
        let model = RegisteredModel {
            name: name.to_owned(),
            description: description.map(str::to_owned),
            tags,
            created_ms: now,
            updated_ms: now,
            aliases: BTreeMap::new(),
            versions: Vec::new(),
        };
        self.store_model(&model)?;
        Ok(model)
    }

    pub fn delete_registered_model(&mut self, name: &str) -> Result<(), Error> {
        self.registered_model(name)?;
        Ok(self.catalog_mut().put_team_entry(&key(name), None)?)
    }

    /// Registers a new version of `name` from `source`, bound to the run and, when the source is
    /// one of the run's artifacts, to its content hash.
    pub fn create_model_version(
        &mut self,
        name: &str,
        source: &str,
        run: Option<RunId>,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<ModelVersion, Error> {
        let mut model = self.registered_model(name)?;
        // A logged model's source (`models:/<model_id>`) gives the run and the content.
        let logged = self.model_source_content(source)?;
        let run = run.or(logged.as_ref().and_then(|l| l.run));
        let content = match run {
            _ if logged.is_some() => logged.as_ref().and_then(|l| l.content),
            Some(id) => {
                let run = self.run(id)?.run;
                // `runs:/<id>/model` or `…/artifacts/model`: the path after the run's artifact root.
                let logical = source
                    .rsplit_once("/artifacts/")
                    .map(|(_, p)| p)
                    .or_else(|| source.strip_prefix(&format!("runs:/{id}/")))
                    .unwrap_or("");
                run.artifacts
                    .get(logical.trim_matches('/'))
                    .filter(|a| a.kind == ArtifactKind::Dir || a.kind == ArtifactKind::File)
                    .map(|a| a.hash)
            }
            None => None,
        };
        let version = ModelVersion {
            version: model.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1,
            source: source.to_owned(),
            run,
            content,
            created_ms: now_ms(),
            description: description.map(str::to_owned),
            tags,
            user: Some(self.user().to_owned()),
        };
        model.versions.push(version.clone());
        model.updated_ms = version.created_ms;
        self.store_model(&model)?;
        if let Some(l) = &logged {
            self.note_model_version(&l.model, name, version.version)?;
        }
        Ok(version)
    }

    pub fn model_version(&mut self, name: &str, version: u32) -> Result<ModelVersion, Error> {
        self.registered_model(name)?
            .versions
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| Error::UnknownModelVersion {
                name: name.to_owned(),
                version: version.to_string(),
            })
    }

    /// Points `alias` (e.g. `champion`) at a version.
    pub fn set_model_alias(&mut self, name: &str, alias: &str, version: u32) -> Result<(), Error> {
        let mut model = self.registered_model(name)?;
        if !model.versions.iter().any(|v| v.version == version) {
            return Err(Error::UnknownModelVersion {
                name: name.to_owned(),
                version: version.to_string(),
            });
        }
        if alias.trim().is_empty() || alias.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("invalid alias '{alias}'")));
        }
        model.aliases.insert(alias.to_owned(), version);
        model.updated_ms = now_ms();
        self.store_model(&model)
    }

    pub fn delete_model_alias(&mut self, name: &str, alias: &str) -> Result<(), Error> {
        let mut model = self.registered_model(name)?;
        if model.aliases.remove(alias).is_none() {
            return Err(Error::UnknownModelVersion {
                name: name.to_owned(),
                version: format!("@{alias}"),
            });
        }
        self.store_model(&model)
    }

    pub fn model_version_by_alias(
        &mut self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion, Error> {
        let model = self.registered_model(name)?;
        let v = *model
            .aliases
            .get(alias)
            .ok_or_else(|| Error::UnknownModelVersion {
                name: name.to_owned(),
                version: format!("@{alias}"),
            })?;
        self.model_version(name, v)
    }
}
