//! `vmshift drain NODE`: plan moving every running VM off a node, then run
//! the moves one after the other (a maintenance window's first step).

use std::process::ExitCode;

use serde_json::json;

use super::migrate::{
    Control, Ended, MEASURE_EACH, Out, backend_error, finish, follow, may_change, measure_workload,
    options,
};
use super::signals::INTERRUPT;
use super::{CliError, DrainArgs, exit};
use crate::backends::Backend;
use crate::cluster::{MigrationRequest, VmState};
use crate::config::Config;
use crate::plan::plan_drain_with;

pub fn run(
    backend: &mut dyn Backend,
    cfg: &Config,
    args: &DrainArgs,
) -> Result<ExitCode, CliError> {
    let out = Out { json: args.json };
    may_change(&out, cfg, args.dry_run, "drain")?;
    let opts = options(cfg, &args.flags);
    let mut snap = backend.snapshot().map_err(|e| backend_error(&out, e))?;
    snap.require_node(&args.node)
        .map_err(|e| backend_error(&out, e))?;
    // Real guests' dirty rates are measured before predicting.
    let to_measure: Vec<String> = snap
        .vms_on(&args.node)
        .filter(|v| v.state == VmState::Running)
        .map(|v| v.name.clone())
        .collect();
    for name in to_measure {
        measure_workload(backend, &out, &mut snap, &name, MEASURE_EACH);
    }
    let overrides = super::rules::leave(&out, &snap, &args.flags)?;
    let (history, note) = crate::record::past_migrations_noted(&snap.cluster);
    if let Some(note) = note {
        crate::output::error(&note);
    }
    let plan = plan_drain_with(
        &snap,
        &args.node,
        &opts,
        &history,
        args.storage_moves,
        &overrides,
    );
    let mut control = (!args.dry_run).then(|| Control::new(true));

    out.line(
        format!(
            "drain    {}: {} VM{} can move, {} cannot, {} not running",
            plan.node,
            plan.moves.len(),
            if plan.moves.len() == 1 { "" } else { "s" },
            plan.stuck.len(),
            plan.left.len()
        ),
        json!({
            "event": "drain_plan",
            "node": plan.node,
            "moves": plan.moves.iter().map(|m| json!({"vm": m.vm, "to": m.to, "disk_moves": m.disk_moves, "prediction": m.prediction})).collect::<Vec<_>>(),
            "stuck": plan.stuck,
            "left": plan.left,
            "rules_broken": plan.breaks(),
        }),
    );
    for m in &plan.moves {
        for d in &m.disk_moves {
            out.text(format!(
                "move-disk {}: disk on {} → {} ({}), while it runs",
                d.vm,
                d.from,
                d.to,
                crate::cluster::units::bytes(d.bytes)
            ));
        }
        out.text(format!(
            "move     {} → {}: {}",
            m.vm,
            m.to,
            m.prediction.summary(opts.max_downtime_ms)
        ));
        let breaks: Vec<_> = m.placement.breaks.iter().collect();
        if !out.json {
            super::rules::print_breaks(&out, &m.vm, &m.to, &breaks);
        }
    }
    let unconfirmed = super::rules::unconfirmed(&plan.breaks(), &overrides);
    for s in &plan.stuck {
        out.text(format!("stuck    {}: {}", s.vm, s.reason));
    }
    for v in &plan.left {
        out.text(format!("stays    {v} (not running)"));
    }
    if let Some(why) = &unconfirmed {
        if args.dry_run {
            out.text(format!("confirm  {why}"));
        } else {
            return Err(out.fail(
                exit::REFUSED,
                "rule_broken",
                format!("draining {}: {why}; nothing was moved", plan.node),
            ));
        }
    }
    if args.dry_run {
        return if plan.complete() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(out.fail(
                exit::NOT_COMPLETED,
                "cannot_drain",
                stuck_sentence(&plan.node, &plan.stuck),
            ))
        };
    }

    let control = control.as_mut().expect("not a dry run");
    control.before_start(&out)?;
    // Cordoned first: nothing is moved onto it while it empties.
    match backend.set_cordon(&plan.node, true) {
        Ok(text) => out.line(
            format!("cordon   {text}"),
            json!({"event": "cordon", "node": plan.node, "text": text}),
        ),
        Err(e) => {
            return Err(out.fail(
                exit::BACKEND,
                "cordon",
                format!(
                    "cannot cordon {} before draining it ({e}); nothing was moved",
                    plan.node
                ),
            ));
        }
    }
    let pacemaker_node = snap.managed_node(&plan.node).is_some();
    let mut followed: Vec<u64> = Vec::new();
    let (mut moved, mut failed) = (0usize, Vec::new());
    let mut not_started: Vec<String> = Vec::new();
    // Set when a signal ended vmshift during a move: the error it gave.
    let mut ended_by: Option<CliError> = None;
    for m in &plan.moves {
        if control.stop || ended_by.is_some() {
            not_started.push(m.vm.clone());
            continue;
        }
        // Pacemaker moves the VMs it owns off a node in standby: follow its
        // migration instead of starting one.
        if let Some(r) = snap.managed_vm(&m.vm).filter(|_| pacemaker_node) {
            out.line(
                format!(
                    "migrate  {} → Pacemaker's choice (resource {}, node in standby)",
                    m.vm, r.resource
                ),
                json!({"event": "drain_move", "vm": m.vm, "to": null, "by": "pacemaker", "resource": r.resource}),
            );
            let id = match await_managed(backend, &m.vm, &plan.node, &mut followed) {
                Ok(id) => id,
                Err(e) => {
                    out.line(
                        format!("skipped  {}: {e}", m.vm),
                        json!({"event": "drain_skipped", "vm": m.vm, "reason": e}),
                    );
                    failed.push(m.vm.clone());
                    continue;
                }
            };
            let ended = follow(backend, &out, id, control)?;
            match finish(&out, &ended) {
                Ok(_) => moved += 1,
                Err(_) => failed.push(m.vm.clone()),
            }
            continue;
        }
        // Its disk leaves a shared LUN first (planned with --storage-moves).
        let mut disk_failed = None;
        for d in &m.disk_moves {
            out.line(
                format!("move-disk {}: {} → {}", d.vm, d.from, d.to),
                json!({"event": "drain_disk_move", "vm": d.vm, "from": d.from, "to": d.to}),
            );
            let r = backend
                .move_disk(&d.vm, &d.from, &d.to)
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    super::move_disk::follow(backend, &out, id, control)
                        .map_err(|e| e.message.clone())
                })
                .and_then(|sm| {
                    super::move_disk::finish(&out, &sm)
                        .map(|_| ())
                        .map_err(|e| e.message.clone())
                });
            if let Err(e) = r {
                disk_failed = Some(e);
                break;
            }
        }
        if let Some(e) = disk_failed {
            out.line(
                format!("skipped  {}: its disk did not move: {e}", m.vm),
                json!({"event": "drain_skipped", "vm": m.vm, "reason": e}),
            );
            failed.push(m.vm.clone());
            continue;
        }
        out.line(
            format!("migrate  {} → {}", m.vm, m.to),
            json!({"event": "drain_move", "vm": m.vm, "to": m.to}),
        );
        let started = backend.start_migration(&MigrationRequest {
            vm: m.vm.clone(),
            to: m.to.clone(),
            options: crate::cluster::MigrationOptions {
                broken_rules: m.placement.breaks.clone(),
                ..opts.clone()
            },
            inputs: Some(m.inputs.clone()),
            forecast: Some(m.prediction.forecast()),
        });
        let id = match started {
            Ok(id) => id,
            Err(e) => {
                // The cluster changed since the plan: say so and go on.
                out.line(
                    format!("skipped  {}: {e}", m.vm),
                    json!({"event": "drain_skipped", "vm": m.vm, "reason": e.to_string()}),
                );
                failed.push(m.vm.clone());
                continue;
            }
        };
        let ended = follow(backend, &out, id, control)?;
        let by_signal = matches!(
            ended,
            Ended::Detached { .. }
                | Ended::Finished {
                    signal: Some(_),
                    ..
                }
        );
        match finish(&out, &ended) {
            Ok(_) => moved += 1,
            Err(e) if by_signal => ended_by = Some(e),
            Err(_) => failed.push(m.vm.clone()),
        }
    }
    if let Some(e) = ended_by {
        // A signal ended vmshift during a move: say what became of the drain.
        out.line(
            format!(
                "stopped  drain of {}: {moved} moved; {} not started",
                plan.node,
                if not_started.is_empty() {
                    "none".to_string()
                } else {
                    not_started.join(", ")
                }
            ),
            json!({"event": "drain_stopped", "node": plan.node, "moved": moved, "not_started": not_started}),
        );
        return Err(CliError::new(
            e.code,
            format!(
                "drain of {} stopped: {}; {} not started",
                plan.node,
                e.message,
                not_started.len()
            ),
        ));
    }
    out.line(
        format!(
            "drained  {}: {moved} moved, {} failed, {} stuck{}",
            plan.node,
            failed.len(),
            plan.stuck.len(),
            if failed.is_empty() && plan.stuck.is_empty() && not_started.is_empty() {
                format!(" — {} is empty of running VMs", plan.node)
            } else {
                String::new()
            }
        ),
        json!({"event": "drain_done", "node": plan.node, "moved": moved, "failed": failed, "stuck": plan.stuck, "not_started": not_started}),
    );
    if failed.is_empty() && plan.stuck.is_empty() && not_started.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut why = Vec::new();
    if !not_started.is_empty() {
        why.push(format!(
            "stopped by Ctrl-C before moving {}",
            not_started.join(", ")
        ));
    }
    if !failed.is_empty() {
        why.push(format!(
            "{} did not move ({}); each stays on {}",
            failed.len(),
            failed.join(", "),
            plan.node
        ));
    }
    if !plan.stuck.is_empty() {
        why.push(stuck_sentence(&plan.node, &plan.stuck));
    }
    let code = if not_started.is_empty() {
        exit::NOT_COMPLETED
    } else {
        exit::signal(INTERRUPT)
    };
    Err(CliError::new(
        code,
        format!("{} is not drained: {}", plan.node, why.join("; ")),
    ))
}

