//! Lost nodes in the view: `:recover NODE` (the plan, then the node's name
//! typed to confirm it is powered off or fenced, then the worker restarts
//! the VMs), the lost VMs' "last seen" text, the recoveries' steps and the
//! alarms taken into the event log as they come.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::log::Clock;
use super::nodes::Level;
use super::{App, Cmd, LineEdit, Mode, Pending, Update, plural};
use crate::cluster::{ClusterSnapshot, LostWith, Recovery, RecoveryStep, units};
use crate::plan::{RecoverPlan, plan_recover};

/// Why the node's name is typed: said in the dialog and when it is wrong.
pub const TWICE: &str = "a VM started twice on shared storage corrupts its disks";

/// `:recover NODE` waiting for the node's name, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverConfirm {
    pub plan: RecoverPlan,
    /// What has been typed of the node's name.
    pub typed: LineEdit,
}

/// `lost with hv-04, last seen 10:42:07`
pub fn lost_text(l: &LostWith, clock: Clock) -> String {
    format!("lost with {}, last seen {}", l.node, clock.text(l.since_ms))
}

/// `lost 10:42:07`, where space is short.
pub fn lost_short(l: &LostWith, clock: Clock) -> String {
    format!("lost {}", clock.text(l.since_ms))
}

/// Whether `node` has VMs shown as last seen there (its card says how to
/// recover them).
pub fn has_lost_vms(snap: &ClusterSnapshot, node: &str) -> bool {
    snap.vms
        .iter()
        .any(|v| v.lost.as_ref().is_some_and(|l| l.node == node))
}

/// Two recoveries are the same one: the same VM lost with the same node at
/// the same time, by the same hand.
fn same(a: &Recovery, b: &Recovery) -> bool {
    a.vm == b.vm && a.from == b.from && a.by == b.by && a.steps.first() == b.steps.first()
}

/// What is worth a log line when the recoveries go from `old` to `new`: one
/// line per recovery that moved, with the steps it reached since (the
/// first as a time, the others as the time they took) and its failure.
pub fn recovery_news(old: &[Recovery], new: &[Recovery], clock: Clock) -> Vec<(String, Level)> {
    let mut news = Vec::new();
    for r in new {
        let before = old.iter().find(|o| same(o, r));
        let mut parts = Vec::new();
        let mut placed = false;
        for (i, (step, at)) in r.steps.iter().enumerate() {
            if before.is_some_and(|o| o.reached(*step).is_some()) {
                continue;
            }
            parts.push(match i {
                0 => format!("{} {}", step.label(), clock.text(*at)),
                _ => format!(
                    "{} +{}",
                    step.label(),
                    units::millis(at.saturating_sub(r.steps[i - 1].1) as f64)
                ),
            });
            placed |= matches!(
                step,
                RecoveryStep::Defined | RecoveryStep::Started | RecoveryStep::Running
            );
        }
        let failed = r
            .error
            .as_ref()
            .filter(|_| before.is_none_or(|o| o.error.is_none()));
        if parts.is_empty() && failed.is_none() {
            continue;
        }
        let mut text = format!("recovery of {} from {} by {}: ", r.vm, r.from, r.by);
        text += &parts.join(" → ");
        if placed && !r.to.is_empty() {
            text += &format!(" on {}", r.to);
        }
        let level = if let Some(e) = failed {
            if !parts.is_empty() {
                text += " → ";
            }
            text += &format!("failed: {e}");
            Level::Crit
        } else if r.reached(RecoveryStep::Running).is_some() {
            Level::Ok
        } else {
            Level::Warn
        };
        news.push((text, level));
    }
    news
}

/// The lines of a VM's detail about its recoveries: by whom, from where to
/// where, and the timeline (with the failure, if it failed).
pub fn recovery_lines(snap: &ClusterSnapshot, vm: &str, clock: Clock) -> Vec<String> {
    let mut lines = Vec::new();
    for r in snap.recoveries.iter().filter(|r| r.vm == vm) {
        lines.push(format!(
            "recovered by {} from lost node {} to {}{}:",
            r.by,
            r.from,
            if r.to.is_empty() {
                "(no node yet)"
            } else {
                &r.to
            },
            match (&r.error, r.is_finished()) {
                (Some(_), _) => ", failed",
                (None, true) => "",
                (None, false) => ", under way",
            }
        ));
        lines.push(format!("  {}", r.timeline(|ms| clock.text(ms))));
    }
    lines
}

impl App {
    /// `:recover NODE`: the plan in a dialog, or the plan's refusal.
    pub(super) fn ask_recover(&mut self, node: &str) {
        if self.refuse_read_only(&format!("recovering {node}")) {
            return;
        }
        let Some(snap) = &self.snap else {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return;
        };
        match plan_recover(snap, node) {
            Ok(plan) => {
                self.mode = Mode::ConfirmRecover(Box::new(RecoverConfirm {
                    plan,
                    typed: LineEdit::default(),
                }))
            }
            Err(why) => self.report(why, true),
        }
    }

