//! Recovering the VMs of a lost node (libvirt, no cluster manager): which
//! VM can restart where, and which cannot and why. Pure; the operator
//! confirms the node is powered off or fenced before anything starts,
//! because a VM started twice on shared storage corrupts its disks.

use serde::Serialize;

use super::cpu;
use super::rules::VmRules;
use crate::cluster::{ClusterSnapshot, NodeState, RuleOverrides, Strength, VmState, units};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restart {
    pub vm: String,
    pub to: String,
    pub memory: u64,
    /// Should rules the restart breaks (no node keeps them), and must
    /// rules the operator overrode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breaks: Vec<crate::cluster::BrokenRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotRecoverable {
    pub vm: String,
    /// One sentence: why, and what to do.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoverPlan {
    pub node: String,
    pub restarts: Vec<Restart>,
    pub cannot: Vec<NotRecoverable>,
}

/// Plans restarting the VMs last seen running on `node` on the surviving
/// nodes: each on the up, uncordoned node with the most free memory that
/// reaches all its disks and runs its CPU model. VMs a cluster manager owns
/// are never restarted here (the manager recovers them), nor a VM that a
/// node that is not lost also lists as running (it would run twice).
pub fn plan_recover(snap: &ClusterSnapshot, node: &str) -> Result<RecoverPlan, String> {
    plan_recover_with(snap, node, &RuleOverrides::none())
}

