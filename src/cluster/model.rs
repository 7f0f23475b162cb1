//! The domain model every layer speaks: nodes, volumes, VMs and migrations.
//!
//! Backends produce these as owned snapshots; the planner and the UI only read
//! them. Sizes are bytes, rates bytes per second, times milliseconds.

use serde::{Deserialize, Serialize};

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

/// A figure and the range it may really be in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    pub fn exact(value: f64) -> Self {
        Self {
            value,
            lo: value,
            hi: value,
        }
    }
    /// `value` within `lo..=hi` (the bounds sorted, the value clamped into them).
    pub fn new(value: f64, lo: f64, hi: f64) -> Self {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        Self {
            value: value.clamp(lo, hi),
            lo,
            hi,
        }
    }
    /// `value` ± `share` of it.
    pub fn spread(value: f64, share: f64) -> Self {
        Self::new(value, value * (1.0 - share), value * (1.0 + share))
    }
    pub fn is_exact(&self) -> bool {
        self.lo == self.hi
    }
}

/// Costs of a migration that do not depend on memory, as the backend knows
/// them before any migration was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MigrationCosts {
    /// Begin + Prepare: from the start of the job to the first byte, ms.
    pub setup_ms: Estimate,
    /// Pausing, device state and resuming: downtime beyond the memory left, ms.
    pub switchover_ms: Estimate,
    /// After the guest resumed, until the migration counts as finished, ms.
    pub cleanup_ms: f64,
}

impl Default for MigrationCosts {
    /// QEMU 7.2 / libvirt 9.0 as measured on the lab: setup ~0.3 s (up to
    /// 4 s for the first migration into a freshly started daemon), 10–15 ms
    /// of fixed downtime.
    fn default() -> Self {
        Self {
            setup_ms: Estimate::new(300.0, 150.0, 4000.0),
            switchover_ms: Estimate::new(12.0, 3.0, 40.0),
            cleanup_ms: 0.0,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PostcopyMode {
    /// Never switch to post-copy.
    #[default]
    Off,
    /// Switch when pre-copy stalls.
    Auto,
    /// Switch right after the target is prepared.
    Now,
}

impl PostcopyMode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Auto => "auto",
            Self::Now => "now",
        }
    }
}

impl std::str::FromStr for PostcopyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            "now" => Ok(Self::Now),
            _ => Err(format!(
                "post-copy mode must be off, auto or now, not {s:?}"
            )),
        }
    }
}

/// What to do when pre-copy rounds stop shrinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnStall {
    /// Abort the migration; the VM keeps running on the source.
    #[default]
    Abort,
    /// Switch to post-copy.
    Postcopy,
    /// Keep copying (flag the migration as stalled).
    Wait,
}

impl OnStall {
    pub fn label(self) -> &'static str {
        match self {
            Self::Abort => "abort",
            Self::Postcopy => "postcopy",
            Self::Wait => "wait",
        }
    }
}

impl std::str::FromStr for OnStall {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "abort" => Ok(Self::Abort),
            "postcopy" => Ok(Self::Postcopy),
            "wait" => Ok(Self::Wait),
            _ => Err(format!(
                "on-stall must be abort, postcopy or wait, not {s:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrationOptions {
    pub max_downtime_ms: u64,
    /// Bandwidth limit in bytes/s; `None` means the link speed.
    pub bandwidth_bps: Option<u64>,
    pub auto_converge: bool,
    pub postcopy: PostcopyMode,
    pub on_stall: OnStall,
    /// Copy disks that the target cannot reach (shared-nothing migration).
    pub copy_storage: bool,
    /// Parallel migration connections (libvirt); 1 = off.
    pub parallel_connections: u32,
    /// The path of a move: through the cluster manager that owns the VM
    /// (Pacemaker) or plain libvirt; `auto` takes the manager where it owns it.
    pub via: MovePath,
    /// After a move through the cluster manager, keep its move constraint
    /// (the VM stays pinned to the target) instead of clearing it.
    pub keep_placement: bool,
    /// How long a kept move constraint lasts (ISO 8601 duration, `PT1H`).
    pub placement_lifetime: Option<String>,
    /// Placement rules the operator knowingly breaks with this move (a
    /// should rule confirmed, a must rule overridden with a typed reason):
    /// they go with the migration into the event log and the record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broken_rules: Vec<super::rules::BrokenRule>,
}

/// Which path moves a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovePath {
    /// The cluster manager where it owns the VM, else libvirt.
    #[default]
    Auto,
    /// The cluster manager (refused for VMs it does not own).
    Manager,
    /// A plain libvirt migration (refused for VMs a manager owns).
    Libvirt,
}

impl std::str::FromStr for MovePath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "pacemaker" | "manager" => Ok(Self::Manager),
            "libvirt" => Ok(Self::Libvirt),
            _ => Err(format!(
                "--via must be auto, pacemaker or libvirt, not {s:?}"
            )),
        }
    }
}

