//! Placement rules in the view: `:rules` (every rule, its origin and
//! whether it holds), the VM detail's rule lines, and `:override RULE
//! REASON`, the operator's typed leave to break one must rule of vmshift's
//! own config with the next move they confirm.

use super::{App, Detail, Mode, nodes::Level};
use crate::cluster::{ClusterSnapshot, RuleOverrides, Strength, Vm};
use crate::plan::rules::{BrokenNow, of_vm, problems};

impl App {
    /// `:rules`: every rule with its origin and state, the broken ones with
    /// the move that repairs them, and rules that cannot hold.
    pub(super) fn open_rules(&mut self) {
        let Some(s) = &self.snap else {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return;
        };
        let lines = rules_lines(s, &self.derived.broken_rules, &self.rule_leave);
        self.mode = Mode::Detail(Box::new(Detail::text(
            format!("Placement rules ({})", s.rules.len()),
            lines,
        )));
    }

    /// `:override RULE REASON`, or `:override off`.
    pub(super) fn override_rule(&mut self, rule: &str, reason: &str) {
        if rule == "off" {
            self.rule_leave = RuleOverrides::none();
            self.flash("no rule overridden: every must rule holds again", false);
            return;
        }
        let Some(s) = &self.snap else {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return;
        };
        let Some(r) = s.rules.iter().find(|r| r.name == rule) else {
            let names: Vec<&str> = s.rules.iter().map(|r| r.name.as_str()).collect();
            self.flash(
                format!(
                    "there is no rule named {rule:?}; rules: {} (`:rules` lists them)",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
                true,
            );
            return;
        };
        if !r.origin.overridable() {
            let text = format!(
                "{} is Pacemaker's: vmshift never overrides it; change the constraint in Pacemaker if it must go",
                r.tag()
            );
            self.flash(text, true);
            return;
        }
        if r.strength == Strength::Should {
            self.flash(
                format!(
                    "{} is a should rule: a move that breaks it says so in its confirmation; no override needed",
                    r.tag()
                ),
                false,
            );
            return;
        }
        let reason = reason.trim();
        if reason.is_empty() {
            self.flash(
                format!(
                    "overriding {} takes a typed reason: `:override {} WHY` (it goes to the event log and the flight recorder)",
                    r.tag(),
                    r.name
                ),
                true,
            );
            return;
        }
        let text = format!(
            "{} may be broken by the next move you confirm (reason: {reason}); `:override off` takes it back",
            r.tag()
        );
        self.rule_leave = RuleOverrides {
            rules: vec![r.name.clone()],
            reason: Some(reason.to_string()),
        };
        self.log_event(text.clone(), Level::Warn);
        self.flash(text, false);
    }
}

/// The `:rules` text.
pub fn rules_lines(
    s: &ClusterSnapshot,
    broken: &[BrokenNow],
    leave: &RuleOverrides,
) -> Vec<String> {
    let mut lines = Vec::new();
    if s.rules.is_empty() {
        lines.push(
            "no placement rules: add [[rule]] tables to the config (see config.example.toml)"
                .into(),
        );
    }
    for r in &s.rules {
        let state = if broken.iter().any(|b| b.rule == r.name) {
            "BROKEN"
        } else {
            "holds"
        };
        let overridden = if leave.rules.contains(&r.name) {
            "  [overridden for the next move]"
        } else {
            ""
        };
        lines.push(format!(
            "{state:<6}  {} ({}, {}): {}{overridden}",
            r.name,
            r.strength.label(),
            r.origin.label(),
            r.summary()
        ));
    }
    if !broken.is_empty() {
        lines.push(String::new());
        for b in broken {
            lines.push(format!(
                "broken: {}{}",
                b.sentence,
                b.repair
                    .as_deref()
                    .map(|m| format!("; repair: {m}"))
                    .unwrap_or_default()
            ));
        }
    }
    let bad = problems(&s.rules, &s.nodes, &s.vms);
    if !bad.is_empty() {
        lines.push(String::new());
        lines.extend(bad.into_iter().map(|(_, p)| format!("cannot hold: {p}")));
    }
    if let Some(m) = &s.manager
        && !m.unread_constraints.is_empty()
    {
        lines.push(String::new());
        lines.extend(
            m.unread_constraints
                .iter()
                .map(|u| format!("not read: {u}")),
        );
    }
    lines
}

/// The VM detail's lines: each rule that holds the VM, and whether it
/// holds now.
pub fn vm_rule_lines(s: &ClusterSnapshot, v: &Vm) -> Vec<String> {
    of_vm(s, v)
        .into_iter()
        .map(|(r, broken)| match broken {
            None => format!(
                "rule {} ({}, {}): {} — holds",
                r.name,
                r.strength.label(),
                r.origin.label(),
                r.summary()
            ),
            Some(why) => format!("rule {} BROKEN: {why}", r.name),
        })
        .collect()
}

/// The VMs of a together rule that follow a VM the operator moved, one
/// after the other once it has arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    pub leader: String,
    pub to: String,
    /// Still to move, in order.
    pub queue: Vec<String>,
    /// The follower moving now.
    pub current: Option<String>,
}

/// How the last migration of `vm` to `to` ended: `Some(true)` arrived,
/// `Some(false)` failed, `None` not ended (or not seen yet).
fn arrived(s: &ClusterSnapshot, vm: &str, to: &str) -> Option<bool> {
    let m = s
        .migrations
        .iter()
        .filter(|m| m.vm == vm && m.to == to)
        .max_by_key(|m| m.id)?;
    m.outcome.as_ref().map(|o| o.is_success())
}

impl App {
    /// Remembers the VMs that must follow `leader` to `to`.
    pub(super) fn follow_later(&mut self, leader: &str, to: &str, followers: &[String]) {
        if followers.is_empty() {
            return;
        }
        self.follow = Some(Follow {
            leader: leader.to_string(),
            to: to.to_string(),
            queue: followers.to_vec(),
            current: None,
        });
    }

    /// Starts the next follower once the one before it (the leader first)
    /// has arrived; drops the rest, saying so, if one did not.
    pub(super) fn advance_follow(&mut self, out: &mut super::Update) {
        let (Some(f), Some(s)) = (self.follow.clone(), self.snap.as_ref()) else {
            return;
        };
        let before = f.current.clone().unwrap_or_else(|| f.leader.clone());
        match arrived(s, &before, &f.to) {
            None => return,
            Some(false) => {
                self.follow = None;
                let text = format!(
                    "{} stay where they are: {before} did not reach {}, so the together rule is not kept by moving them",
                    f.queue.join(", "),
                    f.to
                );
                if !f.queue.is_empty() {
                    self.report(text, true);
                }
                return;
            }
            Some(true) => {}
        }
        let mut f = f;
        let Some(next) = (!f.queue.is_empty()).then(|| f.queue.remove(0)) else {
            self.follow = None;
            return;
        };
        let confirm = super::Confirm::new(s, &next, &f.to, &self.settings.defaults, &self.history);
        match confirm.map(|c| (c.placement.clone(), c)) {
            Some((Ok(_), c)) => {
                let text = format!("{next} follows {} to {} (together rule)", f.leader, f.to);
                let (_, cmd) = self.start_cmd(c.request());
                out.cmds.push(cmd);
                self.log_event(text, Level::Ok);
                f.current = Some(next);
                self.follow = Some(f);
            }
            Some((Err(r), _)) => {
                self.follow = None;
                self.report(
                    format!("{next} cannot follow {} to {}: {r}", f.leader, f.to),
                    true,
                );
            }
            None => self.follow = None,
        }
        out.redraw = true;
    }
}
