//! `cairn model …`: the model registry — register a run's model, list, show, versions,
//! download by content hash, aliases, deletions (tombstones).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cairn_core::{Code, Workspace};
use cairn_model::{ModelVersion, RegisteredModel};

use crate::args::{Cli, ModelCmd};
use crate::cmd::gate;
use crate::common::{kv, open};
use crate::output::{Table, bytes, print_json, short_id, time};

/// `cairn model …`.
pub fn model(cli: &Cli, cmd: &ModelCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        ModelCmd::Register {
            name,
            run,
            path,
            description,
            tags,
        } => register(cli, &ws, name, run, path, description.as_deref(), tags),
        ModelCmd::List => list(cli, &ws),
        ModelCmd::Show { name } => show(cli, &ws, name),
        ModelCmd::Versions { name, all } => versions(cli, &ws, name, *all),
        ModelCmd::Download {
            name,
            version,
            output,
        } => download(cli, &ws, name, version, output.clone()),
        ModelCmd::Alias {
            name,
            alias,
            version,
            delete,
            rationale,
        } => alias_cmd(
            cli,
            &ws,
            name,
            alias,
            version.as_deref(),
            *delete,
            rationale.as_deref(),
        ),
        ModelCmd::Delete {
            name,
            version,
            reason,
        } => delete(cli, &ws, name, version.as_deref(), reason),
        ModelCmd::Promote {
            name,
            version,
            alias,
            rationale,
        } => gate::promote(cli, &ws, name, version, alias, rationale.as_deref()),
        ModelCmd::Check {
            name,
            version,
            alias,
        } => gate::check(cli, &ws, name, version, alias),
        ModelCmd::Approve {
            name,
            version,
            alias,
            comment,
        } => gate::approve(cli, &ws, name, version, alias, comment),
        ModelCmd::Approvals {
            name,
            version,
            alias,
        } => gate::approvals(cli, &ws, name, version, alias),
        ModelCmd::Gate(cmd) => gate::gate(cli, &ws, cmd),
        ModelCmd::Deploy {
            version,
            target,
            rationale,
        } => crate::cmd::audit::deploy(cli, &ws, version, target.as_deref(), rationale.as_deref()),
    }
}

/// A version as typed: `3`, `v3` or `@champion`.
pub(crate) fn resolve_version(ws: &Workspace, name: &str, text: &str) -> Result<ModelVersion> {
    if let Some(alias) = text.strip_prefix('@') {
        return Ok(ws.model_version_by_alias(name, alias)?);
    }
    let n: u32 = text
        .trim_start_matches(['v', 'V'])
        .parse()
        .with_context(|| format!("'{text}' is not a version: give a number or @ALIAS"))?;
    Ok(ws.model_version(name, n)?)
}

fn register(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    run: &str,
    path: &str,
    description: Option<&str>,
    tags: &[String],
) -> Result<()> {
    let id = ws.resolve_run(run)?;
    let tags: BTreeMap<String, String> =
        tags.iter().map(|t| kv(t, "tag")).collect::<Result<_>>()?;
    match ws.registered_model(name) {
        Ok(_) => {}
        Err(e) if e.code() == Code::NotFound => {
            ws.create_registered_model(name, None, BTreeMap::new())?;
        }
        Err(e) => return Err(e.into()),
    }
    let source = format!("runs:/{id}/{}", path.trim_matches('/'));
    let v = ws.create_model_version(name, &source, Some(id), description, tags)?;
    if cli.json {
        return print_json(&v);
    }
    outln!(
        "registered {name} version {}  {}  from run {} path {}",
        v.version,
        content(&v),
        short_id(&id.to_string()),
        v.path.as_deref().unwrap_or("-")
    );
    outln!(
        "the run's '{path}' is locked: it backs this version and cannot be overwritten or deleted"
    );
    Ok(())
}

fn content(v: &ModelVersion) -> String {
    match (&v.content, v.size) {
        (Some(h), Some(n)) => format!("blake3:{}  {}", short_id(&h.to_hex()), bytes(n)),
        (Some(h), None) => format!("blake3:{}", short_id(&h.to_hex())),
        (None, _) => "(content elsewhere)".into(),
    }
}