pub const DEFAULT_MAX_DOWNTIME_MS: u64 = 300;

impl Default for MigrationOptions {
    fn default() -> Self {
        Self {
            max_downtime_ms: DEFAULT_MAX_DOWNTIME_MS,
            bandwidth_bps: None,
            auto_converge: false,
            postcopy: PostcopyMode::Off,
            on_stall: OnStall::Abort,
            copy_storage: false,
            parallel_connections: 1,
            via: MovePath::Auto,
            keep_placement: false,
            placement_lifetime: None,
            broken_rules: Vec::new(),
        }
    }
}

/// The six steps of a live migration (DESIGN §1), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    PrepareTarget,
    PreCopy,
    Pause,
    FinalCopy,
    ResumeOnTarget,
    CleanUpSource,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::PrepareTarget,
        Step::PreCopy,
        Step::Pause,
        Step::FinalCopy,
        Step::ResumeOnTarget,
        Step::CleanUpSource,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Step::PrepareTarget => "prepare target",
            Step::PreCopy => "pre-copy",
            Step::Pause => "pause",
            Step::FinalCopy => "final copy",
            Step::ResumeOnTarget => "resume on target",
            Step::CleanUpSource => "clean up source",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One pre-copy round (iteration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Round {
    /// 0 is the first full pass over memory.
    pub index: u32,
    pub bytes_sent: u64,
    /// Bytes dirtied during this round, still to send after it.
    pub bytes_dirty: u64,
    /// Average guest dirty rate during the round, bytes/s.
    pub dirty_bps: u64,
    /// Average transfer rate during the round, bytes/s.
    pub bandwidth_bps: u64,
    pub duration_ms: f64,
    /// Auto-converge throttle in force during the round, 0–99.
    pub throttle_pct: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Stopped on purpose (by the operator or the stall rule).
    Aborted {
        reason: String,
    },
    /// Something broke (link, target, daemon).
    Failed {
        reason: String,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Completed)
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Completed => None,
            Outcome::Aborted { reason } | Outcome::Failed { reason } => Some(reason),
        }
    }
}

pub type MigrationId = u64;

/// What the model is given about one migration: the guest's memory as
/// measured (each figure with its range), the link and the fixed costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationInputs {
    pub memory: u64,
    /// Bytes of memory holding data.
    pub touched: Estimate,
    /// Writable working set.
    pub wws: Estimate,
    pub dirty_bps: Estimate,
    /// Bandwidth the pre-copy gets (the limit, or the link), bytes/s.
    pub bandwidth_bps: u64,
    /// Link speed, the most a bandwidth limit can give, bytes/s.
    pub link_bps: u64,
    /// Speed of the final copy, which is not rate-limited: the link, or
    /// what past switchovers between these nodes showed, bytes/s.
    #[serde(default)]
    pub line_bps: u64,
    pub setup_ms: Estimate,
    pub switchover_ms: Estimate,
    pub cleanup_ms: f64,
    /// Disk bytes copied first (shared-nothing).
    pub storage_bytes: u64,
    /// How much of what is left marked at a sync the guest writes again
    /// before the next: 1 for writes spread over its working set, 0 for a
    /// guest that sweeps it. Learnt from the VM's own past migrations.
    #[serde(default = "spread_writes")]
    pub write_overlap: f64,
    /// What the ranges rest on, one sentence each.
    pub basis: Vec<String>,
}

