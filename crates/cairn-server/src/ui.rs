//! The web UI's static files (`ui/dist`), served at `/` for browsers. Paths are resolved inside
//! the UI directory only; anything that is not a file there gets `index.html` (the UI routes by
//! URL fragment).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Cairn</title>\
<h1>Cairn is running</h1><p>The web UI is not built. Build it with \
<code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code> and restart \
<code>cairn serve</code>. The MLflow tracking API and <code>/api/v1/</code> work without it.</p>";

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

async fn file(root: Arc<Option<PathBuf>>, rel: String) -> Response {
    let Some(root) = root.as_ref() else {
        return Html(NOT_BUILT).into_response();
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
