//! `cairn review new|list|show|close-action|template`: structured reviews of runs and
//! experiments, written against the team's template.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn_core::reviews::{parse_action, parse_confidence, parse_review_text};
use cairn_core::{NewReview, ReviewFilter, ReviewView, SetActionState, Workspace};
use cairn_model::review::{
    ActionState, Confidence, Decision, ExtraField, ExtraKind, Level, ReviewTemplate,
};

use crate::args::{Cli, ReviewCmd, ReviewTemplateCmd};
use crate::common::open;
use crate::output::{Table, print_json, short_id, time};

/// The largest review or template file read.
const MAX_FILE: u64 = cairn_core::reviews::MAX_REVIEW_FILE as u64;

fn read_file(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_FILE {
        bail!(
            "{} is {len} bytes: a review or template file is at most 1 MiB",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn print_review(v: &ReviewView) -> Result<()> {
    let r = &v.review;
    outln!("review {}  by {}  {}", r.id, v.author, time(r.at_ms));
    if !r.runs.is_empty() {
        let runs: Vec<String> = r.runs.iter().map(|id| id.to_string()).collect();
        outln!("runs:        {}", runs.join(", "));
    }
    if let Some(e) = v.experiment_name.as_deref() {
        outln!("experiment:  {e}");
    }
    for (what, t) in [
        ("objective:", &r.objective),
        ("method:", &r.method),
        ("result:", &r.result),
    ] {
        if let Some(t) = t {
            outln!("{what:<12} {t}");
        }
    }
    if let Some(c) = &r.confidence {
        let mut text = match (c.level, c.p) {
            (Some(l), _) => l.as_str().to_owned(),
            (None, Some(p)) => format!("{p}"),
            _ => String::new(),
        };
        if let Some(reason) = &c.reason {
            text.push_str(&format!(" ({reason})"));
        }
        outln!("confidence:  {text}");
    }
    if let Some(d) = r.decision {
        outln!("decision:    {}", d.as_str());
    }
    for (k, val) in &r.extra {
        outln!("{:<12} {val}", format!("{k}:"));
    }
    if let Some(t) = &r.text {
        outln!("\n{t}\n");
    }
    if !v.actions.is_empty() {
        outln!("next actions:");
        for a in &v.actions {
            let by = match (&a.changed_by, a.changed_ms) {
                (Some(who), Some(ms)) if a.state != ActionState::Open => {
                    format!("  ({} by {who}, {})", a.state.as_str(), time(ms))
                }
                _ => String::new(),
            };
            outln!(
                "  {}. [{}] {} — {}{by}",
                a.index,
                a.state.as_str(),
                a.owner,
                a.text
            );
        }
    }
    Ok(())
}

/// `NAME:KIND`, KIND text, number, bool or choice=A|B.
fn extra_field(spec: &str) -> Result<ExtraField> {
    let Some((name, kind)) = spec.split_once(':') else {
        bail!("an extra field is NAME:KIND (text, number, bool, choice=A|B), not '{spec}'");
    };
    let (kind, options) = match kind.trim() {
        "text" => (ExtraKind::Text, Vec::new()),
        "number" => (ExtraKind::Number, Vec::new()),
        "bool" => (ExtraKind::Bool, Vec::new()),
        k => match k.strip_prefix("choice=") {
            Some(opts) => (
                ExtraKind::Choice,
                opts.split('|').map(|o| o.trim().to_owned()).collect(),
            ),
            None => bail!("unknown field kind '{k}': text, number, bool or choice=A|B"),
        },
    };
    Ok(ExtraField {
        name: name.trim().to_owned(),
        kind,
        options,
        help: String::new(),
    })
}

fn print_template(ws: &Workspace, cli: &Cli) -> Result<()> {
    let t = ws.review_template()?;
    if cli.json {
        return print_json(&t);
    }
    match (&t.set_by, t.set_ms) {
        (Some(who), Some(ms)) => outln!("the team's template, set by {who} {}", time(ms)),
        _ => outln!("the default template (the team set none)"),
    }
    outln!("required: {}", t.template.required.join(", "));
    for f in &t.template.extra {
        let kind = match f.kind {
            ExtraKind::Text => "text".to_owned(),
            ExtraKind::Number => "number".to_owned(),
            ExtraKind::Bool => "bool".to_owned(),
            ExtraKind::Choice => format!("choice of {}", f.options.join(" | ")),
        };
        outln!("extra: {} ({kind})", f.name);
    }
    Ok(())
}

/// `cairn review …`.
pub fn review(cli: &Cli, cmd: &ReviewCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        ReviewCmd::New {
            runs,
            exp,
            file,
            objective,
            method,
            result,
            confidence: conf,
            reason,
            decision,
            actions,
            text,
            fields,
        } => {
            let mut r = match file {
                Some(p) => parse_review_text(&read_file(p)?)
                    .with_context(|| format!("reading the review in {}", p.display()))?,
                None => NewReview::default(),
            };
            r.runs.extend(runs.iter().cloned());
            if exp.is_some() {
                r.experiment = exp.clone();
            }
            for (slot, v) in [
                (&mut r.objective, objective),
                (&mut r.method, method),
                (&mut r.result, result),
                (&mut r.text, text),
            ] {
                if v.is_some() {
                    *slot = v.clone();
                }
            }
            if let Some(c) = conf {
                r.confidence = Some(parse_confidence(c, reason.as_deref())?);
            } else if let (Some(c), Some(reason)) = (&mut r.confidence, reason) {
                c.reason = Some(reason.clone());
            }
            if let Some(d) = decision {
                r.decision = Some(d.parse()?);
            }
            for a in actions {
                r.actions.push(parse_action(a)?);
            }
            for f in fields {
                let (k, v) = crate::common::kv(f, "field")?;
                r.extra.insert(k, v);
            }
            let v = ws.create_review(&r)?;
            if cli.json {
                return print_json(&v);
            }
            outln!("review {} written", v.review.id);
        }
        ReviewCmd::List {
            run,
            exp,
            owner,
            decision,
            open,
            limit,
        } => {
            let filter = ReviewFilter {
                run: run.clone(),
                experiment: exp.clone(),
                owner: owner.clone(),
                decision: decision.as_deref().map(str::parse).transpose()?,
                open_actions: Some(*open),
                limit: Some(*limit),
            };
            let list = ws.reviews(&filter)?;
            if cli.json {
                return print_json(&list);
            }
            let mut t = Table::new(&[
                "ID",
                "WHEN",
                "AUTHOR",
                "OF",
                "DECISION",
                "CONFIDENCE",
                "OPEN",
                "OBJECTIVE",
            ]);
            for v in &list {
                let r = &v.review;
                let of = match (&v.experiment_name, r.runs.len()) {
                    (Some(e), 0) => format!("exp {e}"),
                    (_, 1) => format!("run {}", short_id(&r.runs[0].to_string())),
                    (_, n) => format!("{n} runs"),
                };
                t.row(vec![
                    short_id(&r.id.to_string()).to_owned(),
                    time(r.at_ms),
                    v.author.clone(),
                    of,
                    r.decision.map_or("-", Decision::as_str).to_owned(),
                    r.confidence
                        .as_ref()
                        .and_then(Confidence::effective_level)
                        .map_or("-", Level::as_str)
                        .to_owned(),
                    v.open_actions().count().to_string(),
                    r.objective.clone().unwrap_or_default(),
                ]);
            }
            if t.is_empty() {
                outln!("no reviews");
            } else {
                out!("{}", t.render());
            }
        }
        ReviewCmd::Show { id } => {
            let v = ws.review(id)?;
            if cli.json {
                return print_json(&v);
            }
            print_review(&v)?;
        }
        ReviewCmd::CloseAction {
            id,
            action,
            drop,
            reopen,
            note,
        } => {
            let state = if *reopen {
                ActionState::Open
            } else if *drop {
                ActionState::Dropped
            } else {
                ActionState::Done
            };
            let v = ws.set_action_state(&SetActionState {
                id: id.clone(),
                action: *action,
                state,
                note: note.clone(),
            })?;
            if cli.json {
                return print_json(&v);
            }
            outln!(
                "action {action} of review {} is {}",
                short_id(&v.review.id.to_string()),
                state.as_str()
            );
        }
        ReviewCmd::Template(ReviewTemplateCmd::Show) => print_template(&ws, cli)?,
        ReviewCmd::Template(ReviewTemplateCmd::Set {
            file,
            required,
            extra,
        }) => {
            let mut t = match file {
                Some(p) => serde_json::from_str::<ReviewTemplate>(&read_file(p)?)
                    .with_context(|| format!("{} is not a review template as JSON", p.display()))?,
                None if required.is_empty() && extra.is_empty() => {
                    bail!("give --file, --require or --extra")
                }
                None => ReviewTemplate {
                    required: Vec::new(),
                    extra: Vec::new(),
                },
            };
            if !required.is_empty() {
                t.required = required.clone();
            }
            for e in extra {
                t.extra.push(extra_field(e)?);
            }
            ws.set_review_template(t)?;
            print_template(&ws, cli)?;
        }
    }
    Ok(())
}
