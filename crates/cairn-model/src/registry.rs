//! The model registry: named models, their versions (each bound to a run and to the content hash
//! of its files), and aliases such as `champion` that point at a version.
//!
//! The registry is kept as *records*, one team-doc key each (see [`keys`]), so that peers who
//! register, alias or delete offline all keep what they wrote when they sync:
//!
//! - a model's creation (`rm/…`), each version (`mv/…`, immutable), each deletion (a tombstone
//!   with who and why), each alias (`alias/…`: concurrent moves are kept side by side as a
//!   conflict until a later move supersedes them), descriptions and tags (`rmmeta/…`,
//!   `mvmeta/…`, last writer wins: they are not governed).
//! - A version's identity is its [`VersionId`]; its human number is derived from the number it
//!   *claimed* when it was registered ([`number_versions`]), and aliases point at identities.
//!
//! [`ModelRecords::assemble`] turns one model's records into the [`RegisteredModel`] every front
//! end shows. Everything here is pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{ArtifactKind, BlobHash, ModelError, RecordId, RunId, VersionId};

/// Longest model name, in bytes.
pub const MAX_MODEL_NAME: usize = 256;
/// Longest alias, in characters (MLflow's limit).
pub const MAX_ALIAS: usize = 255;
/// Highest number a version may claim: a record claiming more is a peer's garbage.
pub const MAX_CLAIM: u32 = 1_000_000_000;
/// Longest free text of a record (a reason, a rationale, a description), in bytes.
pub const MAX_RECORD_TEXT: usize = 64 * 1024;

/// The team-doc keys of the registry. Model names, tag keys and aliases are escaped
/// ([`keys::esc`]: `%` and `/`), so a key splits on `/` into its parts whatever the name holds.
pub mod keys {
    /// `rm/<model>/<record id>` → [`super::ModelRecord`]: a model was created.
    pub const MODEL: &str = "rm/";
    /// `mv/<model>/<version id>` → [`super::VersionRecord`]: a version, immutable.
    pub const VERSION: &str = "mv/";
    /// `mvrun/<run id>/<version id>` → the model's name: which versions a run backs (the
    /// artifact guard reads this range, not every version).
    pub const RUN_INDEX: &str = "mvrun/";
    /// `rmdel/<model>/<record id>` → [`super::Tombstone`]: the model was deleted (the records it
    /// lists in `covers`).
    pub const MODEL_DELETION: &str = "rmdel/";
    /// `mvdel/<model>/<version id>/<record id>` → [`super::Tombstone`]: a version was deleted.
    pub const VERSION_DELETION: &str = "mvdel/";
    /// `alias/<model>/<alias>` → [`super::AliasRecord`]; concurrent values are a conflict.
    pub const ALIAS: &str = "alias/";
    /// `rmmeta/<model>/description` and `rmmeta/<model>/tag/<key>` → [`super::MetaValue`].
    pub const MODEL_META: &str = "rmmeta/";
    /// `mvmeta/<model>/<version id>/description|stage|tag/<key>` → [`super::MetaValue`].
    pub const VERSION_META: &str = "mvmeta/";
    /// `model/<name>` → one JSON value per model: the format before records
    /// ([`super::LegacyModel`]), migrated when a workspace opens.
    pub const LEGACY: &str = "model/";

    /// A name as a key part: `%` and `/` percent-encoded.
    pub fn esc(part: &str) -> String {
        part.replace('%', "%25").replace('/', "%2F")
    }

