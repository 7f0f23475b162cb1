//! Placement check: may VM `v` live-migrate to node `t`, and what moves with it?

use crate::cluster::text::shell_line;
use crate::cluster::{
    BrokenRule, ClusterSnapshot, MovePath, Node, NodeState, RuleOrigin, RuleOverrides, Strength,
    Vm, VmState, Volume, VolumeKind, units,
};

use super::cpu;
use super::rules::VmRules;

// A refusal is the cluster's type (a backend's error carries it); it is
// named here too, where the checks that give it are.
pub use crate::cluster::Refusal;

/// Whether any disk of `vm` may move now (it runs, it is not migrating,
/// no disk of it is moving already); one sentence why not.
pub fn check_disk_move_vm(snap: &ClusterSnapshot, vm: &Vm) -> Result<(), String> {
    if vm.state != VmState::Running {
        return Err(format!(
            "{} is {}; move-disk moves the disk of a running VM (block copy, then pivot)",
            vm.name,
            vm.state.label()
        ));
    }
    if snap.active_migration_of(&vm.name).is_some() {
        return Err(format!(
            "{} is migrating; wait for the migration to end, then move its disk",
            vm.name
        ));
    }
    if let Some(m) = snap.active_storage_move_of(&vm.name) {
        return Err(format!(
            "{}'s disk {} is already moving to {}; wait for it or abort it first",
            vm.name, m.from, m.to
        ));
    }
    Ok(())
}

/// Whether `vm`'s disk on volume `disk` may move to volume `to` while it
/// runs (`vmshift move-disk`); the bytes to copy, or one sentence why not.
pub fn check_disk_move(
    snap: &ClusterSnapshot,
    vm: &Vm,
    disk: &str,
    to: &str,
) -> Result<u64, String> {
    let on: Vec<&str> = vm.disks.iter().map(|d| d.volume.as_str()).collect();
    let Some(d) = vm.disks.iter().find(|d| d.volume == disk) else {
        return Err(format!(
            "{} has no disk on volume {disk}; name the disk by the volume it is on: {}",
            vm.name,
            if on.is_empty() {
                "it has no disks".to_string()
            } else {
                on.join(", ")
            }
        ));
    };
    check_disk_move_vm(snap, vm)?;
    let Some(t) = snap.volume(to) else {
        let names: Vec<&str> = snap.volumes.iter().map(|v| v.name.as_str()).collect();
        return Err(format!(
            "there is no volume named {to:?}; volumes: {}",
            names.join(", ")
        ));
    };
    if t.name == disk {
        return Err(format!("{}'s disk is already on {to}", vm.name));
    }
    if !t.reachable_from(&vm.node) {
        let reach: Vec<&str> = snap
            .volumes
            .iter()
            .filter(|v| v.reachable_from(&vm.node) && v.name != disk)
            .map(|v| v.name.as_str())
            .collect();
        return Err(format!(
            "{to} is not reachable from {}, where {} runs; pick a volume {} reaches: {}",
            vm.node,
            vm.name,
            vm.node,
            reach.join(", ")
        ));
    }
    // A plain LUN is used by one node at a time: by the node that owns it.
    if t.kind == crate::cluster::VolumeKind::SharedLun
        && let Some(owner) = t.owner.as_deref().filter(|o| *o != vm.node)
    {
        return Err(format!(
            "{to} is a plain LUN in use by {owner}: only one node at a time may use it, and {} runs on {}; pick a cluster-shared volume",
            vm.name, vm.node
        ));
    }
    if t.kind == crate::cluster::VolumeKind::SharedLun
        && let Some(other) = snap
            .vms
            .iter()
            .find(|o| o.name != vm.name && o.disks.iter().any(|x| x.volume == t.name))
    {
        return Err(format!(
            "{to} is a plain LUN that holds {}: with {} on it too, neither could move live any more; pick a cluster-shared volume",
            other.name, vm.name
        ));
    }
    if t.free() < d.size {
        return Err(format!(
            "{to} has {} free but the disk needs {}; free space there or pick another volume",
            units::bytes(t.free()),
            units::bytes(d.size)
        ));
    }
    Ok(d.size)
}