/// How long Pacemaker may take to start migrating a VM off a node in standby.
const MANAGED_START_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The migration Pacemaker runs of `vm` off `node` (found running, or
/// already over), once it shows; an error when the VM leaves otherwise or
/// nothing happens in time.
fn await_managed(
    backend: &mut dyn Backend,
    vm: &str,
    node: &str,
    followed: &mut Vec<u64>,
) -> Result<u64, String> {
    let t0 = std::time::Instant::now();
    loop {
        let s = backend.snapshot().map_err(|e| e.to_string())?;
        if let Some(m) = s
            .migrations
            .iter()
            .find(|m| m.vm == vm && m.from == node && !followed.contains(&m.id))
        {
            followed.push(m.id);
            return Ok(m.id);
        }
        match s.vm(vm) {
            Some(v) if v.node != node => {
                return Err(format!(
                    "Pacemaker moved {vm} to {} without a live migration vmshift saw (it may have restarted it; see crm_mon)",
                    v.node
                ));
            }
            None => return Err(format!("{vm} is gone from the cluster; see crm_mon")),
            _ => {}
        }
        if t0.elapsed() > MANAGED_START_WAIT {
            return Err(format!(
                "Pacemaker did not start moving {vm} off {node} within {} s; see crm_mon for why",
                MANAGED_START_WAIT.as_secs()
            ));
        }
        backend.wait(std::time::Duration::from_millis(200));
    }
}

fn stuck_sentence(node: &str, stuck: &[crate::plan::Stuck]) -> String {
    let list: Vec<String> = stuck
        .iter()
        .map(|s| format!("{} ({})", s.vm, s.reason))
        .collect();
    format!(
        "{} running VM{} cannot leave {node}: {}",
        stuck.len(),
        if stuck.len() == 1 { "" } else { "s" },
        list.join("; ")
    )
}
