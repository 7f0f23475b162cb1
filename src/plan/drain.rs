//! Drain planning: where every running VM of a node can go, one after the
//! other, each move accounted for before the next is placed.

use serde::Serialize;

use super::rules::VmRules;
use super::{Placement, Prediction, check_with, inputs_for, predict};
use crate::cluster::{
    BrokenRule, ClusterSnapshot, Migration, MigrationInputs, MigrationOptions, NodeState,
    RuleOverrides, VmState, VolumeKind,
};

/// A storage move (`vmshift move-disk`) a drain runs before a migration:
/// the VM's disk from a shared LUN to a cluster-shared volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskMovePlan {
    pub vm: String,
    /// The volume the disk is on now (it names the disk).
    pub from: String,
    pub to: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainMove {
    pub vm: String,
    pub to: String,
    /// Storage moves to run first (with `--storage-moves`).
    pub disk_moves: Vec<DiskMovePlan>,
    pub placement: Placement,
    pub inputs: MigrationInputs,
    pub prediction: Prediction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stuck {
    pub vm: String,
    /// One sentence with the way out.
    pub reason: String,
    /// A few words, for places with little room.
    pub short: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainPlan {
    pub node: String,
    /// In the order to run them.
    pub moves: Vec<DrainMove>,
    /// Running VMs that cannot go anywhere, with the reason.
    pub stuck: Vec<Stuck>,
    /// VMs that are not running and stay where they are.
    pub left: Vec<String>,
}

impl DrainPlan {
    pub fn complete(&self) -> bool {
        self.stuck.is_empty()
    }
}

/// Plans moving every running VM off `node`, biggest first, each to the
/// allowed node where it converges and leaves the most memory free.
pub fn plan_drain(
    snap: &ClusterSnapshot,
    node: &str,
    options: &MigrationOptions,
    history: &[Migration],
) -> DrainPlan {
    plan_drain_with(snap, node, options, history, false, &RuleOverrides::none())
}

/// A target for one VM, and how good it is.
struct Best {
    /// Keeps every placement rule (no should rule broken, none overridden).
    keeps_rules: bool,
    converges: bool,
    free_after: u64,
    to: String,
    placement: Placement,
    inputs: MigrationInputs,
    prediction: Prediction,
}

impl Best {
    /// Targets that keep every rule first, then those where it converges,
    /// then the most memory left.
    fn key(&self) -> (bool, bool, u64) {
        (self.keeps_rules, self.converges, self.free_after)
    }
}

/// The best target for `vm` (see [`plan_drain`]), or the refusal of the
/// most promising node.
fn best_target(
    s: &ClusterSnapshot,
    node: &str,
    vm: &crate::cluster::Vm,
    options: &MigrationOptions,
    history: &[Migration],
    overrides: &RuleOverrides,
) -> (Option<Best>, Option<(u64, super::Refusal)>) {
    let mut best: Option<Best> = None;
    let mut refusal: Option<(u64, super::Refusal)> = None;
    let rules = VmRules::new(s, vm);
    // Targets with the same link and history get the same prediction.
    let mut known: Vec<(MigrationInputs, Prediction)> = Vec::new();
    for n in s.nodes.iter().filter(|n| n.name != node) {
        match check_with(s, vm, n, options.copy_storage, &rules, overrides) {
            Ok(p) => {
                let inputs = inputs_for(s, vm, n, options, p.storage_bytes(), history);
                let pred = match known.iter().find(|(i, _)| *i == inputs) {
                    Some((_, pred)) => pred.clone(),
                    None => {
                        let pred = predict(&inputs, options);
                        known.push((inputs.clone(), pred.clone()));
                        pred
                    }
                };
                let here = Best {
                    keeps_rules: p.breaks.is_empty(),
                    converges: pred.converges,
                    free_after: n.mem_free() - vm.memory,
                    to: n.name.clone(),
                    placement: p,
                    inputs,
                    prediction: pred,
                };
                if best.as_ref().is_none_or(|b| b.key() < here.key()) {
                    best = Some(here);
                }
            }
            Err(r) => {
                // Keep the reason given by the most promising node.
                let free = if n.state == NodeState::Up {
                    n.mem_free()
                } else {
                    0
                };
                if refusal.as_ref().is_none_or(|(f, _)| free > *f) {
                    refusal = Some((free, r));
                }
            }
        }
    }
    (best, refusal)
}

/// Accounts `vm` moving to `to` in the planning copy `s`: its memory, its
/// disks copied along, the LUNs that change owner.
fn account(s: &mut ClusterSnapshot, vm: &str, memory: u64, to: &str, placement: &Placement) {
    if let Some(n) = s.nodes.iter_mut().find(|n| n.name == to) {
        n.mem_used += memory;
    }
    if let Some(v) = s.vms.iter_mut().find(|v| v.name == vm) {
        v.node = to.to_string();
        for (from, dest, _) in &placement.copies {
            for d in v.disks.iter_mut().filter(|d| d.volume == *from) {
                d.volume = dest.clone();
            }
        }
    }
    // Disks copied with it take their room on the target's volumes (the
    // room they leave is freed only once it went).
    for (_, dest, bytes) in &placement.copies {
        if let Some(v) = s.volumes.iter_mut().find(|v| v.name == *dest) {
            v.used += bytes;
        }
    }
    for lun in &placement.lun_moves {
        if let Some(v) = s
            .volumes
            .iter_mut()
            .find(|v| v.name == *lun && v.kind == VolumeKind::SharedLun)
        {
            v.owner = Some(to.to_string());
        }
    }
}

/// A VM with a target where it will not converge with these options is
/// stuck, with what would move it.
fn not_converging(
    vm: &str,
    to: &str,
    prediction: &Prediction,
    options: &MigrationOptions,
) -> Stuck {
    let mut ways: Vec<String> = prediction.advice.iter().map(|a| a.to_string()).collect();
    ways.push(format!(
        "shut {vm} down for the window (`vmshift shutdown {}`)",
        crate::cluster::text::shell_word(vm)
    ));
    Stuck {
        vm: vm.to_string(),
        reason: format!(
            "{vm} cannot leave with these options: on the best node ({to}) it {}; what would move it: {}",
            prediction.summary(options.max_downtime_ms),
            ways.join("; or ")
        ),
        short: "will not converge".to_string(),
    }
}

/// Its disk on a LUN shared with others goes to a cluster-shared volume
/// first (`--storage-moves`), if that frees it: the planning copy with the
/// disk moved, the storage move, and the target then.
fn free_by_storage_move(
    s: &ClusterSnapshot,
    node: &str,
    vm: &crate::cluster::Vm,
    volume: &str,
    options: &MigrationOptions,
    history: &[Migration],
    overrides: &RuleOverrides,
) -> Option<(ClusterSnapshot, DiskMovePlan, Best)> {
    let bytes: u64 = vm
        .disks
        .iter()
        .filter(|d| d.volume == *volume)
        .map(|d| d.size)
        .sum();
    let csv = super::placement::csv_for(s, volume, bytes, &[node])?;
    let mut moved = s.clone();
    if let Some(v) = moved.vms.iter_mut().find(|v| v.name == vm.name) {
        for d in v.disks.iter_mut().filter(|d| d.volume == *volume) {
            d.volume = csv.clone();
        }
    }
    if let Some(c) = moved.volumes.iter_mut().find(|v| v.name == csv) {
        c.used += bytes;
    }
    let vm2 = moved.vm(&vm.name).expect("still there").clone();
    let (best, _) = best_target(&moved, node, &vm2, options, history, overrides);
    let best = best?;
    let disk_move = DiskMovePlan {
        vm: vm.name.clone(),
        from: volume.to_string(),
        to: csv,
        bytes,
    };
    Some((moved, disk_move, best))
}

/// [`plan_drain`]; with `storage_moves`, a VM stuck on a plain LUN it
/// shares with others gets its disk moved to a cluster-shared volume first
/// (`vmshift move-disk`), which frees it and leaves the LUN to the others.
/// `overrides` are the operator's leave to break named must rules. The
/// VMs of a together rule follow their group's first VM to its node.
pub fn plan_drain_with(
    snap: &ClusterSnapshot,
    node: &str,
    options: &MigrationOptions,
    history: &[Migration],
    storage_moves: bool,
    overrides: &RuleOverrides,
) -> DrainPlan {
    let mut s = snap.clone();
    let mut vms: Vec<(String, u64, VmState)> = s
        .vms_on(node)
        .map(|v| (v.name.clone(), v.memory, v.state))
        .collect();
    vms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut plan = DrainPlan {
        node: node.to_string(),
        moves: Vec::new(),
        stuck: Vec::new(),
        left: Vec::new(),
    };
    for (name, memory, state) in vms {
        if plan.moves.iter().any(|m| m.vm == name) {
            continue; // followed its group already
        }
        if !matches!(state, VmState::Running) {
            plan.left.push(name);
            continue;
        }
        if let Some(reason) = super::manager_hold(&s, &name, "move") {
            plan.stuck.push(Stuck {
                vm: name,
                reason,
                short: "cluster manager silent".to_string(),
            });
            continue;
        }
        let vm = s.vm(&name).expect("listed from the snapshot").clone();
        let (mut best, refusal) = best_target(&s, node, &vm, options, history, overrides);
        let mut disk_moves = Vec::new();
        if let (None, true, Some((_, super::Refusal::LunShared { volume, .. }))) =
            (&best, storage_moves, &refusal)
            && let Some((moved, disk_move, b)) =
                free_by_storage_move(&s, node, &vm, volume, options, history, overrides)
        {
            s = moved;
            disk_moves.push(disk_move);
            best = Some(b);
        }
        match best {
            Some(b) if !b.converges => {
                plan.stuck
                    .push(not_converging(&name, &b.to, &b.prediction, options));
            }
            Some(b) => {
                account(&mut s, &name, memory, &b.to, &b.placement);
                let followers = b.placement.followers.clone();
                let to = b.to.clone();
                plan.moves.push(DrainMove {
                    vm: name,
                    to: b.to,
                    disk_moves,
                    placement: b.placement,
                    inputs: b.inputs,
                    prediction: b.prediction,
                });
                follow(
                    &mut s, &mut plan, &followers, &to, options, history, overrides,
                );
            }
            None => {
                let (reason, short) = refusal.map_or_else(
                    || {
                        (
                            "there is no other node to move it to".to_string(),
                            "no other node",
                        )
                    },
                    |(_, r)| (r.to_string(), r.short()),
                );
                plan.stuck.push(Stuck {
                    vm: name,
                    reason,
                    short: short.to_string(),
                });
            }
        }
    }
    plan
}

/// The VMs of a together rule move after their group's first one, to the
/// same node (the check of the first already found each can go there).
fn follow(
    s: &mut ClusterSnapshot,
    plan: &mut DrainPlan,
    followers: &[String],
    to: &str,
    options: &MigrationOptions,
    history: &[Migration],
    overrides: &RuleOverrides,
) {
    for f in followers {
        let (Some(vm), Some(n)) = (s.vm(f).cloned(), s.node(to).cloned()) else {
            continue;
        };
        let rules = VmRules::new(s, &vm);
        match check_with(s, &vm, &n, options.copy_storage, &rules, overrides) {
            Ok(p) => {
                let inputs = inputs_for(s, &vm, &n, options, p.storage_bytes(), history);
                let prediction = predict(&inputs, options);
                account(s, f, vm.memory, to, &p);
                plan.moves.push(DrainMove {
                    vm: f.clone(),
                    to: to.to_string(),
                    disk_moves: Vec::new(),
                    placement: p,
                    inputs,
                    prediction,
                });
            }
            Err(r) => plan.stuck.push(Stuck {
                vm: f.clone(),
                reason: r.to_string(),
                short: r.short().to_string(),
            }),
        }
    }
}

impl DrainPlan {
    /// The placement rules the plan breaks (should rules, and must rules
    /// the operator overrode), once each.
    pub fn breaks(&self) -> Vec<&BrokenRule> {
        let mut out: Vec<&BrokenRule> = Vec::new();
        for b in self.moves.iter().flat_map(|m| &m.placement.breaks) {
            if !out.iter().any(|o| o.sentence == b.sentence) {
                out.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Backend;
    use crate::backends::sim::{SimCluster, clock::Speed};

    fn snap() -> ClusterSnapshot {
        SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap()
    }

    #[test]
    fn vms_sharing_a_lun_are_stuck_and_the_rest_placed() {
        let p = plan_drain(&snap(), "hv-01", &MigrationOptions::default(), &[]);
        let moved: Vec<&str> = p.moves.iter().map(|m| m.vm.as_str()).collect();
        assert_eq!(moved, ["api-01", "web-01"], "biggest first");
        let stuck: Vec<&str> = p.stuck.iter().map(|s| s.vm.as_str()).collect();
        assert_eq!(stuck, ["erp-app", "erp-report"]);
        assert!(p.stuck[0].reason.contains("LUN"), "{}", p.stuck[0].reason);
        assert!(
            p.moves
                .iter()
                .all(|m| m.to != "hv-01" && m.prediction.converges)
        );
    }

    #[test]
    fn capacity_is_counted_across_moves() {
        // hv-04, the only node left, has 10 GiB free: room for api-01 (8 GiB)
        // or web-01 (4 GiB), each on its own, but not for both.
        let mut s = snap();
        for n in s.nodes.iter_mut() {
            match n.name.as_str() {
                "hv-02" | "hv-03" => n.state = NodeState::Maintenance,
                "hv-04" => n.mem_used = n.mem_total - 10 * crate::cluster::GIB,
                _ => {}
            }
        }
        let free = s.node("hv-04").unwrap().mem_free();
        for vm in ["api-01", "web-01"] {
            assert!(s.vm(vm).unwrap().memory <= free, "{vm} alone would fit");
        }
        let p = plan_drain(&s, "hv-01", &MigrationOptions::default(), &[]);
        let to_04: Vec<&DrainMove> = p.moves.iter().filter(|m| m.to == "hv-04").collect();
        let mem = |vm: &str| s.vm(vm).unwrap().memory;
        let used: u64 = to_04.iter().map(|m| mem(&m.vm)).sum();
        assert!(!to_04.is_empty(), "some VMs go to hv-04: {:?}", p.moves);
        assert!(used <= free, "never more than fits: {used} > {free}");
        assert_eq!(to_04.len(), p.moves.len(), "hv-04 is the only node left");
        // The rest are stuck, and the ones stuck for memory would not have
        // fitted into what the moves left.
        let running: Vec<&str> = s
            .vms_on("hv-01")
            .filter(|v| v.state == VmState::Running)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(p.moves.len() + p.stuck.len(), running.len());
        assert_eq!(to_04.len(), 1, "one of the two: {:?}", p.moves);
        assert_eq!(to_04[0].vm, "api-01", "the biggest first");
        let for_memory: Vec<&Stuck> = p
            .stuck
            .iter()
            .filter(|st| st.reason.contains("free"))
            .collect();
        assert!(
            !for_memory.is_empty(),
            "some stay for lack of memory: {:?}",
            p.stuck
        );
        for st in for_memory {
            assert!(
                mem(&st.vm) > free - used,
                "{} ({} bytes) would have fitted into the {} bytes left",
                st.vm,
                mem(&st.vm),
                free - used
            );
        }
    }

    #[test]
    fn storage_moves_free_the_vms_that_share_a_lun() {
        let s = snap();
        let o = MigrationOptions::default();
        // Without: both stuck, each naming the move-disk that frees it.
        let p = plan_drain_with(&s, "hv-01", &o, &[], false, &RuleOverrides::none());
        assert_eq!(p.stuck.len(), 2);
        for st in &p.stuck {
            assert!(
                st.reason
                    .contains(&format!("vmshift move-disk {} lun-legacy csv-", st.vm)),
                "{}",
                st.reason
            );
        }
        // With: every running VM leaves; one disk moves to a cluster-shared
        // volume first, and the other VM takes the LUN along.
        let p = plan_drain_with(&s, "hv-01", &o, &[], true, &RuleOverrides::none());
        assert!(p.complete(), "{:?}", p.stuck);
        let running = s
            .vms_on("hv-01")
            .filter(|v| v.state == VmState::Running)
            .count();
        assert_eq!(p.moves.len(), running);
        let disk_moves: Vec<&DiskMovePlan> = p.moves.iter().flat_map(|m| &m.disk_moves).collect();
        assert_eq!(disk_moves.len(), 1, "{disk_moves:?}");
        let dm = disk_moves[0];
        assert_eq!(dm.from, "lun-legacy");
        let csv = s.volume(&dm.to).unwrap();
        assert_eq!(csv.kind, VolumeKind::ClusterShared);
        assert_eq!(dm.bytes, s.vm(&dm.vm).unwrap().disks[0].size);
        let other = p
            .moves
            .iter()
            .find(|m| m.vm != dm.vm && m.vm.starts_with("erp-"))
            .unwrap();
        assert_eq!(other.placement.lun_moves, ["lun-legacy"]);
        assert!(other.disk_moves.is_empty());
    }

    #[test]
    fn disks_copied_by_earlier_moves_take_their_room() {
        // Two build runners with a 100 GiB local disk each; every other
        // node's local volume has room for one of them only.
        let mut s = snap();
        let mut twin = s.vm("build-runner").unwrap().clone();
        twin.name = "build-runner-2".into();
        s.vms.push(twin);
        for v in s.volumes.iter_mut() {
            if v.kind == VolumeKind::Local && v.name != "local-hv-04" {
                v.used = v.capacity - 150 * crate::cluster::GIB;
            }
        }
        let o = MigrationOptions {
            copy_storage: true,
            ..Default::default()
        };
        let p = plan_drain(&s, "hv-04", &o, &[]);
        let runners: Vec<&DrainMove> = p
            .moves
            .iter()
            .filter(|m| m.vm.starts_with("build-runner"))
            .collect();
        assert_eq!(runners.len(), 2, "{:?} {:?}", p.moves, p.stuck);
        let dests: Vec<&str> = runners
            .iter()
            .map(|m| m.placement.copies[0].1.as_str())
            .collect();
        assert_ne!(dests[0], dests[1], "both copied into room for one");
    }

    #[test]
    fn local_disks_need_copy_storage() {
        let p = plan_drain(&snap(), "hv-04", &MigrationOptions::default(), &[]);
        assert!(
            p.stuck
                .iter()
                .any(|s| s.vm == "build-runner" && s.reason.contains("--copy-storage"))
        );
        let p = plan_drain(
            &snap(),
            "hv-04",
            &MigrationOptions {
                copy_storage: true,
                ..Default::default()
            },
            &[],
        );
        assert!(p.complete(), "{:?}", p.stuck);
        assert_eq!(p.moves[0].vm, "vdi-pool");
        assert_eq!(p.moves[0].to, "hv-03", "only hv-03 has room for 216 GiB");
    }
}
