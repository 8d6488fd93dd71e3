//! `cairn model promote|check|approve|approvals|gate …`: moving aliases through promotion
//! gates, signed approvals, and the gates themselves.

use anyhow::{Context, Result, bail};
use cairn_core::{Error, GateScope, Workspace};
use cairn_model::gate::{
    FairnessThreshold, GateEvaluation, GatePolicy, MetricThreshold, RequiredEvaluation,
};

use crate::args::{Cli, GateCmd};
use crate::cmd::model::resolve_version;
use crate::output::{Table, print_json, short_id, time};

/// `cairn model promote`: the alias moves, or every check is listed and the command fails.
pub fn promote(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    version: &str,
    alias: &str,
    rationale: Option<&str>,
) -> Result<()> {
    let v = resolve_version(ws, name, version)?;
    match ws.promote(name, v.version, alias, rationale) {
        Ok(e) => {
            if cli.json {
                return print_json(&e);
            }
            print_checks(&e)?;
            outln!("@{alias} of {name} → version {}", v.version);
            Ok(())
        }
        Err(Error::GateRefused { failed, .. }) => {
            // The kept evaluation holds every check, passed ones included: show them all.
            // The newest checks hold it (another device's may have landed since).
            let kept = ws
                .gate_evaluations(name, 20)?
                .into_iter()
                .find(|e| e.number == v.version && e.alias == alias);
            if let Some(e) = &kept {
                if cli.json {
                    print_json(e)?;
                } else {
                    print_checks(e)?;
                }
            }
            bail!(
                "promoting {name} version {} to @{alias} is refused by its gate ({} failed): {}",
                v.version,
                failed.len(),
                failed.join("; ")
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `cairn model check`: the verdict, without moving anything.
pub fn check(cli: &Cli, ws: &Workspace, name: &str, version: &str, alias: &str) -> Result<()> {
    let v = resolve_version(ws, name, version)?;
    let e = ws.check_gate(name, v.version, alias)?;
    if cli.json {
        return print_json(&e);
    }
    print_checks(&e)?;
    if e.passed {
        outln!(
            "verdict: PASS — promoting would move @{alias} to version {}",
            v.version
        );
    } else {
        outln!(
            "verdict: FAIL — {} check(s) failed; @{alias} would not move to version {}",
            e.failed().count(),
            v.version
        );
    }
    Ok(())
}

fn print_checks(e: &GateEvaluation) -> Result<()> {
    match &e.policy_hash {
        None => outln!(
            "no gate guards @{} of {}: the move is not checked",
            e.alias,
            e.model
        ),
        Some(h) => {
            outln!(
                "gate of @{} of {} (policy {}), version {}{}:",
                e.alias,
                e.model,
                short_id(h.trim_start_matches("blake3:")),
                e.number,
                e.holder
                    .map(|h| format!(" against the current holder, version {h}"))
                    .unwrap_or_default()
            );
            for c in &e.checks {
                outln!("  {}  {c}", if c.passed { "pass" } else { "FAIL" });
            }
        }
    }
    Ok(())
}

/// `cairn model approve`.
pub fn approve(
    cli: &Cli,
    ws: &Workspace,
    name: &str,
    version: &str,
    alias: &str,
    comment: &str,
) -> Result<()> {
    let v = resolve_version(ws, name, version)?;
    let a = ws.approve(name, v.version, alias, comment)?;
    if cli.json {
        return print_json(&a);
    }
    outln!(
        "approved {name} version {} for @{alias}: signed by device {} over content {} and policy {}",
        v.version,
        short_id(&a.approval.device),
        a.approval
            .content
            .map_or("(none)".into(), |c| short_id(&c.to_hex()).to_owned()),
        a.approval
            .policy_hash
            .as_deref()
            .map_or("(no gate)", |h| short_id(h.trim_start_matches("blake3:")))
    );
    if !a.counts {
        outln!("note: this approval does not count: {}", a.problem);
    }
    Ok(())
}

/// `cairn model approvals`.
pub fn approvals(cli: &Cli, ws: &Workspace, name: &str, version: &str, alias: &str) -> Result<()> {
    let v = resolve_version(ws, name, version)?;
    let all = ws.approvals(name, v.version, alias)?;
    if cli.json {
        return print_json(&all);
    }
    if all.approvals.is_empty() {
        outln!("no approvals of {name} version {} for @{alias}", v.version);
        return Ok(());
    }
    let mut t = Table::new(&["WHO", "DEVICE", "WHEN", "COUNTS", "WHY NOT", "COMMENT"]);
    for a in &all.approvals {
        t.row(vec![
            a.member.clone().unwrap_or_else(|| a.approval.user.clone()),
            short_id(&a.approval.device).to_owned(),
            time(a.approval.at_ms),
            if a.counts { "yes" } else { "NO" }.into(),
            a.problem.clone(),
            a.approval.comment.clone(),
        ]);
    }
    out!("{}", t.render());
    Ok(())
}

/// `cairn model gate …`.
pub fn gate(cli: &Cli, ws: &Workspace, cmd: &GateCmd) -> Result<()> {
    match cmd {
        GateCmd::Set {
            name,
            alias,
            metrics,
            fairness,
            require,
            compliant,
            approvals,
            review,
        } => {
            let policy = GatePolicy {
                evaluations: require.iter().map(|r| parse_require(r)).collect(),
                metrics: metrics
                    .iter()
                    .map(|m| parse_metric(m))
                    .collect::<Result<_>>()?,
                fairness: fairness
                    .iter()
                    .map(|f| parse_fairness(f))
                    .collect::<Result<_>>()?,
                compliant: *compliant,
                approvals: *approvals,
                review: *review,
            };
            let scope = GateScope {
                model: name.clone(),
                alias: alias.clone(),
            };
            let view = ws.set_gate(&scope, policy)?;
            if cli.json {
                return print_json(&view);
            }
            let what = match (&scope.model, &scope.alias) {
                (Some(m), Some(a)) => format!("@{a} of {m}"),
                (Some(m), None) => format!("every alias of {m}"),
                (None, Some(a)) => format!("@{a} of every model without a gate of its own"),
                (None, None) => "every alias of every model without a gate of its own".into(),
            };
            if view.policy.is_empty() {
                outln!("no gate guards {what} any more");
            } else {
                outln!(
                    "gate of {what} set (policy {})",
                    short_id(view.hash.trim_start_matches("blake3:"))
                );
                print_policy(&view.policy)?;
            }
            Ok(())
        }
        GateCmd::Show { name, alias } => {
            let g = ws.gate_for(name, alias)?;
            if cli.json {
                return print_json(&g);
            }
            match g {
                None => outln!("no gate guards @{alias} of {name}"),
                Some(g) => {
                    outln!(
                        "@{alias} of {name} is guarded by the gate of {} (policy {}), set by {} at {}",
                        match (&g.scope.model, &g.scope.alias) {
                            (Some(_), Some(a)) => format!("the model, @{a}"),
                            (Some(_), None) => "the model, any alias".into(),
                            (None, Some(a)) => format!("the project, @{a}"),
                            (None, None) => "the project, any alias".into(),
                        },
                        short_id(g.hash.trim_start_matches("blake3:")),
                        g.set_by,
                        time(g.set_ms)
                    );
                    print_policy(&g.policy)?;
                }
            }
            Ok(())
        }
        GateCmd::History { name, limit } => {
            let all = ws.gate_evaluations(name, *limit)?;
            if cli.json {
                return print_json(&all);
            }
            if all.is_empty() {
                outln!("no gate checks of {name} yet");
                return Ok(());
            }
            let mut t = Table::new(&[
                "WHEN",
                "WHO",
                "VERSION",
                "ALIAS",
                "VERDICT",
                "MOVED",
                "FAILED",
                "RATIONALE",
            ])
            .right_align(&[2]);
            for e in &all {
                t.row(vec![
                    time(e.at_ms),
                    e.user.clone(),
                    e.number.to_string(),
                    e.alias.clone(),
                    if e.passed { "pass" } else { "FAIL" }.into(),
                    if e.promoted { "yes" } else { "no" }.into(),
                    e.failed().count().to_string(),
                    e.rationale.clone().unwrap_or_default(),
                ]);
            }
            out!("{}", t.render());
            Ok(())
        }
    }
}

fn print_policy(p: &GatePolicy) -> Result<()> {
    for r in &p.evaluations {
        match &r.dataset {
            Some(d) => outln!(
                "  requires an evaluation on {} with dataset {d}",
                r.benchmark
            ),
            None => outln!("  requires an evaluation on {}", r.benchmark),
        }
    }
    for m in &p.metrics {
        let op = if m.greater_is_better { ">=" } else { "<=" };
        if let Some(t) = m.threshold {
            outln!("  {}.{} {op} {t}", m.benchmark, m.metric);
        }
        if let Some(a) = m.min_absolute_change {
            outln!(
                "  {}.{} {op} the current holder's {} {a}",
                m.benchmark,
                m.metric,
                if m.greater_is_better { "+" } else { "-" }
            );
        }
        if let Some(r) = m.min_relative_change {
            outln!(
                "  {}.{} {op} the current holder's {} {}%",
                m.benchmark,
                m.metric,
                if m.greater_is_better { "+" } else { "-" },
                r * 100.0
            );
        }
    }
    for f in &p.fairness {
        if let Some(d) = f.max_difference {
            outln!(
                "  {} {} difference over {} <= {d}",
                f.benchmark,
                f.metric,
                f.attribute
            );
        }
        if let Some(r) = f.min_ratio {
            outln!(
                "  {} {} ratio over {} >= {r}",
                f.benchmark,
                f.metric,
                f.attribute
            );
        }
    }
    if p.compliant {
        outln!("  the run complies with the schema");
    }
    if p.approvals > 0 {
        outln!(
            "  {} signed approval{} by members other than the author",
            p.approvals,
            if p.approvals == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `BENCH` or `BENCH=DIGEST`.
fn parse_require(text: &str) -> RequiredEvaluation {
    match text.split_once('=') {
        Some((b, d)) => RequiredEvaluation {
            benchmark: b.trim().to_owned(),
            dataset: Some(d.trim().to_owned()),
        },
        None => RequiredEvaluation {
            benchmark: text.trim().to_owned(),
            dataset: None,
        },
    }
}

/// Splits `LHS>=N` or `LHS<=N`: (lhs, greater_is_better, rhs).
fn split_op<'a>(text: &'a str, what: &str) -> Result<(&'a str, bool, &'a str)> {
    for (op, greater) in [(">=", true), ("<=", false)] {
        if let Some((l, r)) = text.split_once(op) {
            return Ok((l.trim(), greater, r.trim()));
        }
    }
    bail!("malformed {what} '{text}': expected >= or <= and a value")
}

fn number(text: &str, spec: &str) -> Result<f64> {
    let v: f64 = text
        .parse()
        .with_context(|| format!("'{text}' in '{spec}' is not a number"))?;
    if !v.is_finite() {
        bail!("'{text}' in '{spec}' is not a finite number");
    }
    Ok(v)
}

/// `BENCH.METRIC>=0.9`, `BENCH.METRIC>=+0.01`, `BENCH.METRIC>=+2%`, or with `<=` when lower
/// is better.
fn parse_metric(spec: &str) -> Result<MetricThreshold> {
    let (lhs, greater, rhs) = split_op(spec, "metric threshold")?;
    let Some((benchmark, metric)) = lhs
        .split_once('.')
        .filter(|(b, m)| !b.is_empty() && !m.is_empty())
    else {
        bail!("malformed metric threshold '{spec}': expected BENCH.METRIC before the operator");
    };
    let mut t = MetricThreshold {
        benchmark: benchmark.to_owned(),
        metric: metric.to_owned(),
        threshold: None,
        min_absolute_change: None,
        min_relative_change: None,
        greater_is_better: greater,
    };
    match rhs.strip_prefix('+') {
        Some(change) => match change.strip_suffix('%') {
            Some(pct) => t.min_relative_change = Some(number(pct, spec)? / 100.0),
            None => t.min_absolute_change = Some(number(change, spec)?),
        },
        None => t.threshold = Some(number(rhs, spec)?),
    }
    Ok(t)
}

/// `BENCH.METRIC.ATTRIBUTE.difference<=N` or `BENCH.METRIC.ATTRIBUTE.ratio>=N`.
fn parse_fairness(spec: &str) -> Result<FairnessThreshold> {
    let (lhs, greater, rhs) = split_op(spec, "fairness threshold")?;
    let malformed = || {
        anyhow::anyhow!(
            "malformed fairness threshold '{spec}': expected \
             BENCH.METRIC.ATTRIBUTE.difference<=N or BENCH.METRIC.ATTRIBUTE.ratio>=N"
        )
    };
    let (benchmark, rest) = lhs.split_once('.').ok_or_else(malformed)?;
    let (rest, kind) = rest.rsplit_once('.').ok_or_else(malformed)?;
    let (metric, attribute) = rest.rsplit_once('.').ok_or_else(malformed)?;
    let v = number(rhs, spec)?;
    let mut t = FairnessThreshold {
        benchmark: benchmark.to_owned(),
        metric: metric.to_owned(),
        attribute: attribute.to_owned(),
        max_difference: None,
        min_ratio: None,
    };
    match (kind, greater) {
        ("difference", false) => t.max_difference = Some(v),
        ("ratio", true) => t.min_ratio = Some(v),
        ("difference", true) => bail!("'{spec}': a difference is bounded from above (<=)"),
        ("ratio", false) => bail!("'{spec}': a ratio is bounded from below (>=)"),
        _ => return Err(malformed()),
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_thresholds() {
        let m = parse_metric("val.acc>=0.9").unwrap();
        assert_eq!((m.threshold, m.greater_is_better), (Some(0.9), true));
        let m = parse_metric("val.loss<=+0.05").unwrap();
        assert_eq!(
            (m.min_absolute_change, m.greater_is_better),
            (Some(0.05), false)
        );
        let m = parse_metric("val.acc>=+2%").unwrap();
        assert_eq!(m.min_relative_change, Some(0.02));
        assert!(parse_metric("acc>=0.9").is_err());
        assert!(parse_metric("val.acc=0.9").is_err());
        let f = parse_fairness("val.acc.sex.difference<=0.03").unwrap();
        assert_eq!(
            (f.metric.as_str(), f.attribute.as_str(), f.max_difference),
            ("acc", "sex", Some(0.03))
        );
        let f = parse_fairness("val.selection_rate.age&sex.ratio>=0.8").unwrap();
        assert_eq!((f.attribute.as_str(), f.min_ratio), ("age&sex", Some(0.8)));
        assert!(parse_fairness("val.acc.sex.ratio<=0.8").is_err());
        assert!(parse_fairness("val.acc.difference<=0.8").is_err());
        let r = parse_require("val=blake3:ab");
        assert_eq!(r.dataset.as_deref(), Some("blake3:ab"));
    }
}
