//! The model registry, kept as records in the team doc so it syncs with the catalog and merges
//! (see `cairn_model::registry` for the records and how a model is assembled from them).
//!
//! What this module adds to the records: registration, which pins a version to the content of
//! the run's artifact path at that moment (a directory's BLAKE3 manifest, stored like any
//! directory) and locks that path in the run while the version lives; aliases; tombstones;
//! downloads by content hash; and the migration of the format before records (one JSON value
//! per model under `model/<name>`), which rewrites each model as records with its numbers.

use std::collections::{BTreeMap, BTreeSet};

use cairn_artifacts::{Manifest, ManifestEntry};
use cairn_audit::kind;
use cairn_model::registry::{
    AliasRecord, LegacyModel, MAX_CLAIM, MAX_RECORD_TEXT, MetaValue, ModelRecord, ModelRecords,
    Tombstone, VersionRecord, keys,
};
use cairn_model::{
    ArtifactKind, ArtifactRef, BlobHash, ModelVersion, RecordId, RegisteredModel, Run, RunId,
    VersionId, validate_alias, validate_model_name,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::stores::now_ms;
use crate::transfer::ArtifactDownload;
use crate::{ArtifactEntry, Error, Stores, Workspace};

/// A blob of unknown kind larger than this is a file, not read as a possible manifest.
const MAX_GUESSED_MANIFEST: u64 = 16 << 20;

/// What one team-doc read of a model's key ranges holds.
const MODEL_PREFIXES: [&str; 7] = [
    keys::MODEL,
    keys::VERSION,
    keys::MODEL_DELETION,
    keys::VERSION_DELETION,
    keys::ALIAS,
    keys::MODEL_META,
    keys::VERSION_META,
];

fn json<T: Serialize>(v: &T) -> String {
    // Records are strings, numbers, maps and ids: nothing serde_json can fail on.
    serde_json::to_string(v).unwrap_or_default()
}

/// Refuses free text (a reason, a rationale, a description) over [`MAX_RECORD_TEXT`].
pub(crate) fn text_bound(what: &str, text: Option<&str>) -> Result<(), Error> {
    match text {
        Some(t) if t.len() > MAX_RECORD_TEXT => Err(Error::Invalid(format!(
            "the {what} is {} bytes long (at most {MAX_RECORD_TEXT})",
            t.len()
        ))),
        _ => Ok(()),
    }
}

/// Parses one record, or says (at warn level, once per read) why a peer's entry is ignored.
fn parse<T: DeserializeOwned>(key: &str, text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, "ignoring an unreadable registry record: {e}");
            None
        }
    }
}

/// The parts of `key` after `prefix`, unescaped; `None` when it is not `n` parts.
fn key_parts(key: &str, prefix: &str, n: usize) -> Option<Vec<String>> {
    let rest = key.strip_prefix(prefix)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != n {
        return None;
    }
    parts.into_iter().map(keys::unesc).collect()
}

