//! The web UI's static files, served at `/` for browsers: the UI built into the binary
//! (`build.rs` embeds `ui/dist`), or a directory given instead (`--ui-dir`, for working on the
//! UI). Paths are resolved inside the UI only; anything that is not a file there gets
//! `index.html` (the UI routes by URL fragment, so MLflow's `#/experiments/…/runs/…` links open
//! in it).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_files.rs"));
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Cairn</title>\
<h1>Cairn is running</h1><p>This build has no web UI: it was compiled before the UI was. Build \
it with <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then build \
<code>cairn</code> again. The MLflow tracking API and <code>/api/v1/</code> work without it.</p>";

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json" | "map") => "application/json",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `rel` inside `root`, or None when it would leave it.
fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_owned();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The embedded file at `rel`, else `index.html`, else nothing.
fn embedded(rel: &str) -> Option<(&'static str, &'static [u8])> {
    let find = |p: &str| embedded::FILES.iter().find(|(path, _)| *path == p).copied();
    find(rel.trim_start_matches('/')).or_else(|| find("index.html"))
}

async fn file(root: Arc<Option<PathBuf>>, rel: String) -> Response {
    let Some(root) = root.as_ref() else {
        return match embedded(&rel) {
            Some((path, bytes)) => (
                [(header::CONTENT_TYPE, content_type(Path::new(path)))],
                bytes,
            )
                .into_response(),
            None => Html(NOT_BUILT).into_response(),
        };
    };
    let index = root.join("index.html");
    let path = resolve(root, &rel).filter(|p| p.is_file()).unwrap_or(index);
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(_) if !root.join("index.html").exists() => Html(NOT_BUILT).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", path.display()),
        )
            .into_response(),
    }
}

/// `ui_dir` replaces the embedded UI (for working on the UI); `None` serves the embedded one.
pub(crate) fn routes(ui_dir: Option<PathBuf>) -> Router<AppState> {
    let root = Arc::new(ui_dir);
    let at_root = root.clone();
    Router::new()
        .route("/", get(move || file(at_root.clone(), String::new())))
        .route(
            "/{*path}",
            get(move |UrlPath(p): UrlPath<String>| file(root.clone(), p)),
        )
}
