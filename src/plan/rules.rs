//! Placement rules (affinity, anti-affinity, node rules, disruption
//! budgets): what a move would break, checked against planned positions.
//!
//! The rules are data in the snapshot (`cluster::Rule`, from the config,
//! the scenario and the cluster manager's constraints). Every planner asks
//! here: the drag's ranked targets, `migrate`, drain plans (each move
//! accounted before the next is placed), recovery of a lost node and the
//! simulator's HA restarts. A VM's position is where it runs, or where its
//! migration takes it.

use std::collections::HashMap;

use crate::cluster::{
    BrokenRule, ClusterSnapshot, Node, NodeState, Rule, RuleKind, RuleOverrides, Strength, Vm,
    VmState,
};

/// A rule a move would break, or that is broken now.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach<'a> {
    pub rule: &'a Rule,
    /// One sentence naming the VMs, ending with the rule's tag.
    pub sentence: String,
}

impl Breach<'_> {
    /// As recorded: with the operator's reason where a must rule was
    /// overridden.
    pub fn broken(&self, overrides: &RuleOverrides) -> BrokenRule {
        BrokenRule {
            rule: self.rule.name.clone(),
            strength: self.rule.strength,
            origin: self.rule.origin.clone(),
            sentence: self.sentence.clone(),
            reason: (self.rule.strength == Strength::Must)
                .then(|| overrides.reason.clone())
                .flatten(),
        }
    }
}

/// Another VM of a rule's group, where it is (or is going).
#[derive(Debug, Clone)]
struct Member<'a> {
    name: &'a str,
    at: &'a str,
    /// Stopped or migrating by the operator's hand (not by a failure).
    unavailable: bool,
    running: bool,
}

/// The rules of one VM, with the other members of each group, ready to
/// judge any target quickly (ranked targets check every node).
pub struct VmRules<'a> {
    vm: &'a Vm,
    rules: Vec<(&'a Rule, Vec<Member<'a>>)>,
}

/// Where `vm` is, or will be once its migration ends.
fn position<'a>(snap: &'a ClusterSnapshot, vm: &'a Vm) -> &'a str {
    snap.active_migration_of(&vm.name)
        .map_or(vm.node.as_str(), |m| m.to.as_str())
}

/// Whether `vm` is out of service by the operator's hand: stopped (not
/// lost with a failed node) or migrating.
fn unavailable(snap: &ClusterSnapshot, vm: &Vm) -> bool {
    let failed = vm.lost.is_some()
        || snap
            .node(&vm.node)
            .is_some_and(|n| matches!(n.state, NodeState::Down | NodeState::Unreachable));
    match vm.state {
        VmState::Migrating => true,
        VmState::Stopped | VmState::Paused => !failed,
        _ => snap.active_migration_of(&vm.name).is_some(),
    }
}

fn running(vm: &Vm) -> bool {
    matches!(
        vm.state,
        VmState::Running | VmState::Migrating | VmState::Paused
    )
}