/// [`plan_recover`] keeping the placement rules against the planned
/// positions (each restart accounted before the next is placed): a node
/// that breaks a must rule is never chosen (unless `overrides` names the
/// rule); one that breaks a should rule only when no node keeps it. A VM
/// no node can take without breaking a must rule stays down, with why.
pub fn plan_recover_with(
    snap: &ClusterSnapshot,
    node: &str,
    overrides: &RuleOverrides,
) -> Result<RecoverPlan, String> {
    let n = snap.node(node).ok_or_else(|| {
        let names: Vec<&str> = snap.nodes.iter().map(|n| n.name.as_str()).collect();
        format!(
            "there is no node named {node:?}; known nodes: {}",
            names.join(", ")
        )
    })?;
    match n.state {
        NodeState::Down => {}
        NodeState::Unreachable => {
            return Err(format!(
                "{node} does not answer, but it is not lost yet ({}); a node that is only slow or cut off may still run its VMs, so they are restarted elsewhere only once it counts as lost ([libvirt] lost_after_s)",
                n.error.as_deref().unwrap_or("no answer")
            ));
        }
        _ => {
            return Err(format!(
                "{node} answers: it is not lost; move its VMs with `vmshift drain {}` instead",
                crate::cluster::text::shell_word(node)
            ));
        }
    }
    if let Some(e) = &snap.cordons_unreadable {
        return Err(super::Refusal::CordonsUnreadable(e.clone()).to_string());
    }
    // A cordoned node takes no restarted VM either.
    let mut free: Vec<(String, u64)> = snap
        .nodes
        .iter()
        .filter(|m| m.state == NodeState::Up && m.name != node)
        .filter(|m| super::cordon_check(snap, m).is_ok())
        .map(|m| (m.name.clone(), m.mem_free()))
        .collect();
    let mut plan = RecoverPlan {
        node: node.into(),
        restarts: Vec::new(),
        cannot: Vec::new(),
    };
    // Where each VM will be once the restarts planned so far are done.
    let mut planned = snap.clone();
    let mut vms: Vec<_> = snap.vms_on(node).collect();
    vms.sort_by(|a, b| b.memory.cmp(&a.memory).then(a.name.cmp(&b.name)));
    for vm in vms {
        let cannot = |reason: String| NotRecoverable {
            vm: vm.name.clone(),
            reason,
        };
        if let Some(why) = super::manager_hold(snap, &vm.name, "restart") {
            plan.cannot.push(cannot(why));
            continue;
        }
        if let Some(m) = snap.managed_vm(&vm.name) {
            plan.cannot.push(cannot(format!(
                "{} is Pacemaker resource {}: Pacemaker recovers it (fencing, restart); vmshift never starts it",
                vm.name, m.resource
            )));
            continue;
        }
        // Listed as running where a node answers (or may still answer):
        // a restart would be a second copy on the same disks.
        if let Some(other) = snap.vms.iter().find(|o| {
            o.name == vm.name
                && o.node != node
                && o.state != VmState::Stopped
                && snap
                    .node(&o.node)
                    .is_some_and(|n| n.state != NodeState::Down)
        }) {
            plan.cannot.push(cannot(format!(
                "{} is {} on {} too, which is not lost: restarting it would run it twice; it is left as it is",
                vm.name,
                other.state.label(),
                other.node
            )));
            continue;
        }
        if !matches!(
            vm.state,
            VmState::Running | VmState::Paused | VmState::Migrating
        ) {
            plan.cannot.push(cannot(format!(
                "{} was not running on {node}; it stays defined there",
                vm.name
            )));
            continue;
        }
        // Disks that no surviving node reaches.
        let stranded: Vec<String> = vm
            .disks
            .iter()
            .filter(|d| {
                snap.volume(&d.volume)
                    .is_none_or(|v| !free.iter().any(|(name, _)| v.reachable_from(name)))
            })
            .map(|d| d.volume.clone())
            .collect();
        if !stranded.is_empty() {
            plan.cannot.push(cannot(format!(
                "its disk on {} is reachable only from {node}; it cannot be restarted elsewhere — bring {node} back, or restore the disk to a shared volume",
                stranded.join(", ")
            )));
            continue;
        }
        let fits: Vec<usize> = free
            .iter()
            .enumerate()
            .filter(|(_, (name, room))| {
                *room >= vm.memory
                    && vm.disks.iter().all(|d| {
                        snap.volume(&d.volume)
                            .is_some_and(|v| v.reachable_from(name))
                    })
                    && snap
                        .node(name)
                        .is_some_and(|t| cpu::compatible(&vm.cpu_model, &t.cpu_model))
            })
            .map(|(i, _)| i)
            .collect();
        if fits.is_empty() {
            plan.cannot.push(cannot(format!(
                "no surviving node that reaches its disks has {} free (and a compatible CPU); free memory there first",
                units::bytes(vm.memory)
            )));
            continue;
        }
        // The rules, against where the restarts planned so far put VMs.
        let rules = VmRules::new(&planned, vm);
        let mut blocked: Option<String> = None;
        let mut best: Option<(usize, Vec<crate::cluster::BrokenRule>)> = None;
        for i in fits {
            let Some(n) = snap.node(&free[i].0) else {
                continue;
            };
            let breaches = rules.breaches(n, false);
            if let Some(b) = breaches
                .iter()
                .find(|b| b.rule.strength == Strength::Must && !overrides.allows(b.rule))
            {
                blocked.get_or_insert_with(|| format!("on {}: {}", n.name, b.sentence));
                continue;
            }
            let breaks: Vec<_> = breaches.iter().map(|b| b.broken(overrides)).collect();
            let better = best.as_ref().is_none_or(|(j, bb)| {
                (breaks.len(), std::cmp::Reverse(free[i].1), &free[i].0)
                    < (bb.len(), std::cmp::Reverse(free[*j].1), &free[*j].0)
            });
            if better {
                best = Some((i, breaks));
            }
        }
        match best {
            Some((i, breaks)) => {
                let (name, room) = &mut free[i];
                *room -= vm.memory;
                if let Some(v) = planned
                    .vms
                    .iter_mut()
                    .find(|v| v.name == vm.name && v.node == node)
                {
                    v.node = name.clone();
                }
                plan.restarts.push(Restart {
                    vm: vm.name.clone(),
                    to: name.clone(),
                    memory: vm.memory,
                    breaks,
                });
            }
            None => plan.cannot.push(cannot(format!(
                "every surviving node that could take it breaks a must rule ({}); it stays down rather than break it — bring {node} back, change the rule, or override it with --override-rule RULE --reason TEXT",
                blocked.unwrap_or_default()
            ))),
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Backend;
    use crate::backends::sim::{SimCluster, clock::Speed};
    use crate::cluster::{ManagedVm, ManagerView};

    fn lost(node: &str) -> ClusterSnapshot {
        let mut s = SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap();
        s.nodes.iter_mut().find(|n| n.name == node).unwrap().state = NodeState::Down;
        s
    }

    #[test]
    fn a_node_that_is_only_unreachable_is_not_recovered_yet() {
        let mut s = lost("hv-04");
        let n = s.nodes.iter_mut().find(|n| n.name == "hv-04").unwrap();
        n.state = NodeState::Unreachable;
        n.error = Some("did not answer within 5 s".into());
        let e = plan_recover(&s, "hv-04").unwrap_err();
        assert!(
            e.contains("not lost yet (did not answer within 5 s)") && e.contains("lost_after_s"),
            "{e}"
        );
    }

    #[test]
    fn a_node_that_answers_is_not_recovered() {
        let s = SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap();
        let e = plan_recover(&s, "hv-01").unwrap_err();
        assert!(e.contains("not lost") && e.contains("drain hv-01"), "{e}");
        assert!(
            plan_recover(&s, "hv-9")
                .unwrap_err()
                .contains("no node named")
        );
    }

    #[test]
    fn shared_disks_restart_elsewhere_local_ones_cannot() {
        let s = lost("hv-04");
        let p = plan_recover(&s, "hv-04").unwrap();
        let running: Vec<&str> = s
            .vms_on("hv-04")
            .filter(|v| v.state == VmState::Running)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(p.restarts.len() + p.cannot.len(), s.vms_on("hv-04").count());
        let local = p.cannot.iter().find(|c| c.vm == "build-runner").unwrap();
        assert!(
            local.reason.contains("reachable only from hv-04"),
            "{}",
            local.reason
        );
        for r in &p.restarts {
            assert!(running.contains(&r.vm.as_str()));
            assert_ne!(r.to, "hv-04");
            let vm = s.vm(&r.vm).unwrap();
            for d in &vm.disks {
                assert!(s.volume(&d.volume).unwrap().reachable_from(&r.to));
            }
        }
        assert!(!p.restarts.is_empty());
    }

    #[test]
    fn a_cordoned_node_takes_no_restart() {
        let mut s = lost("hv-04");
        for n in s.nodes.iter_mut().filter(|n| n.name != "hv-02") {
            n.cordon = Some(crate::cluster::Cordon::local(0));
        }
        let p = plan_recover(&s, "hv-04").unwrap();
        assert!(!p.restarts.is_empty());
        assert!(p.restarts.iter().all(|r| r.to == "hv-02"), "{p:?}");
    }

    #[test]
    fn a_vm_a_node_that_is_not_lost_lists_as_running_is_not_restarted() {
        let mut s = lost("hv-04");
        let vm = s
            .vms_on("hv-04")
            .find(|v| {
                v.state == VmState::Running
                    && v.disks
                        .iter()
                        .all(|d| s.volume(&d.volume).unwrap().reachable_from.len() > 1)
            })
            .unwrap()
            .clone();
        let mut copy = vm.clone();
        copy.node = "hv-01".into();
        s.vms.push(copy);
        let p = plan_recover(&s, "hv-04").unwrap();
        assert!(p.restarts.iter().all(|r| r.vm != vm.name), "{p:?}");
        let c = p.cannot.iter().find(|c| c.vm == vm.name).unwrap();
        assert!(
            c.reason.contains("running on hv-01 too") && c.reason.contains("run it twice"),
            "{}",
            c.reason
        );
        // Without the copy it is restarted.
        s.vms.pop();
        let p = plan_recover(&s, "hv-04").unwrap();
        assert!(p.restarts.iter().any(|r| r.vm == vm.name), "{p:?}");
    }

    #[test]
    fn vms_pacemaker_owns_are_never_restarted_by_vmshift() {
        let mut s = lost("hv-01");
        s.manager = Some(ManagerView {
            known: true,
            vms: vec![ManagedVm {
                resource: "vm-web".into(),
                domain: "web-01".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(s.managed_vm("web-01").is_some());
        let p = plan_recover(&s, "hv-01").unwrap();
        assert!(p.restarts.iter().all(|r| r.vm != "web-01"));
        let c = p.cannot.iter().find(|c| c.vm == "web-01").unwrap();
        assert!(
            c.reason
                .contains("Pacemaker recovers it (fencing, restart)"),
            "{}",
            c.reason
        );
    }
}
