//! `cairn team …`, `cairn sync …` and the sync half of `cairn serve --sync`: parse, call
//! `cairn_core::Workspace` and its sync node, print.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_core::Workspace;
use cairn_core::team::{FetchReport, Node, NodeConfig, SessionReport, parse_ticket};
use clap::{Args, Subcommand};

use crate::output::{Table, bytes, short_id, time};
use crate::{Cli, open, print_json};

#[derive(Subcommand)]
pub enum TeamCmd {
    /// Start a team with this device as its first member
    Create {
        name: String,
        /// Your email, shown to teammates
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Print a one-time invitation ticket for a teammate's device
    Invite {
        /// Address to put in the ticket [default: where `cairn serve --sync` last listened]
        #[arg(long = "addr")]
        addrs: Vec<SocketAddr>,
        /// How long the ticket stays valid
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Join a team with a ticket, then sync with the inviter
    Join {
        ticket: String,
        /// Your email, shown to teammates
        #[arg(long, default_value = "")]
        email: String,
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// The devices on the team's roster
    Members,
    /// Remove a member (id prefix, name or email): refused from now on, sent nothing new
    Remove { member: String },
}

#[derive(Subcommand)]
pub enum SyncCmd {
    /// This device, its team, and each peer: last seen, last sync, whether changes are pending
    Status,
    /// Sync once with every teammate this device knows an address for
    Now {
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// Fetch a run's artifacts that are not here yet (sync sends blobs up to 8 MiB; larger
    /// ones are fetched on demand)
    Fetch {
        run: String,
        /// Local address to use (any interface: it only dials out, briefly)
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
}

/// `cairn serve --sync`: a headless always-on peer next to the HTTP server.
#[derive(Args, Debug, Clone)]
pub struct SyncServeArgs {
    /// Also run this device's sync node: accept teammates, push changes as they happen
    #[arg(long)]
    sync: bool,
    /// Where the sync node listens (0.0.0.0:PORT on a LAN)
    #[arg(long, default_value = "127.0.0.1:0")]
    sync_bind: SocketAddr,
    /// Address teammates dial [default: the bound address]
    #[arg(long)]
    advertise: Vec<SocketAddr>,
    /// Pull from every teammate this often even when nothing changed
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    resync: Duration,
}

impl SyncServeArgs {
    /// No sync node (`cairn start --serve`).
    pub fn off() -> SyncServeArgs {
        SyncServeArgs {
            sync: false,
            sync_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: Vec::new(),
            resync: Duration::from_secs(30),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn team(cli: &Cli, cmd: &TeamCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        TeamCmd::Create { name, email } => {
            let info = ws.team_create(name, email)?;
            if cli.json {
                return print_json(&info);
            }
            outln!(
                "created team '{}'; this device is {}",
                info.name,
                ws.device_id()?
            );
        }
        TeamCmd::Invite { addrs, ttl } => {
            let ticket = ws.team_invite(addrs, *ttl)?;
            if cli.json {
                return print_json(&serde_json::json!({ "ticket": ticket }));
            }
            outln!("{ticket}");
        }
        TeamCmd::Join {
            ticket,
            email,
            bind,
        } => {
            let ticket = parse_ticket(ticket)?;
            let user = ws.user().to_owned();
            let (team, report) = runtime()?.block_on(async {
                let node = ws.start_sync_node(node_config(*bind)).await?;
                let r = node.join(&ticket, &user, email).await;
                node.shutdown().await;
                anyhow::Ok(r?)
            })?;
            if cli.json {
                return print_json(&serde_json::json!({ "team": team, "sync": report }));
            }
            outln!("joined team '{team}'");
            print_report("inviter", &report)?;
        }
        TeamCmd::Members => {
            let me = ws.device_id()?;
            let members = ws.team_members()?;
            if cli.json {
                return print_json(&members);
            }
            let mut t = Table::new(&["DEVICE", "NAME", "EMAIL", "ADDED", "STATE"]);
            for m in members {
                let state = match (m.removed, m.id == me) {
                    (true, _) => "removed",
                    (false, true) => "this device",
                    (false, false) => "member",
                };
                t.row(vec![
                    short_id(&m.id).to_owned(),
                    m.name,
                    m.email,
                    time(m.added_ms),
                    state.into(),
                ]);
            }
            out!("{}", t.render());
        }
        TeamCmd::Remove { member } => {
            let m = ws.team_remove(member)?;
            if cli.json {
                return print_json(&m);
            }
            outln!("removed {} ({})", short_id(&m.id), m.name);
        }
    }
    Ok(())
}

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

fn node_config(bind: SocketAddr) -> NodeConfig {
    NodeConfig {
        bind,
        ..NodeConfig::default()
    }
}

fn print_report(peer: &str, r: &SessionReport) -> Result<()> {
    outln!(
        "{peer}: {} docs differed, {} changed here, {} points and {} blobs received; sent {}, received {}",
        r.docs_differing,
        r.docs_changed,
        r.points_received,
        r.blobs_received,
        bytes(r.sent),
        bytes(r.received)
    );
    Ok(())
}

/// Starts the sync node of `cairn serve --sync` and says where it listens.
pub async fn start_for_serve(ws: &Workspace, args: &SyncServeArgs) -> Result<Option<Node>> {
    if !args.sync {
        return Ok(None);
    }
    let node = ws
        .start_sync_node(NodeConfig {
            bind: args.sync_bind,
            advertise: args.advertise.clone(),
            watch: true,
            resync_every: args.resync,
            ..NodeConfig::default()
        })
        .await?;
    let addrs: Vec<String> = node.bound().iter().map(ToString::to_string).collect();
    outln!(
        "Cairn sync: device {} listening at {}",
        node.id(),
        addrs.join(", ")
    );
    Ok(Some(node))
}
