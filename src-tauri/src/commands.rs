//! The window's commands: `api`, which hands each call of the UI's generated client to the
//! operation cairn-core declares by that name (`cairn_core::api::call`), and `tracking_uri`,
//! where this app's in-process server listens (the one thing only the window knows). No
//! operation is listed here: a new one in cairn-core is in the window at once.
//!
//! Both are `async` and do their work on the blocking pool of Tauri's runtime, never on the
//! window's main thread: the workspace can be busy (a write waiting for another process's
//! transaction), and then only the command waits; the window keeps painting and answering input.

// `#[tauri::command]` on an async fn that borrows (`State<'_, _>`) emits a compile-time check that
// it returns a `Result` (`let _: &dyn AsyncCommandMustReturnResult = &_check;` in a `const` that
// never runs), which trips this lint on every command. Nothing written here discards a result.
#![allow(clippy::let_underscore_must_use)]

use cairn_core::{Code, ErrorBody};
use tauri::State;

use crate::Desktop;

/// Runs the declared operation `op` with `request` (the UI's generated client sends both).
/// Errors cross as the API's `{code, message}` body.
#[tauri::command]
pub async fn api(
    d: State<'_, Desktop>,
    op: String,
    request: serde_json::Value,
) -> Result<serde_json::Value, ErrorBody> {
    let ws = d.ws.clone();
    let done =
        tauri::async_runtime::spawn_blocking(move || cairn_core::api::call(&ws, &op, request))
            .await;
    match done {
        Ok(reply) => reply.map_err(ErrorBody::from),
        Err(e) => {
            tracing::error!(error = %e, "a window command failed to finish");
            Err(ErrorBody::new(
                Code::Internal,
                format!("the command did not finish: {e}"),
            ))
        }
    }
}

/// Where MLflow clients on this machine log to: the in-process tracking server.
#[tauri::command]
pub async fn tracking_uri(d: State<'_, Desktop>) -> Result<String, ErrorBody> {
    Ok(d.tracking_uri.clone())
}
