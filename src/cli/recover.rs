//! `vmshift recover NODE`: restart the VMs of a lost node on the surviving
//! nodes (libvirt without a cluster manager). A plan first; the restarts
//! only once the operator typed the lost node's name to confirm it is
//! powered off or fenced — a VM started twice on shared storage corrupts
//! its disks. Never automatic.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use super::migrate::{Out, backend_error, may_change};
use super::{CliError, RecoverArgs, exit};
use crate::app::log::Clock;
use crate::backends::Backend;
use crate::cluster::{Recovery, RecoveryStep, units};
use crate::config::Config;
use crate::plan::plan_recover;

/// How long a restarted VM may take to show up running on its node.
const RUNNING_WAIT: Duration = Duration::from_secs(30);

pub fn run(
    backend: &mut dyn Backend,
    cfg: &Config,
    args: &RecoverArgs,
) -> Result<ExitCode, CliError> {
    let out = Out { json: args.json };
    may_change(&out, cfg, args.dry_run, "recover a node's VMs")?;
    let snap = backend.snapshot().map_err(|e| backend_error(&out, e))?;
    let plan =
        plan_recover(&snap, &args.node).map_err(|why| out.fail(exit::REFUSED, "refused", why))?;
    let node = snap.node(&args.node).expect("the plan checked it");
    out.line(
        format!(
            "lost     {}: {}{}",
            node.name,
            node.state.label(),
            node.error
                .as_deref()
                .map_or(String::new(), |e| format!(" ({e})"))
        ),
        json!({"event": "recover_plan", "node": plan.node, "restarts": plan.restarts, "cannot": plan.cannot}),
    );
    for r in &plan.restarts {
        out.text(format!(
            "restart  {} on {} ({})",
            r.vm,
            r.to,
            units::bytes(r.memory)
        ));
    }
    for c in &plan.cannot {
        out.text(format!("cannot   {}: {}", c.vm, c.reason));
    }
    if args.dry_run || plan.restarts.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    match args.confirm_fenced.as_deref() {
        Some(n) if n == plan.node => {}
        Some(other) => {
            return Err(out.fail(
                exit::INPUT,
                "not_confirmed",
                format!(
                    "--confirm-fenced names {other}, but the node to recover is {}; type the lost node's name",
                    plan.node
                ),
            ));
        }
        None => {
            return Err(out.fail(
                exit::REFUSED,
                "not_confirmed",
                format!(
                    "restarting VMs of {n} elsewhere is safe only once {n} is powered off or fenced (a VM started twice on shared storage corrupts its disks); make sure of that, then run again with --confirm-fenced {}",
                    crate::cluster::text::shell_word(&plan.node),
                    n = plan.node
                ),
            ));
        }
    }
    backend
        .confirm_fenced(&plan.node)
        .map_err(|e| backend_error(&out, e))?;
    out.line(
        format!("fenced   {} confirmed off by the operator", plan.node),
        json!({"event": "fence_confirmed", "node": plan.node}),
    );
    let mut failed = Vec::new();
    for r in &plan.restarts {
        let t0 = Instant::now();
        let rec = match backend.restart_vm(&r.vm, &r.to) {
            Ok(rec) => rec,
            Err(e) => {
                out.line(
                    format!("failed   {} on {}: {e}", r.vm, r.to),
                    json!({"event": "restart_failed", "vm": r.vm, "to": r.to, "reason": e.to_string()}),
                );
                failed.push(r.vm.clone());
                continue;
            }
        };
        let fenced = rec.reached(RecoveryStep::FenceConfirmed).unwrap_or(0);
        for step in [RecoveryStep::Defined, RecoveryStep::Started] {
            let at = rec.reached(step).unwrap_or(fenced);
            let ms = at.saturating_sub(fenced) as f64;
            out.line(
                format!(
                    "{:<8} {} on {} (+{} after the fence confirmation)",
                    step.label(),
                    r.vm,
                    r.to,
                    units::millis(ms)
                ),
                json!({"event": step, "vm": r.vm, "to": r.to, "at_ms": ms}),
            );
        }
        // Running once the node reports it so.
        let running = wait_running(backend, &r.vm, &r.to, t0);
        match running {
            Some(rec) => {
                let ms = rec
                    .reached(RecoveryStep::Running)
                    .unwrap_or(fenced)
                    .saturating_sub(fenced) as f64;
                out.line(
                    format!("running  {} on {} (+{})", r.vm, r.to, units::millis(ms)),
                    json!({"event": "running", "vm": r.vm, "to": r.to, "at_ms": ms, "recovery": rec}),
                );
                out.text(format!(
                    "         {}",
                    rec.timeline(|ms| Clock::of(&snap).text(ms))
                ));
            }
            None => {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                out.line(
                    format!(
                        "unsure   {} was started on {} but is not reported running after {}",
                        r.vm,
                        r.to,
                        units::millis(ms)
                    ),
                    json!({"event": "not_running", "vm": r.vm, "to": r.to}),
                );
                failed.push(r.vm.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(out.fail(
            exit::NOT_COMPLETED,
            "not_completed",
            format!(
                "{} of the VMs of {} did not come up: {}",
                failed.len(),
                plan.node,
                failed.join(", ")
            ),
        ))
    }
}

/// The recovery of `vm` on `to` once its node reports it running, or
/// `None` when that has not happened [`RUNNING_WAIT`] after `t0`.
fn wait_running(backend: &mut dyn Backend, vm: &str, to: &str, t0: Instant) -> Option<Recovery> {
    loop {
        let done = backend.snapshot().ok().and_then(|s| {
            s.recoveries
                .iter()
                .find(|x| x.vm == vm && x.to == to)
                .filter(|x| x.reached(RecoveryStep::Running).is_some())
                .cloned()
        });
        if done.is_some() || t0.elapsed() > RUNNING_WAIT {
            break done;
        }
        backend.wait(Duration::from_millis(250));
    }
}
