//! Notebooks (issue #17): the team's Markdown documents, each its own automerge doc (see
//! `cairn-catalog`'s `notebook_doc.rs`), so peer sync carries them and concurrent offline edits
//! merge character by character. Here: the rules (bounds from `cairn_model::notebook`), who and
//! when, an edit as the whole new text (the catalog splices the difference), and export.

use cairn_catalog::NotebookEdit;
use cairn_model::notebook::{
    MAX_NOTEBOOK_OWNERS, MAX_NOTEBOOK_TAGS, Notebook, NotebookMeta, validate_label,
    validate_labels, validate_text, validate_title,
};
use cairn_model::{ExperimentId, NotebookId};
use serde::{Deserialize, Serialize};

use crate::stores::{Stores, now_ms};
use crate::{Error, Workspace};

/// A new notebook: its title, and optionally its text, tags, owners (default: the user) and
/// the experiment it belongs to (an id or a name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct NewNotebook {
    pub title: String,
    pub text: Option<String>,
    pub tags: Option<Vec<String>>,
    pub owners: Option<Vec<String>>,
    pub experiment: Option<String>,
}

/// A notebook by id or unique id prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotebookRef {
    pub id: String,
}

/// Changes to a notebook: `text` is the whole new text, of which only the difference is
/// written — from the version `base` (the `heads` the text was read with) when given, so what
/// teammates wrote since is kept, else from the stored text. `experiment`: an id or name, or
/// "" to detach.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct NotebookUpdate {
    pub id: String,
    pub title: Option<String>,
    pub text: Option<String>,
    pub base: Option<Vec<String>>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
    pub add_owners: Option<Vec<String>>,
    pub remove_owners: Option<Vec<String>>,
    pub experiment: Option<String>,
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The Markdown text as stored.
    Md,
    /// One self-contained HTML file: the embeds rendered, charts inline as SVG, nothing fetched.
    Html,
}

/// A notebook to export, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotebookExport {
    pub id: String,
    pub format: ExportFormat,
}

/// An exported notebook: a file's name and content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ExportedNotebook {
    pub file_name: String,
    pub content: String,
}

/// A search of the notebooks: words of their title, tags, owners or text (each a prefix, all
/// required), `"phrases"`, `title:`, `tag:`, `owner:`; empty lists the most recent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotebookSearch {
    #[serde(default)]
    pub q: String,
    /// At most this many (default 50, at most 500).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub limit: Option<u32>,
}

/// A notebook a search found, with a few words of its text around the match.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct NotebookHitView {
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub meta: NotebookMeta,
    pub snippet: String,
}

/// Markdown to render as the notebook page shows it (a preview of unsaved text).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotebookText {
    pub text: String,
}

/// Rendered Markdown: an HTML fragment, everything from the text escaped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RenderedNotebook {
    pub html: String,
}

