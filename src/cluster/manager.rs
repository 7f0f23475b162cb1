//! What a cluster manager that owns VMs (Pacemaker) says about the cluster
//! (DESIGN §3.3): the state of its nodes and of the resources that are VMs.
//! Where a manager owns a VM it is the authority: vmshift asks it to move
//! the VM and never moves it behind its back.

use serde::{Deserialize, Serialize};

use super::model::ClusterSnapshot;

/// The manager's view of the cluster, from its last read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagerView {
    /// `pacemaker`.
    pub kind: String,
    /// Why the last read failed; the rest is then the last good read (or
    /// empty if there never was one).
    pub error: Option<String>,
    /// Whether any read ever worked: without one vmshift cannot tell which
    /// VMs the manager owns.
    pub known: bool,
    /// Since when (Unix ms) it has not answered, while `error` is set.
    pub error_since_ms: Option<u64>,
    /// The node that coordinates the cluster (Pacemaker's DC).
    pub dc: Option<String>,
    pub quorate: bool,
    /// The whole cluster is in maintenance mode: the manager moves nothing.
    pub maintenance: bool,
    /// Fencing is enabled.
    pub fencing: bool,
    pub nodes: Vec<ManagedNode>,
    pub vms: Vec<ManagedVm>,
    /// Its colocation and location constraints on VMs, as placement rules
    /// (by domain name).
    pub rules: Vec<super::rules::Rule>,
    /// Constraints on VMs it has that vmshift cannot read exactly (resource
    /// sets, rules with expressions), one sentence each: not kept by
    /// vmshift's planners, so shown where rules are.
    pub unread_constraints: Vec<String>,
}

/// A cluster node as the manager sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedNode {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub maintenance: bool,
    /// Failed and not fenced yet: what runs there is in doubt.
    pub unclean: bool,
    pub pending: bool,
    pub shutdown: bool,
}

impl ManagedNode {
    /// The state that keeps resources off the node, most serious first.
    pub fn out_of_service(&self) -> Option<&'static str> {
        if self.unclean {
            Some("unclean (failed, waiting to be fenced)")
        } else if !self.online {
            Some("offline")
        } else if self.pending {
            Some("joining")
        } else if self.shutdown {
            Some("shutting down")
        } else if self.maintenance {
            Some("in maintenance")
        } else if self.standby {
            Some("in standby")
        } else {
            None
        }
    }

    /// A short badge for node cards and rows.
    pub fn badge(&self) -> Option<&'static str> {
        if self.unclean {
            Some("UNCLEAN")
        } else if !self.online {
            Some("OFFLINE")
        } else if self.maintenance {
            Some("MAINT")
        } else if self.standby {
            Some("STANDBY")
        } else {
            None
        }
    }
}

/// A VM the manager owns: one resource whose agent runs a libvirt domain.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedVm {
    /// Resource id (`vm-web`).
    pub resource: String,
    /// The libvirt domain it runs.
    pub domain: String,
    /// `ocf:heartbeat:VirtualDomain`.
    pub agent: String,
    /// Started, Stopped, Migrating, Starting, Stopping, Failed…
    pub role: String,
    /// False when the manager leaves it alone (maintenance, unmanaged).
    pub managed: bool,
    pub failed: bool,
    /// Nodes it runs on now (two while it migrates).
    pub running_on: Vec<String>,
    /// The manager live-migrates it (Pacemaker's `allow-migrate`);
    /// otherwise a move is a stop and a cold start.
    pub allow_migrate: bool,
    /// Failures counted per node (node, count).
    pub failcounts: Vec<(String, u32)>,
    /// Location constraints a move or ban left (`cli-prefer-…`, `cli-ban-…`).
    pub constraints: Vec<MoveConstraint>,
    /// Its most recent operations, newest last.
    pub recent: Vec<ManagerOp>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveConstraint {
    pub id: String,
    pub node: String,
    /// `prefer` (a move) or `ban`.
    pub kind: String,
    /// When it expires, if it does.
    pub until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagerOp {
    pub node: String,
    /// start, stop, monitor, migrate_to, migrate_from…
    pub task: String,
    /// ok, not running, error…
    pub result: String,
    pub when: String,
    pub exec_ms: u64,
}

/// Who runs a migration when vmshift did not start it through libvirt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedBy {
    /// `pacemaker`.
    pub manager: String,
    pub resource: String,
}

impl ManagerView {
    /// The manager's name as people write it.
    pub fn title(&self) -> &'static str {
        match self.kind.as_str() {
            "pacemaker" => "Pacemaker",
            _ => "the cluster manager",
        }
    }
}

/// The mark vmshift leaves on a VM it has seen a cluster manager own (in
/// the libvirt domain's metadata, so that every install sees it, even one
/// whose manager does not answer or is not configured).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedMark {
    pub vm: String,
    /// `pacemaker`.
    pub manager: String,
    pub resource: String,
    /// When vmshift first saw the manager own it (Unix ms).
    pub since_ms: u64,
}

impl ClusterSnapshot {
    /// The resource that owns VM `vm`, if a cluster manager owns it.
    pub fn managed_vm(&self, vm: &str) -> Option<&ManagedVm> {
        self.manager.as_ref()?.vms.iter().find(|m| m.domain == vm)
    }

    /// vmshift's mark that a cluster manager owns `vm`, if it carries one.
    pub fn managed_mark(&self, vm: &str) -> Option<&ManagedMark> {
        self.marks.iter().find(|m| m.vm == vm)
    }

    /// Node `node` as the cluster manager sees it, if it is one of its nodes.
    pub fn managed_node(&self, node: &str) -> Option<&ManagedNode> {
        self.manager.as_ref()?.nodes.iter().find(|n| n.name == node)
    }
}