impl<'a> VmRules<'a> {
    /// The rules whose group holds `vm`, with the group's other VMs as
    /// `snap` has them.
    pub fn new(snap: &'a ClusterSnapshot, vm: &'a Vm) -> Self {
        let mut rules = Vec::new();
        for rule in snap.rules.iter().filter(|r| r.has(&vm.name)) {
            let members = snap
                .vms
                .iter()
                .filter(|o| o.name != vm.name && rule.has(&o.name))
                .map(|o| Member {
                    name: &o.name,
                    at: position(snap, o),
                    unavailable: unavailable(snap, o),
                    running: running(o),
                })
                .collect();
            rules.push((rule, members));
        }
        Self { vm, rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What `vm` running on `node` would break (every other VM where it
    /// is); `moving` says it gets there by a migration (which counts
    /// against a disruption budget).
    pub fn breaches(&self, node: &Node, moving: bool) -> Vec<Breach<'a>> {
        let vm = &self.vm.name;
        let mut out = Vec::new();
        for (rule, members) in &self.rules {
            let tag = rule.tag();
            let sentence = match &rule.kind {
                RuleKind::Apart { max_per_node } => {
                    let beside: Vec<&str> = members
                        .iter()
                        .filter(|m| m.running && m.at == node.name)
                        .map(|m| m.name)
                        .collect();
                    (beside.len() as u32 + 1 > *max_per_node).then(|| {
                        if *max_per_node == 1 {
                            format!("apart from {}: {tag}", beside.join(", "))
                        } else {
                            format!(
                                "at most {max_per_node} of its group per node, and {} already run on {}: {tag}",
                                beside.join(", "),
                                node.name
                            )
                        }
                    })
                }
                RuleKind::Together => None,
                RuleKind::On { nodes } => (!nodes.contains(node))
                    .then(|| format!("{vm} runs only on {}: {tag}", nodes.describe())),
                RuleKind::NotOn { nodes } => (nodes.contains(node))
                    .then(|| format!("{vm} never runs on {}: {tag}", node.name)),
                RuleKind::MaxUnavailable { max } => {
                    let out_now: Vec<&str> = members
                        .iter()
                        .filter(|m| m.unavailable)
                        .map(|m| m.name)
                        .collect();
                    (moving && out_now.len() as u32 + 1 > *max).then(|| {
                        format!(
                            "{} of its group already stopped or moving ({}), at most {max} at once: {tag}",
                            out_now.len(),
                            out_now.join(", ")
                        )
                    })
                }
            };
            if let Some(sentence) = sentence {
                out.push(Breach { rule, sentence });
            }
        }
        out
    }

    /// The VMs of `vm`'s together groups that are not on `node` and must
    /// follow it there (running ones only), with the rule that moves them.
    pub fn followers(&self, node: &str) -> Vec<(&'a str, &'a Rule)> {
        let mut out: Vec<(&str, &Rule)> = Vec::new();
        for (rule, members) in &self.rules {
            if rule.kind != RuleKind::Together {
                continue;
            }
            for m in members.iter().filter(|m| m.running && m.at != node) {
                if !out.iter().any(|(n, _)| *n == m.name) {
                    out.push((m.name, rule));
                }
            }
        }
        out
    }

    /// What stopping `vm` (shutdown, power-off) would break: its
    /// disruption budgets.
    pub fn stop_breaches(&self) -> Vec<Breach<'a>> {
        let mut out = Vec::new();
        for (rule, members) in &self.rules {
            if let RuleKind::MaxUnavailable { max } = rule.kind {
                let out_now: Vec<&str> = members
                    .iter()
                    .filter(|m| m.unavailable)
                    .map(|m| m.name)
                    .collect();
                if out_now.len() as u32 + 1 > max {
                    out.push(Breach {
                        rule,
                        sentence: format!(
                            "{} of its group already stopped or moving ({}), at most {max} at once: {}",
                            out_now.len(),
                            out_now.join(", "),
                            rule.tag()
                        ),
                    });
                }
            }
        }
        out
    }
}

/// The rules broken right now (after a failure, someone else's move), one
/// breach each, with the move that would repair it where one is known.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BrokenNow {
    pub rule: String,
    pub strength: Strength,
    pub origin: String,
    /// One sentence: what is broken.
    pub sentence: String,
    /// `vmshift migrate db-replica hv-01`, if a move would repair it.
    pub repair: Option<String>,
}

/// Every rule broken in `snap` now.
pub fn broken_now(snap: &ClusterSnapshot) -> Vec<BrokenNow> {
    let mut out = Vec::new();
    for rule in &snap.rules {
        let members: Vec<&Vm> = snap
            .vms
            .iter()
            .filter(|v| running(v) && rule.has(&v.name))
            .collect();
        let tag = rule.tag();
        let mut push = |sentence: String, repair: Option<String>| {
            out.push(BrokenNow {
                rule: rule.name.clone(),
                strength: rule.strength,
                origin: rule.origin.label(),
                sentence,
                repair,
            })
        };
        match &rule.kind {
            RuleKind::Apart { max_per_node } => {
                let mut per: Vec<(&str, Vec<&Vm>)> = Vec::new();
                for v in &members {
                    let at = position(snap, v);
                    match per.iter_mut().find(|(n, _)| *n == at) {
                        Some((_, l)) => l.push(v),
                        None => per.push((at, vec![v])),
                    }
                }
                for (node, vms) in per.iter().filter(|(_, l)| l.len() as u32 > *max_per_node) {
                    let names: Vec<&str> = vms.iter().map(|v| v.name.as_str()).collect();
                    let last = vms.last().expect("more than one");
                    push(
                        format!("{} run together on {node}: {tag}", names.join(", ")),
                        repair_move(snap, last),
                    );
                }
            }
            RuleKind::Together => {
                let mut at: Vec<&str> = members.iter().map(|v| position(snap, v)).collect();
                at.sort_unstable();
                at.dedup();
                if at.len() > 1 {
                    let names: Vec<&str> = members.iter().map(|v| v.name.as_str()).collect();
                    push(
                        format!(
                            "{} run apart (on {}): {tag}",
                            names.join(", "),
                            at.join(", ")
                        ),
                        None,
                    );
                }
            }
            RuleKind::On { nodes } | RuleKind::NotOn { nodes } => {
                let only = matches!(rule.kind, RuleKind::On { .. });
                for v in &members {
                    let Some(n) = snap.node(position(snap, v)) else {
                        continue;
                    };
                    if nodes.contains(n) != only {
                        push(
                            format!(
                                "{} runs on {}, {} {}: {tag}",
                                v.name,
                                n.name,
                                if only { "outside" } else { "one of" },
                                nodes.describe()
                            ),
                            repair_move(snap, v),
                        );
                    }
                }
            }
            RuleKind::MaxUnavailable { .. } => {}
        }
    }
    out
}

