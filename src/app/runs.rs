//! Runs of several moves: a drain empties a node one move after the other
//! and ends with a summary in the event log.

use std::collections::VecDeque;

use super::msg::RequestId;
use super::nodes;
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
        self.drain = Some(DrainRun {
            node: plan.node.clone(),
            queue: plan
                .moves
                .iter()
                .map(|m| MigrationRequest {
                    vm: m.vm.clone(),
                    to: m.to.clone(),
                    options: options.clone(),
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
                self.log_event(
                    text.clone(),
                    if bad {
                        nodes::Level::Warn
                    } else {
                        nodes::Level::Ok
                    },
                );
                self.flash(text, bad);
            }
        }
        out.redraw = true;
    }
}
