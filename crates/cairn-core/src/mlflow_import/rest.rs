//! A running MLflow server (`http://…`, `https://…`) read through its REST API: experiments and
//! runs searched page by page, each metric's history paged from `metrics/get-history`,
//! registered models and their versions searched, artifacts listed directory by directory and
//! downloaded through `/get-artifact` (which serves proxied `mlflow-artifacts:` roots too).
//! It hands the importer the same records the store readers do, so what becomes what, the
//! idempotency and the report are one code path for every source.
//!
//! Bounds: every JSON answer is read to at most [`MAX_RESPONSE_BYTES`], a listing follows at
//! most [`MAX_PAGES`] pages (and stops at a page token handed out twice), a connection has 10 s
//! to open, every read 120 s, a JSON answer 300 s in all, an artifact file at most
//! [`MAX_ARTIFACT_FILE_BYTES`]. Connection errors, time-outs,
//! 429 and 5xx answers are tried [`TRIES`] times with a growing pause; anything else fails with
//! the URL, the status and the start of the body.
//!
//! The answers are parsed by the `*_page` functions, which hold no IO (fuzzed as `mlflow_rest`).
//! The client is async (reqwest, as iroh builds it) on a runtime of this source's own, driven
//! from the calling thread: front ends call the import off their async threads, as every
//! blocking operation of the API.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use cairn_metrics::Point;
use cairn_model::DatasetSnapshot;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::sqlite::{logged_value, source_uri};
use super::{
    MAX_ARTIFACT_DEPTH, MAX_ARTIFACT_FILES, MlflowSource, Served, SrcExperiment, SrcModel, SrcRun,
    SrcVersion,
};
use crate::Error;

/// The most bytes one JSON answer may hold.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// The most pages one listing may take (a metric history of 100M points is 4,000).
pub const MAX_PAGES: usize = 100_000;
/// The most bytes one artifact file may hold.
pub const MAX_ARTIFACT_FILE_BYTES: u64 = 64 << 30;
/// How often a request is tried when the connection fails, it times out or the server answers
/// 429 or 5xx.
pub const TRIES: u32 = 4;
/// Points asked for per page of a metric history (MLflow's own bulk limit).
const HISTORY_PAGE: u32 = 25_000;
/// A series of at most this many points is ordered as the store readers order it (by step,
/// timestamp, value); a longer one is streamed in the server's order (timestamp, step, value),
/// so memory stays bounded. Either order is the same on every read, which is what a resumed
/// import needs.
const SORTED_SERIES: usize = 1_000_000;
const RUNS_PAGE: u32 = 1_000;
const EXPERIMENTS_PAGE: u32 = 1_000;
const MODELS_PAGE: u32 = 1_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two reads of any answer.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// A JSON answer, whole (an artifact may take as long as its size needs, read by read).
const JSON_TIMEOUT: Duration = Duration::from_secs(300);
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Characters of an error answer quoted in the error.
const EXCERPT: usize = 300;

/// A page of a listing: its items and the token of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A file among a run's artifacts, as `artifacts/list` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Relative to the run's artifact root, `/`-separated.
    pub path: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// An MLflow tracking server.
pub struct RestServer {
    /// Scheme, host, port and path prefix, without a trailing `/` and without credentials.
    base: reqwest::Url,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    /// The metric keys of each run read, for [`MlflowSource::points`].
    keys: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for RestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestServer")
            .field("base", &self.describe())
            .finish()
    }
}