    /// The name a key part stands for; `None` when it is not one [`esc`] writes.
    pub fn unesc(part: &str) -> Option<String> {
        if part.contains('/') {
            return None;
        }
        let mut out = String::with_capacity(part.len());
        let mut rest = part;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            match rest.get(i..i + 3) {
                Some("%25") => out.push('%'),
                Some("%2F") => out.push('/'),
                _ => return None,
            }
            rest = &rest[i + 3..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// The prefix of every key `prefix` holds for one model.
    pub fn of_model(prefix: &str, model: &str) -> String {
        format!("{prefix}{}/", esc(model))
    }
}

/// A model was created (by whom, when, with what description and tags). Two peers creating
/// one name offline leave two of these: they are one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub id: RecordId,
    pub name: String,
    pub created_ms: i64,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One registered version, as written once and never changed: bound to the run it came from,
/// the artifact path inside that run, and the content hash of the files there at registration
/// (a directory's BLAKE3 manifest, or a file's hash), which is what downloads read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub id: VersionId,
    pub model: String,
    /// The number this version claimed: one above the highest its peer knew of.
    pub claim: u32,
    /// Where the model's files were, as the registering client named them (`runs:/…/model`,
    /// `mlflow-artifacts:/…`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// The artifact path inside the run (`model`): locked while the version is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BlobHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_kind: Option<ArtifactKind>,
    /// Bytes of the content (every file of a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub created_ms: i64,
    pub user: String,
    /// The registering device's endpoint id: the author whose approval does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The logged model (`models:/<model_id>`) it was registered from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

/// A tombstone: who deleted what, when and why. A model's deletion lists the records it saw
/// (`covers`: creations and versions); a version registered concurrently on another peer is not
/// covered, so it survives, and the model with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Tombstone {
    pub id: RecordId,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    pub at_ms: i64,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
}

/// One value of an alias: the version it points at (`None`: the alias was removed), who set it
/// and through which gate evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    #[serde(default)]
    pub version: Option<VersionId>,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub at_ms: i64,
    /// The gate evaluation that allowed the move, when a gate guarded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<RecordId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// A description, a stage or a tag's value (`None`: removed); the last writer wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaValue {
    #[serde(default)]
    pub value: Option<String>,
    pub user: String,
    pub at_ms: i64,
}

/// A registered model as front ends show it, assembled from its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RegisteredModel {
    pub name: String,
    pub created_ms: i64,
    /// The latest time any of its records was written.
    pub updated_ms: i64,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Every alias, sorted by name; one in conflict has several targets.
    #[serde(default)]
    pub aliases: Vec<Alias>,
    /// Every version, deleted ones included (with their tombstone), by number.
    #[serde(default)]
    pub versions: Vec<ModelVersion>,
}

impl RegisteredModel {
    /// The version numbered `n`, deleted or not.
    pub fn version(&self, n: u32) -> Option<&ModelVersion> {
        self.versions.iter().find(|v| v.version == n)
    }

    pub fn version_by_id(&self, id: VersionId) -> Option<&ModelVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub fn alias(&self, name: &str) -> Option<&Alias> {
        self.aliases.iter().find(|a| a.name == name)
    }

    /// Versions that are not deleted, by number.
    pub fn live_versions(&self) -> impl Iterator<Item = &ModelVersion> {
        self.versions.iter().filter(|v| v.deleted.is_none())
    }

    /// The live version with the highest number.
    pub fn latest(&self) -> Option<&ModelVersion> {
        self.live_versions().last()
    }
}

/// An alias and what it points at. Two peers moving it offline leave two targets: a conflict,
/// shown as such, that the next promotion settles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Alias {
    pub name: String,
    /// Distinct versions it points at, by number.
    pub targets: Vec<AliasTarget>,
    /// A concurrent writer removed it while another moved it.
    #[serde(default)]
    pub removed_concurrently: bool,
}

impl Alias {
    /// Whether concurrent writes left it pointing at more than one thing.
    pub fn in_conflict(&self) -> bool {
        self.targets.len() > 1 || (self.removed_concurrently && !self.targets.is_empty())
    }

    /// The one version it points at; `None` while in conflict.
    pub fn holder(&self) -> Option<&AliasTarget> {
        match self.targets.as_slice() {
            [one] if !self.removed_concurrently => Some(one),
            _ => None,
        }
    }
}

/// One version an alias points at, and who pointed it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AliasTarget {
    pub version: VersionId,
    pub number: u32,
    pub set_by: String,
    pub set_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub evaluation: Option<RecordId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub rationale: Option<String>,
}

/// One version as front ends show it: its record, its number, its current description, tags
/// and stage, the aliases that point at it, and its tombstone if deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ModelVersion {
    pub id: VersionId,
    /// Its number ([`number_versions`]).
    pub version: u32,
    /// The number it claimed when registered (equal to `version` unless another peer
    /// registered the same number offline first).
    pub claim: u32,
    pub model: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content: Option<BlobHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content_kind: Option<ArtifactKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub size: Option<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// MLflow's (deprecated) stage, `None` until one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model_id: Option<String>,
    /// Aliases that point at it (in conflict or not).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub deleted: Option<Tombstone>,
}

