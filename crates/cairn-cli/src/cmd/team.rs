//! `cairn team create|invite|join|members|remove`: the team's roster, and joining it with a
//! ticket.

use anyhow::Result;
use cairn_core::team::parse_ticket;

use crate::args::{Cli, TeamCmd};
use crate::cmd::sync::{node_config, print_report};
use crate::common::{open, runtime};
use crate::output::{Table, print_json, short_id, time};

/// `cairn team …`.
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