impl RestServer {
    /// A client of the server at `url` (`http://host:port`, with a path prefix when the server
    /// has one). Credentials in the URL (`http://user:password@host`) are sent as basic auth and
    /// never shown. Nothing is requested yet.
    pub fn open(url: &str) -> Result<RestServer, Error> {
        let bad = |reason: String| Error::Invalid(format!("{}: {reason}", redact(url)));
        let mut base = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad("not an http:// or https:// URL of a server".into()));
        }
        base.set_query(None);
        base.set_fragment(None);
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        // reqwest's rustls backend, as this workspace builds it, brings no crypto provider of
        // its own: ring is the one iroh already uses. Another thread may install one first;
        // either serves.
        if rustls::crypto::CryptoProvider::get_default().is_none()
            && let Err(_already) = rustls::crypto::ring::default_provider().install_default()
        {
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("no HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("no runtime for the HTTP client: {e}")))?;
        Ok(RestServer {
            base,
            client,
            rt,
            keys: HashMap::new(),
        })
    }

    /// `path` (from the API's root, `api/2.0/…`) under the base, with `query`.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{path}",
            self.base.path().trim_end_matches('/')
        ));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The answer to a request, tried again on a failed connection, a time-out, 429 and 5xx;
    /// read to at most [`MAX_RESPONSE_BYTES`].
    fn call(&self, url: &reqwest::Url, body: Option<&serde_json::Value>) -> Result<Vec<u8>, Error> {
        let shown = redact(url.as_str());
        let response = self.send(url, body, Some(JSON_TIMEOUT))?;
        self.rt
            .block_on(read_all(response, MAX_RESPONSE_BYTES))
            .map_err(|reason| Error::Remote { url: shown, reason })
    }

    /// A successful answer's head, tried as [`RestServer::call`] says; `whole` limits the time
    /// until its body has been read.
    fn send(
        &self,
        url: &reqwest::Url,
        body: Option<&serde_json::Value>,
        whole: Option<Duration>,
    ) -> Result<reqwest::Response, Error> {
        let shown = redact(url.as_str());
        let mut pause = FIRST_PAUSE;
        let mut tries = 0;
        loop {
            tries += 1;
            let request = match body {
                Some(b) => self
                    .client
                    .post(url.clone())
                    .header("Content-Type", "application/json")
                    .body(b.to_string()),
                None => self.client.get(url.clone()),
            };
            let request = match whole {
                Some(t) => request.timeout(t),
                None => request,
            };
            type Answer = Result<reqwest::Response, (reqwest::StatusCode, String)>;
            let outcome: Result<Answer, reqwest::Error> = self.rt.block_on(async {
                let response = request.send().await?;
                let status = response.status();
                if status.is_success() {
                    return Ok(Ok(response));
                }
                // The start of the body says why; what cannot be read is left out.
                let text = read_all(response, 64 << 10).await.unwrap_or_default();
                Ok(Err((status, String::from_utf8_lossy(&text).into_owned())))
            });
            let retry = match &outcome {
                Ok(Ok(_)) => false,
                Ok(Err((status, _))) => status.is_server_error() || status.as_u16() == 429,
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            };
            if retry && tries < TRIES {
                tracing::debug!(url = %shown, tries, "retrying");
                std::thread::sleep(pause);
                pause *= 2;
                continue;
            }
            let tried = if tries > 1 {
                format!(" (tried {tries} times)")
            } else {
                String::new()
            };
            return match outcome {
                Ok(Ok(response)) => Ok(response),
                Ok(Err((status, text))) => Err(Error::Remote {
                    url: shown,
                    reason: format!("HTTP {status}{tried}: {}", excerpt(&text)),
                }),
                Err(e) => Err(Error::Remote {
                    url: shown,
                    reason: format!("{}{tried}", error_chain(&e.without_url())),
                }),
            };
        }
    }

    /// Every page of a listing: `fetch` asks for the page of a token and parses it.
    fn pages<T>(
        &self,
        what: &str,
        mut fetch: impl FnMut(Option<&str>) -> Result<Page<T>, Error>,
        mut each: impl FnMut(Vec<T>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = fetch(token.as_deref())?;
            each(page.items)?;
            match page.next {
                None => return Ok(()),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(Error::Remote {
                            url: redact(self.base.as_str()),
                            reason: format!(
                                "the server handed out page token {next:?} of {what} twice"
                            ),
                        });
                    }
                    token = Some(next);
                }
            }
        }
        Err(Error::Remote {
            url: redact(self.base.as_str()),
            reason: format!("{what} takes more than {MAX_PAGES} pages"),
        })
    }

    fn parse<T>(
        &self,
        url: &reqwest::Url,
        body: &[u8],
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        parse(body).map_err(|reason| Error::Remote {
            url: redact(url.as_str()),
            reason: format!("not an MLflow answer: {reason}"),
        })
    }

    /// The files under one of a run's artifact directories, every level down.
    fn list_artifacts(
        &self,
        run: &str,
        dir: &str,
        depth: usize,
        out: &mut Vec<ArtifactFile>,
    ) -> Result<(), Error> {
        if depth > MAX_ARTIFACT_DEPTH {
            return Err(Error::Remote {
                url: redact(self.base.as_str()),
                reason: format!(
                    "run {run}'s artifacts are more than {MAX_ARTIFACT_DEPTH} directories deep"
                ),
            });
        }
        let mut entries = Vec::new();
        self.pages(
            &format!("run {run}'s artifacts"),
            |token| {
                let mut q = vec![("run_id", run)];
                if !dir.is_empty() {
                    q.push(("path", dir));
                }
                if let Some(t) = token {
                    q.push(("page_token", t));
                }
                let url = self.url("api/2.0/mlflow/artifacts/list", &q);
                let body = self.call(&url, None)?;
                self.parse(&url, &body, artifacts_page)
            },
            |files| {
                entries.extend(files);
                Ok(())
            },
        )?;
        for f in entries {
            // Each entry must lie under the directory listed: a server naming anything else
            // would send the walk anywhere.
            let inside = if dir.is_empty() {
                !f.path.is_empty()
            } else {
                f.path
                    .strip_prefix(dir)
                    .is_some_and(|r| r.starts_with('/') && r.len() > 1)
            };
            if !inside
                || f.path
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..")
            {
                return Err(Error::Remote {
                    url: redact(self.base.as_str()),
                    reason: format!(
                        "listing run {run}'s artifacts under '{dir}' named '{}'",
                        f.path
                    ),
                });
            }
            if f.is_dir {
                self.list_artifacts(run, &f.path, depth + 1, out)?;
            } else {
                if out.len() >= MAX_ARTIFACT_FILES {
                    return Err(Error::Remote {
                        url: redact(self.base.as_str()),
                        reason: format!(
                            "run {run} holds more than {MAX_ARTIFACT_FILES} artifact files"
                        ),
                    });
                }
                out.push(f);
            }
        }
        Ok(())
    }

    /// A model's versions (MLflow's search leaves deleted ones out: their numbers come back as
    /// deleted versions, so the numbers after them are kept).
    fn versions(&self, name: &str) -> Result<Vec<SrcVersion>, Error> {
        let filter = if !name.contains('\'') {
            format!("name='{name}'")
        } else if !name.contains('"') {
            format!("name=\"{name}\"")
        } else {
            return Err(Error::Invalid(format!(
                "registered model {name:?}: a name with both kinds of quote cannot be searched \
                 for over MLflow's REST API; import its store instead"
            )));
        };
        let mut versions = Vec::new();
        let max = MODELS_PAGE.to_string();
        self.pages(
            &format!("model '{name}''s versions"),
            |token| {
                let mut q = vec![("filter", filter.as_str()), ("max_results", max.as_str())];
                if let Some(t) = token {
                    q.push(("page_token", t));
                }
                let url = self.url("api/2.0/mlflow/model-versions/search", &q);
                let body = self.call(&url, None)?;
                self.parse(&url, &body, versions_page)
            },
            |page| {
                // The filter is the server's to apply; a version of another model is not taken.
                versions.extend(page.into_iter().filter(|(n, _)| n == name).map(|(_, v)| v));
                Ok(())
            },
        )?;
        Ok(fill_gaps(versions))
    }
}

