//! Search through the tantivy index of `cairn-search`: opened on the first search, rebuilt from
//! the catalog when missing, outdated or corrupt, and caught up before every search with the runs
//! whose projection changed since the catalog change it last saw — whichever process wrote them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_model::{ExperimentId, Run};
use cairn_search::{IndexedRun, SearchIndex, SearchRequest as IndexRequest};

use crate::views::{RunSummary, SearchPage, SearchRequest, summary};
use crate::{Error, Workspace};

/// The index and the catalog change it has caught up to.
#[derive(Debug)]
pub(crate) struct Index {
    index: SearchIndex,
    seen: i64,
}

fn watermark_path(dir: &Path) -> PathBuf {
    dir.join("index.seen")
}

fn index_error(e: cairn_search::SearchError) -> Error {
    Error::Invalid(format!("search index: {e}"))
}

fn names(ws: &Workspace) -> Result<BTreeMap<ExperimentId, String>, Error> {
    Ok(ws
        .experiments_all()?
        .into_iter()
        .map(|e| (e.id, e.name))
        .collect())
}

/// Runs as the index should see them: with the metric store's live summaries (the docs' copies
/// trail by up to a couple of seconds while a run logs).
fn with_live_metrics(ws: &Workspace, mut runs: Vec<Run>) -> Result<Vec<Run>, Error> {
    for run in &mut runs {
        run.metrics.extend(ws.live_metrics(run.id)?);
    }
    Ok(runs)
}

fn indexed<'a>(runs: &'a [Run], names: &'a BTreeMap<ExperimentId, String>) -> Vec<IndexedRun<'a>> {
    runs.iter()
        .map(|run| IndexedRun {
            run,
            experiment_name: names.get(&run.experiment).map_or("", String::as_str),
        })
        .collect()
}

impl Workspace {
    /// The index, caught up with every write so far.
    fn caught_up_index(&mut self) -> Result<&mut Index, Error> {
        let dir = self.dir().join("index");
        if self.index.is_none() {
            let (mut index, health) = SearchIndex::open(&dir).map_err(index_error)?;
            let seen = match health {
                cairn_search::Health::Ready => std::fs::read_to_string(watermark_path(self.dir()))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(-1),
                // Missing, older or corrupt: rebuilt from the catalog (only then are all runs read).
                _ => {
                    let names = names(self)?;
                    let (seq, all) = self.catalog().changes_since(-1)?;
                    let all = with_live_metrics(self, all)?;
                    index.rebuild(indexed(&all, &names)).map_err(index_error)?;
                    if let Err(e) = std::fs::write(watermark_path(self.dir()), seq.to_string()) {
                        tracing::warn!(error = %e, "could not record the search index's position");
                    }
                    seq
                }
            };
            self.index = Some(Index { index, seen });
        }
        let seen = self.index.as_ref().map_or(-1, |i| i.seen);
        let (seq, changed) = self.catalog().changes_since(seen)?;
        if !changed.is_empty() {
            let changed = with_live_metrics(self, changed)?;
            let names = names(self)?;
            let idx = self
                .index
                .as_mut()
                .ok_or_else(|| Error::Invalid("search index not open".into()))?;
            // Another process may hold the index writer for a moment: then search what is
            // committed and catch up next time.
            match idx
                .index
                .upsert(&indexed(&changed, &names))
                .and_then(|()| idx.index.commit())
            {
                Ok(()) => {
                    idx.seen = seq;
                    if let Err(e) = std::fs::write(watermark_path(self.dir()), seq.to_string()) {
                        tracing::warn!(error = %e, "could not record the search index's position");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "search index not caught up this time"),
            }
        } else if let Some(idx) = self.index.as_mut() {
            idx.seen = seq;
        }
        self.index
            .as_mut()
            .ok_or_else(|| Error::Invalid("search index not open".into()))
    }

    /// One page of runs matching a query in Cairn's query language (MLflow filters, OR, NOT,
    /// parentheses, free text, shorthands, lineage fields, ranges, relative times).
    pub fn search_page(&mut self, req: &SearchRequest) -> Result<SearchPage, Error> {
        let query = cairn_search::parse(req.q.as_deref().unwrap_or(""))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let sort = match req.order.as_deref().filter(|o| !o.trim().is_empty()) {
            Some(o) => {
                cairn_search::parse_sort(o).map_err(|e| Error::Invalid(format!("order: {e}")))?
            }
            None => Vec::new(),
        };
        let experiments = match req.experiment.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => vec![self.experiment(e)?.id],
            None => Vec::new(),
        };
        let limit = req.limit.unwrap_or(100).clamp(1, 5000) as usize;
        let offset = req.offset.unwrap_or(0) as usize;
        let request = IndexRequest {
            query,
            sort,
            limit,
            offset,
            experiments,
            ..Default::default()
        };
        let page = self
            .caught_up_index()?
            .index
            .search(&request)
            .map_err(index_error)?;
        let names = names(self)?;
        let mut runs: Vec<RunSummary> = Vec::with_capacity(page.runs.len());
        for id in page.runs {
            // A run indexed but gone from the catalog (a rebuild in another process) is skipped.
            let Some(mut run) = self.catalog().run(id)? else {
                continue;
            };
            run.metrics.extend(self.live_metrics(id)?);
            let name = names.get(&run.experiment).cloned().unwrap_or_default();
            runs.push(summary(run, name));
        }
        Ok(SearchPage {
            total: page.total,
            next_offset: page.next_offset.map(|o| o as u64),
            runs,
        })
    }