/// The plan of a disk move, as the CLI prints it and the view confirms it:
/// "erp-app's disk on lun-legacy (120.0 GiB) → csv-gold on hv-01, while it
/// runs: block copy, then pivot".
pub fn disk_move_sentence(vm: &Vm, disk: &str, bytes: u64, to: &str) -> String {
    format!(
        "{}'s disk on {disk} ({}) → {to} on {}, while it runs: block copy, then pivot",
        vm.name,
        units::bytes(bytes),
        vm.node
    )
}

/// A cluster-shared volume for a disk of `bytes` now on `from`: reachable
/// from every node in `nodes`, with the most room.
pub fn csv_for(snap: &ClusterSnapshot, from: &str, bytes: u64, nodes: &[&str]) -> Option<String> {
    snap.volumes
        .iter()
        .filter(|v| {
            v.kind == VolumeKind::ClusterShared
                && v.name != from
                && v.free() >= bytes
                && nodes.iter().all(|n| v.reachable_from(n))
        })
        .max_by_key(|v| (v.free(), std::cmp::Reverse(v.name.clone())))
        .map(|v| v.name.clone())
}

/// Which path moves `vm` from `from` to `to`: `Some(resource)` through the
/// cluster manager that owns it, `None` plain libvirt, or the refusal when
/// the asked path would fight the manager (DESIGN §3.3: a VM moved behind
/// Pacemaker's back gets a second copy started on the source).
pub fn move_path(
    snap: &ClusterSnapshot,
    vm: &str,
    from: &str,
    to: &str,
    via: MovePath,
) -> Result<Option<String>, Refusal> {
    let refuse = |s: String| Err(Refusal::Manager(s));
    if let Some(why) = manager_hold(snap, vm, "move") {
        return refuse(why);
    }
    let Some(view) = &snap.manager else {
        return match via {
            MovePath::Manager => refuse(format!(
                "no cluster manager is configured or answering here, so {vm} cannot move through one; leave out --via pacemaker, or set [pacemaker] in the config"
            )),
            _ => Ok(None),
        };
    };
    let manager = view.title();
    match (snap.managed_vm(vm), via) {
        (Some(m), MovePath::Libvirt) => refuse(format!(
            "{vm} is {manager} resource {r}: a plain libvirt migration would make {manager} start a second copy of it on {from}; move it through {manager} (leave out --via libvirt), like `{}`",
            shell_line(&[
                "crm_resource",
                "--move",
                "--resource",
                &m.resource,
                "--node",
                to
            ]),
            r = m.resource
        )),
        (Some(m), _) => Ok(Some(m.resource.clone())),
        (None, MovePath::Manager) => refuse(format!(
            "{vm} is not a {manager} resource, so {manager} cannot move it; leave out --via pacemaker to move it with libvirt"
        )),
        (None, _) => Ok(None),
    }
}

