//! Search through the tantivy index of `cairn-search`: opened on the first search, rebuilt from
//! the catalog when missing, outdated or corrupt, and caught up before every search with the runs
//! whose projection changed since the catalog change it last saw — whichever process wrote them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_model::{ExperimentId, Run, RunId};
use cairn_search::query::{Attribute, Comparison, Field, Op, Value};
use cairn_search::{IndexedRun, Query, SearchIndex, SearchRequest as IndexRequest, Snapshot};

use crate::views::{RunSummary, SearchPage, SearchRequest, summary};
use crate::{Error, Stores};

/// The index and the catalog change it has caught up to.
#[derive(Debug)]
struct Index {
    index: SearchIndex,
    /// The catalog's change counter (any run row) and doc counter as of the last catch-up.
    seen: i64,
    seen_docs: i64,
}

/// The last committed snapshot and the catalog change it covers: what a search reads when no
/// run's doc changed since, without waiting for a catch-up in progress.
#[derive(Debug, Clone)]
struct Latest {
    snapshot: Snapshot,
    seen: i64,
    seen_docs: i64,
    /// The team doc's heads: reviews (search fields of their runs) live there, and a peer's
    /// arrive by sync without touching any run's doc.
    team_heads: Vec<u8>,
    at: Instant,
}

/// How stale live metric summaries may be in search results while a run streams them: runs'
/// metrics change at every logged batch, and catching the index up commits it (fsyncs), so
/// searches under a training job would each pay a commit. Other changes (a new run, a tag, a
/// status, a run's end) are caught up before the next search.
const METRICS_LAG: Duration = Duration::from_secs(1);

/// Searches that come at least this often are in a busy stretch: metric summaries that fell
/// behind are then caught up on a thread of their own (the search answers from the last commit,
/// at most about [`METRICS_LAG`] old) instead of inside a search. A search after a quiet spell
/// catches up first, so a script that logs and later searches sees what it logged.
const BUSY: Duration = Duration::from_secs(3);

/// The search index one workspace handle shares between its threads: opened on the first
/// search, caught up under the lock, searched from a [`Snapshot`] outside it, so searches run
/// side by side and wait for a catch-up only when a run's doc changed since the last one.
#[derive(Debug, Default)]
pub(crate) struct SharedIndex {
    index: Mutex<Option<Index>>,
    latest: Mutex<Option<Latest>>,
    /// A search found metric summaries behind in a busy stretch (see [`BUSY`]).
    behind: AtomicBool,
    /// A catch-up runs on its own thread.
    catching_up: AtomicBool,
}

impl SharedIndex {
    fn latest(&self) -> Option<Latest> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_latest(&self, latest: Option<Latest>) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = latest;
    }

    /// Whether a search asked for a catch-up beside it; asking clears it, and a catch-up that
    /// is already running takes the place of a new one. Call [`SharedIndex::caught_up`] after.
    pub(crate) fn take_behind(&self) -> bool {
        self.behind.swap(false, Ordering::AcqRel) && !self.catching_up.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn caught_up(&self) {
        self.catching_up.store(false, Ordering::Release);
    }
}

/// Where the team doc's heads and a digest of each reviewed run's review fields, as of the last
/// catch-up, are kept (JSON).
fn reviews_path(dir: &Path) -> PathBuf {
    dir.join("index.reviews")
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ReviewMark {
    heads: String,
    runs: BTreeMap<String, String>,
}

fn review_digest(r: &cairn_search::IndexedReview) -> String {
    let mut text = String::new();
    for list in [
        &r.ids,
        &r.decisions,
        &r.confidences,
        &r.authors,
        &r.open_action_owners,
        &r.text,
    ] {
        for v in list {
            text.push_str(v);
            text.push('\0');
        }
        text.push('\u{1}');
    }
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn watermark_path(dir: &Path) -> PathBuf {
    dir.join("index.seen")
}

fn record_watermark(dir: &Path, seq: i64) {
    if let Err(e) = std::fs::write(watermark_path(dir), seq.to_string()) {
        tracing::warn!(error = %e, "could not record the search index's position");
    }
}

fn names(ws: &Stores) -> Result<BTreeMap<ExperimentId, String>, Error> {
    Ok(ws
        .experiments_all()?
        .into_iter()
        .map(|e| (e.id, e.name))
        .collect())
}

/// Runs as the index should see them: with the metric store's live summaries (the docs' copies
/// trail by up to a couple of seconds while a run logs).
fn with_live_metrics(ws: &Stores, mut runs: Vec<Run>) -> Result<Vec<Run>, Error> {
    for run in &mut runs {
        run.metrics.extend(ws.live_metrics(run.id)?);
    }
    Ok(runs)
}

fn indexed<'a>(
    runs: &'a [Run],
    names: &'a BTreeMap<ExperimentId, String>,
    costs: &HashMap<RunId, cairn_catalog::CostFields>,
    reviews: &'a crate::reviews::RunReviews,
) -> Vec<IndexedRun<'a>> {
    runs.iter()
        .map(|run| IndexedRun {
            review: reviews.get(&run.id),
            run,
            experiment_name: names.get(&run.experiment).map_or("", String::as_str),
            cost: costs.get(&run.id).map(|c| cairn_search::IndexedCost {
                usd: c.usd,
                idle_usd: c.idle_usd,
                idle_share: (c.observed_s > 0.0).then(|| c.idle_s / c.observed_s),
                gpu_hours: Some(c.gpu_hours),
            }),
        })
        .collect()
}

