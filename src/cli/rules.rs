//! Placement rules on the command line: `vmshift rules` (every rule, its
//! origin and whether it holds), and the operator's leave to break rules
//! (`--override-rule NAME --reason TEXT`) that `migrate` and `drain` take.

use std::process::ExitCode;

use serde_json::json;

use super::migrate::Out;
use super::{CliError, MigrationFlags, exit};
use crate::backends::Backend;
use crate::cluster::{BrokenRule, ClusterSnapshot, RuleOverrides, Strength, text::shell_word};
use crate::plan::rules::{broken_now, problems};

/// The leave the flags give, checked against the cluster's rules: every
/// named rule exists, Pacemaker's are never overridden, a must rule needs
/// a reason.
pub fn leave(
    out: &Out,
    snap: &ClusterSnapshot,
    flags: &MigrationFlags,
) -> Result<RuleOverrides, CliError> {
    let reason = flags
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if flags.reason.is_some() && reason.is_none() {
        return Err(out.fail(
            exit::INPUT,
            "rule_override",
            "--reason is empty; say in words why the rule may be broken".into(),
        ));
    }
    if reason.is_some() && flags.override_rule.is_empty() {
        return Err(out.fail(
            exit::INPUT,
            "rule_override",
            "--reason goes with --override-rule NAME; name the rule it is for".into(),
        ));
    }
    for name in &flags.override_rule {
        let Some(rule) = snap.rules.iter().find(|r| r.name == *name) else {
            let names: Vec<&str> = snap.rules.iter().map(|r| r.name.as_str()).collect();
            return Err(out.fail(
                exit::INPUT,
                "rule_override",
                format!(
                    "there is no rule named {name:?}; rules here: {} (`vmshift rules` lists them)",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        };
        if !rule.origin.overridable() {
            return Err(out.fail(
                exit::REFUSED,
                "rule_override",
                format!(
                    "{} is Pacemaker's: vmshift never overrides it; change the constraint in Pacemaker (`crm configure delete {}`) if it must go",
                    rule.tag(),
                    shell_word(&rule.name)
                ),
            ));
        }
        if rule.strength == Strength::Must && reason.is_none() {
            return Err(out.fail(
                exit::INPUT,
                "rule_override",
                format!(
                    "{} is a must rule: overriding it takes a typed reason, --reason TEXT (it goes to the event log and the flight recorder)",
                    rule.tag()
                ),
            ));
        }
    }
    Ok(RuleOverrides {
        rules: flags.override_rule.clone(),
        reason: reason.map(str::to_string),
    })
}

/// Should rules a move breaks that the operator has not named with
/// `--override-rule`: the confirmation it still needs, as one sentence.
pub fn unconfirmed(breaks: &[&BrokenRule], overrides: &RuleOverrides) -> Option<String> {
    let missing: Vec<&&BrokenRule> = breaks
        .iter()
        .filter(|b| !overrides.rules.contains(&b.rule))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let what: Vec<String> = missing.iter().map(|b| b.sentence.clone()).collect();
    let mut names: Vec<&str> = missing.iter().map(|b| b.rule.as_str()).collect();
    names.dedup();
    let flags: Vec<String> = names
        .iter()
        .map(|n| format!("--override-rule {}", shell_word(n)))
        .collect();
    Some(format!(
        "this breaks {}; confirm with {} (or pick a node that keeps it)",
        what.join("; "),
        flags.join(" ")
    ))
}

/// One line per rule broken by a move, for the plan's output.
pub fn print_breaks(out: &Out, vm: &str, to: &str, breaks: &[&BrokenRule]) {
    for b in breaks {
        out.line(
            format!(
                "rule     {vm} → {to} breaks {}{}",
                b.sentence,
                b.reason
                    .as_deref()
                    .map(|r| format!("; overridden: {r}"))
                    .unwrap_or_default()
            ),
            json!({"event": "rule_broken", "vm": vm, "to": to, "rule": b}),
        );
    }
}

/// `vmshift rules [--json]`.
pub fn run(backend: &mut dyn Backend, json_out: bool) -> Result<ExitCode, CliError> {
    let out = Out { json: json_out };
    let snap = backend
        .snapshot()
        .map_err(|e| super::migrate::backend_error(&out, e))?;
    let now = broken_now(&snap);
    let problems = problems(&snap.rules, &snap.nodes, &snap.vms);
    if json_out {
        let rules: Vec<serde_json::Value> = snap
            .rules
            .iter()
            .map(|r| {
                let broken: Vec<&str> = now
                    .iter()
                    .filter(|b| b.rule == r.name)
                    .map(|b| b.sentence.as_str())
                    .collect();
                json!({"rule": r, "holds": broken.is_empty(), "broken": broken})
            })
            .collect();
        crate::output::print_json(&json!({
            "cluster": snap.cluster,
            "rules": rules,
            "broken": now,
            "problems": problems.iter().map(|p| &p.1).collect::<Vec<_>>(),
            "unread": snap.manager.as_ref().map(|m| m.unread_constraints.clone()).unwrap_or_default(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    if snap.rules.is_empty() {
        out.text(
            "no placement rules: add [[rule]] tables to the config (see config.example.toml)"
                .into(),
        );
    }
    for r in &snap.rules {
        let state = if now.iter().any(|b| b.rule == r.name) {
            "BROKEN"
        } else {
            "holds"
        };
        out.text(format!(
            "{:<7} {:<16} {:<6} {:<24} {}",
            state,
            r.name,
            r.strength.label(),
            r.origin.label(),
            r.summary()
        ));
    }
    for b in &now {
        out.text(format!(
            "broken  {}{}",
            b.sentence,
            b.repair
                .as_deref()
                .map(|m| format!("; repair: {m}"))
                .unwrap_or_default()
        ));
    }
    for (_, p) in &problems {
        out.text(format!("problem {p}"));
    }
    if let Some(m) = &snap.manager {
        for u in &m.unread_constraints {
            out.text(format!("unread  {u}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