fn spread_writes() -> f64 {
    1.0
}

impl MigrationInputs {
    /// Speed of the final copy: what was learnt, else the link.
    pub fn line(&self) -> u64 {
        if self.line_bps > 0 {
            self.line_bps
        } else {
            self.link_bps
        }
    }
}

/// What the model expects of a migration: before it starts, or live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Rounds as libvirt counts them (`memory_iteration`).
    pub rounds: Estimate,
    /// From the start of the job to its end, ms.
    pub total_ms: Estimate,
    /// Expected downtime at the switchover, ms.
    pub downtime_ms: Estimate,
    /// Converges with at least the likely inputs (see `may_not_converge`).
    pub converges: bool,
    /// Some plausible input would not converge.
    pub may_not_converge: bool,
    /// Live only: the downtime if the guest were paused now, ms.
    pub downtime_now_ms: Option<f64>,
    /// What would make it converge, in a few words each (empty when it does).
    #[serde(default)]
    pub advice: Vec<String>,
}

pub type StorageMoveId = u64;

/// A running VM's disk moved to another volume while it runs (libvirt
/// block copy, then pivot): `vmshift move-disk`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageMove {
    pub id: StorageMoveId,
    pub vm: String,
    /// The volume the disk is on (it names the disk), and where it goes.
    pub from: String,
    pub to: String,
    pub total_bytes: u64,
    pub copied_bytes: u64,
    /// Copy rate now, bytes/s.
    pub bps: u64,
    pub elapsed_ms: f64,
    /// The VM switched to the copy (it now runs from `to`).
    pub pivoted: bool,
    pub outcome: Option<Outcome>,
}

impl StorageMove {
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Share of the disk copied, 0..=1.
    pub fn ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            return if self.pivoted { 1.0 } else { 0.0 };
        }
        (self.copied_bytes as f64 / self.total_bytes as f64).clamp(0.0, 1.0)
    }

    /// Its start, in one sentence.
    pub fn start_sentence(&self) -> String {
        format!(
            "storage move of {}'s disk {} → {} started: {}, block copy, then pivot",
            self.vm,
            self.from,
            self.to,
            super::units::bytes(self.total_bytes)
        )
    }

    /// How it ended, in one sentence; `None` while it runs.
    pub fn outcome_sentence(&self) -> Option<String> {
        Some(match self.outcome.as_ref()? {
            Outcome::Completed => format!(
                "storage move of {}'s disk {} → {} done: copied {}, pivoted; it runs from {} now",
                self.vm,
                self.from,
                self.to,
                super::units::bytes(self.total_bytes),
                self.to
            ),
            Outcome::Aborted { reason } => format!(
                "storage move of {}'s disk {} → {} aborted: {reason}; it stays on {}",
                self.vm, self.from, self.to, self.from
            ),
            Outcome::Failed { reason } => format!(
                "storage move of {}'s disk {} → {} failed: {reason}; it stays on {}",
                self.vm, self.from, self.to, self.from
            ),
        })
    }

    /// Time left at the current rate, ms.
    pub fn eta_ms(&self) -> Option<f64> {
        (self.bps > 0).then(|| {
            self.total_bytes.saturating_sub(self.copied_bytes) as f64 / self.bps as f64 * 1000.0
        })
    }

    /// "erp-app: disk lun-legacy → csv-01, 60.0 GiB of 120.0 GiB at 400 MiB/s, 2m30s left".
    pub fn line(&self) -> String {
        use super::units::{bytes, millis, rate};
        let mut t = format!(
            "{}: disk {} → {}, {} of {}",
            self.vm,
            self.from,
            self.to,
            bytes(self.copied_bytes),
            bytes(self.total_bytes)
        );
        if self.bps > 0 && !self.is_finished() {
            t += &format!(" at {}", rate(self.bps));
        }
        if let Some(eta) = self.eta_ms().filter(|_| !self.is_finished()) {
            t += &format!(", {} left", millis(eta));
        }
        t
    }
}

