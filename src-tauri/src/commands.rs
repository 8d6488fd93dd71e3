//! The window's commands: one-line adapters over `cairn_core::Workspace`.
//!
//! Every command is `async` and does its workspace work on the blocking pool of Tauri's runtime:
//! a synchronous command runs on the window's main thread, and the workspace can be busy for as
//! long as the in-process server holds it (a large artifact upload, a catalog rebuild, a write
//! waiting for another process's transaction), which froze the whole window. Now only the command
//! waits; the window keeps painting and answering input.

// `#[tauri::command]` on an async fn that borrows (`State<'_, _>`) emits a compile-time check that
// it returns a `Result` (`let _: &dyn AsyncCommandMustReturnResult = &_check;` in a `const` that
// never runs), which trips this lint on every command. Nothing written here discards a result.
#![allow(clippy::let_underscore_must_use)]

use cairn_core::{
    BucketView, ChartRequest, ChartView, Code, ExperimentSummary, Info, RunView, SavedView,
    SearchPage, SearchRequest, Workspace,
};
use serde::Serialize;
use tauri::State;

use crate::Desktop;

/// The one error shape across IPC: a stable code and a message for people.
#[derive(Debug, Serialize)]
pub struct IpcError {
    code: Code,
    message: String,
}

impl From<cairn_core::Error> for IpcError {
    fn from(e: cairn_core::Error) -> IpcError {
        IpcError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

type Reply<T> = Result<T, IpcError>;

impl Desktop {
    /// Runs `f` on the workspace on the blocking pool and waits for it without holding a thread.
    async fn with<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Workspace) -> Result<T, cairn_core::Error> + Send + 'static,
    {
        let ws = self.ws.clone();
        let done = tauri::async_runtime::spawn_blocking(move || {
            // A panic in an earlier call must not lock the window out of its workspace.
            let mut ws = ws.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut ws)
        })
        .await;
        match done {
            Ok(reply) => Ok(reply?),
            Err(e) => {
                tracing::error!(error = %e, "a window command failed to finish");
                Err(IpcError {
                    code: Code::Internal,
                    message: format!("the command did not finish: {e}"),
                })
            }
        }
    }
}

/// What the header shows, with the in-process tracking server's address.
#[derive(Serialize)]
pub struct DesktopInfo {
    #[serde(flatten)]
    info: Info,
    tracking_uri: String,
}

#[tauri::command]
pub async fn info(d: State<'_, Desktop>) -> Reply<DesktopInfo> {
    let tracking_uri = d.tracking_uri.clone();
    d.with(move |ws| {
        Ok(DesktopInfo {
            info: ws.info(),
            tracking_uri,
        })
    })
    .await
}

#[tauri::command]
pub async fn experiments(d: State<'_, Desktop>) -> Reply<Vec<ExperimentSummary>> {
    d.with(|ws| ws.experiments()).await
}

#[tauri::command]
pub async fn search(d: State<'_, Desktop>, req: SearchRequest) -> Reply<SearchPage> {
    d.with(move |ws| ws.search_page(&req)).await
}

#[tauri::command]
pub async fn run(d: State<'_, Desktop>, id: String) -> Reply<RunView> {
    d.with(move |ws| ws.run(ws.resolve_run(&id)?)).await
}

#[tauri::command]
pub async fn buckets(
    d: State<'_, Desktop>,
    id: String,
    key: String,
    buckets: usize,
    range: Option<(i64, i64)>,
) -> Reply<Vec<BucketView>> {
    d.with(move |ws| ws.metric_buckets(&id, &key, range, buckets))
        .await
}

#[tauri::command]
pub async fn artifact_text(d: State<'_, Desktop>, id: String, path: String) -> Reply<String> {
    d.with(move |ws| {
        Ok(
            String::from_utf8_lossy(&ws.read_artifact_path(ws.resolve_run(&id)?, &path)?)
                .into_owned(),
        )
    })
    .await
}

#[tauri::command]
pub async fn chart(d: State<'_, Desktop>, req: ChartRequest) -> Reply<ChartView> {
    d.with(move |ws| ws.chart(&req)).await
}

#[tauri::command]
pub async fn views(d: State<'_, Desktop>) -> Reply<Vec<SavedView>> {
    d.with(|ws| ws.views()).await
}

#[tauri::command]
pub async fn save_view(d: State<'_, Desktop>, view: SavedView) -> Reply<SavedView> {
    d.with(move |ws| ws.save_view(&view).map(|()| view)).await
}

#[tauri::command]
pub async fn delete_view(d: State<'_, Desktop>, name: String) -> Reply<()> {
    d.with(move |ws| ws.delete_view(&name)).await
}
