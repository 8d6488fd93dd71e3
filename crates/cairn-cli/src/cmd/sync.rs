//! `cairn sync status|now|fetch` and the sync node of `cairn serve --sync`: peer sync with
//! teammates through `cairn_core::Workspace`'s sync node.

use std::net::SocketAddr;

use anyhow::{Result, bail};
use cairn_core::Workspace;
use cairn_core::team::{FetchReport, NodeConfig, SessionReport};

use crate::args::{Cli, SyncCmd, SyncServeArgs};
use crate::common::{open, runtime};
use crate::output::{Table, bytes, print_json, short_id, time};

/// `cairn sync …`.
pub fn sync(cli: &Cli, cmd: &SyncCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        SyncCmd::Status => {
            let status = ws.sync_status()?;
            if cli.json {
                return print_json(&status);
            }
            outln!(
                "device {} in team {}",
                status.device,
                status.team.as_deref().unwrap_or("(none)")
            );
            let mut t = Table::new(&["PEER", "NAME", "LAST SEEN", "LAST SYNC", "PENDING", "ERROR"]);
            for p in status.peers {
                t.row(vec![
                    short_id(&p.id).to_owned(),
                    if p.removed {
                        format!("{} (removed)", p.name)
                    } else {
                        p.name
                    },
                    p.last_seen_ms.map_or("never".into(), time),
                    p.last_sync_ms.map_or("never".into(), time),
                    if p.pending { "yes" } else { "no" }.into(),
                    p.last_error.unwrap_or_default(),
                ]);
            }
            if !t.is_empty() {
                out!("{}", t.render());
            }
        }
        SyncCmd::Now { bind } => {
            let results = runtime()?.block_on(async {
                let node = ws.start_sync_node(node_config(*bind)).await?;
                let r = node.sync_all().await;
                node.shutdown().await;
                anyhow::Ok(r)
            })?;
            let failed = results.iter().filter(|r| r.1.is_err()).count();
            if cli.json {
                let v: Vec<serde_json::Value> = results
                    .iter()
                    .map(|(peer, r)| match r {
                        Ok(rep) => serde_json::json!({ "peer": peer, "ok": true, "sync": rep }),
                        Err(e) => {
                            serde_json::json!({ "peer": peer, "ok": false, "error": e.to_string() })
                        }
                    })
                    .collect();
                print_json(&v)?;
            } else if results.is_empty() {
                outln!("no teammate to sync with (none on the roster has a known address)");
            } else {
                for (peer, r) in &results {
                    match r {
                        Ok(rep) => print_report(short_id(peer), rep)?,
                        Err(e) => outln!("{}: failed: {e}", short_id(peer)),
                    }
                }
            }
            if failed > 0 && failed == results.len() {
                bail!("could not sync with any teammate");
            }
        }
        SyncCmd::Fetch { run, bind } => {
            let id = ws.resolve_run(run)?;
            let report = runtime()?.block_on(async {
                let node = ws.start_sync_node(node_config(*bind)).await?;
                let mut total = FetchReport::default();
                // Twice: a directory's manifest first, then the files it lists.
                for _ in 0..2 {
                    let missing = ws.missing_artifact_blobs(id)?;
                    if missing.is_empty() {
                        break;
                    }
                    let r = node.fetch_blobs(&missing).await;
                    let r = match r {
                        Ok(r) => r,
                        Err(e) => {
                            node.shutdown().await;
                            return Err(e.into());
                        }
                    };
                    total.bytes += r.bytes;
                    total.fetched.extend(r.fetched);
                    total.missing = r.missing;
                }
                node.shutdown().await;
                anyhow::Ok(total)
            })?;
            if cli.json {
                return print_json(&report);
            }
            outln!(
                "fetched {} blobs ({}); {} not found on any reachable teammate",
                report.fetched.len(),
                bytes(report.bytes),
                report.missing.len()
            );
            if !report.missing.is_empty() {
                bail!("some artifacts are on no reachable teammate");
            }
        }
    }
    Ok(())
}

/// A short-lived node for one command: it dials out from `bind`.
pub fn node_config(bind: SocketAddr) -> NodeConfig {
    NodeConfig {
        bind,
        ..NodeConfig::default()
    }
}

/// One line per sync session with a peer.
pub fn print_report(peer: &str, r: &SessionReport) -> Result<()> {
    outln!(
        "{peer}: {} docs differed, {} changed here, {} points, {} trace entries and {} blobs received; sent {}, received {}",
        r.docs_differing,
        r.docs_changed,
        r.points_received,
        r.trace_entries_received,
        r.blobs_received,
        bytes(r.sent),
        bytes(r.received)
    );
    Ok(())
}

/// Starts the sync node of `cairn serve --sync` and says where it listens. The workspace hosts
/// it, so the API's team operations (invite, join from the browser) use it; true when started.
pub async fn start_for_serve(ws: &Workspace, args: &SyncServeArgs) -> Result<bool> {
    if !args.sync {
        return Ok(false);
    }
    ws.host_sync(
        tokio::runtime::Handle::current(),
        NodeConfig {
            bind: args.sync_bind,
            advertise: args.advertise.clone(),
            watch: true,
            resync_every: args.resync,
            ..NodeConfig::default()
        },
    )?;
    let (id, bound) = ws.start_hosted_sync().await?;
    let addrs: Vec<String> = bound.iter().map(ToString::to_string).collect();
    outln!(
        "Cairn sync: device {} listening at {}",
        id,
        addrs.join(", ")
    );
    Ok(true)
}
