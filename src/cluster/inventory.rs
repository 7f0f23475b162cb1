//! Nodes, their cordons, volumes and VMs as a backend reports them.

use serde::{Deserialize, Serialize};

use super::migration::Estimate;
use super::recovery::LostWith;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Up,
    Maintenance,
    Down,
    Unreachable,
}

impl NodeState {
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Maintenance => "maintenance",
            NodeState::Down => "down",
            NodeState::Unreachable => "unreachable",
        }
    }
    /// A glyph that carries the state without colour.
    pub fn glyph(self) -> &'static str {
        match self {
            NodeState::Up => "●",
            NodeState::Maintenance => "◐",
            NodeState::Down => "✖",
            NodeState::Unreachable => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub state: NodeState,
    pub cpus: u32,
    /// Host CPU use, 0–100.
    pub cpu_used_pct: f64,
    pub mem_total: u64,
    /// Memory in use, including memory reserved for incoming migrations.
    pub mem_used: u64,
    pub cpu_model: String,
    /// Migration network bandwidth of this node, bytes/s.
    pub nic_bps: u64,
    /// Why the node is not up (unreachable error, failure), if known.
    pub error: Option<String>,
    /// Kept out of placement (cordoned / in maintenance), and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordon: Option<Cordon>,
    /// Labels placement rules can name (`gpu`, `rack-a`), from the config
    /// or the scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// A node kept out of placement: no migration, start or HA restart puts a
/// VM on it until it is uncordoned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cordon {
    /// Unix time in ms when it was cordoned.
    pub since_unix_ms: u64,
    /// Who keeps it: [`Cordon::LOCAL`] for this vmshift install's own list
    /// (the state dir), or a cluster manager ("Pacemaker standby").
    pub by: String,
}

impl Cordon {
    /// `by` of a cordon kept in this vmshift install's state dir.
    pub const LOCAL: &'static str = "this vmshift install";

    pub fn local(since_unix_ms: u64) -> Self {
        Self {
            since_unix_ms,
            by: Self::LOCAL.into(),
        }
    }

    /// Whether only this vmshift install knows of it.
    pub fn is_local(&self) -> bool {
        self.by == Self::LOCAL
    }

    /// `2026-11-28 10:02 UTC` ("after year 9999" for a date that cannot
    /// be written; the cordon list refuses those, a cluster manager may not).
    pub fn since_text(&self) -> String {
        super::units::utc_minute(self.since_unix_ms)
    }

    /// `cordoned (since …, by …)`
    pub fn describe(&self) -> String {
        format!("cordoned (since {}, by {})", self.since_text(), self.by)
    }
}

/// What an operator can do to a VM besides moving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmAction {
    /// Boot a stopped VM.
    Start,
    /// Ask the guest to shut down (ACPI power button).
    Shutdown,
    /// Ask the guest to reboot.
    Reboot,
    /// Pull the plug: the guest stops at once, unsaved data is lost.
    PowerOff,
}

impl VmAction {
    pub const ALL: [VmAction; 4] = [
        VmAction::Start,
        VmAction::Shutdown,
        VmAction::Reboot,
        VmAction::PowerOff,
    ];

    /// `start`, `shut down`, `reboot`, `force off`
    pub fn verb(self) -> &'static str {
        match self {
            VmAction::Start => "start",
            VmAction::Shutdown => "shut down",
            VmAction::Reboot => "reboot",
            VmAction::PowerOff => "force off",
        }
    }

    /// What the request did, for a message: `start of web-01 requested`.
    pub fn noun(self) -> &'static str {
        match self {
            VmAction::Start => "start",
            VmAction::Shutdown => "shutdown (ACPI)",
            VmAction::Reboot => "reboot",
            VmAction::PowerOff => "force off",
        }
    }
}

impl Node {
    pub fn mem_free(&self) -> u64 {
        self.mem_total.saturating_sub(self.mem_used)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeKind {
    /// Usable by every member node at once (like a CSV).
    ClusterShared,
    /// Reachable by several nodes but owned by one at a time.
    SharedLun,
    /// Reachable from one node only.
    Local,
}

impl VolumeKind {
    pub fn label(self) -> &'static str {
        match self {
            VolumeKind::ClusterShared => "cluster-shared",
            VolumeKind::SharedLun => "shared LUN",
            VolumeKind::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub kind: VolumeKind,
    /// Owner node of a shared LUN (or the node of a local volume).
    pub owner: Option<String>,
    pub capacity: u64,
    pub used: u64,
    /// Nodes that can reach this volume.
    pub reachable_from: Vec<String>,
}

impl Volume {
    pub fn reachable_from(&self, node: &str) -> bool {
        self.reachable_from.iter().any(|n| n == node)
    }
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Running,
    Paused,
    Migrating,
    /// Being restarted elsewhere after its node failed (HA).
    Restarting,
    Stopped,
}

impl VmState {
    pub fn label(self) -> &'static str {
        match self {
            VmState::Running => "running",
            VmState::Paused => "paused",
            VmState::Migrating => "migrating",
            VmState::Restarting => "restarting",
            VmState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub volume: String,
    pub size: u64,
}

/// How a guest writes its memory: it rewrites a hot set (the writable working
/// set) at `dirty_bps`; a round can never dirty more than the hot set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// idle, web, database, batch, or a scenario's own label.
    pub kind: String,
    pub dirty_bps: u64,
    pub wws_bytes: u64,
    /// Average share of its vCPUs the guest keeps busy, 0–1.
    pub cpu_load: f64,
    /// Bytes of memory that hold data (the rest are zero pages, which a
    /// migration sends as markers); `None` when unknown (all of memory).
    #[serde(default)]
    pub touched_bytes: Option<u64>,
    /// How sure the figures above are, where they were measured.
    #[serde(default)]
    pub measured: Option<Measured>,
}

/// A workload as measured on a real guest: each figure with its range, and
/// what the measurement rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub dirty_bps: Estimate,
    pub wws_bytes: Estimate,
    pub touched_bytes: Estimate,
    /// In words: "5 page-sampling measurements over 7 s; resident memory 207 MB".
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub name: String,
    pub node: String,
    pub state: VmState,
    pub vcpus: u32,
    pub memory: u64,
    pub disks: Vec<Disk>,
    pub workload: Workload,
    /// Restarted on another node when its node fails.
    pub ha: bool,
    /// CPU model the guest is configured with.
    pub cpu_model: String,
    /// Guest CPU use, 0–100 (of its vCPUs).
    pub cpu_used_pct: f64,
    /// Its node is lost: this is how it was last seen there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostWith>,
}