    /// A key while `:recover` waits for the node's name.
    pub(super) fn on_recover_confirm_key(&mut self, k: KeyEvent, out: &mut Update) {
        let Mode::ConfirmRecover(c) = &mut self.mode else {
            return;
        };
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if k.code == KeyCode::Esc || (ctrl && k.code == KeyCode::Char('c')) {
            let text = format!("recovery of {} cancelled", c.plan.node);
            self.mode = Mode::Normal;
            self.flash(text, false);
            return;
        }
        if c.plan.restarts.is_empty() {
            // Nothing to confirm: any answer closes.
            if k.code == KeyCode::Enter {
                self.mode = Mode::Normal;
            }
            return;
        }
        if k.code != KeyCode::Enter {
            c.typed.key(&k);
            return;
        }
        let node = c.plan.node.clone();
        if !crate::cluster::text::typed_names(c.typed.text.trim(), &node) {
            self.flash(
                format!(
                    "type {node} exactly, then Enter, once it is powered off or fenced: {TWICE} (Esc cancels)"
                ),
                true,
            );
            return;
        }
        let plan = c.plan.clone();
        self.mode = Mode::Normal;
        let req = self.request(Pending::Recover { node: node.clone() });
        let vms: Vec<String> = plan
            .restarts
            .iter()
            .map(|r| format!("{} on {}", r.vm, r.to))
            .collect();
        self.log_event(
            format!(
                "{node} confirmed powered off or fenced by the operator; restarting {} VM{} elsewhere: {}",
                vms.len(),
                plural(vms.len()),
                vms.join(", ")
            ),
            Level::Warn,
        );
        self.flash(format!("recovering the VMs of {node}…"), false);
        out.cmds.push(Cmd::Recover(req, plan));
    }

    /// A new snapshot while the recover dialog is open: the plan again, or
    /// the dialog closes with why (the node answers again, say).
    pub(super) fn replan_recover(&mut self) {
        let (Mode::ConfirmRecover(c), Some(snap)) = (&mut self.mode, &self.snap) else {
            return;
        };
        match plan_recover(snap, &c.plan.node) {
            Ok(plan) => c.plan = plan,
            Err(why) => {
                self.mode = Mode::Normal;
                self.report(why, true);
            }
        }
    }

    /// Takes what changed between the `old` snapshot and the one now shown
    /// into the log: the recoveries' new steps, and alarms that are new and
    /// not already among the backend's events just taken (the last `taken`
    /// lines of the log).
    pub(super) fn log_recoveries_and_alarms(
        &mut self,
        old: Option<&ClusterSnapshot>,
        taken: usize,
    ) {
        let Some(s) = &self.snap else { return };
        let none = Vec::new();
        let old_recoveries = old.map_or(&none, |o| &o.recoveries);
        let mut news = recovery_news(old_recoveries, &s.recoveries, Clock::of(s));
        let fresh = &self.log[self.log.len().saturating_sub(taken)..];
        for a in &s.alarms {
            let known = old.is_some_and(|o| o.alarms.contains(a));
            if !known && !fresh.iter().any(|e| e.text == *a) {
                news.push((a.clone(), Level::Crit));
            }
        }
        for (text, level) in news {
            self.log_event(text, level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(steps: &[(RecoveryStep, u64)]) -> Recovery {
        Recovery {
            vm: "db".into(),
            from: "a".into(),
            to: "b".into(),
            by: "HA".into(),
            steps: steps.to_vec(),
            error: None,
        }
    }

    #[test]
    fn each_step_is_news_once() {
        use RecoveryStep::*;
        let c = Clock::Simulated;
        let lost = rec(&[(Lost, 1000)]);
        let n = recovery_news(&[], std::slice::from_ref(&lost), c);
        assert_eq!(
            n,
            [(
                "recovery of db from a by HA: lost 00:00:01".into(),
                Level::Warn
            )]
        );
        assert!(
            recovery_news(std::slice::from_ref(&lost), std::slice::from_ref(&lost), c).is_empty()
        );
        let done = rec(&[
            (Lost, 1000),
            (FenceConfirmed, 21_000),
            (Defined, 21_100),
            (Running, 22_000),
        ]);
        let n = recovery_news(std::slice::from_ref(&lost), std::slice::from_ref(&done), c);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(
            n[0].0,
            "recovery of db from a by HA: fence confirmed +20.0 s → defined +100 ms → running +900 ms on b"
        );
        assert_eq!(n[0].1, Level::Ok);
        let mut failed = lost.clone();
        failed.error = Some("no room".into());
        let n = recovery_news(std::slice::from_ref(&lost), &[failed], c);
        assert_eq!(
            n,
            [(
                "recovery of db from a by HA: failed: no room".into(),
                Level::Crit
            )]
        );
        // Nothing new: no news, finished or failed.
        assert!(
            recovery_news(std::slice::from_ref(&done), std::slice::from_ref(&done), c).is_empty()
        );
        // A later loss of the same VM is another recovery.
        let again = rec(&[(Lost, 90_000)]);
        assert_eq!(recovery_news(&[done], &[again], c).len(), 1);
    }
}
