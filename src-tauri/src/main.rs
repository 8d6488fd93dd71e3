//! Cairn's desktop app: the web UI in a window over the user's default workspace (created with
//! demo data on first start), and the tracking server in-process so training jobs on this machine
//! log straight into the open catalog.
//!
//! The window calls the operations cairn-core declares through one command (`commands.rs`), run
//! off the main thread; errors cross to the UI as `{code, message}`. No rule about runs lives
//! here.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
// The one line it prints says where the tracking server is, for people starting it from a shell.
#![allow(clippy::print_stderr)]

mod commands;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use cairn_core::team::NodeConfig;
use cairn_core::{DemoOptions, Workspace};

/// What the window's commands work on.
#[derive(Debug)]
pub struct Desktop {
    pub ws: Workspace,
    /// Where the in-process tracking server listens (for MLflow clients).
    pub tracking_uri: String,
}

/// The window is a live peer once its workspace belongs to a team: it accepts teammates, pushes
/// changes as they happen and pulls from every teammate now and then (`cairn serve --sync` in
/// the app). The workspace hosts the node, so the Team page's operations use it: creating or
/// joining a team there starts it. `CAIRN_SYNC_BIND` (default `0.0.0.0:0`) and
/// `CAIRN_SYNC_ADVERTISE` (addresses, comma-separated) say where teammates reach it. Sync failing
/// to start leaves the app working.
///
/// The node runs on a runtime of its own: its sessions do SQLite, automerge and blob I/O on their
/// tasks, which on the tracking server's runtime would keep its workers from training jobs' requests.
fn host_sync(ws: &Workspace) -> Option<tokio::runtime::Runtime> {
    let addr = |var: &str, text: &str| -> Option<SocketAddr> {
        let parsed = text.trim().parse().ok();
        if parsed.is_none() {
            tracing::warn!("{var}: '{text}' is not an address like 0.0.0.0:7420; ignored");
        }
        parsed
    };
    let bind = std::env::var("CAIRN_SYNC_BIND")
        .ok()
        .and_then(|b| addr("CAIRN_SYNC_BIND", &b))
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let advertise = std::env::var("CAIRN_SYNC_ADVERTISE")
        .map(|a| {
            a.split(',')
                .filter_map(|t| addr("CAIRN_SYNC_ADVERTISE", t))
                .collect()
        })
        .unwrap_or_default();
    let config = NodeConfig {
        bind,
        advertise,
        watch: true,
        ..NodeConfig::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-sync")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a runtime for sync; sync is off");
            return None;
        }
    };
    if let Err(e) = ws.host_sync(rt.handle().clone(), config) {
        tracing::warn!(error = %e, "cannot host the sync node; sync is off");
        return None;
    }
    match ws.team() {
        Ok(Some(_)) => match rt.block_on(ws.start_hosted_sync()) {
            Ok((id, bound)) => eprintln!("Cairn sync: device {id} listening at {bound:?}"),
            Err(e) => tracing::warn!(error = %e, "sync did not start"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the team; sync starts with one"),
    }
    Some(rt)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let env = cairn_settings::ProcessEnv;
    let dir = cairn_settings::workspace(None, &env)?;
    let (ws, created) = Workspace::open_or_create(&dir, &cairn_settings::user(None, &env))
        .with_context(|| format!("opening the workspace {}", dir.display()))?;
    if created {
        ws.generate_demo(&DemoOptions::default(), &mut |_, _| {})
            .context("filling the new workspace with demo data")?;
    }

    // The tracking server runs for the app's lifetime on its own runtime; the window's commands
    // run on Tauri's, so neither waits for the other's workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-server")
        .enable_all()
        .build()?;
    let port: u16 = std::env::var("CAIRN_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let config = cairn_server::ServerConfig {
        bind: ([127, 0, 0, 1], port).into(),
        token: None,
        allowed_hosts: Vec::new(),
        ui_dir: None,
    };
    let server = rt.block_on(cairn_server::Server::bind(ws.clone(), config))?;
    let addr = server.local_addr()?;
    rt.spawn(server.run(std::future::pending()));
    eprintln!(
        "Cairn desktop: workspace {}, tracking server at http://{addr}",
        dir.display()
    );
    let sync = host_sync(&ws);
    let synced = ws.clone();

    tauri::Builder::default()
        .manage(Desktop {
            ws,
            tracking_uri: format!("http://{addr}"),
        })
        .invoke_handler(tauri::generate_handler![
            commands::api,
            commands::tracking_uri
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))
        .context("running the desktop window")?;
    if let Some(sync_rt) = sync {
        sync_rt.block_on(synced.stop_hosted_sync());
    }
    drop(rt);
    Ok(())
}