/// The disks a shared-nothing migration copies, as the copy goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskCopy {
    pub total_bytes: u64,
    pub copied_bytes: u64,
    /// Copy rate now, bytes/s.
    pub bps: u64,
    /// When the copy began and ended (the disks in sync, memory next), ms
    /// since the start of the migration.
    pub started_ms: Option<f64>,
    pub done_ms: Option<f64>,
}

impl DiskCopy {
    /// Time left at the current rate, ms; `None` before a rate is known.
    pub fn eta_ms(&self) -> Option<f64> {
        if self.done_ms.is_some() {
            return Some(0.0);
        }
        (self.bps > 0).then(|| {
            self.total_bytes.saturating_sub(self.copied_bytes) as f64 / self.bps as f64 * 1000.0
        })
    }

    /// "disk copy 8.0 MiB of 16.0 MiB at 40.0 MiB/s, 0.2 s left" (or "done in 0.4 s").
    pub fn line(&self) -> String {
        use super::units::bytes;
        match (self.started_ms, self.done_ms) {
            (Some(s), Some(d)) => format!(
                "disk copy {} done in {}",
                bytes(self.total_bytes),
                super::units::millis((d - s).max(0.0))
            ),
            _ => {
                let mut t = format!(
                    "disk copy {} of {}",
                    bytes(self.copied_bytes),
                    bytes(self.total_bytes)
                );
                if self.bps > 0 {
                    t += &format!(" at {}/s", bytes(self.bps));
                }
                if let Some(eta) = self.eta_ms().filter(|_| self.bps > 0) {
                    t += &format!(", {:.1} s left", eta / 1000.0);
                }
                t
            }
        }
    }
}

/// A migration as the backend sees it: every round so far, the step, the
/// downtime and, when finished, the outcome. Fields missing from a stored
/// one (an older flight-recorder line) take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Migration {
    pub id: MigrationId,
    pub vm: String,
    pub from: String,
    pub to: String,
    pub options: MigrationOptions,
    pub memory: u64,
    /// Disk bytes copied with the migration (shared-nothing), 0 if none.
    pub storage_bytes: u64,
    pub started_at_ms: u64,
    pub step: Step,
    /// When each step began (ms since start of the migration), by step index.
    pub step_started_ms: [Option<f64>; 6],
    pub rounds: Vec<Round>,
    /// Bytes sent so far in the round that is in progress.
    pub current_round_sent: u64,
    /// Bytes still to send (current round's rest, or what is dirty).
    pub remaining_bytes: u64,
    pub dirty_bps: u64,
    pub bandwidth_bps: u64,
    pub throttle_pct: u32,
    pub postcopy_active: bool,
    /// Rounds stopped shrinking.
    pub stalled: bool,
    /// Expected downtime if it switched over now, ms.
    pub expected_downtime_ms: f64,
    /// Measured downtime (pause → resume), once known.
    pub actual_downtime_ms: Option<f64>,
    pub elapsed_ms: f64,
    /// Every byte moved so far: disks, rounds, final copy, post-copy pages.
    pub transferred_bytes: u64,
    pub outcome: Option<Outcome>,
    /// First pass: guest memory scanned so far and the data (non-zero
    /// page) bytes among it; they show how much of memory is in use.
    #[serde(default)]
    pub scanned_bytes: u64,
    #[serde(default)]
    pub data_bytes: u64,
    /// What the model was given, and what it expected before the start.
    #[serde(default)]
    pub inputs: Option<MigrationInputs>,
    #[serde(default)]
    pub forecast: Option<Forecast>,
    /// The model's expectation now, from what the migration has shown so
    /// far; `None` once it is over.
    #[serde(default)]
    pub live: Option<Forecast>,
    /// The cluster manager that runs it (a move through Pacemaker, or one
    /// Pacemaker started itself), if not plain libvirt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<super::manager::ManagedBy>,
    /// The disk copy of a shared-nothing migration: its own phase, before
    /// the memory rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_copy: Option<DiskCopy>,
    /// A node of it stopped answering while it ran: until one answers,
    /// where the VM runs is unknown and the migration has no outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<Unanswered>,
    /// What its figures cannot say (a node that did not answer for a
    /// while, totals read afterwards), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<String>,
    /// The rounds libvirt counted, where vmshift did not see them all (a
    /// migration that ended while no vmshift watched it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds_total: Option<u32>,
}

