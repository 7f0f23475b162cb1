//! The embedded simulated cluster (DESIGN §3.1).
//!
//! State lives here; migrations run in [`engine`]; time comes from a
//! [`clock::Clock`] that tests drive by hand (`Speed::Max` plus [`SimCluster::advance`])
//! and people watch at real speed.

pub mod clock;
pub mod engine;
pub mod generate;
pub mod noise;
pub mod scenario;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::backends::Backend;
use crate::cluster::{
    BackendError, ClusterEvent, ClusterSnapshot, Estimate, GIB, LostWith, Measured, Migration,
    MigrationCosts, MigrationId, MigrationRequest, Node, NodeState, Outcome, Recovery,
    RecoveryStep, StorageMove, StorageMoveId, Strength, Vm, VmAction, VmState, Volume, VolumeKind,
    Workload, units,
};
use crate::plan::precopy::{Costs, Guest};
use crate::plan::{self, Placement};
use crate::record::{Cordons, Journal, Meta, Record};

use clock::{Clock, Speed};
use engine::{Signal, SimMigration};
use scenario::{Scenario, ScheduledEvent};

/// Memory each node keeps for itself.
pub const HOST_RESERVE: u64 = 2 * GIB;
/// Engine step while something moves (virtual seconds).
const QUANTUM_S: f64 = 0.01;
/// Dirty-rate noise: ±10 % around the workload's rate, per 100 ms.
const DIRTY_SPREAD: f64 = 0.2;
/// The fixed part of each migration's downtime varies by ±20 %.
const SWITCHOVER_SPREAD: f64 = 0.4;
/// What the simulator's clean-up (Confirm) takes after the guest resumed.
const CLEANUP_MS: f64 = 200.0;
const EVENT_LOG_LEN: usize = 200;
/// Virtual seconds a guest takes to shut down after the ACPI request
/// (a busy batch guest takes longer).
const SHUTDOWN_S: f64 = 5.0;
const SHUTDOWN_BUSY_S: f64 = 12.0;
/// Virtual seconds a guest takes to come back from a reboot request.
const REBOOT_S: f64 = 8.0;
/// How fast a storage move (block copy) copies a disk between volumes.
pub const STORAGE_MOVE_BPS: u64 = 400 * crate::cluster::MIB;
const FINISHED_KEPT: usize = 50;
/// Storage moves that ended kept (for the snapshot and `storage_move`).
const STORAGE_MOVES_KEPT: usize = 20;
/// A simulated migration still running after this much virtual time has
/// failed: nothing in the simulator may run forever.
pub const MIGRATION_TIME_LIMIT_S: f64 = 7.0 * 24.0 * 3600.0;

/// A simulated guest's workload: the figures are known, and the dirty rate
/// varies within the simulator's noise.
pub(crate) fn simulated_workload(
    kind: &str,
    dirty_bps: u64,
    wws_bytes: u64,
    touched_bytes: u64,
    cpu_load: f64,
) -> Workload {
    Workload {
        kind: kind.into(),
        dirty_bps,
        wws_bytes,
        cpu_load,
        touched_bytes: Some(touched_bytes),
        measured: Some(Measured {
            dirty_bps: Estimate::spread(dirty_bps as f64, DIRTY_SPREAD / 2.0),
            wws_bytes: Estimate::exact(wws_bytes as f64),
            touched_bytes: Estimate::exact(touched_bytes as f64),
            basis: format!(
                "simulated {kind} workload: {} of data, dirtying {} (±{:.0} %) over a {} hot set",
                units::bytes(touched_bytes),
                units::rate(dirty_bps),
                DIRTY_SPREAD / 2.0 * 100.0,
                units::bytes(wws_bytes)
            ),
        }),
    }
}

struct Active {
    engine: SimMigration,
    placement: Placement,
    /// Key of the VM's dirty-rate noise.
    noise_key: u64,
    /// Its flight-recorder id, start and prediction.
    meta: Meta,
}

impl Active {
    /// The migration as it stands, with the model's live expectation.
    fn view(&self) -> Migration {
        let mut v = self.engine.view.clone();
        v.live = plan::live(&v);
        v
    }
}

