//! A live migration: its options, steps and rounds, what the model is
//! given about it and expects of it, and how it stands.

use serde::{Deserialize, Serialize};

use super::storage_move::DiskCopy;

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