impl MlflowSource for RestServer {
    fn describe(&self) -> String {
        redact(self.base.as_str())
    }

    fn base_dir(&self) -> Option<PathBuf> {
        None
    }

    fn experiments(&mut self) -> Result<Vec<SrcExperiment>, Error> {
        let mut out = Vec::new();
        self.pages(
            "experiments",
            |token| {
                let mut body = serde_json::json!({
                    "max_results": EXPERIMENTS_PAGE,
                    "view_type": "ALL",
                });
                if let Some(t) = token {
                    body["page_token"] = t.into();
                }
                let url = self.url("api/2.0/mlflow/experiments/search", &[]);
                let answer = self.call(&url, Some(&body))?;
                self.parse(&url, &answer, experiments_page)
            },
            |page| {
                out.extend(page);
                Ok(())
            },
        )?;
        // As the store readers order them: by id (numbers as numbers).
        out.sort_by(|a, b| id_order(&a.id, &b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    fn runs(&mut self, experiments: &[String]) -> Result<Vec<SrcRun>, Error> {
        let mut out: Vec<SrcRun> = Vec::new();
        for exp in experiments {
            let mut n = 0usize;
            self.pages(
                &format!("experiment {exp}'s runs"),
                |token| {
                    let mut body = serde_json::json!({
                        "experiment_ids": [exp],
                        "max_results": RUNS_PAGE,
                        "run_view_type": "ALL",
                    });
                    if let Some(t) = token {
                        body["page_token"] = t.into();
                    }
                    let url = self.url("api/2.0/mlflow/runs/search", &[]);
                    let answer = self.call(&url, Some(&body))?;
                    self.parse(&url, &answer, runs_page)
                },
                |page| {
                    n += page.len();
                    if out.len() + page.len() > super::MAX_RUNS {
                        return Err(Error::Invalid(format!(
                            "{} holds more than the {} runs one import takes: import it an \
                             experiment at a time (--experiment NAME)",
                            self.describe(),
                            super::MAX_RUNS
                        )));
                    }
                    out.extend(page);
                    Ok(())
                },
            )?;
            tracing::debug!(experiment = %exp, runs = n, "runs listed");
        }
        // As the store readers order them; a run listed twice (the store changed between two
        // pages) is taken once.
        out.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        out.dedup_by(|a, b| a.id == b.id);
        self.keys = out
            .iter()
            .map(|r| (r.id.clone(), r.metric_keys.clone()))
            .collect();
        Ok(out)
    }

    fn points(
        &mut self,
        run: &str,
        sink: &mut dyn FnMut(&str, Point) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let keys = self.keys.get(run).cloned().unwrap_or_default();
        let max = HISTORY_PAGE.to_string();
        for key in &keys {
            let mut held: Vec<(Point, bool)> = Vec::new();
            let mut streaming = false;
            self.pages(
                &format!("run {run}'s metric '{key}'"),
                |token| {
                    let mut q = vec![
                        ("run_id", run),
                        ("metric_key", key.as_str()),
                        ("max_results", max.as_str()),
                    ];
                    if let Some(t) = token {
                        q.push(("page_token", t));
                    }
                    let url = self.url("api/2.0/mlflow/metrics/get-history", &q);
                    let body = self.call(&url, None)?;
                    self.parse(&url, &body, history_page)
                },
                |page| {
                    if !streaming && held.len() + page.len() > SORTED_SERIES {
                        streaming = true;
                        for (p, _) in held.drain(..) {
                            sink(key, p)?;
                        }
                    }
                    if streaming {
                        for (p, _) in page {
                            sink(key, p)?;
                        }
                    } else {
                        held.extend(page);
                    }
                    Ok(())
                },
            )?;
            // step, timestamp, then NaN after numbers, then value: the SQL store's order.
            held.sort_by(|(a, an), (b, bn)| {
                (a.step, a.ts_ms, *an)
                    .cmp(&(b.step, b.ts_ms, *bn))
                    .then(a.value.total_cmp(&b.value))
            });
            for (p, _) in held {
                sink(key, p)?;
            }
        }
        Ok(())
    }

    fn models(&mut self) -> Result<Vec<SrcModel>, Error> {
        let mut found: Vec<(i64, SrcModel)> = Vec::new();
        let max = MODELS_PAGE.to_string();
        self.pages(
            "registered models",
            |token| {
                let mut q = vec![("max_results", max.as_str())];
                if let Some(t) = token {
                    q.push(("page_token", t));
                }
                let url = self.url("api/2.0/mlflow/registered-models/search", &q);
                let body = self.call(&url, None)?;
                self.parse(&url, &body, models_page)
            },
            |page| {
                found.extend(page);
                Ok(())
            },
        )?;
        found.sort_by(|(a, x), (b, y)| (a, &x.name).cmp(&(b, &y.name)));
        found.dedup_by(|(_, a), (_, b)| a.name == b.name);
        let mut out = Vec::with_capacity(found.len());
        for (_, mut m) in found {
            m.versions = self.versions(&m.name)?;
            out.push(m);
        }
        Ok(out)
    }

    fn served_artifacts(&mut self, run: &SrcRun) -> Result<Served, Error> {
        let mut files = Vec::new();
        match self.list_artifacts(&run.id, "", 0, &mut files) {
            Ok(()) => {}
            // A root the server cannot read (a bucket without credentials, a path gone) is the
            // run's, not the import's: said in the report, the rest goes on.
            Err(Error::Remote { reason, .. }) if reason.starts_with("HTTP ") => {
                let status = reason.split(':').next().unwrap_or("HTTP error").to_owned();
                return Ok(Served::Unavailable(format!(
                    "runs whose artifacts the server would not list ({status})"
                )));
            }
            Err(e) => return Err(e),
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Served::Files(
            files.into_iter().map(|f| (f.path, f.size)).collect(),
        ))
    }

    fn open_artifact<'a>(&'a mut self, run: &str, path: &str) -> Result<Box<dyn Read + 'a>, Error> {
        let url = self.url("get-artifact", &[("path", path), ("run_uuid", run)]);
        let response = self.send(&url, None, None)?;
        Ok(Box::new(Download {
            rt: &self.rt,
            url: redact(url.as_str()),
            response,
            piece: Vec::new(),
            at: 0,
            read: 0,
        }))
    }
}

/// An artifact's bytes as they arrive.
struct Download<'a> {
    rt: &'a tokio::runtime::Runtime,
    url: String,
    response: reqwest::Response,
    /// The piece that arrived last, and how much of it was handed on.
    piece: Vec<u8>,
    at: usize,
    read: u64,
}

