//! A run's history (the run page's History tab, `cairn runs history`): each field a change
//! touched, old → new, who and when — from the run's automerge changes, which name the device
//! that wrote them, and the roster, which names the person a device belongs to. Any peer holding
//! the run reads the same history.

use cairn_model::RunId;
use serde::{Deserialize, Serialize};

use crate::{Error, Stores, Workspace};

/// One field one change set or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
pub struct FieldChangeView {
    /// When (ms since the epoch); 0 for changes written before times were kept.
    pub at_ms: i64,
    /// `name`, `status`, `notes`, `params.lr`, `tags.team`, `datasets.train`, …; `run` for the
    /// change that created the run.
    pub field: String,
    /// The value before (absent: not set).
    pub old: Option<String>,
    /// The value after (absent: removed).
    pub new: Option<String>,
    /// The person: the roster's name for the writing device, this workspace's user for this
    /// device, or `unknown device …` / `unknown writer …` when neither says.
    pub member: String,
    /// The writing device's id, when the change names it.
    pub device: Option<String>,
    /// Another change set the field at the same time: this is one side of a conflict.
    pub conflict: bool,
}

impl Stores {
    /// Names this device as the author of every catalog change written through this handle
    /// (making the device's key when the workspace has none yet).
    pub(crate) fn name_author(&mut self) {
        match cairn_sync::identity::load_or_create_key(&self.device_key_path()) {
            Ok(key) => self.catalog_mut().set_author(*key.public().as_bytes()),
            Err(e) => tracing::warn!("no author for catalog changes: {e}"),
        }
    }

    /// Every field change of run `id`, oldest first.
    pub fn run_history(&mut self, id: RunId) -> Result<Vec<FieldChangeView>, Error> {
        let changes = self.catalog_mut().run_history(id)?;
        let members = cairn_sync::roster::members(self.catalog_mut())?;
        let me = self.device_id().ok();
        Ok(changes
            .into_iter()
            .map(|c| {
                let member = match (&c.device, &c.writer) {
                    (Some(d), _) => members
                        .iter()
                        .find(|m| &m.id == d)
                        .map(|m| m.name.clone())
                        .or_else(|| (me.as_ref() == Some(d)).then(|| self.user().to_owned()))
                        .unwrap_or_else(|| format!("unknown device {}", short(d))),
                    (None, Some(w)) => w.clone(),
                    (None, None) => format!("unknown writer {}", short(&c.actor)),
                };
                FieldChangeView {
                    at_ms: c.at_ms,
                    field: c.field,
                    old: c.old,
                    new: c.new,
                    member,
                    device: c.device,
                    conflict: c.conflict,
                }
            })
            .collect())
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

impl Workspace {
    /// Every field change of the run `prefix` names, oldest first.
    pub fn run_history(&self, prefix: &str) -> Result<Vec<FieldChangeView>, Error> {
        self.read("run_history", |s| {
            let id = s.resolve_run(prefix)?;
            s.run_history(id)
        })
    }
}