impl Stores {
    fn resolve_notebook(&mut self, prefix: &str) -> Result<NotebookId, Error> {
        if let Ok(id) = prefix.parse::<NotebookId>() {
            return Ok(id);
        }
        if prefix.is_empty() || prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "'{}' is not a notebook id or id prefix (hex digits)",
                prefix.chars().take(40).collect::<String>()
            )));
        }
        let prefix = prefix.to_ascii_lowercase();
        let matches: Vec<NotebookId> = self
            .catalog()
            .notebooks()?
            .into_iter()
            .map(|m| m.id)
            .filter(|id| id.to_string().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::UnknownNotebook(prefix)),
            _ => Err(Error::Invalid(format!(
                "notebook id prefix '{prefix}' is ambiguous: it matches {}",
                matches
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn experiment_id(&mut self, name_or_id: &str) -> Result<ExperimentId, Error> {
        if let Ok(id) = name_or_id.parse::<ExperimentId>()
            && self.catalog().experiment(id)?.is_some()
        {
            return Ok(id);
        }
        self.catalog()
            .experiment_by_name(name_or_id)?
            .map(|e| e.id)
            .ok_or_else(|| Error::Invalid(format!("no experiment '{name_or_id}'")))
    }

    pub(crate) fn notebook(&mut self, prefix: &str) -> Result<Notebook, Error> {
        let id = self.resolve_notebook(prefix)?;
        self.catalog_mut()
            .notebook(id)?
            .ok_or_else(|| Error::UnknownNotebook(id.to_string()))
    }
}

fn check_labels(what: &'static str, labels: &Option<Vec<String>>, max: usize) -> Result<(), Error> {
    if let Some(l) = labels {
        validate_labels(what, l, max)?;
    }
    Ok(())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

impl Workspace {
    /// Creates a notebook; the user is its creator and, unless owners are given, its owner.
    pub fn notebook_create(&self, new: &NewNotebook) -> Result<Notebook, Error> {
        validate_title(&new.title)?;
        let text = new.text.clone().unwrap_or_default();
        validate_text(&text)?;
        check_labels("tag", &new.tags, MAX_NOTEBOOK_TAGS)?;
        check_labels("owner", &new.owners, MAX_NOTEBOOK_OWNERS)?;
        let user = self.user().to_owned();
        self.write("notebook_create", |s| {
            let experiment = match new.experiment.as_deref() {
                Some(e) if !e.is_empty() => Some(s.experiment_id(e)?),
                _ => None,
            };
            let now = now_ms();
            let nb = Notebook {
                meta: NotebookMeta {
                    id: NotebookId::new(),
                    title: new.title.clone(),
                    owners: sorted(new.owners.clone().unwrap_or_else(|| vec![user.clone()])),
                    tags: sorted(new.tags.clone().unwrap_or_default()),
                    experiment,
                    created_ms: now,
                    created_by: user.clone(),
                    updated_ms: now,
                    updated_by: user.clone(),
                    bytes: text.len() as u64,
                },
                text: text.clone(),
                heads: Vec::new(),
            };
            s.catalog_mut().create_notebook(&nb)?;
            s.catalog_mut()
                .notebook(nb.meta.id)?
                .ok_or_else(|| Error::UnknownNotebook(nb.meta.id.to_string()))
        })
    }

    /// Every notebook without its text, most recently updated first.
    pub fn notebooks(&self) -> Result<Vec<NotebookMeta>, Error> {
        self.read("notebooks", |s| Ok(s.catalog().notebooks()?))
    }

    /// The notebooks a search finds, best first (see [`NotebookSearch`]).
    pub fn notebook_search(&self, r: &NotebookSearch) -> Result<Vec<NotebookHitView>, Error> {
        let limit = r.limit.unwrap_or(50).clamp(1, 500) as usize;
        self.read("notebook_search", |s| {
            Ok(s.catalog()
                .search_notebooks(&r.q, limit)?
                .into_iter()
                .map(|h| NotebookHitView {
                    meta: h.meta,
                    snippet: h.snippet,
                })
                .collect())
        })
    }

    /// A notebook with its text, by id or unique id prefix.
    pub fn notebook(&self, prefix: &str) -> Result<Notebook, Error> {
        self.read("notebook", |s| s.notebook(prefix))
    }

    /// Applies an update in one change (the text as the difference from the stored text).
    pub fn notebook_edit(&self, u: &NotebookUpdate) -> Result<Notebook, Error> {
        if let Some(t) = &u.title {
            validate_title(t)?;
        }
        if let Some(t) = &u.text {
            validate_text(t)?;
        }
        for (what, labels) in [
            ("tag", &u.add_tags),
            ("tag", &u.remove_tags),
            ("owner", &u.add_owners),
            ("owner", &u.remove_owners),
        ] {
            for l in labels.iter().flatten() {
                validate_label(what, l)?;
            }
        }
        let user = self.user().to_owned();
        self.write("notebook_edit", |s| {
            let id = s.resolve_notebook(&u.id)?;
            // The description from the listing's projection: reading the text of a large
            // notebook is what an edit should not cost twice.
            let current = s
                .catalog()
                .notebooks()?
                .into_iter()
                .find(|m| m.id == id)
                .ok_or_else(|| Error::UnknownNotebook(id.to_string()))?;
            let mut edits = Vec::new();
            if let Some(t) = &u.title {
                edits.push(NotebookEdit::Title(t.clone()));
            }
            match (&u.text, &u.base) {
                (Some(t), Some(base)) => edits.push(NotebookEdit::TextFrom {
                    base: base.clone(),
                    text: t.clone(),
                }),
                (Some(t), None) => edits.push(NotebookEdit::Text(t.clone())),
                _ => {}
            }
            let mut tags = current.tags.clone();
            for t in u.add_tags.iter().flatten() {
                edits.push(NotebookEdit::AddTag(t.clone()));
                tags.push(t.clone());
            }
            for t in u.remove_tags.iter().flatten() {
                edits.push(NotebookEdit::RemoveTag(t.clone()));
                tags.retain(|x| x != t);
            }
            validate_labels("tag", &sorted(tags), MAX_NOTEBOOK_TAGS)?;
            let mut owners = current.owners.clone();
            for o in u.add_owners.iter().flatten() {
                edits.push(NotebookEdit::AddOwner(o.clone()));
                owners.push(o.clone());
            }
            for o in u.remove_owners.iter().flatten() {
                edits.push(NotebookEdit::RemoveOwner(o.clone()));
                owners.retain(|x| x != o);
            }
            validate_labels("owner", &sorted(owners), MAX_NOTEBOOK_OWNERS)?;
            match u.experiment.as_deref() {
                Some("") => edits.push(NotebookEdit::Experiment(None)),
                Some(e) => edits.push(NotebookEdit::Experiment(Some(s.experiment_id(e)?))),
                None => {}
            }
            if edits.is_empty() {
                return s
                    .catalog_mut()
                    .notebook(id)?
                    .ok_or_else(|| Error::UnknownNotebook(id.to_string()));
            }
            Ok(s.catalog_mut().edit_notebook(id, &edits, &user, now_ms())?)
        })
    }

    /// Markdown rendered with its embeds drawn from this workspace.
    pub fn notebook_render(&self, text: &str) -> Result<RenderedNotebook, Error> {
        validate_text(text)?;
        Ok(RenderedNotebook {
            html: crate::notebook_render::fragment(self, text),
        })
    }

    /// A notebook as a file: its Markdown, or one self-contained HTML page.
    pub fn notebook_export(&self, r: &NotebookExport) -> Result<ExportedNotebook, Error> {
        let nb = self.notebook(&r.id)?;
        let stem = file_stem(&nb.meta.title);
        Ok(match r.format {
            ExportFormat::Md => ExportedNotebook {
                file_name: format!("{stem}.md"),
                content: nb.text,
            },
            ExportFormat::Html => ExportedNotebook {
                file_name: format!("{stem}.html"),
                content: crate::notebook_render::page(self, &nb)?,
            },
        })
    }
}

/// A file name from a title: letters, digits, `-` and `_` (a run of others one `-`), at most
/// 60 characters.
fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let mut collapsed = String::with_capacity(stem.len());
    for c in stem.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let stem = collapsed.trim_matches('-').to_owned();
    if stem.is_empty() {
        "notebook".into()
    } else {
        stem
    }
}