pub struct SimCluster {
    name: String,
    seed: u64,
    setup_s: f64,
    switchover_ms: f64,
    ha_restart_s: f64,
    /// Virtual seconds since the scenario started.
    now: f64,
    clock: Clock,
    nodes: Vec<Node>,
    volumes: Vec<Volume>,
    vms: Vec<Vm>,
    migrations: Vec<Active>,
    scheduled: VecDeque<ScheduledEvent>,
    restarts: Vec<(f64, String)>,
    /// Shutdowns and reboots the guests are carrying out: (when, VM, what).
    vm_timers: Vec<(f64, String, VmAction)>,
    cordons: Cordons,
    failed_links: Vec<(String, String)>,
    events: VecDeque<ClusterEvent>,
    next_id: MigrationId,
    journal: Journal,
    /// Disks moving between volumes while their VM runs (move-disk).
    storage_moves: Vec<StorageMove>,
    /// Failed nodes: when each failed (virtual ms).
    lost_since: HashMap<String, u64>,
    /// The HA restarts of failed nodes' VMs, as timelines.
    recoveries: Vec<Recovery>,
    /// Placement rules from the scenario.
    rules: Vec<crate::cluster::Rule>,
    /// What must be acted on at once (a VM left down because restarting
    /// it would break a must rule).
    alarms: Vec<String>,
}

/// Recoveries kept in the snapshot.
const RECOVERIES_KEPT: usize = 200;

impl SimCluster {
    pub fn new(scenario: Scenario, speed: Speed) -> Self {
        let mut sim = Self {
            name: scenario.name,
            seed: scenario.seed,
            setup_s: scenario.setup_s,
            switchover_ms: scenario.switchover_ms,
            ha_restart_s: scenario.ha_restart_s,
            now: 0.0,
            clock: Clock::new(speed, 0.0),
            nodes: scenario.nodes,
            volumes: scenario.volumes,
            vms: scenario.vms,
            rules: scenario.rules,
            alarms: Vec::new(),
            migrations: Vec::new(),
            scheduled: scenario.events.into(),
            restarts: Vec::new(),
            lost_since: HashMap::new(),
            recoveries: Vec::new(),
            vm_timers: Vec::new(),
            cordons: Cordons::in_memory(),
            failed_links: Vec::new(),
            events: VecDeque::new(),
            next_id: 1,
            journal: Journal::off(),
            storage_moves: Vec::new(),
        };
        sim.log(format!(
            "simulated cluster {} started: {} nodes, {} VMs",
            sim.name,
            sim.nodes.len(),
            sim.vms.len()
        ));
        sim
    }

    /// Loads a scenario by name, path or `gen:` spec.
    pub fn from_spec(spec: &str, speed: Speed) -> Result<Self, scenario::ScenarioError> {
        Ok(Self::new(scenario::load(spec)?, speed))
    }

    pub fn now_ms(&self) -> u64 {
        (self.now * 1000.0).round() as u64
    }

    fn log(&mut self, text: String) {
        if self.events.len() == EVENT_LOG_LEN {
            self.events.pop_front();
        }
        self.events.push_back(ClusterEvent {
            at_ms: self.now_ms(),
            text,
        });
    }

    /// Catches virtual time up with the wall clock (no-op at `Speed::Max`).
    fn sync(&mut self) {
        let target = self.clock.target(self.now);
        if target > self.now {
            self.advance(Duration::from_secs_f64(target - self.now));
        }
    }

    /// Moves virtual time forward by `dt`, running migrations, HA restarts
    /// and scheduled events on the way.
    pub fn advance(&mut self, dt: Duration) {
        let end = self.now + dt.as_secs_f64();
        while self.now < end - 1e-12 {
            let next_timer = self
                .scheduled
                .front()
                .map(|e| e.at_s())
                .into_iter()
                .chain(self.restarts.iter().map(|r| r.0))
                .chain(self.vm_timers.iter().map(|r| r.0))
                .fold(f64::INFINITY, f64::min);
            let busy = self.migrations.iter().any(|m| !m.engine.is_done())
                || self.storage_moves.iter().any(|m| !m.is_finished());
            let mut step = (end - self.now).min((next_timer - self.now).max(0.0));
            if busy {
                step = step.min(QUANTUM_S);
            }
            if busy && step > 0.0 {
                self.step_migrations(step);
                self.step_storage_moves(step);
            }
            self.now += step;
            self.fire_timers();
        }
        self.now = self.now.max(end);
    }

    /// Block copies go on; a finished copy pivots: the VM runs from the
    /// new volume, and the old one is freed.
    fn step_storage_moves(&mut self, dt: f64) {
        let mut done = Vec::new();
        for m in self.storage_moves.iter_mut().filter(|m| !m.is_finished()) {
            m.elapsed_ms += dt * 1000.0;
            m.bps = STORAGE_MOVE_BPS;
            m.copied_bytes =
                (m.copied_bytes + (STORAGE_MOVE_BPS as f64 * dt) as u64).min(m.total_bytes);
            if m.copied_bytes >= m.total_bytes {
                m.pivoted = true;
                m.bps = 0;
                m.outcome = Some(Outcome::Completed);
                done.push(m.clone());
            }
        }
        for m in done {
            if let Some(v) = self.vms.iter_mut().find(|v| v.name == m.vm) {
                for d in v.disks.iter_mut().filter(|d| d.volume == m.from) {
                    d.volume = m.to.clone();
                }
            }
            for vol in self.volumes.iter_mut() {
                if vol.name == m.from {
                    vol.used = vol.used.saturating_sub(m.total_bytes);
                } else if vol.name == m.to {
                    vol.used += m.total_bytes;
                }
            }
            if let Some(text) = m.outcome_sentence() {
                self.log(text);
            }
        }
    }

