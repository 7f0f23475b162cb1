//! The domain model every layer speaks: the snapshot of the whole cluster
//! (here), its nodes, volumes and VMs ([`super::inventory`]), migrations
//! ([`super::migration`]), disk moves ([`super::storage_move`]) and lost
//! VMs' recoveries ([`super::recovery`]).
//!
//! Backends produce these as owned snapshots; the planner and the UI only read
//! them. Sizes are bytes, rates bytes per second, times milliseconds.

use serde::{Deserialize, Serialize};

use super::inventory::{Node, NodeState, Vm, Volume};
use super::migration::{Migration, MigrationCosts};
use super::recovery::{ClusterEvent, Recovery};
use super::storage_move::StorageMove;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// One whole view of the cluster at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    pub cluster: String,
    /// `sim` or `libvirt`.
    pub backend: String,
    /// Backend clock when the snapshot was taken (virtual for the simulator).
    pub at_ms: u64,
    pub nodes: Vec<Node>,
    pub volumes: Vec<Volume>,
    pub vms: Vec<Vm>,
    pub migrations: Vec<Migration>,
    /// Recent cluster events, oldest first.
    pub events: Vec<ClusterEvent>,
    /// What a migration costs here beyond moving memory.
    #[serde(default)]
    pub costs: MigrationCosts,
    /// The cluster manager that owns some of the VMs (Pacemaker), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<super::manager::ManagerView>,
    /// VMs of lost nodes restarted elsewhere (or being), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recoveries: Vec<Recovery>,
    /// What is wrong right now and must be acted on at once (a VM running
    /// on two nodes), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Disks moving to another volume while their VM runs (`move-disk`),
    /// and the last few that ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_moves: Vec<StorageMove>,
    /// VMs carrying vmshift's mark that a cluster manager owns them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<super::manager::ManagedMark>,
    /// Defined, shut-off copies of VMs that run on another node (a lost
    /// node came back after its VMs were recovered elsewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_copies: Vec<StaleCopy>,
    /// Why this install's cordon list could not be read (one sentence
    /// naming the file and its repair): placement then refuses every
    /// node, since any of them may be cordoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordons_unreadable: Option<String>,
    /// Placement rules (config, scenario, the cluster manager's
    /// constraints), checked by every planner against planned positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<super::rules::Rule>,
}

/// A defined, shut-off copy of a VM that runs (or was recovered) on another
/// node: starting it would run the VM twice on its shared disks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StaleCopy {
    pub vm: String,
    /// The node that holds the stale definition.
    pub node: String,
    /// Where the VM runs.
    pub runs_on: String,
    /// libvirt would start it when its node boots.
    pub autostart: bool,
    /// The command that removes it, to copy.
    pub remove: String,
}

impl ClusterSnapshot {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }
    pub fn vms_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Vm> + 'a {
        self.vms.iter().filter(move |v| v.node == node)
    }
    /// The migration of `vm` that has not finished yet, if any.
    pub fn active_migration_of(&self, vm: &str) -> Option<&Migration> {
        self.migrations
            .iter()
            .find(|m| m.vm == vm && m.outcome.is_none())
    }
    /// The storage move of `vm`'s disk that has not ended yet, if any.
    pub fn active_storage_move_of(&self, vm: &str) -> Option<&StorageMove> {
        self.storage_moves
            .iter()
            .find(|m| m.vm == vm && !m.is_finished())
    }
    /// Migration link speed between two nodes: the slower NIC (bytes/s).
    pub fn link_bps(&self, a: &str, b: &str) -> u64 {
        let nic = |n: &str| self.node(n).map(|n| n.nic_bps);
        match (nic(a), nic(b)) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => 0,
        }
    }
    pub fn nodes_up(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.state == NodeState::Up)
            .count()
    }
}
