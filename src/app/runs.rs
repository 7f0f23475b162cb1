//! Runs of several moves: a drain empties a node one move after the other
//! and ends with a summary in the event log.

use std::collections::VecDeque;

use super::msg::RequestId;
use super::{App, Update};
use crate::cluster::{MigrationId, MigrationRequest};
use crate::plan::DrainPlan;

/// A confirmed drain: what is left to start, and the move under way.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainRun {
    pub node: String,
    pub queue: VecDeque<MigrationRequest>,
    /// The move under way.
    pub current: Option<DrainStep>,
    pub moved: usize,
    pub failed: Vec<String>,
    pub stuck: usize,
    /// VMs the cluster manager (Pacemaker) moves off the node itself once
    /// it is in standby: followed, not started.
    pub by_manager: Vec<String>,
}

/// The move of a drain under way: its start request, then its migration.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainStep {
    pub vm: String,
    pub req: RequestId,
    pub migration: Option<MigrationId>,
}

impl App {
    /// Starts a confirmed drain: its moves go one after the other.
    pub(super) fn start_drain(&mut self, plan: &DrainPlan) {
        let options = self.settings.defaults.clone();
        // On a Pacemaker node the cordon is standby: Pacemaker moves the
        // VMs it owns, vmshift the others.
        let managed = |vm: &str| {
            self.snap
                .as_ref()
                .is_some_and(|s| s.managed_node(&plan.node).is_some() && s.managed_vm(vm).is_some())
        };
        let by_manager: Vec<String> = plan
            .moves
            .iter()
            .filter(|m| managed(&m.vm))
            .map(|m| m.vm.clone())
            .collect();
        self.drain = Some(DrainRun {
            node: plan.node.clone(),
            by_manager,
            queue: plan
                .moves
                .iter()
                .filter(|m| !managed(&m.vm))
                .map(|m| MigrationRequest {
                    vm: m.vm.clone(),
                    to: m.to.clone(),
                    options: crate::cluster::MigrationOptions {
                        broken_rules: m.placement.breaks.clone(),
                        ..options.clone()
                    },
                    inputs: Some(m.inputs.clone()),
                    forecast: Some(m.prediction.forecast()),
                })
                .collect(),
            current: None,
            moved: 0,
            failed: Vec::new(),
            stuck: plan.stuck.len(),
        });
    }

    /// Starts the next move of a drain once the current one has finished.
    pub(super) fn advance_drain(&mut self, out: &mut Update) {
        let Some(d) = &mut self.drain else { return };
        // The cluster manager's moves: over once the VM left the node and
        // the migration that took it (if one was seen) has its outcome.
        if let Some(s) = &self.snap {
            let node = d.node.clone();
            let mut still = Vec::new();
            for vm in std::mem::take(&mut d.by_manager) {
                let mig = s
                    .migrations
                    .iter()
                    .filter(|m| m.vm == vm && m.from == node)
                    .max_by_key(|m| m.id);
                let left = s.vm(&vm).is_none_or(|v| v.node != node);
                match mig.and_then(|m| m.outcome.as_ref()) {
                    Some(o) if o.is_success() => d.moved += 1,
                    Some(_) => d.failed.push(vm),
                    None if left && mig.is_none() => d.moved += 1,
                    None => still.push(vm),
                }
            }
            d.by_manager = still;
        }
        if let Some(DrainStep {
            vm,
            migration: Some(id),
            ..
        }) = d.current.clone()
        {
            let finished = self
                .snap
                .as_ref()
                .and_then(|s| s.migrations.iter().find(|m| m.id == id))
                .and_then(|m| m.outcome.clone());
            match finished {
                Some(o) if o.is_success() => d.moved += 1,
                Some(_) => d.failed.push(vm),
                None => return,
            }
            d.current = None;
        }
        if d.current.is_some() {
            return;
        }
        match d.queue.pop_front() {
            None if !d.by_manager.is_empty() => return,
            Some(req) => {
                let vm = req.vm.clone();
                let (id, cmd) = self.start_cmd(req);
                if let Some(d) = &mut self.drain {
                    d.current = Some(DrainStep {
                        vm,
                        req: id,
                        migration: None,
                    });
                }
                out.cmds.push(cmd);
            }
            None => {
                let d = self.drain.take().expect("checked");
                let text = format!(
                    "drain of {}: {} moved, {} failed{}, {} cannot leave",
                    d.node,
                    d.moved,
                    d.failed.len(),
                    if d.failed.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.failed.join(", "))
                    },
                    d.stuck
                );
                let bad = !d.failed.is_empty() || d.stuck > 0;
                self.report(text, bad);
            }
        }
        out.redraw = true;
    }
}