/// `champion → 3`, or `champion ⚠ 3 | 4 (conflict)`.
fn aliases_line(m: &RegisteredModel) -> String {
    m.aliases
        .iter()
        .map(|a| {
            let targets: Vec<String> = a.targets.iter().map(|t| t.number.to_string()).collect();
            if a.in_conflict() {
                format!(
                    "{} → {} (CONFLICT{})",
                    a.name,
                    targets.join(" | "),
                    if a.removed_concurrently {
                        ", also removed"
                    } else {
                        ""
                    }
                )
            } else {
                format!("{} → {}", a.name, targets.join(""))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(cli: &Cli, ws: &Workspace) -> Result<()> {
    let models = ws.registered_models()?;
    if cli.json {
        return print_json(&models);
    }
    if models.is_empty() {
        outln!("no registered models: `cairn model register NAME RUN [PATH]` adds one");
        return Ok(());
    }
    let mut t =
        Table::new(&["NAME", "VERSIONS", "LATEST", "ALIASES", "UPDATED"]).right_align(&[1, 2]);
    for m in &models {
        t.row(vec![
            m.name.clone(),
            m.live_versions().count().to_string(),
            m.latest().map_or("-".into(), |v| v.version.to_string()),
            aliases_line(m),
            time(m.updated_ms),
        ]);
    }
    out!("{}", t.render());
    Ok(())
}

fn show(cli: &Cli, ws: &Workspace, name: &str) -> Result<()> {
    let m = ws.registered_model(name)?;
    if cli.json {
        return print_json(&m);
    }
    outln!(
        "{}  created {} by {}",
        m.name,
        time(m.created_ms),
        m.created_by
    );
    if let Some(d) = &m.description {
        outln!("  {d}");
    }
    for (k, v) in &m.tags {
        outln!("  tag {k}={v}");
    }
    for a in &m.aliases {
        if a.in_conflict() {
            outln!(
                "@{}: CONFLICT — moved concurrently by peers; a promotion settles it:",
                a.name
            );
        } else {
            outln!("@{}:", a.name);
        }
        for t in &a.targets {
            outln!(
                "    version {}  set by {} at {}{}",
                t.number,
                t.set_by,
                time(t.set_ms),
                t.rationale
                    .as_deref()
                    .map(|r| format!("  \"{r}\""))
                    .unwrap_or_default()
            );
        }
        if a.removed_concurrently {
            outln!("    (removed concurrently by another peer)");
        }
    }
    version_table(&m, false)
}

fn version_table(m: &RegisteredModel, all: bool) -> Result<()> {
    let mut t = Table::new(&[
        "VERSION", "CONTENT", "RUN", "PATH", "BY", "CREATED", "ALIASES",
    ])
    .right_align(&[0]);
    for v in &m.versions {
        if v.deleted.is_some() && !all {
            continue;
        }
        let mut aliases = v.aliases.join(",");
        if let Some(d) = &v.deleted {
            aliases = format!("DELETED by {} ({})", d.user, d.reason);
        }
        t.row(vec![
            v.version.to_string(),
            content(v),
            v.run
                .map_or("-".into(), |r| short_id(&r.to_string()).to_owned()),
            v.path.clone().unwrap_or_else(|| "-".into()),
            v.user.clone(),
            time(v.created_ms),
            aliases,
        ]);
    }
    if t.is_empty() {
        outln!("no versions");
    } else {
        out!("{}", t.render());
    }
    Ok(())
}

fn versions(cli: &Cli, ws: &Workspace, name: &str, all: bool) -> Result<()> {
    let m = ws.registered_model(name)?;
    if cli.json {
        let list: Vec<&ModelVersion> = m
            .versions
            .iter()
            .filter(|v| all || v.deleted.is_none())
            .collect();
        return print_json(&list);
    }
    version_table(&m, all)
}

fn download(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    version: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    let v = resolve_version(ws, name, version)?;
    let dest = output.unwrap_or_else(|| PathBuf::from(format!("{name}-v{}", v.version)));
    let n = ws.download_model_version(name, v.version, &dest)?;
    if cli.json {
        return print_json(&serde_json::json!({
            "path": dest, "bytes": n, "version": v.version, "content": v.content,
        }));
    }
    outln!(
        "wrote {} ({}): {name} version {}, content {} verified",
        dest.display(),
        bytes(n),
        v.version,
        content(&v)
    );
    Ok(())
}

fn alias_cmd(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    alias: &str,
    version: Option<&str>,
    delete: bool,
    rationale: Option<&str>,
) -> Result<()> {
    if delete {
        ws.delete_model_alias(name, alias)?;
        if !cli.json {
            outln!("removed @{alias} of {name}");
        }
        return Ok(());
    }
    let Some(version) = version else {
        let m = ws.registered_model(name)?;
        let Some(a) = m.alias(alias) else {
            bail!("model '{name}' has no alias '{alias}'");
        };
        if cli.json {
            return print_json(a);
        }
        outln!(
            "{}",
            aliases_line(&RegisteredModel {
                aliases: vec![a.clone()],
                ..m.clone()
            })
        );
        return Ok(());
    };
    let v = resolve_version(ws, name, version)?;
    ws.set_model_alias(name, alias, v.version, rationale)?;
    if !cli.json {
        outln!("@{alias} of {name} → version {}", v.version);
    }
    Ok(())
}

fn delete(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    version: Option<&str>,
    reason: &str,
) -> Result<()> {
    if reason.trim().is_empty() {
        bail!("say why with --reason: the tombstone records it");
    }
    match version {
        Some(v) => {
            let v = resolve_version(ws, name, v)?;
            ws.delete_model_version(name, v.version, reason)?;
            if !cli.json {
                outln!(
                    "deleted {name} version {} (a tombstone: who, when, why)",
                    v.version
                );
            }
        }
        None => {
            ws.delete_registered_model(name, reason)?;
            if !cli.json {
                outln!("deleted model {name} (a tombstone: who, when, why)");
            }
        }
    }
    Ok(())
}