    fn step_migrations(&mut self, dt: f64) {
        let bucket = (self.now * 10.0) as u64;
        let bws = self.bandwidths();
        let mut finished = Vec::new();
        let mut resumed = Vec::new();
        for (i, a) in self.migrations.iter_mut().enumerate() {
            if a.engine.is_done() {
                continue;
            }
            let mult = noise::around_one(self.seed, a.noise_key, bucket, DIRTY_SPREAD);
            for s in a.engine.step(dt, bws[i], mult) {
                match s {
                    Signal::Resumed => resumed.push(i),
                    Signal::Finished => finished.push(a.engine.view.id),
                }
            }
            if !a.engine.is_done() && a.engine.view.elapsed_ms > MIGRATION_TIME_LIMIT_S * 1000.0 {
                let reason = format!(
                    "the migration ran for more than {} days of simulated time without finishing; {} stays where it is",
                    MIGRATION_TIME_LIMIT_S / 86400.0,
                    a.engine.view.vm
                );
                a.engine.fail(&reason);
                finished.push(a.engine.view.id);
            }
        }
        for i in resumed {
            self.on_resumed(i);
        }
        finished.dedup();
        for id in finished {
            self.on_finished(id);
        }
    }

    /// Bandwidth each migration gets now: its own limit, and each node's NIC
    /// shared among the migrations moving bytes through it.
    fn bandwidths(&self) -> Vec<f64> {
        let users = |node: &str| {
            self.migrations
                .iter()
                .filter(|m| {
                    !m.engine.is_done() && (m.engine.view.from == node || m.engine.view.to == node)
                })
                .count()
                .max(1) as f64
        };
        let nic = |node: &str| {
            self.nodes
                .iter()
                .find(|n| n.name == node)
                .map_or(1.0, |n| n.nic_bps as f64)
        };
        self.migrations
            .iter()
            .map(|m| {
                let v = &m.engine.view;
                let share = (nic(&v.from) / users(&v.from)).min(nic(&v.to) / users(&v.to));
                v.options
                    .bandwidth_bps
                    .map_or(share, |b| share.min(b as f64))
            })
            .collect()
    }

    fn on_resumed(&mut self, i: usize) {
        let (vm, to, placement) = {
            let a = &self.migrations[i];
            (
                a.engine.view.vm.clone(),
                a.engine.view.to.clone(),
                a.placement.clone(),
            )
        };
        for lun in &placement.lun_moves {
            if let Some(v) = self.volumes.iter_mut().find(|v| v.name == *lun) {
                v.owner = Some(to.clone());
            }
        }
        if let Some(v) = self.vms.iter_mut().find(|v| v.name == vm) {
            v.node = to.clone();
            for (from_vol, to_vol, size) in &placement.copies {
                if let Some(d) = v.disks.iter_mut().find(|d| d.volume == *from_vol) {
                    d.volume = to_vol.clone();
                }
                for vol in self.volumes.iter_mut() {
                    if vol.name == *from_vol {
                        vol.used = vol.used.saturating_sub(*size);
                    } else if vol.name == *to_vol {
                        vol.used += size;
                    }
                }
            }
        }
    }

    /// A migration has ended: its VM settles, the event log and the flight
    /// recorder hear of it.
    fn on_finished(&mut self, id: MigrationId) {
        let Some(i) = self.migrations.iter().position(|m| m.engine.view.id == id) else {
            return;
        };
        let view = self.migrations[i].engine.view.clone();
        if view.outcome.is_some() {
            self.journal.submit(Record::finished(
                &self.migrations[i].meta,
                "sim",
                &self.name,
                &view,
            ));
        }
        if let Some(v) = self.vms.iter_mut().find(|v| v.name == view.vm)
            && v.state == VmState::Migrating
        {
            v.state = VmState::Running;
        }
        let Some(text) = view.outcome_sentence() else {
            return;
        };
        self.log(text);
        let done = self
            .migrations
            .iter()
            .filter(|m| m.engine.is_done())
            .count();
        if done > FINISHED_KEPT
            && let Some(pos) = self.migrations.iter().position(|m| m.engine.is_done())
        {
            self.migrations.remove(pos);
        }
    }