/// Why vmshift must not `act` on `vm` (move, start, recover…) now: a
/// cluster manager may own it and cannot be asked. That is so while a
/// configured manager has never answered (it may own any VM), while it
/// does not answer and owned `vm` at its last answer or `vm` carries
/// vmshift's mark, and where `vm` carries the mark and no manager is
/// configured or answering at all. One sentence naming what did not
/// answer and since when; `None` where vmshift may act.
pub fn manager_hold(snap: &ClusterSnapshot, vm: &str, act: &str) -> Option<String> {
    let mark = snap.managed_mark(vm);
    let since = |ms: Option<u64>| {
        ms.filter(|ms| *ms > 0).map_or(String::new(), |ms| {
            format!(" since {}", units::utc_minute(ms))
        })
    };
    let Some(view) = &snap.manager else {
        let m = mark?;
        let manager = if m.manager == "pacemaker" {
            "Pacemaker"
        } else {
            "its cluster manager"
        };
        return Some(format!(
            "{vm} carries vmshift's mark that it is {manager} resource {r} (seen{s}), but no {manager} is configured or answering here, so vmshift will not {act} it behind its manager's back (a second copy would start); set [pacemaker] in the config (mode = \"on\" with ssh or command_prefix) so vmshift can ask it, or, if it really is no longer managed, remove the mark: `virsh metadata {q} {ns} --remove`",
            r = m.resource,
            s = since(Some(m.since_ms)),
            q = crate::cluster::text::shell_word(vm),
            ns = "urn:vmshift:metadata:1",
        ));
    };
    let manager = view.title();
    let err = view.error.as_deref().unwrap_or("no answer");
    if !view.known {
        // Which VMs it owns is unknown: acting on one might run it twice.
        return Some(format!(
            "{manager} has not answered{s} ({err}), so vmshift cannot tell whether {vm} is one of its resources, and acting on a resource behind its back starts a second copy; vmshift will not {act} it: fix the [pacemaker] settings or wait until it answers",
            s = since(view.error_since_ms),
        ));
    }
    view.error.as_ref()?;
    let resource = snap
        .managed_vm(vm)
        .map(|m| m.resource.as_str())
        .or(mark.map(|m| m.resource.as_str()))?;
    Some(format!(
        "{manager} does not answer{s} ({err}), and {vm} is its resource {resource}, so it cannot be asked to {act} it and vmshift will not do it behind its back; try again when it answers",
        s = since(view.error_since_ms),
    ))
}

/// What a move through the cluster manager means, in a few sentences for
/// the plan and the confirm dialog: who moves it, what stays behind, which
/// options are the manager's.
pub fn manager_note(
    resource: &str,
    to: &str,
    vm: &str,
    o: &crate::cluster::MigrationOptions,
) -> Vec<String> {
    let after = if o.keep_placement {
        format!(
            "its move constraint stays{}, keeping {vm} on {to}",
            o.placement_lifetime
                .as_deref()
                .map_or(String::new(), |l| format!(" for {l}"))
        )
    } else {
        "its move constraint is cleared afterwards".to_string()
    };
    vec![
        format!(
            "Pacemaker moves {vm} (resource {resource}, `{}`) and runs the live migration; vmshift follows its rounds; {after}",
            shell_line(&["crm_resource", "--move", "--resource", resource, "--node", to])
        ),
        "auto-converge, post-copy and what happens on a stall are Pacemaker's (the resource's migrate_options); max downtime and bandwidth are applied to its migration live".to_string(),
    ]
}

/// What an allowed migration brings along.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Plain LUNs whose ownership moves to the target with the VM.
    pub lun_moves: Vec<String>,
    /// Disks copied to the target (shared-nothing): (source volume, target volume, bytes).
    pub copies: Vec<(String, String, u64)>,
    /// Placement rules the move breaks: should rules (the confirmation
    /// names them) and must rules the operator overrode (with the reason).
    pub breaks: Vec<BrokenRule>,
    /// VMs of a together rule that move to the same node after it.
    pub followers: Vec<String>,
}

impl Placement {
    pub fn storage_bytes(&self) -> u64 {
        self.copies.iter().map(|c| c.2).sum()
    }
}

/// Refuses a cordoned node: it takes no VM. When the cordon list cannot
/// be read, every node is refused (it fails closed).
pub fn cordon_check(snap: &ClusterSnapshot, node: &Node) -> Result<(), Refusal> {
    if let Some(e) = &snap.cordons_unreadable {
        return Err(Refusal::CordonsUnreadable(e.clone()));
    }
    match &node.cordon {
        Some(c) => Err(Refusal::Cordoned {
            node: node.name.clone(),
            since: c.since_text(),
            by: c.by.clone(),
        }),
        None => Ok(()),
    }
}