/// A node that stopped answering while a migration ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unanswered {
    pub node: String,
    /// Since when (Unix ms, wall clock).
    pub since_ms: u64,
    /// What libvirt said.
    pub reason: String,
}

impl Default for Migration {
    fn default() -> Self {
        Migration::starting(0, "", "", "", MigrationOptions::default(), 0, 0, 0)
    }
}

impl Migration {
    /// A migration that has just begun preparing the target.
    #[allow(clippy::too_many_arguments)]
    pub fn starting(
        id: MigrationId,
        vm: &str,
        from: &str,
        to: &str,
        options: MigrationOptions,
        memory: u64,
        storage_bytes: u64,
        started_at_ms: u64,
    ) -> Migration {
        let mut step_started_ms = [None; 6];
        step_started_ms[Step::PrepareTarget.index()] = Some(0.0);
        Migration {
            id,
            vm: vm.into(),
            from: from.into(),
            to: to.into(),
            options,
            memory,
            storage_bytes,
            started_at_ms,
            step: Step::PrepareTarget,
            step_started_ms,
            rounds: Vec::new(),
            current_round_sent: 0,
            remaining_bytes: memory + storage_bytes,
            dirty_bps: 0,
            bandwidth_bps: 0,
            throttle_pct: 0,
            postcopy_active: false,
            stalled: false,
            expected_downtime_ms: 0.0,
            actual_downtime_ms: None,
            elapsed_ms: 0.0,
            transferred_bytes: 0,
            outcome: None,
            scanned_bytes: 0,
            data_bytes: 0,
            inputs: None,
            forecast: None,
            live: None,
            managed_by: None,
            unanswered: None,
            caveats: Vec::new(),
            rounds_total: None,
            disk_copy: (storage_bytes > 0).then(|| DiskCopy {
                total_bytes: storage_bytes,
                ..Default::default()
            }),
        }
    }

    /// "UNKNOWN: a not answering since …" while a node of it is silent.
    pub fn unanswered_sentence(&self) -> Option<String> {
        let u = self.unanswered.as_ref()?;
        Some(format!(
            "UNKNOWN: {} not answering since {} ({}); waiting for a node to say where {} runs",
            u.node,
            super::units::utc_minute(u.since_ms),
            u.reason,
            self.vm
        ))
    }