/// Human numbers of versions from their claims, the same on every peer whatever order the
/// records arrived in:
///
/// 1. A version whose claim no other version shares keeps it.
/// 2. When several claim one number (peers registered offline), the one with the lowest
///    identity — the earliest created, [`VersionId`] being a UUIDv7 — keeps it.
/// 3. Each of the others, in order of (claim, identity), takes the lowest number above its
///    claim that no version claims and no earlier one took.
///
/// A registration claims one above the highest number in use, so it never disturbs what is
/// already numbered: a number changes only when a registration that had not seen it (made
/// offline) claimed the same number first, or claimed the number a renumbered version took.
pub fn number_versions(
    claims: impl IntoIterator<Item = (VersionId, u32)>,
) -> BTreeMap<VersionId, u32> {
    let mut all: Vec<(u32, VersionId)> = claims.into_iter().map(|(id, c)| (c, id)).collect();
    all.sort_unstable();
    all.dedup();
    let claimed: BTreeSet<u32> = all.iter().map(|(c, _)| *c).collect();
    let mut out = BTreeMap::new();
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    let mut last: Option<u32> = None;
    for (claim, id) in all {
        if last != Some(claim) {
            out.insert(id, claim);
            last = Some(claim);
            continue;
        }
        let mut n = claim.saturating_add(1);
        while (claimed.contains(&n) || taken.contains(&n)) && n < u32::MAX {
            n += 1;
        }
        taken.insert(n);
        out.insert(id, n);
    }
    out
}

/// Checks a model name: 1–256 bytes, not blank, no control characters.
pub fn validate_model_name(name: &str) -> Result<(), ModelError> {
    if name.trim().is_empty() || name.len() > MAX_MODEL_NAME || name.chars().any(char::is_control) {
        return Err(ModelError::InvalidField {
            value: name.to_owned(),
            reason: format!(
                "a model name is 1-{MAX_MODEL_NAME} bytes of printable characters, not blank"
            ),
        });
    }
    Ok(())
}