/// Where a disk on `from` (a volume `node` cannot reach) is copied to on
/// `node`: a local volume of `node` with room for it (beyond what earlier
/// disks of the same VM were promised), the one whose pool has the same
/// name as the source's (`default@hv1` → `default@hv2`) first, else the one
/// with the most room.
pub fn copy_target<'a>(
    snap: &'a ClusterSnapshot,
    from: &Volume,
    node: &str,
    bytes: u64,
    promised: &[(String, u64)],
) -> Option<&'a Volume> {
    let pool = |name: &str| name.split('@').next().unwrap_or(name).to_string();
    let room = |v: &Volume| {
        let already = promised
            .iter()
            .find(|(n, _)| *n == v.name)
            .map_or(0, |p| p.1);
        v.free().saturating_sub(already)
    };
    let fits: Vec<&Volume> = snap
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Local && v.reachable_from(node) && room(v) >= bytes)
        .collect();
    fits.iter()
        .find(|v| pool(&v.name) == pool(&from.name))
        .or_else(|| {
            fits.iter()
                .max_by_key(|v| (room(v), std::cmp::Reverse(v.name.clone())))
        })
        .copied()
}

/// A VM a cluster manager owns goes where that manager can run it.
fn manager_check(snap: &ClusterSnapshot, vm: &Vm, node: &Node) -> Result<(), Refusal> {
    if let (Some(m), Some(view)) = (snap.managed_vm(&vm.name), &snap.manager) {
        let manager = view.title();
        match snap.managed_node(&node.name) {
            None => {
                return Err(Refusal::NotManagerNode {
                    vm: vm.name.clone(),
                    resource: m.resource.clone(),
                    node: node.name.clone(),
                    manager,
                });
            }
            Some(n) => {
                if let Some(state) = n.out_of_service() {
                    return Err(Refusal::ManagerNodeOut {
                        node: node.name.clone(),
                        manager,
                        state,
                    });
                }
            }
        }
        if !m.managed {
            return Err(Refusal::Unmanaged {
                vm: vm.name.clone(),
                resource: m.resource.clone(),
                manager,
                why: if view.maintenance {
                    "the cluster is in maintenance mode"
                } else {
                    "the resource is unmanaged"
                },
            });
        }
        if !m.allow_migrate {
            return Err(Refusal::NoLiveMove {
                vm: vm.name.clone(),
                resource: m.resource.clone(),
                manager,
            });
        }
    }
    Ok(())
}

/// Checks whether `vm` may live-migrate to `node`, both taken from `snap`.
/// `copy_storage` allows copying disks the target cannot reach. The
/// placement rules are kept (see [`check_with`]); none is overridden.
pub fn check(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    copy_storage: bool,
) -> Result<Placement, Refusal> {
    check_with(
        snap,
        vm,
        node,
        copy_storage,
        &VmRules::new(snap, vm),
        &RuleOverrides::none(),
    )
}

/// [`check`] as a backend makes it before it starts a migration: with the
/// leave to break rules that the request carries (`broken_rules`).
pub fn check_request(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    options: &crate::cluster::MigrationOptions,
) -> Result<Placement, Refusal> {
    check_with(
        snap,
        vm,
        node,
        options.copy_storage,
        &VmRules::new(snap, vm),
        &RuleOverrides::from_broken(&options.broken_rules),
    )
}