impl Read for Download<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            match self.rt.block_on(self.response.chunk()) {
                Ok(Some(piece)) => {
                    self.piece.clear();
                    self.piece.extend_from_slice(&piece);
                    self.at = 0;
                }
                Ok(None) => return Ok(0),
                Err(e) => {
                    return Err(std::io::Error::other(format!(
                        "{}: {}",
                        self.url,
                        error_chain(&e.without_url())
                    )));
                }
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        self.read += n as u64;
        if self.read > MAX_ARTIFACT_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "{}: an artifact file of more than {MAX_ARTIFACT_FILE_BYTES} bytes",
                self.url
            )));
        }
        Ok(n)
    }
}

async fn read_all(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|e| error_chain(&e.without_url()))?
    {
        if out.len() + piece.len() > limit {
            return Err(format!("an answer of more than {limit} bytes"));
        }
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// An error with its causes (reqwest's own message is often only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "(no body)".into(),
        None => text.to_owned(),
    }
}

/// A URL without its credentials.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            if u.set_username("").is_err() || u.set_password(None).is_err() {
                return "(a URL with credentials)".into();
            }
            u.to_string().trim_end_matches('/').to_owned()
        }
        Ok(u) => u.to_string().trim_end_matches('/').to_owned(),
        Err(_) => url.split('@').next_back().unwrap_or_default().to_owned(),
    }
}

fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Versions by number, with the numbers MLflow's search leaves out (deleted versions) as
/// deleted versions of their own, so every later version keeps its number here.
fn fill_gaps(mut versions: Vec<SrcVersion>) -> Vec<SrcVersion> {
    versions.sort_by_key(|v| v.version);
    versions.dedup_by_key(|v| v.version);
    let mut out = Vec::with_capacity(versions.len());
    let mut next = 1;
    for v in versions {
        while next < v.version {
            out.push(SrcVersion {
                version: next,
                deleted: true,
                ..Default::default()
            });
            next += 1;
        }
        next = v.version + 1;
        out.push(v);
    }
    out
}

// ---- The answers, as MLflow's server writes them (protobuf's JSON: fields left at their
// default may be absent, 64-bit integers as numbers or text, doubles as numbers or "NaN",
// "Infinity", "-Infinity").

#[derive(Deserialize, Default)]
#[serde(default)]
struct Tag {
    key: String,
    value: String,
}

fn tags(t: Vec<Tag>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = t.into_iter().map(|t| (t.key, t.value)).collect();
    out.sort();
    out
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Experiments {
    experiments: Vec<Experiment>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Experiment {
    #[serde(deserialize_with = "text")]
    experiment_id: String,
    name: String,
    lifecycle_stage: Option<String>,
    tags: Vec<Tag>,
}

/// A page of `experiments/search`.
pub fn experiments_page(body: &[u8]) -> Result<Page<SrcExperiment>, String> {
    let page: Experiments = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut items = Vec::with_capacity(page.experiments.len());
    for e in page.experiments {
        if e.experiment_id.is_empty() {
            return Err(format!("experiment '{}' has no id", e.name));
        }
        items.push(SrcExperiment {
            id: e.experiment_id,
            name: e.name,
            deleted: e.lifecycle_stage.as_deref() == Some("deleted"),
            tags: tags(e.tags),
        });
    }
    Ok(Page {
        items,
        next: token(page.next_page_token),
    })
}

fn token(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.is_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Runs {
    runs: Vec<RunJson>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunJson {
    info: RunInfo,
    data: RunData,
    inputs: RunInputs,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunInfo {
    run_id: String,
    run_uuid: String,
    run_name: Option<String>,
    #[serde(deserialize_with = "text")]
    experiment_id: String,
    user_id: Option<String>,
    status: String,
    #[serde(deserialize_with = "opt_i64")]
    start_time: Option<i64>,
    #[serde(deserialize_with = "opt_i64")]
    end_time: Option<i64>,
    artifact_uri: Option<String>,
    lifecycle_stage: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunData {
    metrics: Vec<MetricJson>,
    params: Vec<Tag>,
    tags: Vec<Tag>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunInputs {
    dataset_inputs: Vec<DatasetInput>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DatasetInput {
    tags: Vec<Tag>,
    dataset: DatasetJson,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DatasetJson {
    name: Option<String>,
    digest: Option<String>,
    source_type: Option<String>,
    source: Option<String>,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MetricJson {
    key: String,
    #[serde(deserialize_with = "double")]
    value: f64,
    #[serde(deserialize_with = "opt_i64")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "opt_i64")]
    step: Option<i64>,
}

/// A page of `runs/search`: each run's record, params, tags, metric keys (from its latest
/// values) and dataset inputs.
pub fn runs_page(body: &[u8]) -> Result<Page<SrcRun>, String> {
    let page: Runs = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut items = Vec::with_capacity(page.runs.len());
    for r in page.runs {
        let i = r.info;
        let id = if i.run_id.is_empty() {
            i.run_uuid
        } else {
            i.run_id
        };
        if id.is_empty() {
            return Err("a run without an id".into());
        }
        let mut metric_keys: Vec<String> = r.data.metrics.into_iter().map(|m| m.key).collect();
        metric_keys.sort();
        metric_keys.dedup();
        let mut datasets: Vec<DatasetSnapshot> =
            r.inputs.dataset_inputs.into_iter().map(dataset).collect();
        datasets.sort_by(|a, b| a.name.cmp(&b.name));
        items.push(SrcRun {
            id,
            experiment: i.experiment_id,
            name: i.run_name,
            user: i.user_id,
            status: i.status,
            start_ms: i.start_time,
            end_ms: i.end_time,
            deleted: i.lifecycle_stage.as_deref() == Some("deleted"),
            artifact_uri: i.artifact_uri.filter(|u| !u.is_empty()),
            params: tags(r.data.params),
            tags: tags(r.data.tags),
            metric_keys,
            datasets,
        });
    }
    Ok(Page {
        items,
        next: token(page.next_page_token),
    })
}

/// A dataset input as the SQL store reader makes it.
fn dataset(d: DatasetInput) -> DatasetSnapshot {
    let mut context = None;
    let mut tags = BTreeMap::new();
    for t in d.tags {
        if t.key == "mlflow.data.context" {
            context = Some(t.value);
        } else {
            tags.insert(t.key, t.value);
        }
    }
    let ds = d.dataset;
    DatasetSnapshot {
        name: ds.name,
        context,
        uri: ds.source.as_deref().map(source_uri),
        digest: ds.digest.filter(|d| !d.is_empty()),
        size_bytes: None,
        rows: ds
            .profile
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("num_rows").and_then(serde_json::Value::as_u64)),
        source_type: ds.source_type,
        schema: ds.schema.filter(|s| !s.is_empty()),
        source: ds.source,
        profile: ds.profile.filter(|p| !p.is_empty()),
        tags,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct History {
    metrics: Vec<MetricJson>,
    next_page_token: Option<String>,
}

/// A page of `metrics/get-history`: each point, and whether its value is NaN (MLflow's SQL
/// store orders NaN after numbers). ±`f64::MAX`, the SQL store's infinities, come back as ±inf.
pub fn history_page(body: &[u8]) -> Result<Page<(Point, bool)>, String> {
    let page: History = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let items = page
        .metrics
        .into_iter()
        .map(|m| {
            let nan = m.value.is_nan();
            let point = Point {
                step: m.step.unwrap_or(0),
                ts_ms: m.timestamp.unwrap_or(0),
                value: logged_value(m.value, nan),
            };
            (point, nan)
        })
        .collect();
    Ok(Page {
        items,
        next: token(page.next_page_token),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Files {
    files: Vec<FileJson>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileJson {
    path: String,
    is_dir: bool,
    #[serde(deserialize_with = "opt_i64")]
    file_size: Option<i64>,
}

/// A page of `artifacts/list`.
pub fn artifacts_page(body: &[u8]) -> Result<Page<ArtifactFile>, String> {
    let page: Files = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(Page {
        items: page
            .files
            .into_iter()
            .map(|f| ArtifactFile {
                path: f.path.trim_matches('/').to_owned(),
                is_dir: f.is_dir,
                size: f.file_size.and_then(|s| u64::try_from(s).ok()),
            })
            .collect(),
        next: token(page.next_page_token),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Models {
    registered_models: Vec<ModelJson>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ModelJson {
    name: String,
    #[serde(deserialize_with = "opt_i64")]
    creation_timestamp: Option<i64>,
    description: Option<String>,
    tags: Vec<Tag>,
    aliases: Vec<AliasJson>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AliasJson {
    alias: String,
    #[serde(deserialize_with = "text")]
    version: String,
}

/// A page of `registered-models/search`: each model (without its versions) and when it was
/// created, by which the store readers order them.
pub fn models_page(body: &[u8]) -> Result<Page<(i64, SrcModel)>, String> {
    let page: Models = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut items = Vec::with_capacity(page.registered_models.len());
    for m in page.registered_models {
        if m.name.is_empty() {
            return Err("a registered model without a name".into());
        }
        let mut aliases = Vec::with_capacity(m.aliases.len());
        for a in m.aliases {
            let n = a.version.parse::<u32>().map_err(|_| {
                format!(
                    "model '{}': alias '{}' names version {:?}",
                    m.name, a.alias, a.version
                )
            })?;
            aliases.push((a.alias, n));
        }
        aliases.sort();
        items.push((
            m.creation_timestamp.unwrap_or(0),
            SrcModel {
                name: m.name,
                description: m.description.filter(|d| !d.is_empty()),
                tags: tags(m.tags),
                versions: Vec::new(),
                aliases,
            },
        ));
    }
    Ok(Page {
        items,
        next: token(page.next_page_token),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Versions {
    model_versions: Vec<VersionJson>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VersionJson {
    name: String,
    #[serde(deserialize_with = "text")]
    version: String,
    source: Option<String>,
    run_id: Option<String>,
    description: Option<String>,
    current_stage: Option<String>,
    tags: Vec<Tag>,
}

/// A page of `model-versions/search`: (model name, version).
pub fn versions_page(body: &[u8]) -> Result<Page<(String, SrcVersion)>, String> {
    let page: Versions = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut items = Vec::with_capacity(page.model_versions.len());
    for v in page.model_versions {
        let version = v
            .version
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("model '{}' has a version {:?}", v.name, v.version))?;
        let deleted = v.current_stage.as_deref() == Some("Deleted_Internal");
        items.push((
            v.name,
            SrcVersion {
                version,
                source: v.source.filter(|s| !s.is_empty()),
                run_id: v.run_id.filter(|r| !r.is_empty()),
                description: v.description.filter(|d| !d.is_empty()),
                stage: v
                    .current_stage
                    .filter(|s| !deleted && !s.is_empty() && !s.eq_ignore_ascii_case("none")),
                deleted,
                tags: tags(v.tags),
            },
        ));
    }
    Ok(Page {
        items,
        next: token(page.next_page_token),
    })
}

/// A 64-bit integer written as a number or as text (protobuf's JSON writes text).
fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => Some(
            n.as_i64()
                .ok_or_else(|| de::Error::custom(format!("{n} is not a 64-bit integer")))?,
        ),
        serde_json::Value::String(s) => Some(
            s.parse()
                .map_err(|_| de::Error::custom(format!("{s:?} is not a 64-bit integer")))?,
        ),
        other => return Err(de::Error::custom(format!("{other} is not an integer"))),
    })
}

/// An id written as text or as a number.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(de::Error::custom(format!("{other} is not an id"))),
    })
}

/// A double as protobuf's JSON writes it: a number, or "NaN", "Infinity", "-Infinity".
fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| de::Error::custom(format!("{n} is not a number")))?,
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other
                .parse()
                .map_err(|_| de::Error::custom(format!("{other:?} is not a number")))?,
        },
        other => return Err(de::Error::custom(format!("{other} is not a number"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_keep_nan_and_infinities() {
        let page = history_page(
            br#"{"metrics": [
                {"key": "g", "value": 1.5, "timestamp": 10, "step": 0},
                {"key": "g", "value": "NaN", "timestamp": "11", "step": "1"},
                {"key": "g", "value": 1.7976931348623157e308, "timestamp": 12, "step": 2},
                {"key": "g", "value": "-Infinity", "timestamp": 13, "step": 3},
                {"key": "g", "value": 0.25, "timestamp": 14}
            ], "next_page_token": "abc"}"#,
        )
        .unwrap();
        let values: Vec<f64> = page.items.iter().map(|(p, _)| p.value).collect();
        assert_eq!(values[0], 1.5);
        assert!(values[1].is_nan() && page.items[1].1);
        assert_eq!(values[2], f64::INFINITY);
        assert_eq!(values[3], f64::NEG_INFINITY);
        assert_eq!((page.items[1].0.step, page.items[1].0.ts_ms), (1, 11));
        assert_eq!(page.items[4].0.step, 0, "a step left out is 0");
        assert_eq!(page.next.as_deref(), Some("abc"));
        assert!(history_page(b"{\"metrics\": [{\"value\": \"lots\"}]}").is_err());
    }

    #[test]
    fn runs_read_as_the_store_readers_read_them() {
        let page = runs_page(
            br#"{"runs": [{"info": {"run_id": "ab", "experiment_id": "3", "run_name": "r",
                "status": "FINISHED", "start_time": 5, "lifecycle_stage": "active",
                "artifact_uri": "mlflow-artifacts:/3/ab/artifacts", "user_id": "u"},
              "data": {"metrics": [{"key": "z", "value": 1}, {"key": "a", "value": 2}],
                       "params": [{"key": "lr", "value": "0.1"}, {"key": "empty"}],
                       "tags": [{"key": "t", "value": "v"}]},
              "inputs": {"dataset_inputs": [{"tags": [{"key": "mlflow.data.context",
                 "value": "training"}], "dataset": {"name": "d", "digest": "x",
                 "source_type": "s3", "source": "{\"uri\": \"s3://b/t\"}",
                 "profile": "{\"num_rows\": 3}"}}]}}]}"#,
        )
        .unwrap();
        let r = &page.items[0];
        assert_eq!((r.id.as_str(), r.experiment.as_str()), ("ab", "3"));
        assert_eq!(r.metric_keys, ["a", "z"]);
        assert_eq!(
            r.params,
            [("empty".into(), String::new()), ("lr".into(), "0.1".into())]
        );
        assert_eq!(r.end_ms, None);
        let d = &r.datasets[0];
        assert_eq!(d.context.as_deref(), Some("training"));
        assert_eq!(d.uri.as_deref(), Some("s3://b/t"));
        assert_eq!(d.rows, Some(3));
        assert!(page.next.is_none());
    }

    #[test]
    fn deleted_versions_keep_the_numbers_after_them() {
        let v = |n| SrcVersion {
            version: n,
            ..Default::default()
        };
        let got: Vec<(u32, bool)> = fill_gaps(vec![v(4), v(1), v(2)])
            .iter()
            .map(|v| (v.version, v.deleted))
            .collect();
        assert_eq!(got, [(1, false), (2, false), (3, true), (4, false)]);
    }

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            redact("https://me:secret@mlflow.example/prefix"),
            "https://mlflow.example/prefix"
        );
        assert_eq!(redact("http://127.0.0.1:5000/"), "http://127.0.0.1:5000");
    }

    #[test]
    fn model_answers_need_their_numbers() {
        assert!(versions_page(br#"{"model_versions": [{"name": "m", "version": "x"}]}"#).is_err());
        let page = models_page(
            br#"{"registered_models": [{"name": "m", "aliases": [{"alias": "c", "version": "2"}],
                 "description": ""}]}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].1.aliases, [("c".into(), 2)]);
        assert_eq!(page.items[0].1.description, None);
    }
}