/// Parses a query, naming which one (`query`, `view query`, `filter`) when it does not parse.
fn parse(what: &'static str, text: &str) -> Result<Query, Error> {
    cairn_search::parse(text).map_err(|source| Error::Query { what, source })
}

fn parse_sort(what: &'static str, text: &str) -> Result<Vec<cairn_search::SortKey>, Error> {
    cairn_search::parse_sort(text).map_err(|source| Error::Query { what, source })
}

impl Stores {
    /// When the team doc moved since the last look: restamps every run whose reviews now say
    /// something else to search (a review or an action change written here or synced from a
    /// peer), so the catch-up that follows reindexes them.
    fn review_catch_up(&mut self, heads: &[u8]) -> Result<(), Error> {
        let path = reviews_path(self.dir());
        let mark: ReviewMark = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let hex: String = heads.iter().map(|b| format!("{b:02x}")).collect();
        if mark.heads == hex {
            return Ok(());
        }
        let now: BTreeMap<String, String> = self
            .run_reviews()?
            .iter()
            .map(|(id, r)| (id.to_string(), review_digest(r)))
            .collect();
        let mut moved: Vec<RunId> = Vec::new();
        for (id, d) in &now {
            if mark.runs.get(id) != Some(d) {
                moved.extend(id.parse::<RunId>().ok());
            }
        }
        for id in mark.runs.keys().filter(|id| !now.contains_key(*id)) {
            moved.extend(id.parse::<RunId>().ok());
        }
        // Only runs this catalog holds are restamped (a review may arrive before its runs).
        moved.retain(|id| self.catalog().run(*id).ok().flatten().is_some());
        self.catalog_mut().restamp_runs(&moved)?;
        let mark = ReviewMark {
            heads: hex,
            runs: now,
        };
        if let Err(e) = std::fs::write(&path, serde_json::to_vec(&mark).unwrap_or_default()) {
            tracing::warn!(error = %e, "could not record the reviews the search index holds");
        }
        Ok(())
    }

    /// The index for a search: as of every change to runs' docs so far (by any process), and of
    /// their streamed metric summaries as of at most about [`METRICS_LAG`] ago. Opened, and
    /// rebuilt from the catalog when missing, outdated or corrupt, on first use.
    fn index_snapshot(&mut self, shared: &SharedIndex) -> Result<Snapshot, Error> {
        let (changed, docs) = self.catalog().change_counters()?;
        let heads = self.catalog().team_heads()?;
        if let Some(latest) = shared
            .latest()
            .filter(|l| l.seen_docs == docs && l.team_heads == heads)
        {
            let since = latest.at.elapsed();
            if latest.seen == changed || since < METRICS_LAG {
                return Ok(latest.snapshot);
            }
            if since < BUSY {
                shared.behind.store(true, Ordering::Release);
                return Ok(latest.snapshot);
            }
        }
        self.catch_up_index(shared)
    }