    /// "⇄ vm a→b pre-copy round 3 · 1.2 GiB left" for lists.
    pub fn progress_line(&self) -> String {
        if let Some(u) = self.unanswered_sentence() {
            return format!("⇄ {} {}→{} {u}", self.vm, self.from, self.to);
        }
        format!(
            "⇄ {} {}→{} {} round {} · {} left{}",
            self.vm,
            self.from,
            self.to,
            self.step.label(),
            self.rounds.len(),
            super::units::bytes(self.remaining_bytes),
            if self.stalled { " · STALLED" } else { "" }
        )
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The event-log line for a finished migration; `None` while it runs.
    pub fn outcome_sentence(&self) -> Option<String> {
        Some(match self.outcome.as_ref()? {
            Outcome::Completed => format!(
                "{} migrated {} → {} in {} round{}, downtime {:.0} ms",
                self.vm,
                self.from,
                self.to,
                self.rounds.len(),
                if self.rounds.len() == 1 { "" } else { "s" },
                self.actual_downtime_ms.unwrap_or(0.0)
            ),
            Outcome::Aborted { reason } => {
                format!("migration of {} to {} aborted: {reason}", self.vm, self.to)
            }
            Outcome::Failed { reason } => {
                format!("migration of {} to {} failed: {reason}", self.vm, self.to)
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub at_ms: u64,
    pub text: String,
}

/// A VM of a lost node, as last seen: the node, and when it stopped
/// answering (on the cluster's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWith {
    pub node: String,
    pub since_ms: u64,
}

/// The steps of restarting a lost node's VM on another node, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStep {
    /// Its node stopped answering (or failed).
    Lost,
    /// Someone made sure the node is powered off or fenced: the operator
    /// (typing the node's name) or a cluster manager.
    FenceConfirmed,
    /// Defined on the target from its last known definition.
    Defined,
    /// Started there.
    Started,
    /// Reported running there.
    Running,
}

impl RecoveryStep {
    pub fn label(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::FenceConfirmed => "fence confirmed",
            Self::Defined => "defined",
            Self::Started => "started",
            Self::Running => "running",
        }
    }
}

/// Restarting one VM of a lost node elsewhere, as a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub vm: String,
    /// The lost node, and where the VM restarts (empty until chosen).
    pub from: String,
    pub to: String,
    /// Who fenced and restarted: `operator` (vmshift recover) or `HA`
    /// (a cluster manager; the simulator models one).
    pub by: String,
    /// The steps reached, each with its time on the cluster's clock.
    pub steps: Vec<(RecoveryStep, u64)>,
    /// Why it stopped short of running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Recovery {
    /// When `step` was reached, if it was.
    pub fn reached(&self, step: RecoveryStep) -> Option<u64> {
        self.steps.iter().find(|s| s.0 == step).map(|s| s.1)
    }

    /// Adds `step` at `at_ms` unless it was reached already.
    pub fn reach(&mut self, step: RecoveryStep, at_ms: u64) {
        if self.reached(step).is_none() {
            self.steps.push((step, at_ms));
        }
    }

    pub fn is_finished(&self) -> bool {
        self.error.is_some() || self.reached(RecoveryStep::Running).is_some()
    }

    /// `lost 10:42:07 → fence confirmed +35.2 s → defined +0.1 s → …`,
    /// the first time by `clock`, each next one as the time it took.
    pub fn timeline(&self, clock: impl Fn(u64) -> String) -> String {
        let mut out = String::new();
        let mut prev: Option<u64> = None;
        for (step, at) in &self.steps {
            if let Some(p) = prev {
                out.push_str(&format!(
                    " → {} +{}",
                    step.label(),
                    super::units::millis(at.saturating_sub(p) as f64)
                ));
            } else {
                out.push_str(&format!("{} {}", step.label(), clock(*at)));
            }
            prev = Some(*at);
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(" → failed: {e}"));
        }
        out
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    #[test]
    fn the_timeline_says_each_step_with_the_time_it_took() {
        let mut r = Recovery {
            vm: "db".into(),
            from: "a".into(),
            to: "b".into(),
            by: "operator".into(),
            steps: vec![(RecoveryStep::Lost, 10_000)],
            error: None,
        };
        r.reach(RecoveryStep::FenceConfirmed, 45_000);
        r.reach(RecoveryStep::Defined, 45_100);
        r.reach(RecoveryStep::Defined, 99_000);
        assert!(!r.is_finished());
        r.reach(RecoveryStep::Started, 45_500);
        r.reach(RecoveryStep::Running, 46_700);
        assert!(r.is_finished());
        let t = r.timeline(|ms| format!("t={ms}"));
        assert!(t.starts_with("lost t=10000 → fence confirmed +"), "{t}");
        assert_eq!(t.matches(" → ").count(), 4, "{t}");
        assert!(t.contains("defined +100 ms"), "{t}");
        r.error = Some("no room".into());
        assert!(r.timeline(|_| String::new()).ends_with("failed: no room"));
    }
}