/// `vmshift migrate VM NODE` to the best node where `vm` breaks no must
/// rule, if there is one.
fn repair_move(snap: &ClusterSnapshot, vm: &Vm) -> Option<String> {
    super::placement::targets(snap, vm, false)
        .into_iter()
        .find(|(_, p)| p.breaks.is_empty())
        .map(|(n, _)| crate::cluster::text::shell_line(&["vmshift", "migrate", &vm.name, &n]))
}

/// Rules that cannot hold or name nothing, one sentence each naming the
/// rules: a VM required together with and apart from another, an apart
/// group larger than the nodes allowed to host it, names and globs that
/// match no VM, nodes that do not exist, labels no node has.
pub fn problems(rules: &[Rule], nodes: &[Node], vms: &[Vm]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let names = |r: &Rule| -> Vec<&str> {
        let mut n: Vec<&str> = vms
            .iter()
            .filter(|v| r.has(&v.name))
            .map(|v| v.name.as_str())
            .collect();
        n.dedup();
        n
    };
    for r in rules {
        for p in &r.vms {
            if !vms
                .iter()
                .any(|v| crate::cluster::rules::pattern_matches(p, &v.name))
            {
                out.push((
                    r.name.clone(),
                    format!("{}: {p:?} names no VM of this cluster", r.tag()),
                ));
            }
        }
        if let RuleKind::On { nodes: set } | RuleKind::NotOn { nodes: set } = &r.kind {
            for n in set
                .nodes
                .iter()
                .filter(|n| !nodes.iter().any(|m| m.name == **n))
            {
                out.push((
                    r.name.clone(),
                    format!("{}: there is no node {n:?}", r.tag()),
                ));
            }
            for l in set
                .labels
                .iter()
                .filter(|l| !nodes.iter().any(|m| m.labels.contains(l)))
            {
                out.push((
                    r.name.clone(),
                    format!("{}: no node has label {l:?}", r.tag()),
                ));
            }
        }
        if let RuleKind::Apart { max_per_node } = r.kind
            && r.strength == Strength::Must
        {
            let group = names(r);
            let hosts = nodes
                .iter()
                .filter(|n| {
                    group.iter().all(|vm| {
                        rules
                            .iter()
                            .filter(|o| o.strength == Strength::Must && o.has(vm))
                            .all(|o| match &o.kind {
                                RuleKind::On { nodes } => nodes.contains(n),
                                RuleKind::NotOn { nodes } => !nodes.contains(n),
                                _ => true,
                            })
                    })
                })
                .count() as u64;
            if group.len() as u64 > hosts * max_per_node as u64 {
                out.push((
                    r.name.clone(),
                    format!(
                        "{}: its {} VMs need {} nodes at {max_per_node} per node, but only {hosts} may host them",
                        r.tag(),
                        group.len(),
                        (group.len() as u64).div_ceil(max_per_node as u64)
                    ),
                ));
            }
        }
    }
    // Together with and apart from the same VM (both must).
    for t in rules
        .iter()
        .filter(|r| r.kind == RuleKind::Together && r.strength == Strength::Must)
    {
        let together = names(t);
        for a in rules.iter().filter(|r| {
            matches!(r.kind, RuleKind::Apart { max_per_node } if (together.len() as u32) > max_per_node)
                && r.strength == Strength::Must
        }) {
            let both: Vec<&str> = names(a)
                .into_iter()
                .filter(|v| together.contains(v))
                .collect();
            let RuleKind::Apart { max_per_node } = a.kind else {
                continue;
            };
            if both.len() as u32 > max_per_node {
                out.push((
                    t.name.clone(),
                    format!(
                        "{} and {} contradict each other: {} must be together and apart",
                        t.tag(),
                        a.tag(),
                        both.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

/// How many must rules a placement of `vm` on each node keeps, for
/// ordering: targets that keep every rule first. Exposed for callers that
/// rank nodes.
pub fn should_count(breaks: &[BrokenRule]) -> usize {
    breaks
        .iter()
        .filter(|b| b.strength == Strength::Should)
        .count()
}

/// The rules that hold `vm` and whether each holds now, for the detail.
pub fn of_vm<'a>(snap: &'a ClusterSnapshot, vm: &'a Vm) -> Vec<(&'a Rule, Option<String>)> {
    let now = broken_now(snap);
    snap.rules
        .iter()
        .filter(|r| r.has(&vm.name))
        .map(|r| {
            let broken = now
                .iter()
                .find(|b| b.rule == r.name && b.sentence.contains(vm.name.as_str()))
                .map(|b| b.sentence.clone());
            (r, broken)
        })
        .collect()
}

/// Rules by name, for looking up `--override-rule` names.
pub fn by_name(rules: &[Rule]) -> HashMap<&str, &Rule> {
    rules.iter().map(|r| (r.name.as_str(), r)).collect()
}