/// The (run, artifact path) a version's source names, when it is one of this workspace's runs:
/// `runs:/<run>/<path>`, or a URI ending in `/<run>/artifacts/<path>` (what `mlflow-artifacts:`
/// and `file:` sources look like).
fn source_location(source: &str, run: Option<RunId>) -> Option<(RunId, String)> {
    if let Some(rest) = source.strip_prefix("runs:/") {
        let rest = rest.trim_start_matches('/');
        let (id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let id: RunId = id.parse().ok()?;
        if run.is_some_and(|r| r != id) {
            return None;
        }
        return Some((id, path.trim_matches('/').to_owned()));
    }
    let run = run?;
    let marker = format!("/{run}/artifacts");
    let i = source.find(&marker)?;
    let path = &source[i + marker.len()..];
    if !(path.is_empty() || path.starts_with('/')) {
        return None;
    }
    Some((run, path.trim_matches('/').to_owned()))
}

/// Deterministic ids for a migrated legacy version: every peer migrating the same entry writes
/// the same records, so concurrent migrations leave no duplicates.
fn legacy_version_id(name: &str, number: u32, created_ms: i64) -> VersionId {
    let h = blake3::hash(format!("cairn/legacy-version\0{name}\0{number}").as_bytes());
    let mut r = [0u8; 16];
    r.copy_from_slice(&h.as_bytes()[..16]);
    VersionId::from_parts(created_ms.max(0) as u64, u128::from_be_bytes(r))
}

fn legacy_record_id(name: &str, what: &str, ms: i64) -> RecordId {
    let h = blake3::hash(format!("cairn/legacy-{what}\0{name}").as_bytes());
    let mut r = [0u8; 16];
    r.copy_from_slice(&h.as_bytes()[..16]);
    RecordId::from_parts(ms.max(0) as u64, u128::from_be_bytes(r))
}

/// A legacy model as records, with the team-doc keys they go under.
fn legacy_records(m: &LegacyModel) -> Vec<(String, String)> {
    let name = &m.name;
    let mut out = vec![(
        format!(
            "{}{}",
            keys::of_model(keys::MODEL, name),
            legacy_record_id(name, "model", m.created_ms)
        ),
        json(&ModelRecord {
            id: legacy_record_id(name, "model", m.created_ms),
            name: name.clone(),
            created_ms: m.created_ms,
            user: String::new(),
            device: None,
            description: m.description.clone(),
            tags: m.tags.clone(),
        }),
    )];
    let mut ids = BTreeMap::new();
    for v in &m.versions {
        let id = legacy_version_id(name, v.version, v.created_ms);
        ids.insert(v.version, id);
        let path = source_location(&v.source, v.run).map(|(_, p)| p);
        let record = VersionRecord {
            id,
            model: name.clone(),
            claim: v.version,
            source: v.source.clone(),
            run: v.run,
            path: path.filter(|_| v.content.is_some()),
            content: v.content,
            content_kind: None,
            size: None,
            created_ms: v.created_ms,
            user: v.user.clone().unwrap_or_default(),
            device: None,
            description: v.description.clone(),
            tags: v.tags.clone(),
            model_id: None,
        };
        out.push((
            format!("{}{id}", keys::of_model(keys::VERSION, name)),
            json(&record),
        ));
        if let Some(run) = v.run {
            out.push((format!("{}{run}/{id}", keys::RUN_INDEX), name.clone()));
        }
    }
    for (alias, n) in &m.aliases {
        if let Some(id) = ids.get(n) {
            out.push((
                format!("{}{}", keys::of_model(keys::ALIAS, name), keys::esc(alias)),
                json(&AliasRecord {
                    version: Some(*id),
                    user: String::new(),
                    device: None,
                    at_ms: m.updated_ms,
                    evaluation: None,
                    rationale: Some("migrated from the registry format before records".into()),
                }),
            ));
        }
    }
    out
}

impl Stores {
    /// This device's endpoint id, for the records it writes (`None` when the key cannot be
    /// read: the record is still written, without it).
    pub(crate) fn record_device(&self) -> Option<String> {
        match self.device_id() {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!("this device's id is unknown: {e}");
                None
            }
        }
    }

    /// Every record of one model name, legacy entries read as the records they migrate to.
    pub(crate) fn model_records(&mut self, name: &str) -> Result<ModelRecords, Error> {
        let prefixes: Vec<String> = MODEL_PREFIXES
            .iter()
            .map(|p| keys::of_model(p, name))
            .collect();
        let legacy_key = format!("{}{name}", keys::LEGACY);
        let mut refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        refs.push(&legacy_key);
        let ranges = self.catalog_mut().team_ranges(&refs)?;
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        for (i, range) in ranges.into_iter().enumerate() {
            if i == MODEL_PREFIXES.len() {
                // The legacy range also holds `model/<name>…` of longer names: this one only.
                for (key, values) in range {
                    if key != legacy_key {
                        continue;
                    }
                    for text in values {
                        if let Some(m) = parse::<LegacyModel>(&key, &text) {
                            for (k, v) in legacy_records(&m) {
                                entries.push((k, vec![v]));
                            }
                        }
                    }
                }
            } else {
                entries.extend(range);
            }
        }
        Ok(records_from(name, entries))
    }

    /// Every model name with records (or a legacy entry), sorted.
    fn model_names(&mut self) -> Result<BTreeSet<String>, Error> {
        let ranges = self
            .catalog_mut()
            .team_ranges(&[keys::MODEL, keys::VERSION, keys::LEGACY])?;
        let mut names = BTreeSet::new();
        for (i, range) in ranges.into_iter().enumerate() {
            for (key, _) in range {
                let name = if i == 2 {
                    key.strip_prefix(keys::LEGACY).map(str::to_owned)
                } else {
                    let prefix = if i == 0 { keys::MODEL } else { keys::VERSION };
                    key_parts(&key, prefix, 2).map(|mut p| p.swap_remove(0))
                };
                names.extend(name);
            }
        }
        Ok(names)
    }

    /// A registered model by name.
    pub fn registered_model(&mut self, name: &str) -> Result<RegisteredModel, Error> {
        self.model_records(name)?
            .assemble(name)
            .ok_or_else(|| Error::UnknownModel(name.to_owned()))
    }

    /// Every registered model, by name.
    pub fn registered_models(&mut self) -> Result<Vec<RegisteredModel>, Error> {
        let mut out = Vec::new();
        for name in self.model_names()? {
            if let Some(m) = self.model_records(&name)?.assemble(&name) {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub fn create_registered_model(
        &mut self,
        name: &str,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<RegisteredModel, Error> {
        validate_model_name(name)?;
        text_bound("description", description)?;
        if self.model_records(name)?.assemble(name).is_some() {
            return Err(Error::ModelExists(name.to_owned()));
        }
        let record = ModelRecord {
            id: RecordId::new(),
            name: name.to_owned(),
            created_ms: now_ms(),
            user: self.user().to_owned(),
            device: self.record_device(),
            description: description.map(str::to_owned),
            tags,
        };
        let draft = self
            .draft(kind::MODEL_CREATED)
            .subject(format!("model:{name}"))
            .field("model", name);
        self.put_attested(
            draft,
            &[(
                format!("{}{}", keys::of_model(keys::MODEL, name), record.id),
                Some(json(&record)),
            )],
        )?;
        self.registered_model(name)
    }

    /// Deletes a model: a tombstone covering its creation and every version this device
    /// knows of. A version a peer registered meanwhile is not covered and keeps the model.
    pub fn delete_registered_model(&mut self, name: &str, reason: &str) -> Result<(), Error> {
        text_bound("reason", Some(reason))?;
        let records = self.model_records(name)?;
        if records.assemble(name).is_none() {
            return Err(Error::UnknownModel(name.to_owned()));
        }
        let d = Tombstone {
            id: RecordId::new(),
            user: self.user().to_owned(),
            device: self.record_device(),
            at_ms: now_ms(),
            reason: reason.to_owned(),
            covers: records.live_ids(),
        };
        let draft = self
            .draft(kind::MODEL_DELETED)
            .subject(format!("model:{name}"))
            .field("model", name)
            .field("reason", reason);
        self.put_attested(
            draft,
            &[(
                format!("{}{}", keys::of_model(keys::MODEL_DELETION, name), d.id),
                Some(json(&d)),
            )],
        )
    }

    /// Sets (or, with `None`, removes) a model's description or a tag (`tag/<key>`).
    pub fn set_model_meta(
        &mut self,
        name: &str,
        field: &str,
        value: Option<&str>,
    ) -> Result<RegisteredModel, Error> {
        text_bound(field, value)?;
        self.registered_model(name)?;
        let key = format!(
            "{}{}",
            keys::of_model(keys::MODEL_META, name),
            meta_key(field)
        );
        let m = MetaValue {
            value: value.map(str::to_owned),
            user: self.user().to_owned(),
            at_ms: now_ms(),
        };
        self.catalog_mut()
            .put_team_entries(&[(key, Some(json(&m)))])?;
        self.registered_model(name)
    }

    /// Sets (or removes) a version's description, stage or a tag (`tag/<key>`).
    pub fn set_version_meta(
        &mut self,
        name: &str,
        version: u32,
        field: &str,
        value: Option<&str>,
    ) -> Result<ModelVersion, Error> {
        text_bound(field, value)?;
        let v = self.model_version(name, version)?;
        let key = format!(
            "{}{}/{}",
            keys::of_model(keys::VERSION_META, name),
            v.id,
            meta_key(field)
        );
        let m = MetaValue {
            value: value.map(str::to_owned),
            user: self.user().to_owned(),
            at_ms: now_ms(),
        };
        self.catalog_mut()
            .put_team_entries(&[(key, Some(json(&m)))])?;
        self.model_version(name, version)
    }

    /// Registers a new version of `name` from `source`, bound to the run and pinned to the
    /// content of the run's artifact path the source names: a directory's files are recorded
    /// in a manifest (stored like any directory), whose hash is what the version downloads.
    /// The path is locked in the run from then on.
    pub fn create_model_version(
        &mut self,
        name: &str,
        source: &str,
        run: Option<RunId>,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<ModelVersion, Error> {
        validate_model_name(name)?;
        text_bound("description", description)?;
        text_bound("source", Some(source))?;
        let records = self.model_records(name)?;
        if records.assemble(name).is_none() {
            return Err(Error::UnknownModel(name.to_owned()));
        }
        // A logged model's source (`models:/<model_id>`) gives the run and the content: the
        // manifest of the model's files (they are not a run's path, so nothing is locked).
        let logged = self.model_source_content(source)?;
        let location = match &logged {
            Some(_) => None,
            None => source_location(source, run),
        };
        let run = run
            .or(logged.as_ref().and_then(|l| l.run))
            .or(location.as_ref().map(|(r, _)| *r));
        let mut pinned: Option<(Option<String>, BlobHash, ArtifactKind, u64)> = None;
        if let Some(l) = &logged {
            if let Some(hash) = l.content {
                let size = self.blob_store().manifest(&hash)?.total_size();
                pinned = Some((None, hash, ArtifactKind::Dir, size));
            }
        } else if let Some((id, path)) = &location {
            let record = self.run_record(*id)?;
            let (path, hash, kind, size) = self.pin_content(&record, path)?;
            pinned = Some((Some(path), hash, kind, size));
        } else if let Some(id) = run {
            // The run must exist even when the files live elsewhere (`s3://…`).
            self.run_record(id)?;
        }
        let claim = records.next_claim();
        if claim > MAX_CLAIM {
            return Err(Error::Invalid(format!(
                "model '{name}' has run out of version numbers ({MAX_CLAIM})"
            )));
        }
        let record = VersionRecord {
            id: VersionId::new(),
            model: name.to_owned(),
            claim,
            source: source.to_owned(),
            run,
            path: pinned.as_ref().and_then(|p| p.0.clone()),
            content: pinned.as_ref().map(|p| p.1),
            content_kind: pinned.as_ref().map(|p| p.2),
            size: pinned.as_ref().map(|p| p.3),
            created_ms: now_ms(),
            user: self.user().to_owned(),
            device: self.record_device(),
            description: description.map(str::to_owned),
            tags,
            model_id: logged.as_ref().map(|l| l.model.to_string()),
        };
        let mut entries = vec![(
            format!("{}{}", keys::of_model(keys::VERSION, name), record.id),
            Some(json(&record)),
        )];
        if let Some(id) = run {
            entries.push((
                format!("{}{id}/{}", keys::RUN_INDEX, record.id),
                Some(name.to_owned()),
            ));
        }
        let draft = self
            .draft(kind::VERSION_REGISTERED)
            .subject(format!("model:{name}"))
            .subject(crate::audit::version_subject(name, record.id))
            .field("model", name)
            .field("claim", claim.to_string())
            .field("source", source)
            .field_opt("content", record.content.map(|c| c.to_string()))
            .field_opt("run", run.map(|r| r.to_string()));
        let draft = match run {
            Some(r) => draft.subject(format!("run:{r}")),
            None => draft,
        };
        self.put_attested(draft, &entries)?;
        let version = self
            .registered_model(name)?
            .version_by_id(record.id)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("version {} of '{name}' vanished", record.id)))?;
        if let Some(l) = &logged {
            self.note_model_version(&l.model, name, version.version)?;
        }
        Ok(version)
    }

    /// The content a run holds at `path` now: a file's hash, a directory artifact's manifest,
    /// or a manifest made of every file bound under `path/` (what MLflow clients upload file by
    /// file), stored so it can be downloaded and synced.
    fn pin_content(
        &mut self,
        run: &Run,
        path: &str,
    ) -> Result<(String, BlobHash, ArtifactKind, u64), Error> {
        if let Some(a) = run.artifacts.get(path) {
            return Ok((path.to_owned(), a.hash, a.kind, a.size));
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut entries: Vec<ManifestEntry> = Vec::new();
        for (p, a) in &run.artifacts {
            let Some(rel) = p.strip_prefix(&prefix) else {
                continue;
            };
            match a.kind {
                ArtifactKind::File => entries.push(ManifestEntry {
                    path: rel.to_owned(),
                    hash: a.hash,
                    size: a.size,
                }),
                ArtifactKind::Dir => {
                    for e in self.blob_store().manifest(&a.hash)?.entries {
                        entries.push(ManifestEntry {
                            path: format!("{rel}/{}", e.path),
                            ..e
                        });
                    }
                }
            }
        }
        if entries.is_empty() {
            return Err(Error::UnknownArtifact {
                run: run.id.to_string(),
                path: if path.is_empty() {
                    "(any: the run has no artifacts)".into()
                } else {
                    path.to_owned()
                },
            });
        }
        let manifest = Manifest::from_entries(entries);
        let size = manifest.total_size();
        let put = self.blob_store().put_bytes(&manifest.to_bytes())?;
        Ok((path.to_owned(), put.hash, ArtifactKind::Dir, size))
    }

    /// The version numbered `version`, deleted ones refused.
    pub fn model_version(&mut self, name: &str, version: u32) -> Result<ModelVersion, Error> {
        live_version(&self.registered_model(name)?, version)
    }

    /// Deletes a version: a tombstone with who and why. Its number stays taken and its
    /// aliases stop pointing at it; its run's path is unlocked.
    pub fn delete_model_version(
        &mut self,
        name: &str,
        version: u32,
        reason: &str,
    ) -> Result<(), Error> {
        text_bound("reason", Some(reason))?;
        let v = self.model_version(name, version)?;
        let d = Tombstone {
            id: RecordId::new(),
            user: self.user().to_owned(),
            device: self.record_device(),
            at_ms: now_ms(),
            reason: reason.to_owned(),
            covers: Vec::new(),
        };
        let draft = self
            .draft(kind::VERSION_DELETED)
            .subject(format!("model:{name}"))
            .subject(crate::audit::version_subject(name, v.id))
            .field("model", name)
            .field("version", v.version.to_string())
            .field("reason", reason);
        self.put_attested(
            draft,
            &[(
                format!(
                    "{}{}/{}",
                    keys::of_model(keys::VERSION_DELETION, name),
                    v.id,
                    d.id
                ),
                Some(json(&d)),
            )],
        )
    }

    /// Points `alias` at a version, superseding every value it had (a conflict included).
    /// No gate here: `gate.rs` decides whether a move may happen and calls this.
    pub(crate) fn put_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: Option<VersionId>,
        evaluation: Option<RecordId>,
        rationale: Option<&str>,
    ) -> Result<(), Error> {
        let entry = self.alias_entry(name, alias, version, evaluation, rationale)?;
        let draft = self
            .draft(if version.is_some() {
                kind::ALIAS_MOVED
            } else {
                kind::ALIAS_DELETED
            })
            .subject(format!("model:{name}"))
            .field("model", name)
            .field("alias", alias)
            .field_opt("rationale", rationale);
        let draft = match version {
            Some(v) => draft
                .subject(crate::audit::version_subject(name, v))
                .field("version_id", v.to_string()),
            None => draft,
        };
        self.put_attested(draft, &[entry])
    }

    /// The team-doc entry that points `alias` at a version (written by [`Stores::put_alias`],
    /// or together with the gate evaluation that allowed the move).
    pub(crate) fn alias_entry(
        &self,
        name: &str,
        alias: &str,
        version: Option<VersionId>,
        evaluation: Option<RecordId>,
        rationale: Option<&str>,
    ) -> Result<(String, Option<String>), Error> {
        validate_alias(alias)?;
        text_bound("rationale", rationale)?;
        let record = AliasRecord {
            version,
            user: self.user().to_owned(),
            device: self.record_device(),
            at_ms: now_ms(),
            evaluation,
            rationale: rationale.map(str::to_owned),
        };
        Ok((
            format!("{}{}", keys::of_model(keys::ALIAS, name), keys::esc(alias)),
            Some(json(&record)),
        ))
    }

    /// Removes an alias (a record saying so, so a concurrent move shows as a conflict).
    pub fn delete_model_alias(&mut self, name: &str, alias: &str) -> Result<(), Error> {
        let model = self.registered_model(name)?;
        if model.alias(alias).is_none() {
            return Err(Error::UnknownModelVersion {
                name: name.to_owned(),
                version: format!("@{alias}"),
            });
        }
        self.put_alias(name, alias, None, None, None)
    }

    /// The version `alias` points at; an alias in conflict is an error that names its
    /// targets (a promotion settles it).
    pub fn model_version_by_alias(
        &mut self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion, Error> {
        let model = self.registered_model(name)?;
        let a = model
            .alias(alias)
            .ok_or_else(|| Error::UnknownModelVersion {
                name: name.to_owned(),
                version: format!("@{alias}"),
            })?;
        let holder = a.holder().ok_or_else(|| {
            Error::Conflict(format!(
                "alias '{alias}' of model '{name}' is in conflict: peers moved it concurrently \
                 to versions {}{}; promote one to settle it",
                a.targets
                    .iter()
                    .map(|t| t.number.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                if a.removed_concurrently {
                    " while another removed it"
                } else {
                    ""
                }
            ))
        })?;
        model
            .version_by_id(holder.version)
            .cloned()
            .ok_or_else(|| Error::UnknownModelVersion {
                name: name.to_owned(),
                version: format!("@{alias}"),
            })
    }

    /// The live versions a run backs, with the artifact path each one locks.
    fn locked_paths(&mut self, run: RunId) -> Result<Vec<(String, u32, String)>, Error> {
        let prefix = format!("{}{run}/", keys::RUN_INDEX);
        let range = self
            .catalog_mut()
            .team_ranges(&[&prefix])?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut by_model: BTreeMap<String, BTreeSet<VersionId>> = BTreeMap::new();
        for (key, values) in range {
            let Some(id) = key
                .strip_prefix(&prefix)
                .and_then(|v| v.parse::<VersionId>().ok())
            else {
                continue;
            };
            for model in values {
                by_model.entry(model).or_default().insert(id);
            }
        }
        let mut out = Vec::new();
        for (model, ids) in by_model {
            let Some(m) = self.model_records(&model)?.assemble(&model) else {
                continue;
            };
            for v in m.live_versions().filter(|v| ids.contains(&v.id)) {
                if v.run == Some(run)
                    && let Some(path) = &v.path
                {
                    out.push((model.clone(), v.version, path.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Refuses to write `path` of `run` (or, `deleting`, to remove it) when it is a path a
    /// live registered version was pinned to, lies inside one, or — for a deletion — holds one.
    pub(crate) fn guard_registered_path(
        &mut self,
        run: RunId,
        path: &str,
        deleting: bool,
    ) -> Result<(), Error> {
        let path = path.trim_matches('/');
        for (model, version, locked) in self.locked_paths(run)? {
            let inside = |outer: &str, inner: &str| {
                outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
            };
            if inside(&locked, path) || (deleting && inside(path, &locked)) {
                return Err(Error::RegisteredArtifact {
                    run: run.to_string(),
                    path: path.to_owned(),
                    model,
                    version,
                    locked,
                });
            }
        }
        Ok(())
    }

    /// What a version's content is: as recorded, or — for a version migrated from the format
    /// before records, which did not say — a directory when the blob reads as a manifest.
    fn content_kind(&self, hash: &BlobHash, recorded: Option<ArtifactKind>) -> ArtifactKind {
        if let Some(k) = recorded {
            return k;
        }
        let small = self
            .blob_store()
            .size(hash)
            .is_ok_and(|n| n <= MAX_GUESSED_MANIFEST);
        if small && self.blob_store().manifest(hash).is_ok() {
            ArtifactKind::Dir
        } else {
            ArtifactKind::File
        }
    }

    /// The content of a live registered version with hash `hash`, and its kind.
    fn registered_content(&mut self, hash: &BlobHash) -> Result<(ArtifactKind, String), Error> {
        for m in self.registered_models()? {
            if let Some(v) = m.live_versions().find(|v| v.content.as_ref() == Some(hash)) {
                let kind = self.content_kind(hash, v.content_kind);
                let name = v
                    .path
                    .as_deref()
                    .and_then(|p| p.rsplit('/').next())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("model")
                    .to_owned();
                return Ok((kind, name));
            }
        }
        Err(Error::UnknownModelVersion {
            name: "(any model)".into(),
            version: format!("with content {hash}"),
        })
    }

    /// The files and directories directly under `dir` of a registered version's content
    /// (`dir` relative to it; a file's content lists as the file under its name).
    pub fn registered_content_entries(
        &mut self,
        hash: &BlobHash,
        dir: &str,
    ) -> Result<Vec<ArtifactEntry>, Error> {
        let (kind, name) = self.registered_content(hash)?;
        // The content as the bindings of a tree: one file, or the manifest's files.
        let bound: BTreeMap<String, ArtifactRef> = match kind {
            ArtifactKind::File => BTreeMap::from([(
                name,
                ArtifactRef {
                    hash: *hash,
                    size: self.blob_store().size(hash)?,
                    kind: ArtifactKind::File,
                },
            )]),
            ArtifactKind::Dir => self
                .blob_store()
                .manifest(hash)?
                .entries
                .into_iter()
                .map(|e| {
                    let r = ArtifactRef {
                        hash: e.hash,
                        size: e.size,
                        kind: ArtifactKind::File,
                    };
                    (e.path, r)
                })
                .collect(),
        };
        crate::stores::list_bound(self.blob_store(), &bound, dir)
    }

    /// Opens the file at `path` of a registered version's content, verified as it is read.
    pub fn open_registered_content(
        &mut self,
        hash: &BlobHash,
        path: &str,
    ) -> Result<ArtifactDownload, Error> {
        let (kind, name) = self.registered_content(hash)?;
        let path = path.trim_matches('/');
        let file = match kind {
            ArtifactKind::File if path == name || path.is_empty() => Some(*hash),
            ArtifactKind::File => None,
            ArtifactKind::Dir => self
                .blob_store()
                .manifest(hash)?
                .entries
                .into_iter()
                .find(|e| e.path == path)
                .map(|e| e.hash),
        };
        let file = file.ok_or_else(|| Error::UnknownArtifact {
            run: format!("registered content {hash}"),
            path: path.to_owned(),
        })?;
        ArtifactDownload::open(self.blob_store(), &file)
    }

    /// Writes a version's content to `dest` (a directory's files, or the file), verified.
    pub fn download_model_version(
        &mut self,
        name: &str,
        version: u32,
        dest: &std::path::Path,
    ) -> Result<u64, Error> {
        let v = self.model_version(name, version)?;
        let hash = v.content.ok_or_else(|| {
            Error::Invalid(format!(
                "version {version} of '{name}' has no content in this workspace: its source is {}",
                v.source
            ))
        })?;
        Ok(match self.content_kind(&hash, v.content_kind) {
            ArtifactKind::File => self.blob_store().copy_to(&hash, dest)?,
            ArtifactKind::Dir => self.blob_store().restore_dir(&hash, dest)?,
        })
    }

    /// Rewrites every model kept in the format before records as records (same numbers,
    /// same aliases) and removes the old entry. Idempotent and the same on every peer: the
    /// records' ids are derived from the model, so two peers migrating one entry write the
    /// same keys. Returns how many models were migrated.
    pub fn migrate_legacy_registry(&mut self) -> Result<usize, Error> {
        let legacy = self
            .catalog_mut()
            .team_ranges(&[keys::LEGACY])?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut migrated = 0;
        for (key, values) in legacy {
            let mut entries: Vec<(String, Option<String>)> = Vec::new();
            for text in &values {
                match serde_json::from_str::<LegacyModel>(text) {
                    Ok(m) if key.strip_prefix(keys::LEGACY) == Some(m.name.as_str()) => {
                        entries.extend(legacy_records(&m).into_iter().map(|(k, v)| (k, Some(v))));
                    }
                    Ok(m) => tracing::warn!(
                        key,
                        name = m.name,
                        "a legacy model under another name's key: left as it is"
                    ),
                    Err(e) => tracing::warn!(
                        key,
                        "a legacy model that does not parse is left as it is: {e}"
                    ),
                }
            }
            if entries.is_empty() {
                continue;
            }
            entries.push((key.clone(), None));
            self.catalog_mut().put_team_entries(&entries)?;
            tracing::info!(key, "migrated a registered model to registry records");
            migrated += 1;
        }
        Ok(migrated)
    }
}

/// A meta field as a key part (`tag/<key>` with the tag key escaped).
/// The version of `m` numbered `version`, deleted ones refused.
pub(crate) fn live_version(m: &RegisteredModel, version: u32) -> Result<ModelVersion, Error> {
    m.live_versions()
        .find(|v| v.version == version)
        .cloned()
        .ok_or_else(|| Error::UnknownModelVersion {
            name: m.name.clone(),
            version: version.to_string(),
        })
}

fn meta_key(field: &str) -> String {
    match field.strip_prefix("tag/") {
        Some(tag) => format!("tag/{}", keys::esc(tag)),
        None => field.to_owned(),
    }
}

/// Sorts one model's team-doc entries into its records. Entries whose key does not match their
/// content (a hostile or broken peer's) are ignored with a warning.
fn records_from(name: &str, entries: Vec<(String, Vec<String>)>) -> ModelRecords {
    let mut r = ModelRecords::default();
    let esc = keys::esc(name);
    for (key, values) in entries {
        let warn = |why: &str| tracing::warn!(key, "ignoring a registry record: {why}");
        if let Some(parts) = key_parts(&key, keys::MODEL, 2) {
            for text in &values {
                if let Some(m) = parse::<ModelRecord>(&key, text) {
                    if m.name == name && parts[1] == m.id.to_string() {
                        r.creations.push(m);
                    } else {
                        warn("its content names another model or id");
                    }
                }
            }
        } else if let Some(parts) = key_parts(&key, keys::VERSION, 2) {
            for text in &values {
                if let Some(v) = parse::<VersionRecord>(&key, text) {
                    if v.model == name
                        && parts[1] == v.id.to_string()
                        && (1..=MAX_CLAIM).contains(&v.claim)
                    {
                        r.versions.push(v);
                    } else {
                        warn("its content names another model or id, or claims no valid number");
                    }
                }
            }
        } else if key_parts(&key, keys::MODEL_DELETION, 2).is_some() {
            r.deletions
                .extend(values.iter().filter_map(|t| parse::<Tombstone>(&key, t)));
        } else if let Some(parts) = key_parts(&key, keys::VERSION_DELETION, 3) {
            if let Ok(v) = parts[1].parse::<VersionId>() {
                for d in values.iter().filter_map(|t| parse::<Tombstone>(&key, t)) {
                    r.version_deletions.push((v, d));
                }
            }
        } else if let Some(parts) = key_parts(&key, keys::ALIAS, 2) {
            let list: Vec<AliasRecord> = values
                .iter()
                .filter_map(|t| parse::<AliasRecord>(&key, t))
                .collect();
            if !list.is_empty() {
                r.aliases.entry(parts[1].clone()).or_default().extend(list);
            }
        } else if let Some(rest) = key.strip_prefix(&format!("{}{esc}/", keys::MODEL_META)) {
            if let (Some(field), Some(m)) = (
                meta_field(rest),
                values.last().and_then(|t| parse::<MetaValue>(&key, t)),
            ) {
                r.meta.insert(field, m);
            }
        } else if let Some(rest) = key.strip_prefix(&format!("{}{esc}/", keys::VERSION_META)) {
            let Some((id, field)) = rest.split_once('/') else {
                continue;
            };
            if let (Ok(id), Some(field), Some(m)) = (
                id.parse::<VersionId>(),
                meta_field(field),
                values.last().and_then(|t| parse::<MetaValue>(&key, t)),
            ) {
                r.version_meta.insert((id, field), m);
            }
        }
    }
    r
}

/// The field a meta key part names (`description`, `stage`, `tag/<key>` unescaped).
fn meta_field(part: &str) -> Option<String> {
    match part.strip_prefix("tag/") {
        Some(tag) => keys::unesc(tag).map(|t| format!("tag/{t}")),
        None if matches!(part, "description" | "stage") => Some(part.to_owned()),
        None => None,
    }
}

impl Workspace {
    pub fn registered_model(&self, name: &str) -> Result<RegisteredModel, Error> {
        self.read("registered_model", |s| s.registered_model(name))
    }

    pub fn registered_models(&self) -> Result<Vec<RegisteredModel>, Error> {
        self.read("registered_models", |s| s.registered_models())
    }

    pub fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<RegisteredModel, Error> {
        self.write("create_registered_model", |s| {
            s.create_registered_model(name, description, tags)
        })
    }

    /// Deletes a model (a tombstone with who and why).
    pub fn delete_registered_model(&self, name: &str, reason: &str) -> Result<(), Error> {
        self.write("delete_registered_model", |s| {
            s.delete_registered_model(name, reason)
        })
    }

    /// Sets or removes (`None`) a model's `description` or a tag (`tag/<key>`).
    pub fn set_model_meta(
        &self,
        name: &str,
        field: &str,
        value: Option<&str>,
    ) -> Result<RegisteredModel, Error> {
        self.write("set_model_meta", |s| s.set_model_meta(name, field, value))
    }

    /// Sets or removes (`None`) a version's `description`, `stage` or a tag (`tag/<key>`).
    pub fn set_version_meta(
        &self,
        name: &str,
        version: u32,
        field: &str,
        value: Option<&str>,
    ) -> Result<ModelVersion, Error> {
        self.write("set_version_meta", |s| {
            s.set_version_meta(name, version, field, value)
        })
    }

    /// Registers a new version of `name` from `source`, bound to the run and pinned to the
    /// content the source names in it (see [`Stores::create_model_version`]).
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run: Option<RunId>,
        description: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<ModelVersion, Error> {
        self.write("create_model_version", |s| {
            s.create_model_version(name, source, run, description, tags)
        })
    }

    /// A live version by number.
    pub fn model_version(&self, name: &str, version: u32) -> Result<ModelVersion, Error> {
        self.read("model_version", |s| s.model_version(name, version))
    }

    /// Deletes a version (a tombstone with who and why).
    pub fn delete_model_version(
        &self,
        name: &str,
        version: u32,
        reason: &str,
    ) -> Result<(), Error> {
        self.write("delete_model_version", |s| {
            s.delete_model_version(name, version, reason)
        })
    }

    /// Points `alias` at version `version` through the alias's gate (see `gate.rs`): refused
    /// with [`Error::GateRefused`] unless every check passes; settles a conflict.
    pub fn set_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        rationale: Option<&str>,
    ) -> Result<(), Error> {
        self.write("set_model_alias", |s| {
            s.gate_check(name, version, alias, rationale, true)
                .map(drop)
        })
    }

    pub fn delete_model_alias(&self, name: &str, alias: &str) -> Result<(), Error> {
        self.write("delete_model_alias", |s| s.delete_model_alias(name, alias))
    }

    pub fn model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, Error> {
        self.read("model_version_by_alias", |s| {
            s.model_version_by_alias(name, alias)
        })
    }

    /// Lists a registered version's content by its hash (what a download reads).
    pub fn registered_content_entries(
        &self,
        hash: &BlobHash,
        dir: &str,
    ) -> Result<Vec<ArtifactEntry>, Error> {
        self.read("registered_content_entries", |s| {
            s.registered_content_entries(hash, dir)
        })
    }

    /// Opens a file of a registered version's content by its hash, verified as it is read.
    pub fn open_registered_content(
        &self,
        hash: &BlobHash,
        path: &str,
    ) -> Result<ArtifactDownload, Error> {
        self.read("open_registered_content", |s| {
            s.open_registered_content(hash, path)
        })
    }

    /// Writes a version's content to `dest`, verified against its hash.
    pub fn download_model_version(
        &self,
        name: &str,
        version: u32,
        dest: &std::path::Path,
    ) -> Result<u64, Error> {
        self.read("download_model_version", |s| {
            s.download_model_version(name, version, dest)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_a_run_and_a_path() {
        let run = RunId::new();
        assert_eq!(
            source_location(&format!("runs:/{run}/model"), None),
            Some((run, "model".into()))
        );
        assert_eq!(
            source_location(
                &format!("mlflow-artifacts:/1/{run}/artifacts/model/"),
                Some(run)
            ),
            Some((run, "model".into()))
        );
        assert_eq!(
            source_location(&format!("mlflow-artifacts:/1/{run}/artifactsX"), Some(run)),
            None
        );
        assert_eq!(source_location("s3://bucket/model", Some(run)), None);
        assert_eq!(
            source_location(&format!("runs:/{run}/model"), Some(RunId::new())),
            None,
            "a source naming another run than run_id binds nothing"
        );
    }
}