/// [`check`] with `vm`'s rules prepared once (ranked targets check every
/// node) and the operator's overrides. A must rule refuses the node unless
/// overridden (vmshift's own rules only); a should rule does not refuse,
/// it is listed in [`Placement::breaks`]. The VMs of a together rule
/// follow `vm` to `node`: each must be able to go there too, and the node
/// must hold them all.
pub fn check_with(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    copy_storage: bool,
    rules: &VmRules,
    overrides: &RuleOverrides,
) -> Result<Placement, Refusal> {
    let mut placement = check_basic(snap, vm, node, copy_storage)?;
    if rules.is_empty() {
        return Ok(placement);
    }
    for b in rules.breaches(node, true) {
        if b.rule.strength == Strength::Must && !overrides.allows(b.rule) {
            return Err(rule_refusal(vm, node, &b.sentence, b.rule));
        }
        placement.breaks.push(b.broken(overrides));
    }
    let followers = rules.followers(&node.name);
    let mut need = vm.memory;
    for (name, rule) in &followers {
        let Some(f) = snap.vm(name) else { continue };
        let own = || {
            VmRules::new(snap, f)
                .breaches(node, true)
                .into_iter()
                .find(|b| b.rule.strength == Strength::Must && !overrides.allows(b.rule))
        };
        let why = match check_basic(snap, f, node, copy_storage) {
            Err(Refusal::SameNode { .. }) => continue,
            Err(r) => Some(r.to_string()),
            Ok(_) if let Some(b) = own() => Some(b.sentence),
            Ok(_) => {
                need += f.memory;
                (need > node.mem_free()).then(|| {
                    format!(
                        "{} has {} free, and {} with the VMs that follow it need {}",
                        node.name,
                        units::bytes(node.mem_free()),
                        vm.name,
                        units::bytes(need)
                    )
                })
            }
        };
        match why {
            Some(why) if rule.strength == Strength::Must && !overrides.allows(rule) => {
                let sentence = format!(
                    "{name} must follow it there ({}) but cannot: {why}",
                    rule.tag()
                );
                return Err(rule_refusal(vm, node, &sentence, rule));
            }
            Some(why) => placement.breaks.push(BrokenRule {
                rule: rule.name.clone(),
                strength: rule.strength,
                origin: rule.origin.clone(),
                sentence: format!(
                    "{name} stays apart from {} ({why}): {}",
                    vm.name,
                    rule.tag()
                ),
                reason: (rule.strength == Strength::Must)
                    .then(|| overrides.reason.clone())
                    .flatten(),
            }),
            None => placement.followers.push(name.to_string()),
        }
    }
    Ok(placement)
}

fn rule_refusal(vm: &Vm, node: &Node, sentence: &str, rule: &crate::cluster::Rule) -> Refusal {
    Refusal::Rule {
        vm: vm.name.clone(),
        node: node.name.clone(),
        sentence: sentence.to_string(),
        rule: rule.name.clone(),
        pacemaker_id: match &rule.origin {
            RuleOrigin::Pacemaker { id, .. } => Some(id.clone()),
            _ => None,
        },
    }
}