    fn fire_timers(&mut self) {
        while let Some(e) = self.scheduled.front() {
            if e.at_s() > self.now + 1e-9 {
                break;
            }
            match self.scheduled.pop_front() {
                Some(ScheduledEvent::NodeDown { node, .. }) => self.fail_node(&node),
                Some(ScheduledEvent::NodeUp { node, .. }) => self.recover_node(&node),
                None => {}
            }
        }
        let due: Vec<String> = self
            .restarts
            .iter()
            .filter(|r| r.0 <= self.now + 1e-9)
            .map(|r| r.1.clone())
            .collect();
        self.restarts.retain(|r| r.0 > self.now + 1e-9);
        for vm in due {
            self.restart(&vm);
        }
        let due: Vec<(String, VmAction)> = self
            .vm_timers
            .iter()
            .filter(|r| r.0 <= self.now + 1e-9)
            .map(|r| (r.1.clone(), r.2))
            .collect();
        self.vm_timers.retain(|r| r.0 > self.now + 1e-9);
        for (vm, action) in due {
            self.vm_timer(&vm, action);
        }
    }

    /// A guest has carried out a shutdown or reboot it was asked for.
    fn vm_timer(&mut self, name: &str, action: VmAction) {
        let Some(v) = self.vms.iter_mut().find(|v| v.name == name) else {
            return;
        };
        if v.state != VmState::Running {
            return; // forced off, failed with its node… meanwhile
        }
        let text = match action {
            VmAction::Shutdown => {
                v.state = VmState::Stopped;
                format!("{name} shut down")
            }
            _ => format!("{name} rebooted"),
        };
        self.log(text);
    }

    /// A node fails: migrations through it fail, its HA VMs restart elsewhere
    /// after the scenario's restart time, the others stop.
    pub fn fail_node(&mut self, name: &str) {
        self.sync();
        let Some(node) = self.nodes.iter_mut().find(|n| n.name == name) else {
            return;
        };
        if node.state == NodeState::Down {
            return;
        }
        node.state = NodeState::Down;
        node.error = Some("node failed".into());
        let now_ms = self.now_ms();
        self.lost_since.insert(name.to_string(), now_ms);
        self.log(format!("node {name} failed"));
        self.fail_migrations(
            |v| v.from == name || v.to == name,
            &format!("node {name} failed during the migration"),
            Some(name),
        );
        let restart_at = self.now + self.ha_restart_s;
        let mut texts = Vec::new();
        for vm in self.vms.iter_mut().filter(|v| v.node == name) {
            match vm.state {
                VmState::Stopped => {}
                _ if vm.ha => {
                    vm.state = VmState::Restarting;
                    self.restarts.push((restart_at, vm.name.clone()));
                    self.recoveries.push(Recovery {
                        vm: vm.name.clone(),
                        from: name.to_string(),
                        to: String::new(),
                        by: "HA".into(),
                        steps: vec![(RecoveryStep::Lost, now_ms)],
                        error: None,
                    });
                    texts.push(format!("{} is restarting (HA)", vm.name));
                }
                _ => {
                    vm.state = VmState::Stopped;
                    texts.push(format!("{} stopped with its node (not HA)", vm.name));
                }
            }
        }
        for t in texts {
            self.log(t);
        }
        let extra = self.recoveries.len().saturating_sub(RECOVERIES_KEPT);
        self.recoveries.drain(..extra);
    }

    /// The HA restart of `vm` under way, if any.
    fn recovery_of(&mut self, vm: &str) -> Option<&mut Recovery> {
        self.recoveries
            .iter_mut()
            .rev()
            .find(|r| r.vm == vm && !r.is_finished())
    }

    pub fn recover_node(&mut self, name: &str) {
        self.sync();
        self.lost_since.remove(name);
        if let Some(node) = self.nodes.iter_mut().find(|n| n.name == name) {
            node.state = NodeState::Up;
            node.error = None;
            self.log(format!("node {name} is up again"));
        }
    }

    /// The migration network between `a` and `b` breaks.
    pub fn fail_link(&mut self, a: &str, b: &str) {
        self.sync();
        self.failed_links.push((a.to_string(), b.to_string()));
        self.log(format!("migration link {a} ↔ {b} lost"));
        self.fail_migrations(
            |v| (v.from == a && v.to == b) || (v.from == b && v.to == a),
            &format!("migration link between {a} and {b} lost"),
            None,
        );
    }

    pub fn restore_link(&mut self, a: &str, b: &str) {
        self.failed_links
            .retain(|(x, y)| !((x == a && y == b) || (x == b && y == a)));
        self.log(format!("migration link {a} ↔ {b} restored"));
    }

    fn link_failed(&self, a: &str, b: &str) -> bool {
        self.failed_links
            .iter()
            .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
    }