    /// Catches the index up with every run whose projection changed since it last did (a doc
    /// or only live metrics), commits, and returns the new snapshot.
    pub(crate) fn catch_up_index(&mut self, shared: &SharedIndex) -> Result<Snapshot, Error> {
        let mut guard = match shared.index.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                // A panic in the middle of a catch-up: the index on disk is whole (tantivy
                // commits atomically); drop the handle and open it again.
                let mut g = poisoned.into_inner();
                *g = None;
                shared.index.clear_poison();
                g
            }
        };
        let dir = self.dir().join("index");
        if guard.is_none() {
            let (mut index, health) = SearchIndex::open(&dir)?;
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
                    let costs = self.catalog().cost_fields(None)?;
                    let reviews = self.run_reviews()?;
                    index.rebuild(indexed(&all, &names, &costs, &reviews))?;
                    record_watermark(self.dir(), seq);
                    seq
                }
            };
            // Which doc changes the position covers is not recorded: the first search catches
            // up whatever changed since it.
            *guard = Some(Index {
                index,
                seen,
                seen_docs: -1,
            });
        }
        let Some(idx) = guard.as_mut() else {
            return Err(Error::Invalid("search index not open".into()));
        };
        // Cost figures are search fields: the cost projection catches up first (restamping the
        // runs whose figures changed). A failure there leaves search on the last figures.
        if let Err(e) = self.cost_catch_up() {
            tracing::warn!(error = %e, "cost figures not caught up this time");
        }
        // Reviews are search fields too: runs whose reviews changed (here or on a peer) are
        // restamped first.
        let team_heads = self.catalog().team_heads()?;
        if let Err(e) = self.review_catch_up(&team_heads) {
            tracing::warn!(error = %e, "review fields not caught up this time");
        }
        let (changed, docs) = self.catalog().change_counters()?;
        // Another thread may have caught up while this one waited for the lock.
        if changed != idx.seen {
            let (seq, changed) = self.catalog().changes_since(idx.seen)?;
            let changed = with_live_metrics(self, changed)?;
            let names = names(self)?;
            let ids: Vec<RunId> = changed.iter().map(|r| r.id).collect();
            let costs = self.catalog().cost_fields(Some(&ids))?;
            let reviews = if changed.is_empty() {
                Default::default()
            } else {
                self.run_reviews()?
            };
            // Another process may hold the index writer for a moment: then search what is
            // committed and catch up next time.
            match idx
                .index
                .upsert(&indexed(&changed, &names, &costs, &reviews))
                .and_then(|()| idx.index.commit())
            {
                Ok(()) => {
                    idx.seen = seq;
                    idx.seen_docs = docs;
                    record_watermark(self.dir(), seq);
                }
                Err(e) => tracing::warn!(error = %e, "search index not caught up this time"),
            }
        } else {
            idx.seen_docs = docs;
        }
        let snapshot = idx.index.snapshot();
        shared.set_latest(Some(Latest {
            snapshot: snapshot.clone(),
            seen: idx.seen,
            seen_docs: idx.seen_docs,
            team_heads,
            at: Instant::now(),
        }));
        Ok(snapshot)
    }

    /// One page of runs matching a query in Cairn's query language (MLflow filters, OR, NOT,
    /// parentheses, free text, shorthands, lineage fields, ranges, relative times), narrowed by
    /// a saved view and to the user's own runs when asked. The parts are combined as syntax
    /// trees, never as text, so `a or b` narrowed to mine is `(a or b) and mine`.
    pub(crate) fn search_page(
        &mut self,
        shared: &SharedIndex,
        req: &SearchRequest,
    ) -> Result<SearchPage, Error> {
        let view = match req.view.as_deref().filter(|v| !v.is_empty()) {
            Some(name) => Some(self.view(name)?),
            None => None,
        };
        let mut parts = Vec::new();
        if let Some(v) = &view {
            parts.push(parse("view query", &v.query)?);
        }
        parts.push(parse("query", req.q.as_deref().unwrap_or(""))?);
        if req.mine.unwrap_or(false) {
            parts.push(Query::Compare(Comparison {
                field: Field::Attribute(Attribute::Owner),
                op: Op::Eq,
                value: Value::Text(self.user().to_owned()),
            }));
        }
        let query = Query::and(parts);
        let order = req
            .order
            .clone()
            .filter(|o| !o.trim().is_empty())
            .or_else(|| view.and_then(|v| v.order));
        let sort = match order {
            Some(o) => parse_sort("order", &o)?,
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
        let page = self.index_snapshot(shared)?.search(&request)?;
        let names = names(self)?;
        let mut costs = self.cost_briefs(&page.runs)?;
        let mut runs: Vec<RunSummary> = Vec::with_capacity(page.runs.len());
        for id in page.runs {
            // A run indexed but gone from the catalog (a rebuild in another process) is skipped.
            let Some(mut run) = self.catalog().run(id)? else {
                continue;
            };
            run.metrics.extend(self.live_metrics(id)?);
            let name = names.get(&run.experiment).cloned().unwrap_or_default();
            let mut row = summary(run, name);
            row.cost = costs.remove(&id);
            runs.push(row);
        }
        Ok(SearchPage {
            total: page.total,
            next_offset: page.next_offset.map(|o| o as u64),
            runs,
        })
    }

    /// Runs matching a query with an order, in experiments (empty: all), by lifecycle: the
    /// engine behind MLflow's `runs/search`. Each run carries its live metric summaries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_runs_by_query(
        &mut self,
        shared: &SharedIndex,
        query: &str,
        order: &[String],
        experiments: Vec<ExperimentId>,
        lifecycle: crate::Lifecycle,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Run>, Option<u64>), Error> {
        let query = parse("filter", query)?;
        let mut sort = Vec::new();
        for o in order {
            sort.push(
                cairn_search::SortKey::parse(o).map_err(|source| Error::Query {
                    what: "order_by clause",
                    source,
                })?,
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
        let page = self.index_snapshot(shared)?.search(&request)?;
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
    pub(crate) fn rebuild_index(&mut self, shared: &SharedIndex) -> Result<u64, Error> {
        let mut guard = shared.index.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = None;
        shared.set_latest(None);
        let dir = self.dir().join("index");
        let names = names(self)?;
        let (seq, all) = self.catalog().changes_since(-1)?;
        let all = with_live_metrics(self, all)?;
        let costs = self.catalog().cost_fields(None)?;
        let reviews = self.run_reviews()?;
        let (mut index, _) = SearchIndex::open(&dir)?;
        let n = index.rebuild(indexed(&all, &names, &costs, &reviews))?;
        record_watermark(self.dir(), seq);
        *guard = Some(Index {
            index,
            seen: seq,
            seen_docs: -1,
        });
        Ok(n)
    }
}

/// A named search: query, order and columns, kept in the team doc so it syncs with the catalog.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
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

impl Stores {
    /// Every run id a query matches (all pages).
    pub(crate) fn all_matching(
        &mut self,
        shared: &SharedIndex,
        query: &str,
    ) -> Result<Vec<cairn_model::RunId>, Error> {
        let parsed = parse("query", query)?;
        self.all_matching_query(shared, parsed)
    }

    /// Every run id a parsed query matches (all pages).
    pub(crate) fn all_matching_query(
        &mut self,
        shared: &SharedIndex,
        parsed: Query,
    ) -> Result<Vec<cairn_model::RunId>, Error> {
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let request = IndexRequest {
                query: parsed.clone(),
                limit: 5000,
                offset,
                ..Default::default()
            };
            let page = self.index_snapshot(shared)?.search(&request)?;
            ids.extend(page.runs);
            match page.next_offset {
                Some(next) => offset = next,
                None => return Ok(ids),
            }
        }
    }

    /// Sets a tag on every run a query matches, in one change per shard; returns how many.
    pub(crate) fn tag_matching(
        &mut self,
        shared: &SharedIndex,
        query: &str,
        key: &str,
        value: &str,
    ) -> Result<usize, Error> {
        cairn_model::validate_key("tag key", key)?;
        let ids = self.all_matching(shared, query)?;
        let edits: Vec<(cairn_model::RunId, Vec<cairn_catalog::RunEdit>)> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    vec![cairn_catalog::RunEdit::Tag(
                        key.to_owned(),
                        value.to_owned(),
                    )],
                )
            })
            .collect();
        self.catalog_mut().update_runs(&edits)?;
        Ok(ids.len())
    }

    /// Makes `owner` the owner of every run a query matches; returns how many.
    pub(crate) fn set_owner_matching(
        &mut self,
        shared: &SharedIndex,
        query: &str,
        owner: &str,
    ) -> Result<usize, Error> {
        if owner.trim().is_empty() || owner.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("invalid owner '{owner}'")));
        }
        let ids = self.all_matching(shared, query)?;
        let edits: Vec<(cairn_model::RunId, Vec<cairn_catalog::RunEdit>)> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    vec![cairn_catalog::RunEdit::Owner(Some(owner.to_owned()))],
                )
            })
            .collect();
        self.catalog_mut().update_runs(&edits)?;
        Ok(ids.len())
    }

    /// Saves (or replaces) a named view; its query and order must parse.
    pub(crate) fn save_view(&mut self, view: &SavedView) -> Result<(), Error> {
        if view.name.trim().is_empty() || view.name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("invalid view name '{}'", view.name)));
        }
        parse("query", &view.query)?;
        if let Some(o) = &view.order {
            parse_sort("order", o)?;
        }
        let text = serde_json::to_string(view).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self
            .catalog_mut()
            .put_team_entry(&view_key(&view.name), Some(&text))?)
    }

    pub(crate) fn views(&mut self) -> Result<Vec<SavedView>, Error> {
        self.catalog_mut()
            .team_entries("view/")?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v).map_err(|e| {
                    Error::Catalog(cairn_catalog::Error::Corrupt {
                        doc: "team".into(),
                        reason: format!("{k} is unreadable: {e}"),
                    })
                })
            })
            .collect()
    }

    pub(crate) fn view(&mut self, name: &str) -> Result<SavedView, Error> {
        let text = self
            .catalog_mut()
            .team_entry(&view_key(name))?
            .ok_or_else(|| Error::UnknownView(name.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Catalog(cairn_catalog::Error::Corrupt {
                doc: "team".into(),
                reason: format!("saved view '{name}' is unreadable: {e}"),
            })
        })
    }

    pub(crate) fn delete_view(&mut self, name: &str) -> Result<(), Error> {
        self.view(name)?;
        Ok(self.catalog_mut().put_team_entry(&view_key(name), None)?)
    }
}