/// The nodes `vm` may go to (placement rules kept, none overridden), the
/// ones that keep every rule first, then by most memory free.
pub fn targets(snap: &ClusterSnapshot, vm: &Vm, copy_storage: bool) -> Vec<(String, Placement)> {
    let rules = VmRules::new(snap, vm);
    let none = RuleOverrides::none();
    let mut out: Vec<(String, Placement, u64)> = snap
        .nodes
        .iter()
        .filter_map(|n| {
            check_with(snap, vm, n, copy_storage, &rules, &none)
                .ok()
                .map(|p| (n.name.clone(), p, n.mem_free()))
        })
        .collect();
    out.sort_by(|a, b| {
        a.1.breaks
            .len()
            .cmp(&b.1.breaks.len())
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    out.into_iter().map(|(n, p, _)| (n, p)).collect()
}

/// Everything but the placement rules: state, cordon, cluster manager,
/// CPU, memory, storage.
fn check_basic(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    copy_storage: bool,
) -> Result<Placement, Refusal> {
    if vm.node == node.name {
        return Err(Refusal::SameNode {
            vm: vm.name.clone(),
            node: node.name.clone(),
        });
    }
    if snap.active_migration_of(&vm.name).is_some() || vm.state == VmState::Migrating {
        return Err(Refusal::AlreadyMigrating {
            vm: vm.name.clone(),
        });
    }
    if vm.state != VmState::Running {
        return Err(Refusal::VmNotRunning {
            vm: vm.name.clone(),
            state: vm.state.label(),
        });
    }
    if node.state != NodeState::Up {
        return Err(Refusal::NodeNotUp {
            node: node.name.clone(),
            state: node.state.label(),
        });
    }
    cordon_check(snap, node)?;
    manager_check(snap, vm, node)?;
    if !cpu::compatible(&vm.cpu_model, &node.cpu_model) {
        return Err(Refusal::CpuIncompatible {
            vm: vm.name.clone(),
            vm_model: vm.cpu_model.clone(),
            node: node.name.clone(),
            node_model: node.cpu_model.clone(),
        });
    }
    if node.mem_free() < vm.memory {
        return Err(Refusal::NotEnoughMemory {
            vm: vm.name.clone(),
            node: node.name.clone(),
            need: vm.memory,
            free: node.mem_free(),
        });
    }

    let mut placement = Placement::default();
    // Space already promised to earlier disks of this VM, per target volume.
    let mut promised: Vec<(String, u64)> = Vec::new();
    for disk in &vm.disks {
        let Some(volume) = snap.volume(&disk.volume) else {
            continue;
        };
        if volume.kind == VolumeKind::SharedLun {
            let others: Vec<String> = snap
                .vms
                .iter()
                .filter(|o| o.name != vm.name && o.disks.iter().any(|d| d.volume == volume.name))
                .map(|o| o.name.clone())
                .collect();
            if !others.is_empty() {
                return Err(Refusal::LunShared {
                    vm: vm.name.clone(),
                    volume: volume.name.clone(),
                    others,
                    csv: csv_for(snap, &volume.name, disk.size, &[&vm.node, &node.name]),
                });
            }
        }
        if volume.reachable_from(&node.name) {
            if volume.kind == VolumeKind::SharedLun && !placement.lun_moves.contains(&volume.name) {
                placement.lun_moves.push(volume.name.clone());
            }
            continue;
        }
        if !copy_storage {
            return Err(Refusal::VolumeNotReachable {
                vm: vm.name.clone(),
                volume: volume.name.clone(),
                node: node.name.clone(),
                copy_bytes: vm
                    .disks
                    .iter()
                    .filter(|d| {
                        snap.volume(&d.volume)
                            .is_some_and(|v| !v.reachable_from(&node.name))
                    })
                    .map(|d| d.size)
                    .sum(),
            });
        }
        let dest = copy_target(snap, volume, &node.name, disk.size, &promised);
        let Some(dest) = dest else {
            return Err(Refusal::NoRoomForCopy {
                vm: vm.name.clone(),
                volume: volume.name.clone(),
                node: node.name.clone(),
                copy_bytes: disk.size,
            });
        };
        match promised.iter_mut().find(|(n, _)| *n == dest.name) {
            Some(p) => p.1 += disk.size,
            None => promised.push((dest.name.clone(), disk.size)),
        }
        placement
            .copies
            .push((volume.name.clone(), dest.name.clone(), disk.size));
    }
    Ok(placement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::GIB;

    fn local(name: &str, node: &str, capacity: u64, used: u64) -> Volume {
        Volume {
            name: name.into(),
            kind: VolumeKind::Local,
            owner: Some(node.into()),
            capacity: capacity * GIB,
            used: used * GIB,
            reachable_from: vec![node.into()],
        }
    }

    fn snap(volumes: Vec<Volume>) -> ClusterSnapshot {
        ClusterSnapshot {
            cluster: "t".into(),
            backend: "sim".into(),
            at_ms: 0,
            nodes: Vec::new(),
            volumes,
            vms: Vec::new(),
            migrations: Vec::new(),
            events: Vec::new(),
            costs: Default::default(),
            manager: None,
            recoveries: Vec::new(),
            alarms: Vec::new(),
            cordons_unreadable: None,
            storage_moves: Vec::new(),
            marks: Vec::new(),
            stale_copies: Vec::new(),
            rules: Vec::new(),
        }
    }

    #[test]
    fn a_copy_goes_to_the_pool_of_the_same_name_else_the_one_with_most_room() {
        let from = local("default@hv1", "hv1", 100, 10);
        let s = snap(vec![
            from.clone(),
            local("fast@hv2", "hv2", 500, 0),
            local("default@hv2", "hv2", 100, 50),
            local("big@hv3", "hv3", 900, 0),
        ]);
        let t = copy_target(&s, &from, "hv2", 20 * GIB, &[]).unwrap();
        assert_eq!(t.name, "default@hv2", "same pool name, though smaller");
        // No room left there: the one with the most room.
        let t = copy_target(&s, &from, "hv2", 60 * GIB, &[]).unwrap();
        assert_eq!(t.name, "fast@hv2");
        // What earlier disks of the VM were promised counts.
        let promised = [("default@hv2".to_string(), 40 * GIB)];
        let t = copy_target(&s, &from, "hv2", 20 * GIB, &promised).unwrap();
        assert_eq!(t.name, "fast@hv2");
        // Other names: the most room among the target's own.
        let lab = snap(vec![
            local("local-a", "a", 250, 27),
            local("small-b", "b", 10, 0),
            local("local-b", "b", 250, 27),
        ]);
        let t = copy_target(&lab, &lab.volumes[0], "b", GIB, &[]).unwrap();
        assert_eq!(t.name, "local-b");
        assert!(copy_target(&lab, &lab.volumes[0], "b", 300 * GIB, &[]).is_none());
        assert!(copy_target(&lab, &lab.volumes[0], "c", GIB, &[]).is_none());
    }
}

/// A cluster manager that may own a VM and cannot be asked holds every
/// action on it: moves (the drag, `migrate`, drain plans), starts and
/// stops, recovery.
#[cfg(test)]
mod manager_hold_tests {
    use super::*;
    use crate::backends::Backend;
    use crate::backends::sim::{SimCluster, clock::Speed};
    use crate::cluster::{ManagedMark, ManagedVm, ManagerView, StaleCopy, VmAction};
    use crate::plan::{check_vm_action, plan_drain, plan_recover};

    fn snap() -> ClusterSnapshot {
        SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap()
    }

    fn owning(vm: &str) -> ManagerView {
        ManagerView {
            kind: "pacemaker".into(),
            known: true,
            vms: vec![ManagedVm {
                resource: "vm-res".into(),
                domain: vm.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn mark(vm: &str) -> ManagedMark {
        ManagedMark {
            vm: vm.into(),
            manager: "pacemaker".into(),
            resource: "vm-res".into(),
            since_ms: 1_765_000_000_000,
        }
    }

    fn libvirt_move(s: &ClusterSnapshot, vm: &str) -> Result<Option<String>, Refusal> {
        let v = s.vm(vm).unwrap();
        let to = s.nodes.iter().find(|n| n.name != v.node).unwrap();
        move_path(s, vm, &v.node, &to.name, MovePath::Auto)
    }

    #[test]
    fn nothing_holds_an_unmarked_vm_without_a_manager() {
        let s = snap();
        assert_eq!(manager_hold(&s, "web-01", "move"), None);
        assert_eq!(libvirt_move(&s, "web-01"), Ok(None));
    }

    #[test]
    fn a_manager_that_never_answered_holds_every_vm() {
        let mut s = snap();
        s.manager = Some(ManagerView {
            kind: "pacemaker".into(),
            known: false,
            error: Some("`crm_mon -1` did not answer within 5000 ms".into()),
            error_since_ms: Some(1_765_000_000_000),
            ..Default::default()
        });
        let e = manager_hold(&s, "web-01", "move").unwrap();
        assert!(
            e.starts_with(
                "Pacemaker has not answered since 2025-12-06 05:46 UTC (`crm_mon -1` did not answer"
            ),
            "{e}"
        );
        assert!(matches!(
            libvirt_move(&s, "db-main"),
            Err(Refusal::Manager(_))
        ));
        let vm = s.vm("web-01").unwrap().clone();
        assert!(check_vm_action(&s, &vm, VmAction::PowerOff).is_err());
        assert!(
            check_vm_action(&s, &vm, VmAction::Reboot).is_ok(),
            "a reboot keeps the VM where it is"
        );
        let node = vm.node.clone();
        let plan = plan_drain(&s, &node, &Default::default(), &[]);
        assert!(plan.moves.is_empty(), "{:?}", plan.moves);
        assert!(
            plan.stuck
                .iter()
                .all(|st| st.reason.contains("has not answered")),
            "{:?}",
            plan.stuck
        );
        assert!(!plan.stuck.is_empty());
    }

    #[test]
    fn a_silent_manager_holds_what_it_owned_or_what_carries_the_mark() {
        let mut s = snap();
        let mut view = owning("web-01");
        view.error = Some("`crm_mon -1` failed (exit 102): not connected".into());
        view.error_since_ms = Some(1_765_000_000_000);
        s.manager = Some(view);
        let e = manager_hold(&s, "web-01", "move").unwrap();
        assert!(
            e.contains("does not answer since") && e.contains("resource vm-res"),
            "{e}"
        );
        assert_eq!(
            manager_hold(&s, "db-main", "move"),
            None,
            "not its resource"
        );
        s.marks.push(mark("db-main"));
        assert!(manager_hold(&s, "db-main", "move").is_some(), "marked");
        // Answering again: its resources move through it, others freely.
        s.manager.as_mut().unwrap().error = None;
        assert_eq!(manager_hold(&s, "web-01", "move"), None);
        assert_eq!(libvirt_move(&s, "web-01"), Ok(Some("vm-res".into())));
        assert_eq!(manager_hold(&s, "db-main", "move"), None);
    }

    #[test]
    fn a_marked_vm_is_held_where_no_manager_is_configured() {
        let mut s = snap();
        s.marks.push(mark("web-01"));
        let e = manager_hold(&s, "web-01", "start").unwrap();
        assert!(
            e.contains("carries vmshift's mark") && e.contains("will not start it"),
            "{e}"
        );
        assert!(
            e.contains("virsh metadata web-01 urn:vmshift:metadata:1 --remove"),
            "{e}"
        );
        assert!(matches!(
            libvirt_move(&s, "web-01"),
            Err(Refusal::Manager(_))
        ));
        let vm = s.vm("web-01").unwrap().clone();
        s.nodes
            .iter_mut()
            .find(|n| n.name == vm.node)
            .unwrap()
            .state = NodeState::Down;
        let p = plan_recover(&s, &vm.node).unwrap();
        assert!(p.restarts.iter().all(|r| r.vm != "web-01"));
        let c = p.cannot.iter().find(|c| c.vm == "web-01").unwrap();
        assert!(c.reason.contains("will not restart it"), "{}", c.reason);
    }

    #[test]
    fn an_answering_manager_starts_and_stops_its_own_vms() {
        let mut s = snap();
        s.manager = Some(owning("web-01"));
        let vm = s.vm("web-01").unwrap().clone();
        let e = check_vm_action(&s, &vm, VmAction::Shutdown).unwrap_err();
        assert!(e.contains("`crm resource stop vm-res`"), "{e}");
        let other = s.vm("db-main").unwrap().clone();
        assert!(check_vm_action(&s, &other, VmAction::Shutdown).is_ok());
    }

    #[test]
    fn a_stale_copy_is_never_started() {
        let mut s = snap();
        let vm = s.vm("web-01").unwrap().clone();
        s.stale_copies.push(StaleCopy {
            vm: "web-01".into(),
            node: "hv-04".into(),
            runs_on: vm.node.clone(),
            autostart: false,
            remove: "virsh -c qemu:///system undefine web-01".into(),
        });
        let e = check_vm_action(&s, &vm, VmAction::Start).unwrap_err();
        assert!(
            e.starts_with("the shut-off copy of web-01 on hv-04 is stale")
                && e.ends_with("`virsh -c qemu:///system undefine web-01`"),
            "{e}"
        );
    }
}
