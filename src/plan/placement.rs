//! Placement check: may VM `v` live-migrate to node `t`, and what moves with it?

use crate::cluster::{ClusterSnapshot, Node, NodeState, Vm, VmState, VolumeKind, units};

use super::cpu;

/// Why a VM cannot go to a node. Each reads as one sentence with the way out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{vm} already runs on {node}; pick another node")]
    SameNode { vm: String, node: String },
    #[error("node {node} is {state}; only an up node can take VMs")]
    NodeNotUp { node: String, state: &'static str },
    #[error(
        "node {node} is cordoned (since {since}, by {by}); uncordon it with `:uncordon {node}` or `vmshift uncordon {node}`, or pick another node"
    )]
    Cordoned {
        node: String,
        since: String,
        by: String,
    },
    #[error("{vm} is {state}; only a running VM can be live-migrated")]
    VmNotRunning { vm: String, state: &'static str },
    #[error("{vm} is already migrating; wait for it or abort it first")]
    AlreadyMigrating { vm: String },
    #[error("node {node} has {} free but {vm} needs {}; free memory there or pick another node", units::bytes(*free), units::bytes(*need))]
    NotEnoughMemory {
        vm: String,
        node: String,
        need: u64,
        free: u64,
    },
    #[error("{vm}'s disk on volume {volume} is not reachable from {node}; use --copy-storage to copy {} with the migration (shared-nothing), or pick a node that reaches {volume}", units::bytes(*copy_bytes))]
    VolumeNotReachable {
        vm: String,
        volume: String,
        node: String,
        copy_bytes: u64,
    },
    #[error("{vm}'s disk on volume {volume} must be copied ({}) but {node} has no local volume with that much free space", units::bytes(*copy_bytes))]
    NoRoomForCopy {
        vm: String,
        volume: String,
        node: String,
        copy_bytes: u64,
    },
    #[error("{vm} is on shared LUN {volume}, which also holds {}; a LUN has one owner, so its VMs move together — move its other VMs first or put {vm} on a cluster-shared volume", others.join(", "))]
    LunShared {
        vm: String,
        volume: String,
        others: Vec<String>,
    },
    #[error(
        "{vm} uses CPU model {vm_model}, which node {node} ({node_model}) cannot provide; pick a node with a newer CPU of the same vendor"
    )]
    CpuIncompatible {
        vm: String,
        vm_model: String,
        node: String,
        node_model: String,
    },
}

impl Refusal {
    /// A few words for a node card during a drag.
    pub fn short(&self) -> &'static str {
        match self {
            Refusal::SameNode { .. } => "same node",
            Refusal::NodeNotUp { .. } => "node not up",
            Refusal::Cordoned { .. } => "cordoned",
            Refusal::VmNotRunning { .. } => "VM not running",
            Refusal::AlreadyMigrating { .. } => "already migrating",
            Refusal::NotEnoughMemory { .. } => "not enough memory",
            Refusal::VolumeNotReachable { .. } => "volume not reachable",
            Refusal::NoRoomForCopy { .. } => "no room to copy disk",
            Refusal::LunShared { .. } => "LUN shared with other VMs",
            Refusal::CpuIncompatible { .. } => "CPU incompatible",
        }
    }
}

/// What an allowed migration brings along.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Plain LUNs whose ownership moves to the target with the VM.
    pub lun_moves: Vec<String>,
    /// Disks copied to the target (shared-nothing): (source volume, target volume, bytes).
    pub copies: Vec<(String, String, u64)>,
}

impl Placement {
    pub fn storage_bytes(&self) -> u64 {
        self.copies.iter().map(|c| c.2).sum()
    }
}

/// Refuses a cordoned node: it takes no VM.
pub fn cordon_check(node: &Node) -> Result<(), Refusal> {
    match &node.cordon {
        Some(c) => Err(Refusal::Cordoned {
            node: node.name.clone(),
            since: c.since_text(),
            by: c.by.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks whether `vm` may live-migrate to `node`, both taken from `snap`.
/// `copy_storage` allows copying disks the target cannot reach.
pub fn check(
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
    cordon_check(node)?;
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
        let dest = snap.volumes.iter().find(|v| {
            v.kind == VolumeKind::Local && v.reachable_from(&node.name) && {
                let already = promised
                    .iter()
                    .find(|(n, _)| *n == v.name)
                    .map_or(0, |p| p.1);
                v.free() >= already + disk.size
            }
        });
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
