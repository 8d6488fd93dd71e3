//! The window's commands: one-line adapters over `cairn_core::Workspace`.

use cairn_core::{
    BucketView, ChartRequest, ChartView, ExperimentSummary, Info, RunView, SavedView, SearchPage,
    SearchRequest, Workspace,
};
use serde::Serialize;
use tauri::State;

use crate::Desktop;

/// The one error shape across IPC: a stable code and a message for people.
#[derive(Debug, Serialize)]
pub struct IpcError {
    code: cairn_core::Code,
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
    fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> Result<T, cairn_core::Error>) -> Reply<T> {
        let mut ws = self.ws.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut ws)?)
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
pub fn info(d: State<'_, Desktop>) -> Reply<DesktopInfo> {
    d.with(|ws| {
        Ok(DesktopInfo {
            info: ws.info(),
            tracking_uri: d.tracking_uri.clone(),
        })
    })
}

#[tauri::command]
pub fn experiments(d: State<'_, Desktop>) -> Reply<Vec<ExperimentSummary>> {
    d.with(|ws| ws.experiments())
}

#[tauri::command]
pub fn search(d: State<'_, Desktop>, req: SearchRequest) -> Reply<SearchPage> {
    d.with(|ws| ws.search_page(&req))
}

#[tauri::command]
pub fn run(d: State<'_, Desktop>, id: String) -> Reply<RunView> {
    d.with(|ws| ws.run(ws.resolve_run(&id)?))
}

#[tauri::command]
pub fn buckets(
    d: State<'_, Desktop>,
    id: String,
    key: String,
    buckets: usize,
    range: Option<(i64, i64)>,
) -> Reply<Vec<BucketView>> {
    d.with(|ws| ws.metric_buckets(&id, &key, range, buckets))
}

#[tauri::command]
pub fn artifact_text(d: State<'_, Desktop>, id: String, path: String) -> Reply<String> {
    d.with(|ws| {
        Ok(
            String::from_utf8_lossy(&ws.read_artifact_path(ws.resolve_run(&id)?, &path)?)
                .into_owned(),
        )
    })
}

#[tauri::command]
pub fn chart(d: State<'_, Desktop>, req: ChartRequest) -> Reply<ChartView> {
    d.with(|ws| ws.chart(&req))
}

#[tauri::command]
pub fn views(d: State<'_, Desktop>) -> Reply<Vec<SavedView>> {
    d.with(|ws| ws.views())
}

#[tauri::command]
pub fn save_view(d: State<'_, Desktop>, view: SavedView) -> Reply<SavedView> {
    d.with(|ws| ws.save_view(&view).map(|()| view))
}

#[tauri::command]
pub fn delete_view(d: State<'_, Desktop>, name: String) -> Reply<()> {
    d.with(|ws| ws.delete_view(&name))
}
