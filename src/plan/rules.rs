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
    /// The VMs it concerns.
    pub vms: Vec<String>,
    /// `vmshift migrate db-replica hv-01`, if a move would repair it.
    pub repair: Option<String>,
}

/// The VMs of `rule`'s group in `snap`: by name through `index` when the
/// rule names them, by scanning when it has globs.
fn members<'a>(
    rule: &Rule,
    snap: &'a ClusterSnapshot,
    index: &HashMap<&str, Vec<&'a Vm>>,
) -> Vec<&'a Vm> {
    if rule.vms.iter().any(|p| crate::cluster::rules::is_glob(p)) {
        return snap.vms.iter().filter(|v| rule.has(&v.name)).collect();
    }
    let mut out: Vec<&Vm> = Vec::new();
    for name in &rule.vms {
        if !rule
            .vms
            .iter()
            .take_while(|n| *n != name)
            .any(|n| n == name)
        {
            out.extend(index.get(name.as_str()).into_iter().flatten());
        }
    }
    out
}

/// Every rule broken in `snap` now.
pub fn broken_now(snap: &ClusterSnapshot) -> Vec<BrokenNow> {
    let mut out = Vec::new();
    if snap.rules.is_empty() {
        return out;
    }
    let mut index: HashMap<&str, Vec<&Vm>> = HashMap::with_capacity(snap.vms.len());
    for v in &snap.vms {
        index.entry(v.name.as_str()).or_default().push(v);
    }
    for rule in &snap.rules {
        let members: Vec<&Vm> = members(rule, snap, &index)
            .into_iter()
            .filter(|v| running(v))
            .collect();
        let tag = rule.tag();
        let mut push = |sentence: String, vms: Vec<String>, repair: Option<String>| {
            out.push(BrokenNow {
                rule: rule.name.clone(),
                strength: rule.strength,
                origin: rule.origin.label(),
                sentence,
                vms,
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
                        names.iter().map(|n| n.to_string()).collect(),
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
                        names.iter().map(|n| n.to_string()).collect(),
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
                            vec![v.name.clone()],
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
                .find(|b| b.rule == r.name && b.vms.contains(&vm.name))
                .map(|b| b.sentence.clone());
            (r, broken)
        })
        .collect()
}

/// Rules by name, for looking up `--override-rule` names.
pub fn by_name(rules: &[Rule]) -> HashMap<&str, &Rule> {
    rules.iter().map(|r| (r.name.as_str(), r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Backend;
    use crate::backends::sim::{SimCluster, clock::Speed};
    use crate::cluster::{NodeSet, RuleOrigin};
    use crate::plan::{check, check_with, plan_drain, plan_drain_with, plan_recover};

    /// The built-in cluster, with its rules (db-pair, web-pool, web-budget,
    /// erp, dc-icelake).
    fn snap() -> ClusterSnapshot {
        SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap()
    }

    fn rule(name: &str, kind: RuleKind, vms: &[&str], strength: Strength) -> Rule {
        Rule {
            name: name.into(),
            kind,
            vms: vms.iter().map(|v| v.to_string()).collect(),
            strength,
            origin: RuleOrigin::Config,
        }
    }

    #[test]
    fn a_must_rule_refuses_naming_it_and_a_should_rule_is_listed() {
        let s = snap();
        let db = s.vm("db-main").unwrap();
        match check(&s, db, s.node("hv-03").unwrap(), false) {
            Err(crate::cluster::Refusal::Rule { rule, sentence, .. }) => {
                assert_eq!(rule, "db-pair");
                assert_eq!(
                    sentence,
                    "apart from db-replica: rule db-pair (must, scenario)"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(check(&s, db, s.node("hv-01").unwrap(), false).is_ok());
        let web = s.vm("web-01").unwrap();
        let p = check(&s, web, s.node("hv-02").unwrap(), false).unwrap();
        assert_eq!(p.breaks.len(), 1);
        assert_eq!(p.breaks[0].rule, "web-pool");
        assert_eq!(p.breaks[0].strength, Strength::Should);
        let p = check(&s, web, s.node("hv-04").unwrap(), false).unwrap();
        assert!(p.breaks.is_empty(), "{:?}", p.breaks);
    }

    #[test]
    fn an_override_allows_only_the_named_config_rule_with_a_reason() {
        let s = snap();
        let db = s.vm("db-main").unwrap();
        let hv03 = s.node("hv-03").unwrap();
        let rules = VmRules::new(&s, db);
        let named = |reason: Option<&str>| RuleOverrides {
            rules: vec!["db-pair".into()],
            reason: reason.map(String::from),
        };
        assert!(check_with(&s, db, hv03, false, &rules, &named(None)).is_err());
        let p = check_with(&s, db, hv03, false, &rules, &named(Some("patching"))).unwrap();
        assert_eq!(p.breaks[0].reason.as_deref(), Some("patching"));
        let other = RuleOverrides {
            rules: vec!["web-pool".into()],
            reason: Some("x".into()),
        };
        assert!(check_with(&s, db, hv03, false, &rules, &other).is_err());
        // A Pacemaker rule is never overridden.
        let mut p = s.clone();
        for r in p.rules.iter_mut().filter(|r| r.name == "db-pair") {
            r.origin = RuleOrigin::Pacemaker {
                kind: "colocation".into(),
                id: "db-pair".into(),
            };
        }
        let db = p.vm("db-main").unwrap();
        let rules = VmRules::new(&p, db);
        let e = check_with(
            &p,
            db,
            p.node("hv-03").unwrap(),
            false,
            &rules,
            &named(Some("x")),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("never overrides Pacemaker's constraints")
                && e.to_string().contains("crm configure delete db-pair"),
            "{e}"
        );
    }

    #[test]
    fn planned_positions_count_not_only_where_vms_run_now() {
        // web-02 on its way to hv-04: web-01 there would be beside it.
        // (Without the budget, which would refuse a second web move now.)
        let mut s = snap();
        s.rules.retain(|r| r.name != "web-budget");
        let mut m = crate::cluster::Migration::starting(
            7,
            "web-02",
            "hv-02",
            "hv-04",
            Default::default(),
            4 << 30,
            0,
            0,
        );
        m.step = crate::cluster::Step::PreCopy;
        s.migrations.push(m);
        let web = s.vm("web-01").unwrap();
        let p = check(&s, web, s.node("hv-04").unwrap(), false).unwrap();
        assert_eq!(p.breaks.len(), 1, "{:?}", p.breaks);
        assert!(p.breaks[0].sentence.contains("web-02"));
        let p = check(&s, web, s.node("hv-02").unwrap(), false).unwrap();
        assert!(
            p.breaks.is_empty(),
            "web-02 is leaving hv-02: {:?}",
            p.breaks
        );
    }

    #[test]
    fn a_together_group_follows_and_must_fit() {
        let mut s = snap();
        // Two plain VMs on hv-01, together; moving one moves the other.
        s.rules = vec![rule(
            "pair",
            RuleKind::Together,
            &["web-01", "api-01"],
            Strength::Must,
        )];
        let web = s.vm("web-01").unwrap();
        let p = check(&s, web, s.node("hv-04").unwrap(), false).unwrap();
        assert_eq!(p.followers, ["api-01"]);
        // A drain of hv-01 moves them to one node.
        let plan = plan_drain(&s, "hv-01", &Default::default(), &[]);
        let to = |vm: &str| plan.moves.iter().find(|m| m.vm == vm).map(|m| m.to.clone());
        assert!(to("web-01").is_some());
        assert_eq!(to("web-01"), to("api-01"), "{:?}", plan.moves);
        // A follower that cannot go there refuses the move.
        let hv04 = s.nodes.iter_mut().find(|n| n.name == "hv-04").unwrap();
        hv04.mem_used = hv04.mem_total - 6 * crate::cluster::GIB;
        let web = s.vm("web-01").unwrap();
        let e = check(&s, web, s.node("hv-04").unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("api-01 must follow it there"), "{e}");
    }

    #[test]
    fn node_rules_by_name_and_label() {
        let mut s = snap();
        let dc = s.vm("dc-01").unwrap();
        // dc-icelake: only on nodes labelled icelake (hv-03, hv-04).
        assert!(check(&s, dc, s.node("hv-04").unwrap(), false).is_ok());
        s.rules.push(rule(
            "no-04",
            RuleKind::NotOn {
                nodes: NodeSet {
                    nodes: vec!["hv-04".into()],
                    labels: vec![],
                },
            },
            &["dc-*"],
            Strength::Must,
        ));
        let dc = s.vm("dc-01").unwrap();
        let e = check(&s, dc, s.node("hv-04").unwrap(), false).unwrap_err();
        assert!(
            e.to_string().contains("never runs on hv-04: rule no-04"),
            "{e}"
        );
        // Unlabelled, hv-04 is not one of the allowed nodes.
        s.rules.retain(|r| r.name != "no-04");
        s.nodes
            .iter_mut()
            .find(|n| n.name == "hv-04")
            .unwrap()
            .labels
            .clear();
        let dc = s.vm("dc-01").unwrap();
        let e = check(&s, dc, s.node("hv-04").unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("runs only on label icelake"), "{e}");
    }

    #[test]
    fn a_budget_counts_what_is_stopped_or_moving_by_hand() {
        let mut s = snap();
        // web-budget: at most one web server out at a time.
        s.vms.iter_mut().find(|v| v.name == "web-03").unwrap().state = VmState::Stopped;
        let web = s.vm("web-01").unwrap();
        let e = check(&s, web, s.node("hv-04").unwrap(), false).unwrap_err();
        assert!(
            e.to_string().contains("already stopped or moving (web-03)"),
            "{e}"
        );
        let e =
            crate::plan::check_vm_action(&s, web, crate::cluster::VmAction::Shutdown).unwrap_err();
        assert!(e.contains("rule web-budget"), "{e}");
        // A failure is not counted against it.
        s.nodes
            .iter_mut()
            .find(|n| n.name == "hv-03")
            .unwrap()
            .state = NodeState::Down;
        let web = s.vm("web-01").unwrap();
        assert!(check(&s, web, s.node("hv-04").unwrap(), false).is_ok());
    }

    #[test]
    fn the_drain_of_hv_02_keeps_the_rules_and_names_a_should_rule_it_breaks() {
        let s = snap();
        let plan = plan_drain(&s, "hv-02", &Default::default(), &[]);
        let to = |vm: &str| plan.moves.iter().find(|m| m.vm == vm).unwrap().to.clone();
        assert_ne!(to("db-main"), "hv-03", "db-replica is there");
        assert_eq!(to("web-02"), "hv-04", "the one node with no web server");
        assert!(plan.breaks().is_empty(), "{:?}", plan.breaks());
        // With hv-04 full, web-02 must sit beside another web server: the
        // plan says so.
        let mut full = s.clone();
        let hv04 = full.nodes.iter_mut().find(|n| n.name == "hv-04").unwrap();
        hv04.mem_used = hv04.mem_total;
        let plan = plan_drain(&full, "hv-02", &Default::default(), &[]);
        let b = plan.breaks();
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].rule, "web-pool");
        assert!(
            plan.moves
                .iter()
                .all(|m| m.vm != "db-main" || m.to != "hv-03")
        );
    }

    #[test]
    fn a_vm_that_will_not_converge_is_stuck_with_what_would_move_it() {
        let s = snap();
        let plan = plan_drain(&s, "hv-03", &Default::default(), &[]);
        assert!(plan.moves.iter().all(|m| m.vm != "batch-etl"));
        let st = plan.stuck.iter().find(|st| st.vm == "batch-etl").unwrap();
        assert_eq!(st.short, "will not converge");
        assert!(
            st.reason.contains("auto-converge") && st.reason.contains("vmshift shutdown batch-etl"),
            "{}",
            st.reason
        );
        // With post-copy it can leave.
        let o = crate::cluster::MigrationOptions {
            postcopy: crate::cluster::PostcopyMode::Auto,
            ..Default::default()
        };
        let plan = plan_drain_with(&s, "hv-03", &o, &[], false, &RuleOverrides::none());
        assert!(plan.moves.iter().any(|m| m.vm == "batch-etl"), "{plan:?}");
    }

    #[test]
    fn a_recovery_keeps_the_rules_and_leaves_down_what_only_breaks_them() {
        let mut s = snap();
        s.nodes
            .iter_mut()
            .find(|n| n.name == "hv-02")
            .unwrap()
            .state = NodeState::Down;
        let p = plan_recover(&s, "hv-02").unwrap();
        let db = p.restarts.iter().find(|r| r.vm == "db-main").unwrap();
        assert_ne!(db.to, "hv-03");
        // Only hv-03 left for it: it stays down, with the rule named.
        for n in s
            .nodes
            .iter_mut()
            .filter(|n| n.name == "hv-01" || n.name == "hv-04")
        {
            n.cordon = Some(crate::cluster::Cordon::local(0));
        }
        let p = plan_recover(&s, "hv-02").unwrap();
        let c = p.cannot.iter().find(|c| c.vm == "db-main").unwrap();
        assert!(c.reason.contains("rule db-pair"), "{}", c.reason);
    }

    #[test]
    fn broken_rules_are_found_with_a_repair() {
        let mut s = snap();
        s.vms
            .iter_mut()
            .find(|v| v.name == "db-replica")
            .unwrap()
            .node = "hv-02".into();
        let b = broken_now(&s);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].rule, "db-pair");
        assert_eq!(b[0].vms, ["db-main", "db-replica"]);
        let repair = b[0].repair.as_deref().unwrap();
        assert!(
            repair.starts_with("vmshift migrate db-replica "),
            "{repair}"
        );
        assert!(!repair.ends_with("hv-02"), "{repair}");
        assert!(broken_now(&snap()).is_empty());
    }

    #[test]
    fn rules_that_cannot_hold_are_named() {
        let s = snap();
        let mut rules = vec![
            rule("t", RuleKind::Together, &["a", "b"], Strength::Must),
            rule(
                "x",
                RuleKind::Apart { max_per_node: 1 },
                &["a", "b"],
                Strength::Must,
            ),
            rule(
                "many",
                RuleKind::Apart { max_per_node: 1 },
                &["web-*", "db-*", "erp-*"],
                Strength::Must,
            ),
            rule(
                "ghost",
                RuleKind::Apart { max_per_node: 1 },
                &["nobody", "web-01"],
                Strength::Should,
            ),
        ];
        let mut vms = s.vms.clone();
        for n in ["a", "b"] {
            let mut v = vms[0].clone();
            v.name = n.into();
            vms.push(v);
        }
        let p: Vec<String> = problems(&rules, &s.nodes, &vms)
            .into_iter()
            .map(|p| p.1)
            .collect();
        assert!(
            p.iter()
                .any(|p| p.contains("rule t (must, config) and rule x (must, config) contradict")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.contains("rule many") && p.contains("only 4 may host them")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("\"nobody\" names no VM")),
            "{p:?}"
        );
        rules.truncate(0);
        assert!(problems(&rules, &s.nodes, &vms).is_empty());
    }
}