/// Checks an alias as MLflow does: letters, digits, `_` and `-`, at most 255 characters, not
/// `latest` and not `v<digits>` (those name versions in `models:/` URIs).
pub fn validate_alias(alias: &str) -> Result<(), ModelError> {
    let bad = |reason: &str| {
        Err(ModelError::InvalidField {
            value: alias.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if alias.is_empty() || alias.chars().count() > MAX_ALIAS {
        return bad("an alias is 1-255 characters");
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return bad("an alias holds letters, digits, '_' and '-' only");
    }
    let lower = alias.to_lowercase();
    if lower == "latest" {
        return bad("'latest' is reserved: it names the newest version");
    }
    if lower.len() > 1 && lower.starts_with('v') && lower[1..].bytes().all(|b| b.is_ascii_digit()) {
        return bad("'v<number>' is reserved: it names a version");
    }
    Ok(())
}

/// Everything the team doc holds about one model name, read but not yet interpreted.
#[derive(Debug, Clone, Default)]
pub struct ModelRecords {
    pub creations: Vec<ModelRecord>,
    pub versions: Vec<VersionRecord>,
    pub deletions: Vec<Tombstone>,
    pub version_deletions: Vec<(VersionId, Tombstone)>,
    /// Alias → every value concurrent writers left.
    pub aliases: BTreeMap<String, Vec<AliasRecord>>,
    /// `description` or `tag/<key>` → the winning value.
    pub meta: BTreeMap<String, MetaValue>,
    /// (version, `description` | `stage` | `tag/<key>`) → the winning value.
    pub version_meta: BTreeMap<(VersionId, String), MetaValue>,
}

impl ModelRecords {
    /// The ids a model deletion covers (creations and versions it saw).
    fn covered(&self) -> BTreeSet<&str> {
        self.deletions
            .iter()
            .flat_map(|d| d.covers.iter().map(String::as_str))
            .collect()
    }

    /// The live versions' records (not covered by a model deletion), deleted versions
    /// included: their numbers stay taken.
    pub fn numbered(&self) -> BTreeMap<VersionId, u32> {
        let covered = self.covered();
        let mut seen = BTreeSet::new();
        number_versions(
            self.versions
                .iter()
                .filter(|v| !covered.contains(v.id.to_string().as_str()))
                .filter(|v| seen.insert(v.id))
                .map(|v| (v.id, v.claim)),
        )
    }

    /// The number a version registered now claims: one above every number in use.
    pub fn next_claim(&self) -> u32 {
        self.numbered().values().max().map_or(1, |n| n + 1)
    }

    /// Every record id a deletion of the model now would cover.
    pub fn live_ids(&self) -> Vec<String> {
        let covered = self.covered();
        self.creations
            .iter()
            .map(|c| c.id.to_string())
            .chain(self.versions.iter().map(|v| v.id.to_string()))
            .filter(|id| !covered.contains(id.as_str()))
            .collect()
    }

    /// The model these records describe, or `None` when nothing of it is live (never created,
    /// or deleted with every version it had).
    pub fn assemble(&self, name: &str) -> Option<RegisteredModel> {
        let covered = self.covered();
        let creations: Vec<&ModelRecord> = self
            .creations
            .iter()
            .filter(|c| !covered.contains(c.id.to_string().as_str()))
            .collect();
        let numbers = self.numbered();
        if creations.is_empty() && numbers.is_empty() {
            return None;
        }
        let first = creations.iter().min_by_key(|c| (c.created_ms, c.id));
        let mut model = RegisteredModel {
            name: name.to_owned(),
            created_ms: first.map_or(i64::MAX, |c| c.created_ms),
            updated_ms: 0,
            created_by: first.map_or_else(String::new, |c| c.user.clone()),
            description: first.and_then(|c| c.description.clone()),
            tags: first.map(|c| c.tags.clone()).unwrap_or_default(),
            aliases: Vec::new(),
            versions: Vec::new(),
        };
        for c in &creations {
            model.updated_ms = model.updated_ms.max(c.created_ms);
        }
        for (field, m) in &self.meta {
            model.updated_ms = model.updated_ms.max(m.at_ms);
            if field == "description" {
                model.description = m.value.clone();
            } else if let Some(key) = field.strip_prefix("tag/") {
                match &m.value {
                    Some(v) => model.tags.insert(key.to_owned(), v.clone()),
                    None => model.tags.remove(key),
                };
            }
        }
        let mut deleted: BTreeMap<VersionId, &Tombstone> = BTreeMap::new();
        for (v, d) in &self.version_deletions {
            // Two peers deleting one version: the earlier tombstone is the one shown.
            let e = deleted.entry(*v).or_insert(d);
            if (d.at_ms, d.id) < (e.at_ms, e.id) {
                *e = d;
            }
        }
        let mut seen = BTreeSet::new();
        for r in &self.versions {
            let Some(&number) = numbers.get(&r.id) else {
                continue;
            };
            if !seen.insert(r.id) {
                continue;
            }
            let mut v = ModelVersion {
                id: r.id,
                version: number,
                claim: r.claim,
                model: name.to_owned(),
                source: r.source.clone(),
                run: r.run,
                path: r.path.clone(),
                content: r.content,
                content_kind: r.content_kind,
                size: r.size,
                created_ms: r.created_ms,
                updated_ms: r.created_ms,
                user: r.user.clone(),
                device: r.device.clone(),
                description: r.description.clone(),
                tags: r.tags.clone(),
                stage: None,
                model_id: r.model_id.clone(),
                aliases: Vec::new(),
                deleted: deleted.get(&r.id).map(|d| (*d).clone()),
            };
            for ((_, field), m) in self
                .version_meta
                .range((r.id, String::new())..)
                .take_while(|((id, _), _)| *id == r.id)
            {
                v.updated_ms = v.updated_ms.max(m.at_ms);
                if field == "description" {
                    v.description = m.value.clone();
                } else if field == "stage" {
                    v.stage = m.value.clone();
                } else if let Some(key) = field.strip_prefix("tag/") {
                    match &m.value {
                        Some(val) => v.tags.insert(key.to_owned(), val.clone()),
                        None => v.tags.remove(key),
                    };
                }
            }
            if let Some(d) = &v.deleted {
                v.updated_ms = v.updated_ms.max(d.at_ms);
            }
            model.created_ms = model.created_ms.min(r.created_ms);
            model.updated_ms = model.updated_ms.max(v.updated_ms);
            model.versions.push(v);
        }
        if model.created_ms == i64::MAX {
            model.created_ms = 0;
        }
        model.versions.sort_by_key(|v| v.version);
        for (alias, values) in &self.aliases {
            let mut targets: BTreeMap<u32, AliasTarget> = BTreeMap::new();
            let mut removed = false;
            for a in values {
                model.updated_ms = model.updated_ms.max(a.at_ms);
                let live = a.version.and_then(|id| {
                    model
                        .versions
                        .iter()
                        .find(|v| v.id == id && v.deleted.is_none())
                });
                match live {
                    Some(v) => {
                        let t = AliasTarget {
                            version: v.id,
                            number: v.version,
                            set_by: a.user.clone(),
                            set_ms: a.at_ms,
                            evaluation: a.evaluation,
                            rationale: a.rationale.clone(),
                        };
                        // One version set twice concurrently is no conflict: keep the later.
                        let e = targets.entry(v.version).or_insert_with(|| t.clone());
                        if (t.set_ms, &t.set_by) > (e.set_ms, &e.set_by) {
                            *e = t;
                        }
                    }
                    None => removed = true,
                }
            }
            if targets.is_empty() {
                continue;
            }
            for t in targets.values() {
                if let Some(v) = model.versions.iter_mut().find(|v| v.id == t.version) {
                    v.aliases.push(alias.clone());
                }
            }
            model.aliases.push(Alias {
                name: alias.clone(),
                targets: targets.into_values().collect(),
                removed_concurrently: removed && values.len() > 1,
            });
        }
        Some(model)
    }
}

/// A registered model as the registry stored it before records: one JSON value per model
/// under `model/<name>`, its versions numbered in order. Read only to be migrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyModel {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Alias → version number.
    #[serde(default)]
    pub aliases: BTreeMap<String, u32>,
    #[serde(default)]
    pub versions: Vec<LegacyVersion>,
}

/// A version in the format before records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyVersion {
    pub version: u32,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BlobHash>,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vid(ms: u64, r: u128) -> VersionId {
        VersionId::from_parts(ms, r)
    }

    #[test]
    fn unique_claims_are_kept_and_a_collision_sends_the_later_version_to_the_lowest_unclaimed_number()
     {
        let a = vid(1_000, 1);
        let b = vid(2_000, 2);
        let c = vid(3_000, 3);
        let early = vid(500, 9);
        let n = number_versions([(a, 1), (b, 2), (c, 2), (early, 3)]);
        assert_eq!(n[&a], 1);
        assert_eq!(n[&b], 2, "the earlier of two claims of 2 keeps it");
        assert_eq!(n[&early], 3);
        assert_eq!(
            n[&c], 4,
            "the later one takes the lowest number nobody claims"
        );
        // A registration that saw all that claims 5; nothing moves.
        let d = vid(4_000, 5);
        let m = number_versions([(a, 1), (b, 2), (c, 2), (early, 3), (d, 5)]);
        assert_eq!((m[&c], m[&d]), (4, 5));
        // A third concurrent claim of 2, created between the two.
        let mid = vid(2_500, 4);
        let n = number_versions([(a, 1), (b, 2), (c, 2), (early, 3), (mid, 2)]);
        assert_eq!((n[&b], n[&mid], n[&c]), (2, 4, 5));
    }

    proptest! {
        #[test]
        fn numbering_is_distinct_order_free_and_keeps_unique_claims(
            claims in proptest::collection::vec((0u64..50, 0u128..4, 1u32..12), 0..30),
            seed in any::<u64>(),
        ) {
            let list: Vec<(VersionId, u32)> =
                claims.iter().map(|(ms, r, c)| (vid(*ms, *r), *c)).collect();
            let mut dedup: BTreeMap<VersionId, u32> = BTreeMap::new();
            for (id, c) in &list {
                dedup.entry(*id).or_insert(*c);
            }
            let list: Vec<(VersionId, u32)> = dedup.into_iter().collect();
            let n = number_versions(list.clone());
            let mut shuffled = list.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left(seed as usize % len);
            shuffled.reverse();
            prop_assert_eq!(&n, &number_versions(shuffled));
            let distinct: BTreeSet<u32> = n.values().copied().collect();
            prop_assert_eq!(distinct.len(), n.len());
            for (id, c) in &list {
                if list.iter().filter(|(_, o)| o == c).count() == 1 {
                    prop_assert_eq!(n[id], *c);
                }
            }
            // A registration that saw everything (claiming one above the highest number)
            // renumbers nothing.
            let top = n.values().max().copied().unwrap_or(0) + 1;
            let mut more = list.clone();
            let fresh = vid(1_000_000, 7);
            more.push((fresh, top));
            let m = number_versions(more);
            prop_assert_eq!(m[&fresh], top);
            for (id, k) in &n {
                prop_assert_eq!(m[id], *k);
            }
        }
    }

    #[test]
    fn key_parts_escape_slashes_and_percent_signs() {
        for name in ["plain", "a/b", "100%/x", "%2F"] {
            let e = keys::esc(name);
            assert!(!e.contains('/'));
            assert_eq!(keys::unesc(&e).as_deref(), Some(name));
        }
        assert_eq!(keys::unesc("a%zz"), None);
        assert_eq!(keys::unesc("a/b"), None);
    }

    #[test]
    fn aliases_follow_mlflow_rules() {
        for ok in ["champion", "prod-2", "a_b", "v1x"] {
            validate_alias(ok).unwrap();
        }
        for bad in ["", "latest", "v12", "V3", "with space", "a/b"] {
            assert!(validate_alias(bad).is_err(), "{bad:?}");
        }
    }

    fn version(id: VersionId, claim: u32) -> VersionRecord {
        VersionRecord {
            id,
            model: "m".into(),
            claim,
            source: "s".into(),
            run: None,
            path: None,
            content: None,
            content_kind: None,
            size: None,
            created_ms: id.unix_ms() as i64,
            user: "u".into(),
            device: None,
            description: None,
            tags: BTreeMap::new(),
            model_id: None,
        }
    }

    fn alias_to(v: Option<VersionId>, user: &str, at: i64) -> AliasRecord {
        AliasRecord {
            version: v,
            user: user.into(),
            device: None,
            at_ms: at,
            evaluation: None,
            rationale: None,
        }
    }

    #[test]
    fn concurrent_alias_moves_are_a_conflict_and_a_deleted_target_drops_out() {
        let (a, b) = (vid(1, 1), vid(2, 2));
        let mut r = ModelRecords {
            versions: vec![version(a, 1), version(b, 1)],
            ..Default::default()
        };
        r.aliases.insert(
            "champion".into(),
            vec![alias_to(Some(a), "ada", 10), alias_to(Some(b), "bob", 11)],
        );
        let m = r.assemble("m").unwrap();
        let champion = m.alias("champion").unwrap();
        assert!(champion.in_conflict());
        assert_eq!(champion.holder(), None);
        assert_eq!(
            champion
                .targets
                .iter()
                .map(|t| t.number)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        r.version_deletions.push((
            b,
            Tombstone {
                id: RecordId::from_parts(5, 5),
                user: "bob".into(),
                device: None,
                at_ms: 12,
                reason: "bad".into(),
                covers: vec![],
            },
        ));
        let m = r.assemble("m").unwrap();
        // The deleted version's value reads as a removal beside the move: still a conflict.
        assert!(m.alias("champion").unwrap().in_conflict());
        assert_eq!(
            m.version(2).unwrap().deleted.as_ref().unwrap().reason,
            "bad"
        );
    }

    #[test]
    fn a_model_deletion_covers_what_it_saw_and_a_concurrent_version_survives() {
        let created = ModelRecord {
            id: RecordId::from_parts(1, 1),
            name: "m".into(),
            created_ms: 1,
            user: "ada".into(),
            device: None,
            description: None,
            tags: BTreeMap::new(),
        };
        let (a, b) = (vid(2, 1), vid(3, 2));
        let mut r = ModelRecords {
            creations: vec![created.clone()],
            versions: vec![version(a, 1)],
            ..Default::default()
        };
        let covers = r.live_ids();
        r.deletions.push(Tombstone {
            id: RecordId::from_parts(4, 4),
            user: "ada".into(),
            device: None,
            at_ms: 4,
            reason: "retired".into(),
            covers,
        });
        assert!(r.assemble("m").is_none());
        assert_eq!(r.next_claim(), 1, "a model created again numbers from 1");
        r.versions.push(version(b, 2));
        let m = r.assemble("m").unwrap();
        assert_eq!(m.versions.len(), 1);
        assert_eq!(m.versions[0].id, b);
        assert_eq!(m.versions[0].version, 2);
    }
}