    /// Runs matching a query with an order, in experiments (empty: all), by lifecycle: the
    /// engine behind MLflow's `runs/search`. Each run carries its live metric summaries.
    pub fn search_runs_by_query(
        &mut self,
        query: &str,
        order: &[String],
        experiments: Vec<ExperimentId>,
        lifecycle: crate::Lifecycle,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Run>, Option<u64>), Error> {
        let query = cairn_search::parse(query)
            .map_err(|e| Error::Invalid(format!("invalid filter: {e}")))?;
        let mut sort = Vec::new();
        for o in order {
            sort.push(
                cairn_search::SortKey::parse(o)
                    .map_err(|e| Error::Invalid(format!("invalid order_by clause '{o}': {e}")))?,
            );
        }
        let request = IndexRequest {
            query,
            sort,
            limit,
            offset,
            experiments,
            lifecycle,
            now_ms: None,
        };
        let page = self
            .caught_up_index()?
            .index
            .search(&request)
            .map_err(index_error)?;
        let mut runs = Vec::with_capacity(page.runs.len());
        for id in page.runs {
            if let Some(mut run) = self.catalog().run(id)? {
                run.metrics.extend(self.live_metrics(id)?);
                runs.push(run);
            }
        }
        Ok((runs, page.next_offset.map(|o| o as u64)))
    }

    /// Rebuilds the search index from the catalog; returns how many runs it holds.
    pub fn rebuild_index(&mut self) -> Result<u64, Error> {
        self.index = None;
        let dir = self.dir().join("index");
        let names = names(self)?;
        let (seq, all) = self.catalog().changes_since(-1)?;
        let all = with_live_metrics(self, all)?;
        let (mut index, _) = SearchIndex::open(&dir).map_err(index_error)?;
        let n = index.rebuild(indexed(&all, &names)).map_err(index_error)?;
        if let Err(e) = std::fs::write(watermark_path(self.dir()), seq.to_string()) {
            tracing::warn!(error = %e, "could not record the search index's position");
        }
        self.index = Some(Index { index, seen: seq });
        Ok(n)
    }
}

/// A named search: query, order and columns, kept in the team doc so it syncs with the catalog.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SavedView {
    pub name: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub order: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
}

fn view_key(name: &str) -> String {
    format!("view/{name}")
}

impl Workspace {
    /// Every run id a query matches (all pages).
    fn all_matching(&mut self, query: &str) -> Result<Vec<cairn_model::RunId>, Error> {
        let parsed = cairn_search::parse(query).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let request = IndexRequest {
                query: parsed.clone(),
                limit: 5000,
                offset,
                ..Default::default()
            };
            let page = self
                .caught_up_index()?
                .index
                .search(&request)
                .map_err(index_error)?;
            ids.extend(page.runs);
            match page.next_offset {
                Some(next) => offset = next,
                None => return Ok(ids),
            }
        }
    }

    /// Sets a tag on every run a query matches, in one change per shard; returns how many.
    pub fn tag_matching(&mut self, query: &str, key: &str, value: &str) -> Result<usize, Error> {
        cairn_model::validate_key("tag key", key)?;
        let ids = self.all_matching(query)?;
        let edits: Vec<(cairn_model::RunId, Vec<crate::RunEdit>)> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    vec![crate::RunEdit::Tag(key.to_owned(), value.to_owned())],
                )
            })
            .collect();
        self.catalog_mut().update_runs(&edits)?;
        Ok(ids.len())
    }

    /// Makes `owner` the owner of every run a query matches; returns how many.
    pub fn set_owner_matching(&mut self, query: &str, owner: &str) -> Result<usize, Error> {
        if owner.trim().is_empty() || owner.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("invalid owner '{owner}'")));
        }
        let ids = self.all_matching(query)?;
        let edits: Vec<(cairn_model::RunId, Vec<crate::RunEdit>)> = ids
            .iter()
            .map(|id| (*id, vec![crate::RunEdit::Owner(Some(owner.to_owned()))]))
            .collect();
        self.catalog_mut().update_runs(&edits)?;
        Ok(ids.len())
    }

    /// Saves (or replaces) a named view; its query and order must parse.
    pub fn save_view(&mut self, view: &SavedView) -> Result<(), Error> {
        if view.name.trim().is_empty() || view.name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("invalid view name '{}'", view.name)));
        }
        cairn_search::parse(&view.query).map_err(|e| Error::Invalid(e.to_string()))?;
        if let Some(o) = &view.order {
            cairn_search::parse_sort(o).map_err(|e| Error::Invalid(format!("order: {e}")))?;
        }
        let text = serde_json::to_string(view).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self
            .catalog_mut()
            .put_team_entry(&view_key(&view.name), Some(&text))?)
    }

    pub fn views(&mut self) -> Result<Vec<SavedView>, Error> {
        self.catalog_mut()
            .team_entries("view/")?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v)
                    .map_err(|e| Error::Invalid(format!("{k} is unreadable: {e}")))
            })
            .collect()
    }

    pub fn view(&mut self, name: &str) -> Result<SavedView, Error> {
        let text = self
            .catalog_mut()
            .team_entry(&view_key(name))?
            .ok_or_else(|| Error::Invalid(format!("no saved view '{name}'")))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("view '{name}' is unreadable: {e}")))
    }

    pub fn delete_view(&mut self, name: &str) -> Result<(), Error> {
        self.view(name)?;
        Ok(self.catalog_mut().put_team_entry(&view_key(name), None)?)
    }
}
