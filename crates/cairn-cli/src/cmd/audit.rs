//! `cairn audit log|trail|verify|export|baseline` and `cairn model deploy`: the audit trail.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cairn_core::Workspace;
use cairn_core::audit::{AuditFormat, AuditLogRequest, AuditVerification, Trail, TrailStep};

use crate::args::{AuditCmd, Cli};
use crate::common::open;
use crate::output::{Table, print_json, short_id, time};

/// `cairn audit …`: exits 1 when `verify` finds anything.
pub fn audit(cli: &Cli, cmd: &AuditCmd) -> Result<i32> {
    match cmd {
        AuditCmd::Verify {
            bundle: Some(path), ..
        } => return verify_bundle(cli, path),
        AuditCmd::Verify { bundle: None } => {
            let ws = open(cli)?;
            let v = ws.audit_verify()?;
            print_verification(cli, &v)?;
            return Ok(if v.ok { 0 } else { 1 });
        }
        _ => {}
    }
    let ws = open(cli)?;
    match cmd {
        AuditCmd::Log {
            model,
            run,
            member,
            since,
            limit,
        } => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let req = AuditLogRequest {
                model: model.clone(),
                run: run.clone(),
                member: member.clone(),
                since_ms: since.map(|d| now - d.as_millis() as i64),
                limit: Some(*limit),
            };
            let events = ws.audit_log(&req)?;
            if cli.json {
                print_json(&events)?;
                return Ok(0);
            }
            let mut t = Table::new(&["when", "member", "device", "event", "about", "what"]);
            for e in &events {
                t.row(vec![
                    time(e.at_ms),
                    e.member.clone(),
                    format!("{}#{}", short_id(&e.device), e.seq),
                    e.kind.clone(),
                    e.subjects.first().cloned().unwrap_or_default(),
                    summary(&e.fields),
                ]);
            }
            if t.is_empty() {
                outln!("no events");
            } else {
                out!("{}", t.render());
            }
        }
        AuditCmd::Trail { version } => {
            let (name, number) = version_of(&ws, version)?;
            let trail = ws.audit_trail(&name, number)?;
            if cli.json {
                print_json(&trail)?;
            } else {
                print_trail(&trail)?;
            }
            return Ok(if trail.verified { 0 } else { 1 });
        }
        AuditCmd::Export { format, output } => {
            let format: AuditFormat = format.parse().map_err(anyhow::Error::msg)?;
            let n = ws.audit_export(format, output)?;
            if cli.json {
                print_json(&serde_json::json!({"events": n, "path": output}))?;
            } else {
                outln!("{n} events written to {}", output.display());
            }
        }
        AuditCmd::Baseline => {
            let n = ws.audit_baseline()?;
            outln!("{n} record(s) attested as they stand, signed by this device");
        }
        AuditCmd::Verify { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// `NAME@VERSION` or `NAME@ALIAS` → the model and version number.
fn version_of(ws: &Workspace, text: &str) -> Result<(String, u32)> {
    let (name, v) = text
        .rsplit_once('@')
        .with_context(|| format!("'{text}' is not NAME@VERSION or NAME@ALIAS"))?;
    Ok(match v.trim_start_matches(['v', 'V']).parse::<u32>() {
        Ok(n) => (name.to_owned(), n),
        Err(_) => (name.to_owned(), ws.model_version_by_alias(name, v)?.version),
    })
}

/// `cairn model deploy NAME@ALIAS --target T --rationale R`, or the model's deployments.
pub fn deploy(
    cli: &Cli,
    ws: &Workspace,
    version: &str,
    target: Option<&str>,
    rationale: Option<&str>,
) -> Result<()> {
    let Some(target) = target else {
        let name = version.split('@').next().unwrap_or(version);
        let all = ws.deployments(name)?;
        if cli.json {
            return print_json(&all);
        }
        let mut t = Table::new(&["when", "version", "target", "by", "why"]);
        for d in &all {
            t.row(vec![
                time(d.at_ms),
                match &d.alias {
                    Some(a) => format!("{} (@{a})", d.number),
                    None => d.number.to_string(),
                },
                d.target.clone(),
                d.user.clone(),
                d.rationale.clone(),
            ]);
        }
        if t.is_empty() {
            outln!("no deployments of {name} recorded");
        } else {
            out!("{}", t.render());
        }
        return Ok(());
    };
    let Some(rationale) = rationale else {
        bail!("a deployment needs a rationale: --rationale \"why it goes to {target}\"");
    };
    let (name, v) = version
        .rsplit_once('@')
        .with_context(|| format!("'{version}' is not NAME@ALIAS or NAME@VERSION"))?;
    let d = match v.parse::<u32>() {
        Ok(n) => ws.deploy(name, Some(n), None, target, rationale)?,
        Err(_) => ws.deploy(name, None, Some(v), target, rationale)?,
    };
    if cli.json {
        return print_json(&d);
    }
    outln!(
        "recorded: {name} version {} → {} (by {}, signed event on this device's audit chain)",
        d.number,
        d.target,
        d.user
    );
    Ok(())
}

fn summary(fields: &std::collections::BTreeMap<String, String>) -> String {
    const SHOWN: &[&str] = &[
        "model",
        "version",
        "alias",
        "target",
        "verdict",
        "benchmark",
        "name",
        "code_commit",
        "reason",
        "rationale",
        "member",
    ];
    SHOWN
        .iter()
        .filter_map(|k| fields.get(*k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn step_line(s: &TrailStep) -> String {
    format!(
        "{}  {:<20} {} ({}#{})  {}",
        time(s.at_ms),
        s.kind,
        s.member,
        short_id(&s.device),
        s.event.rsplit('#').next().unwrap_or(""),
        summary(&s.fields)
    )
}

fn print_trail(t: &Trail) -> Result<()> {
    outln!(
        "{}@{} (version {}, content {})",
        t.model,
        t.version,
        t.version_id,
        t.content.as_deref().unwrap_or("-")
    );
    for (i, r) in t.runs.iter().enumerate() {
        let label = if i == 0 { "run" } else { "parent run" };
        outln!(
            "  {label} {} '{}' by {} at {}",
            r.id,
            r.name,
            r.owner,
            time(r.started_ms)
        );
        for d in &r.datasets {
            outln!(
                "    dataset {}: {} digest {} {}",
                d.role,
                d.name,
                if d.digest.is_empty() { "-" } else { &d.digest },
                d.source
            );
        }
        if !r.feature_set.is_empty() {
            outln!("    feature set {}", r.feature_set);
        }
        if !r.code_commit.is_empty() {
            outln!("    code commit {}", r.code_commit);
        }
        if !r.evaluations.is_empty() {
            outln!("    evaluations {}", r.evaluations.join(", "));
        }
        for s in &r.steps {
            outln!("    {}", step_line(s));
        }
    }
    outln!("  governance:");
    for s in &t.steps {
        outln!("    {}", step_line(s));
    }
    if t.verified {
        outln!("verified: every event on this trail is signed and its chain holds");
    } else {
        for f in &t.findings {
            outln!("NOT VERIFIED: {f}");
        }
    }
    Ok(())
}

fn print_verification(cli: &Cli, v: &AuditVerification) -> Result<()> {
    if cli.json {
        return print_json(v);
    }
    outln!(
        "{} events in {} chain(s), {} governed record(s) checked",
        v.events,
        v.chains,
        v.records
    );
    if v.ok {
        outln!("verified: every signature, chain link and record holds");
        return Ok(());
    }
    for (problem, n) in &v.counts {
        outln!("  {problem}: {n}");
    }
    for f in &v.findings {
        match f.seq {
            Some(seq) => outln!(
                "{}: {}#{seq}: {}",
                f.problem,
                short_id(&f.subject),
                f.detail
            ),
            None => outln!("{}: {}: {}", f.problem, f.subject, f.detail),
        }
    }
    Ok(())
}

fn verify_bundle(cli: &Cli, path: &std::path::Path) -> Result<i32> {
    let check = cairn_core::audit::verify_bundle(path)?;
    if cli.json {
        print_json(&check)?;
        return Ok(if check.ok() { 0 } else { 1 });
    }
    outln!(
        "bundle of workspace {} exported by {} (device {}) at {}",
        check.header.workspace,
        check.header.member,
        short_id(&check.header.device),
        time(check.header.exported_ms)
    );
    match &check.sealed {
        Ok(()) => outln!("seal: intact (signed by the exporting device)"),
        Err(why) => outln!("seal: BROKEN — {why}"),
    }
    let r = &check.report;
    outln!("{} events in {} chain(s)", r.events, r.chains.len());
    for c in &r.chains {
        outln!(
            "  {} {}: {} events, head {}",
            short_id(&c.device),
            if c.member.is_empty() {
                "(not on the roster)"
            } else {
                &c.member
            },
            c.events,
            short_id(&c.head)
        );
    }
    for (problem, n) in &r.counts {
        outln!("  {problem}: {n}");
    }
    for f in &r.findings {
        outln!(
            "{}: {}#{}: {}",
            f.problem.as_str(),
            short_id(&f.device),
            f.seq.map(|s| s.to_string()).unwrap_or_default(),
            f.detail
        );
    }
    if check.ok() {
        outln!("verified");
        Ok(0)
    } else {
        Ok(1)
    }
}
