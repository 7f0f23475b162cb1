//! Why a VM cannot go to a node: the placement rules' verdict, one
//! sentence with the way out. Defined here, under the backend trait whose
//! errors carry it; the rules that give it are in `plan`.

use super::text::{shell_line, shell_word};
use super::units;

/// Why a VM cannot go to a node. Each reads as one sentence with the way out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{vm} already runs on {node}; pick another node")]
    SameNode { vm: String, node: String },
    #[error("node {node} is {state}; only an up node can take VMs")]
    NodeNotUp { node: String, state: &'static str },
    #[error(
        "node {node} is cordoned (since {since}, by {by}); uncordon it with `:uncordon {node}` or `vmshift uncordon {q}`, or pick another node",
        q = shell_word(.node)
    )]
    Cordoned {
        node: String,
        since: String,
        by: String,
    },
    /// The cordon list cannot be read: any node may be cordoned.
    #[error("{0}; until then no VM is moved, started or restarted onto any node")]
    CordonsUnreadable(String),
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
    #[error("{vm} is on shared LUN {volume}, which also holds {}; a LUN has one owner, so its VMs move together — move one of {vm} / {} to a cluster-shared volume first: {}", others.join(", "), others.join(" / "), move_disk_hint(vm, volume, csv.as_deref()))]
    LunShared {
        vm: String,
        volume: String,
        others: Vec<String>,
        /// A cluster-shared volume with room for the disk, reachable from
        /// where the VM runs and where it would go.
        csv: Option<String>,
    },
    #[error(
        "node {node} is {state} in {manager}, so it takes no resources; pick another node, or bring it back in {manager} first"
    )]
    ManagerNodeOut {
        node: String,
        manager: &'static str,
        state: &'static str,
    },
    #[error(
        "{vm} is {manager} resource {resource}, and node {node} is not a node of that cluster; pick one of its nodes"
    )]
    NotManagerNode {
        vm: String,
        resource: String,
        node: String,
        manager: &'static str,
    },
    #[error(
        "{manager} leaves resource {resource} ({vm}) alone now ({why}), so it would not move it; take it out of maintenance first (`vmshift maintenance off`, or `crm_resource --manage --resource {q}`)",
        q = shell_word(.resource)
    )]
    Unmanaged {
        vm: String,
        resource: String,
        manager: &'static str,
        why: &'static str,
    },
    #[error(
        "{manager} resource {resource} ({vm}) has allow-migrate off, so {manager} would stop {vm} and start it cold on the target; set allow-migrate=true on {resource} to move it live"
    )]
    NoLiveMove {
        vm: String,
        resource: String,
        manager: &'static str,
    },
    /// The asked path would fight the cluster manager, or cannot be taken.
    #[error("{0}")]
    Manager(String),
    /// A must rule of the placement rules would be broken.
    #[error("{vm} cannot go to {node}: {sentence}; {}", rule_way_out(rule, pacemaker_id.as_deref()))]
    Rule {
        vm: String,
        node: String,
        /// What would be broken, ending with the rule's tag.
        sentence: String,
        rule: String,
        /// The Pacemaker constraint's id, for a rule of Pacemaker's (never
        /// overridden by vmshift).
        pacemaker_id: Option<String>,
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
            Refusal::CordonsUnreadable(_) => "cordon list damaged",
            Refusal::VmNotRunning { .. } => "VM not running",
            Refusal::AlreadyMigrating { .. } => "already migrating",
            Refusal::NotEnoughMemory { .. } => "not enough memory",
            Refusal::VolumeNotReachable { .. } => "volume not reachable",
            Refusal::NoRoomForCopy { .. } => "no room to copy disk",
            Refusal::LunShared { .. } => "LUN shared with other VMs",
            Refusal::CpuIncompatible { .. } => "CPU incompatible",
            Refusal::ManagerNodeOut { state, .. } => state,
            Refusal::NotManagerNode { .. } => "not a cluster node",
            Refusal::Unmanaged { .. } => "resource unmanaged",
            Refusal::NoLiveMove { .. } => "no live move (allow-migrate)",
            Refusal::Manager(_) => "cluster manager",
            Refusal::Rule { .. } => "placement rule",
        }
    }
}

/// How to get past a must rule: another node, or the typed override for
/// vmshift's own rules; a Pacemaker constraint is changed in Pacemaker.
fn rule_way_out(rule: &str, pacemaker_id: Option<&str>) -> String {
    match pacemaker_id {
        Some(id) => format!(
            "vmshift never overrides Pacemaker's constraints; pick another node, or change the constraint in Pacemaker (`crm configure delete {}`)",
            shell_word(id)
        ),
        None => format!(
            "pick another node, or break the rule knowingly with --override-rule {} --reason TEXT (`:override {}` in the view)",
            shell_word(rule),
            shell_word(rule)
        ),
    }
}

/// The command that moves `vm`'s disk off `volume` while it runs.
fn move_disk_hint(vm: &str, volume: &str, csv: Option<&str>) -> String {
    match csv {
        Some(c) => shell_line(&["vmshift", "move-disk", vm, volume, c]),
        None => format!(
            "{} VOLUME (no cluster-shared volume here has room for it now)",
            shell_line(&["vmshift", "move-disk", vm, volume])
        ),
    }
}