    /// Fails the migrations `hit` picks; `down` is the node that failed,
    /// if one did (a VM whose source it was went down with it).
    fn fail_migrations(&mut self, hit: impl Fn(&Migration) -> bool, why: &str, down: Option<&str>) {
        let ha: std::collections::HashMap<String, bool> =
            self.vms.iter().map(|v| (v.name.clone(), v.ha)).collect();
        let mut lost = Vec::new();
        let mut ended = Vec::new();
        for a in self.migrations.iter_mut() {
            if a.engine.is_done() || !hit(&a.engine.view) {
                continue;
            }
            let on_target = a.engine.resumed();
            let reason = if on_target {
                format!(
                    "{why}; {} had already moved to {}",
                    a.engine.view.vm, a.engine.view.to
                )
            } else if down.is_some_and(|d| d == a.engine.view.from) {
                // The source went down: the VM went down with it.
                let vm = &a.engine.view.vm;
                match ha.get(vm.as_str()) {
                    Some(true) => format!(
                        "{why}; {vm} went down with {} and HA restarts it on another node",
                        a.engine.view.from
                    ),
                    _ => format!(
                        "{why}; {vm} went down with {} and stays stopped (not HA)",
                        a.engine.view.from
                    ),
                }
            } else {
                format!(
                    "{why}; {} keeps running on {}",
                    a.engine.view.vm, a.engine.view.from
                )
            };
            if a.engine.fail(&reason) {
                lost.push(a.engine.view.vm.clone());
            }
            ended.push(a.engine.view.id);
        }
        for id in ended {
            self.on_finished(id);
        }
        for vm in lost {
            if let Some(v) = self.vms.iter_mut().find(|v| v.name == vm) {
                v.state = VmState::Stopped;
            }
            self.log(format!(
                "{vm} was lost: post-copy had moved it and the rest of its memory could not arrive"
            ));
        }
    }

    fn restart(&mut self, name: &str) {
        let snap = self.build_snapshot();
        let Some(vm) = snap.vm(name).cloned() else {
            return;
        };
        let fits = |n: &Node| {
            n.state == NodeState::Up
                && plan::cordon_check(&snap, n).is_ok()
                && n.mem_free() >= vm.memory
                && plan::cpu::compatible(&vm.cpu_model, &n.cpu_model)
                && vm.disks.iter().all(|d| {
                    snap.volume(&d.volume).is_some_and(|v| {
                        v.reachable_from(&n.name)
                            && (v.kind != VolumeKind::SharedLun
                                || v.owner.as_deref() == Some(&n.name)
                                || snap
                                    .node(v.owner.as_deref().unwrap_or(""))
                                    .is_none_or(|o| o.state != NodeState::Up))
                    })
                })
        };
        // The placement rules hold for HA restarts too: never a must rule
        // broken; a should rule only where no node keeps it.
        let rules = plan::rules::VmRules::new(&snap, &vm);
        let mut blocked: Option<String> = None;
        let target = snap
            .nodes
            .iter()
            .filter(|n| fits(n))
            .filter_map(|n| {
                let breaches = rules.breaches(n, false);
                if let Some(b) = breaches.iter().find(|b| b.rule.strength == Strength::Must) {
                    blocked.get_or_insert_with(|| format!("on {}: {}", n.name, b.sentence));
                    return None;
                }
                Some((n, breaches.len()))
            })
            .min_by_key(|(n, breaks)| (*breaks, std::cmp::Reverse(n.mem_free())))
            .map(|(n, _)| n.name.clone());
        let now_ms = self.now_ms();
        let Some(target) = target else {
            if let Some(v) = self.vms.iter_mut().find(|v| v.name == name) {
                v.state = VmState::Stopped;
            }
            let why = match (&snap.cordons_unreadable, blocked) {
                (Some(e), _) => plan::Refusal::CordonsUnreadable(e.clone()).to_string(),
                (None, Some(rule)) => {
                    let why = format!(
                        "every node that could take it breaks a must rule ({rule}); it stays down rather than break the rule"
                    );
                    self.alarms.push(format!("{name} is down: {why}"));
                    why
                }
                (None, None) => format!(
                    "no up node reaches its disks with {} free",
                    crate::cluster::units::bytes(vm.memory)
                ),
            };
            if let Some(r) = self.recovery_of(name) {
                r.error = Some(why.clone());
            }
            self.log(format!("{name} could not be restarted: {why}"));
            return;
        };
        // The cluster manager fences the node, then defines and starts the
        // VM there; the model does it all at the restart time.
        if let Some(r) = self.recovery_of(name) {
            r.to = target.clone();
            for step in [
                RecoveryStep::FenceConfirmed,
                RecoveryStep::Defined,
                RecoveryStep::Started,
                RecoveryStep::Running,
            ] {
                r.reach(step, now_ms);
            }
        }
        for d in &vm.disks {
            if let Some(v) = self
                .volumes
                .iter_mut()
                .find(|v| v.name == d.volume && v.kind == VolumeKind::SharedLun)
            {
                v.owner = Some(target.clone());
            }
        }
        if let Some(v) = self.vms.iter_mut().find(|v| v.name == name) {
            v.node = target.clone();
            v.state = VmState::Running;
        }
        self.log(format!("{name} restarted on {target} (HA)"));
    }

