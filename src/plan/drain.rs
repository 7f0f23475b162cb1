//! Drain planning: where every running VM of a node can go, one after the
//! other, each move accounted for before the next is placed.

use serde::Serialize;

use super::{Placement, Prediction, check, inputs_for, predict};
use crate::cluster::{
    ClusterSnapshot, Migration, MigrationInputs, MigrationOptions, NodeState, VmState, VolumeKind,
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
    plan_drain_with(snap, node, options, history, false)
}

type Best = (bool, u64, String, Placement, MigrationInputs, Prediction);

/// The best target for `vm` (see [`plan_drain`]), or the refusal of the
/// most promising node.
fn best_target(
    s: &ClusterSnapshot,
    node: &str,
    vm: &crate::cluster::Vm,
    options: &MigrationOptions,
    history: &[Migration],
) -> (Option<Best>, Option<(u64, super::Refusal)>) {
    let mut best: Option<Best> = None;
    let mut refusal: Option<(u64, super::Refusal)> = None;
    // Targets with the same link and history get the same prediction.
    let mut known: Vec<(MigrationInputs, Prediction)> = Vec::new();
    for n in s.nodes.iter().filter(|n| n.name != node) {
        match check(s, vm, n, options.copy_storage) {
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
                let key = (pred.converges, n.mem_free() - vm.memory);
                if best.as_ref().is_none_or(|b| (b.0, b.1) < key) {
                    best = Some((key.0, key.1, n.name.clone(), p, inputs, pred));
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

/// [`plan_drain`]; with `storage_moves`, a VM stuck on a plain LUN it
/// shares with others gets its disk moved to a cluster-shared volume first
/// (`vmshift move-disk`), which frees it and leaves the LUN to the others.
pub fn plan_drain_with(
    snap: &ClusterSnapshot,
    node: &str,
    options: &MigrationOptions,
    history: &[Migration],
    storage_moves: bool,
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
        let (mut best, mut refusal) = best_target(&s, node, &vm, options, history);
        let mut disk_moves = Vec::new();
        if let (None, true, Some((_, super::Refusal::LunShared { volume, .. }))) =
            (&best, storage_moves, &refusal)
        {
            // Its disk on the LUN goes to a cluster-shared volume first.
            let bytes: u64 = vm
                .disks
                .iter()
                .filter(|d| d.volume == *volume)
                .map(|d| d.size)
                .sum();
            if let Some(csv) = super::placement::csv_for(&s, volume, bytes, &[node]) {
                let mut moved = s.clone();
                if let Some(v) = moved.vms.iter_mut().find(|v| v.name == name) {
                    for d in v.disks.iter_mut().filter(|d| d.volume == *volume) {
                        d.volume = csv.clone();
                    }
                }
                if let Some(c) = moved.volumes.iter_mut().find(|v| v.name == csv) {
                    c.used += bytes;
                }
                let vm2 = moved.vm(&name).expect("still there").clone();
                let (b2, r2) = best_target(&moved, node, &vm2, options, history);
                if b2.is_some() {
                    disk_moves.push(DiskMovePlan {
                        vm: name.clone(),
                        from: volume.clone(),
                        to: csv,
                        bytes,
                    });
                    s = moved;
                    best = b2;
                    refusal = r2;
                }
            }
        }
        match best {
            Some((_, _, to, placement, inputs, prediction)) => {
                // Account for the move before placing the next VM.
                if let Some(n) = s.nodes.iter_mut().find(|n| n.name == to) {
                    n.mem_used += memory;
                }
                if let Some(v) = s.vms.iter_mut().find(|v| v.name == name) {
                    v.node = to.clone();
                    for (from, dest, _) in &placement.copies {
                        for d in v.disks.iter_mut().filter(|d| d.volume == *from) {
                            d.volume = dest.clone();
                        }
                    }
                }
                // Disks copied with it take their room on the target's
                // volumes (the room they leave is freed only once it went).
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
                        v.owner = Some(to.clone());
                    }
                }
                plan.moves.push(DrainMove {
                    vm: name,
                    to,
                    disk_moves,
                    placement,
                    inputs,
                    prediction,
                });
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
        let p = plan_drain_with(&s, "hv-01", &o, &[], false);
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
        let p = plan_drain_with(&s, "hv-01", &o, &[], true);
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
