//! The model registry: named models, their numbered versions (each bound to content and to the
//! run it came from), and aliases such as `champion` that point at a version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{BlobHash, RunId};

/// A named model and every version registered under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
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
    pub versions: Vec<ModelVersion>,
}

/// One registered version: where its files are and which run produced it. Versions are never
/// rewritten, only added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub version: u32,
    /// Where the model's files are, as the registering client named them (`runs:/…/model`,
    /// `mlflow-artifacts:/…`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// The content hash of the files, when they are in this workspace's artifact store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BlobHash>,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Who registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}