    fn build_snapshot(&self) -> ClusterSnapshot {
        let bucket = (self.now / 2.0) as u64;
        let throttle_of = |vm: &str| {
            self.migrations
                .iter()
                .find(|m| !m.engine.is_done() && m.engine.view.vm == vm)
                .map_or(0, |m| m.engine.view.throttle_pct)
        };
        let vms: Vec<Vm> = self
            .vms
            .iter()
            .map(|v| {
                let mut v = v.clone();
                v.cpu_used_pct = if matches!(v.state, VmState::Running | VmState::Migrating) {
                    let load = v.workload.cpu_load
                        * noise::around_one(self.seed, noise::key(&v.name), bucket, 0.4);
                    (load * (1.0 - throttle_of(&v.name) as f64 / 100.0) * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                };
                v.lost = self.lost_since.get(&v.node).map(|since| LostWith {
                    node: v.node.clone(),
                    since_ms: *since,
                });
                v
            })
            .collect();
        // Memory and CPU per node, in one pass over the VMs.
        let mut load: HashMap<&str, (u64, f64)> = HashMap::with_capacity(self.nodes.len());
        for v in vms
            .iter()
            .filter(|v| !matches!(v.state, VmState::Stopped | VmState::Restarting))
        {
            let e = load.entry(v.node.as_str()).or_insert((0, 0.0));
            e.0 += v.memory;
            e.1 += v.vcpus as f64 * v.cpu_used_pct / 100.0;
        }
        // Memory held on the other end of a migration until it is done.
        for m in self.migrations.iter().filter(|m| !m.engine.is_done()) {
            let v = &m.engine.view;
            let other_end = if m.engine.resumed() { &v.from } else { &v.to };
            load.entry(other_end.as_str()).or_insert((0, 0.0)).0 += v.memory;
        }
        let mut nodes = self.nodes.clone();
        for n in nodes.iter_mut() {
            if n.state == NodeState::Down {
                n.mem_used = 0;
                n.cpu_used_pct = 0.0;
                continue;
            }
            let (mem, cpu) = load.get(n.name.as_str()).copied().unwrap_or((0, 0.0));
            n.mem_used = HOST_RESERVE + mem;
            n.cpu_used_pct = (cpu / n.cpus as f64 * 100.0 + 1.5).clamp(0.0, 100.0);
        }
        let mut snap = ClusterSnapshot {
            cluster: self.name.clone(),
            backend: "sim".into(),
            at_ms: self.now_ms(),
            nodes,
            volumes: self.volumes.clone(),
            vms,
            migrations: self.migrations.iter().map(|m| m.view()).collect(),
            events: self.events.iter().cloned().collect(),
            costs: self.costs(),
            manager: None,
            recoveries: self.recoveries.clone(),
            alarms: self.alarms.clone(),
            cordons_unreadable: None,
            storage_moves: self.storage_moves.clone(),
            marks: Vec::new(),
            stale_copies: Vec::new(),
            rules: self.rules.clone(),
        };
        self.cordons.mark(&mut snap);
        snap
    }

    /// The simulator's fixed costs, as the predictor should expect them.
    fn costs(&self) -> MigrationCosts {
        MigrationCosts {
            setup_ms: Estimate::exact(self.setup_s * 1000.0),
            switchover_ms: Estimate::spread(self.switchover_ms, SWITCHOVER_SPREAD / 2.0),
            cleanup_ms: CLEANUP_MS,
        }
    }

    fn set_vm_state(&mut self, vm: &str, state: VmState) {
        if let Some(v) = self.vms.iter_mut().find(|v| v.name == vm) {
            v.state = state;
        }
    }

    fn active(&mut self, id: MigrationId) -> Result<&mut SimMigration, BackendError> {
        self.migrations
            .iter_mut()
            .find(|m| m.engine.view.id == id)
            .map(|m| &mut m.engine)
            .ok_or(BackendError::NoSuchMigration(id))
    }
}

impl Backend for SimCluster {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn snapshot(&mut self) -> Result<ClusterSnapshot, BackendError> {
        self.sync();
        Ok(self.build_snapshot())
    }

    fn start_migration(&mut self, req: &MigrationRequest) -> Result<MigrationId, BackendError> {
        self.sync();
        let snap = self.build_snapshot();
        let vm = snap.require_vm(&req.vm)?;
        let node = snap.require_node(&req.to)?;
        let placement =
            plan::check_request(&snap, vm, node, &req.options).map_err(BackendError::Refused)?;
        if let Some(m) = self
            .storage_moves
            .iter()
            .find(|m| m.vm == vm.name && !m.is_finished())
        {
            return Err(BackendError::NotPossible(format!(
                "{}'s disk is moving to {}; wait for the storage move to end, then migrate it",
                vm.name, m.to
            )));
        }
        if self.link_failed(&vm.node, &node.name) {
            return Err(BackendError::NotPossible(format!(
                "the migration link between {} and {} is down; restore it or pick another node",
                vm.node, node.name
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let noise_key = noise::key(&req.vm);
        let inputs = req.inputs.clone().unwrap_or_else(|| {
            plan::inputs_for(
                &snap,
                vm,
                node,
                &req.options,
                placement.storage_bytes(),
                &[],
            )
        });
        let forecast = req
            .forecast
            .clone()
            .unwrap_or_else(|| plan::predict(&inputs, &req.options).forecast());
        let mut engine = SimMigration::new(
            id,
            (&vm.name, &vm.node, &node.name),
            req.options.clone(),
            Guest {
                memory: vm.memory as f64,
                touched: vm.workload.touched_bytes.unwrap_or(vm.memory) as f64,
                wws: vm.workload.wws_bytes.min(vm.memory) as f64,
                dirty_bps: vm.workload.dirty_bps as f64,
            },
            placement.storage_bytes(),
            Costs {
                setup_ms: self.setup_s * 1000.0,
                switchover_ms: self.switchover_ms
                    * noise::around_one(self.seed, noise_key, id, SWITCHOVER_SPREAD),
                final_bps: snap.link_bps(&vm.node, &node.name) as f64,
                cleanup_ms: CLEANUP_MS,
            },
            self.now_ms(),
        );
        engine.view.inputs = Some(inputs);
        engine.view.forecast = Some(forecast);
        let text = format!(
            "migration of {} {} → {} started",
            vm.name, vm.node, node.name
        );
        let vm_node = vm.node.clone();
        if let Some(v) = self.vms.iter_mut().find(|v| v.name == req.vm) {
            v.state = VmState::Migrating;
        }
        self.migrations.push(Active {
            engine,
            placement,
            noise_key,
            meta: Meta::new(false, req.forecast_json()),
        });
        self.log(text);
        for b in &req.options.broken_rules {
            self.log(b.log_line(&req.vm, &vm_node, &req.to));
        }
        Ok(id)
    }

    fn migration(&mut self, id: MigrationId) -> Result<Migration, BackendError> {
        self.sync();
        self.migrations
            .iter()
            .find(|m| m.engine.view.id == id)
            .map(Active::view)
            .ok_or(BackendError::NoSuchMigration(id))
    }

    fn abort(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.sync();
        self.active(id)?
            .abort("aborted by the operator")
            .map_err(BackendError::NotPossible)?;
        self.on_finished(id);
        Ok(())
    }

    fn move_disk(
        &mut self,
        vm: &str,
        disk: &str,
        volume: &str,
    ) -> Result<StorageMoveId, BackendError> {
        self.sync();
        let snap = self.build_snapshot();
        let v = snap.require_vm(vm)?;
        let bytes =
            plan::check_disk_move(&snap, v, disk, volume).map_err(BackendError::NotPossible)?;
        let id = self.next_id;
        self.next_id += 1;
        let m = StorageMove {
            id,
            vm: vm.into(),
            from: disk.into(),
            to: volume.into(),
            total_bytes: bytes,
            ..Default::default()
        };
        self.log(m.start_sentence());
        self.storage_moves.push(m);
        // The last few that ended stay for the snapshot; the rest go.
        while self
            .storage_moves
            .iter()
            .filter(|m| m.is_finished())
            .count()
            > STORAGE_MOVES_KEPT
            && let Some(i) = self.storage_moves.iter().position(|m| m.is_finished())
        {
            self.storage_moves.remove(i);
        }
        Ok(id)
    }

    fn storage_move(&mut self, id: StorageMoveId) -> Result<StorageMove, BackendError> {
        self.sync();
        self.storage_moves
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or_else(|| {
                BackendError::NotPossible(format!("there is no storage move with id {id}"))
            })
    }

    fn abort_storage_move(&mut self, id: StorageMoveId) -> Result<(), BackendError> {
        self.sync();
        let Some(m) = self.storage_moves.iter_mut().find(|m| m.id == id) else {
            return Err(BackendError::NotPossible(format!(
                "there is no storage move with id {id}"
            )));
        };
        if m.is_finished() {
            return Err(BackendError::NotPossible(format!(
                "the storage move of {}'s disk has already ended",
                m.vm
            )));
        }
        m.outcome = Some(Outcome::Aborted {
            reason: "the operator stopped it before the pivot".into(),
        });
        m.bps = 0;
        let text = m.outcome_sentence().unwrap_or_default();
        self.log(text);
        Ok(())
    }

    fn set_max_downtime(&mut self, id: MigrationId, ms: u64) -> Result<(), BackendError> {
        self.sync();
        self.active(id)?.set_max_downtime(ms);
        Ok(())
    }

    fn set_bandwidth(&mut self, id: MigrationId, bps: Option<u64>) -> Result<(), BackendError> {
        self.sync();
        self.active(id)?.set_bandwidth(bps);
        Ok(())
    }

    fn start_postcopy(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.sync();
        self.active(id)?
            .request_postcopy()
            .map_err(BackendError::NotPossible)
    }

    fn set_journal(&mut self, journal: Journal) {
        self.journal = journal;
    }

    fn vm_action(&mut self, vm: &str, action: VmAction) -> Result<String, BackendError> {
        self.sync();
        let snap = self.build_snapshot();
        let v = snap.require_vm(vm)?;
        plan::check_vm_action(&snap, v, action).map_err(BackendError::NotPossible)?;
        if let Some((_, _, pending)) = self.vm_timers.iter().find(|t| t.1 == vm)
            && action != VmAction::PowerOff
        {
            return Err(BackendError::NotPossible(format!(
                "{vm} is carrying out a {} already; wait for it, or force it off",
                pending.noun()
            )));
        }
        let node = v.node.clone();
        let busy = v.workload.kind == "batch";
        let now = self.now;
        let text = match action {
            VmAction::Start => {
                let free = snap.node(&node).map_or(0, |n| n.mem_free());
                if free < v.memory {
                    return Err(BackendError::NotPossible(format!(
                        "node {node} has {} free but {vm} needs {}; free memory there first",
                        units::bytes(free),
                        units::bytes(v.memory)
                    )));
                }
                self.set_vm_state(vm, VmState::Running);
                let down = format!("{vm} is down:");
                self.alarms.retain(|a| !a.starts_with(&down));
                format!("{vm} started on {node}")
            }
            VmAction::Shutdown => {
                let after = if busy { SHUTDOWN_BUSY_S } else { SHUTDOWN_S };
                self.vm_timers.push((now + after, vm.into(), action));
                format!("shutdown (ACPI) of {vm} requested; the guest is shutting down")
            }
            VmAction::Reboot => {
                self.vm_timers.push((now + REBOOT_S, vm.into(), action));
                format!("reboot of {vm} requested; the guest is rebooting")
            }
            VmAction::PowerOff => {
                self.vm_timers.retain(|t| t.1 != vm);
                self.set_vm_state(vm, VmState::Stopped);
                format!("{vm} forced off on {node}")
            }
        };
        self.log(text.clone());
        Ok(text)
    }

    fn console_command(&mut self, vm: &str) -> Result<Vec<String>, BackendError> {
        self.sync();
        self.build_snapshot().require_vm(vm)?;
        Err(BackendError::NotPossible(format!(
            "the simulated cluster has no consoles; {vm}'s console needs a libvirt node (--connect URI)"
        )))
    }

    fn cordons(&mut self) -> &mut Cordons {
        &mut self.cordons
    }

    fn shutdown(&mut self, why: &str) -> Vec<Migration> {
        self.sync();
        let running: Vec<MigrationId> = self
            .migrations
            .iter()
            .filter(|m| !m.engine.is_done())
            .map(|m| m.engine.view.id)
            .collect();
        for id in running {
            let Ok(e) = self.active(id) else { continue };
            let (vm, from, to) = (e.view.vm.clone(), e.view.from.clone(), e.view.to.clone());
            let aborted = e.abort(&format!(
                "vmshift stopped ({why}) and the simulated migration ends with it; {vm} keeps running on {from}"
            ));
            if aborted.is_err() {
                // Past its switchover: it cannot be aborted, only cut off.
                e.fail(&format!(
                    "vmshift stopped ({why}) after the switchover and the simulated migration ended with it; {vm} was moving to {to}"
                ));
            }
            self.on_finished(id);
        }
        Vec::new()
    }

    fn wait(&mut self, max: Duration) {
        match self.clock.speed() {
            Speed::Max => self.advance(max),
            Speed::Times(_) => {
                std::thread::sleep(max);
                self.sync();
            }
        }
    }
}
