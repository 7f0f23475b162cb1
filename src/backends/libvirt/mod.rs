//! The real backend: a cluster of libvirt nodes (DESIGN §3.2).
//!
//! Nodes are polled by a bounded pool of threads ([`node`]); migrations run as managed
//! peer-to-peer migrations on their own threads ([`migrate`]); the few C
//! APIs the `virt` crate lacks live in [`ffi`]. Everything the app gets is an
//! owned snapshot; no call here waits on a node longer than the timeout.

mod ffi;
mod managed;
mod marks;
pub mod measure;
mod migrate;
pub mod node;
mod rounds;
pub mod ssh;
pub mod state;
mod storage;
pub mod testdriver;
mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cluster::text::{shell_line, shell_word};
use crate::cluster::{
    Backend, BackendError, ClusterSnapshot, Cordon, Disk, LostWith, ManagedBy, ManagedMark,
    ManagerView, Measured, Migration, MigrationCosts, MigrationId, MigrationRequest, Node,
    NodeState, Outcome, Recovery, RecoveryStep, StaleCopy, Vm, VmAction, VmState, Volume,
    VolumeKind, Workload, set_local_cordon,
};
use crate::manager::ClusterManager;
use crate::plan;
use crate::record::{Cordons, Journal, Meta, Record};
use migrate::{Entry, Shared, Table};
pub use node::NodeSpec;
use node::{NodeData, NodeHandle, PoolData};
use xml::DiskSource;

/// A shared volume declared in the config: pools of this name on the nodes
/// that have them are one volume.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedDecl {
    pub name: String,
    pub pools: Vec<String>,
    pub kind: VolumeKind,
    /// The operator vouches it is one coherent storage (see the config).
    pub trusted: bool,
}

#[derive(Clone)]
pub struct LibvirtConfig {
    pub cluster: String,
    pub nodes: Vec<NodeSpec>,
    pub shared: Vec<SharedDecl>,
    pub timeout: Duration,
    /// A node unreachable this long is lost (shown down, its VMs as last seen).
    pub lost_after: Duration,
    /// The cluster manager that owns some of the VMs, if any.
    pub manager: Option<Arc<dyn ClusterManager>>,
}

pub struct LibvirtCluster {
    cfg: LibvirtConfig,
    pool: Arc<node::Pool>,
    nodes: Vec<NodeHandle>,
    /// Last good data per node index (kept while a node is unreachable).
    last: HashMap<usize, NodeData>,
    snapshot: Option<ClusterSnapshot>,
    shared: Shared,
    /// Migrations an earlier vmshift left running (detached records not
    /// completed yet): found again, or settled from where their VM runs.
    detached: Vec<Record>,
    cordons: Cordons,
    /// When each node was first seen in standby in Pacemaker.
    standby_since: HashMap<String, u64>,
    /// The cluster manager that owns some VMs (Pacemaker), its last good
    /// view, and (our node name, its node name) where they differ in form.
    manager: Option<Arc<dyn ClusterManager>>,
    manager_view: Option<ManagerView>,
    manager_names: Vec<(String, String)>,
    /// Moves through the cluster manager still settling (waiting for it to
    /// confirm, clearing its move constraint).
    managed_moves: Vec<std::thread::JoinHandle<()>>,
    /// Disks moving between pools (move-disk), each on its own thread.
    storage_moves: storage::Moves,
    next_storage_id: crate::cluster::StorageMoveId,
    /// What runs where, as last saved (see `remember`).
    known_shape: String,
    /// When each node last answered (unix ms), kept between runs so that
    /// "last seen" and "lost" do not restart with every vmshift.
    seen: HashMap<usize, u64>,
    /// When `seen` was last written.
    seen_saved_ms: u64,
    /// Since when each node has not answered (this run), and the wall time.
    unreachable_since: HashMap<usize, (Instant, u64)>,
    /// VMs found running twice and already raised (vm@nodes).
    alarmed: Vec<String>,
    /// Each node's state at the last poll, to log its changes.
    node_states: HashMap<String, NodeState>,
    /// Lost nodes the operator confirmed powered off or fenced (unix ms).
    fenced: HashMap<String, u64>,
    /// VMs of lost nodes restarted elsewhere, as timelines.
    recoveries: Vec<Recovery>,
    /// Cluster-manager marks being written to domains now.
    mark_writes: marks::InFlight,
    /// Since when the cluster manager has not answered (unix ms).
    manager_silent_since: Option<u64>,
}

/// Longest wait at exit for cluster-manager marks being written.
const MARK_SETTLE: Duration = Duration::from_secs(10);

/// Longest wait for the record of intent before a migration starts (a
/// recorder that cannot write is reported with the migration's record).
const INTENT_WAIT: Duration = Duration::from_secs(2);

/// Pools that are local to a host by convention, even with the same path elsewhere.
const LOCAL_PATHS: &[&str] = &["/var/lib/libvirt"];

impl LibvirtCluster {
    pub fn connect(mut cfg: LibvirtConfig) -> Result<LibvirtCluster, String> {
        // ssh never asks anything on the terminal the view draws on.
        for n in cfg.nodes.iter_mut() {
            n.uri = ssh::batch_uri(&n.uri);
        }
        if cfg.nodes.is_empty() {
            return Err("no libvirt nodes configured; add [[libvirt.node]] entries to the config or use --connect URI".into());
        }
        ffi::init()?;
        bound_malloc_arenas();
        let shared: Shared = Arc::new((Mutex::new(Table::default()), Condvar::new()));
        let (pool, nodes) = node::Pool::start(
            &cfg.nodes,
            |_| {
                let sh = shared.clone();
                Arc::new(move |node: &str, ev: ffi::Event| {
                    let (lock, cv) = &*sh;
                    let found = lock.lock().ok().and_then(|mut t| t.on_event(node, ev));
                    cv.notify_all();
                    if let Some(f) = found {
                        migrate::follow_in_background(sh.clone(), f.id, f.vm, f.uri);
                    }
                })
            },
            cfg.timeout,
        );
        let mut c = LibvirtCluster {
            pool,
            nodes,
            last: HashMap::new(),
            snapshot: None,
            shared,
            detached: Vec::new(),
            cordons: Cordons::in_memory(),
            standby_since: HashMap::new(),
            manager: cfg.manager.clone(),
            manager_view: None,
            manager_names: Vec::new(),
            managed_moves: Vec::new(),
            storage_moves: Default::default(),
            next_storage_id: 0,
            known_shape: String::new(),
            seen: HashMap::new(),
            seen_saved_ms: 0,
            unreachable_since: HashMap::new(),
            alarmed: Vec::new(),
            fenced: HashMap::new(),
            node_states: HashMap::new(),
            recoveries: Vec::new(),
            mark_writes: Default::default(),
            manager_silent_since: None,
            cfg,
        };
        c.recall();
        Ok(c)
    }

    /// Poll threads running now (bounded by [`node::POLL_THREADS`] while
    /// no poll hangs).
    pub fn poll_threads(&self) -> usize {
        self.pool.threads()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.shared.0.lock().expect("migration table")
    }

    /// Polls every node in parallel, waiting at most the timeout for each.
    /// A node's answer goes into `self.last` (moved, not copied: with
    /// hundreds of nodes every copy of their data counts).
    fn poll(&mut self) -> Vec<(String, Result<(), String>)> {
        let tickets: Vec<u64> = self.nodes.iter().map(|n| n.request()).collect();
        let start = Instant::now();
        let mut out = Vec::new();
        for (i, (n, t)) in self.nodes.iter().zip(tickets).enumerate() {
            // A node's first answer gets longer than later ones.
            let patience = n.patience(self.cfg.timeout);
            let r = match n.wait(t, start + patience) {
                Some(Ok(d)) => {
                    self.last.insert(i, d);
                    self.seen.insert(i, crate::record::now_ms());
                    Ok(())
                }
                Some(Err(e)) => Err(e),
                None => Err(format!(
                    "did not answer within {} s",
                    patience.as_secs_f64().round() as u64
                )),
            };
            let name = node_name(&n.spec, self.last.get(&i));
            out.push((name, r));
        }
        out
    }

    fn build(&mut self) -> ClusterSnapshot {
        // The cluster manager is read while the nodes are polled: a slow
        // one costs its own deadline, not the sum of both.
        let manager_read = self.manager.clone().and_then(|m| {
            std::thread::Builder::new()
                .name("manager-read".into())
                .spawn(move || m.read())
                .ok()
        });
        let polled = self.poll();
        self.remember();
        self.remember_seen();
        // The nodes' data, borrowed while the snapshot is built (put back at the end).
        let last = std::mem::take(&mut self.last);
        let snap = self.build_from(&polled, &last, manager_read);
        self.last = last;
        snap
    }

    fn build_from(
        &mut self,
        polled: &[(String, Result<(), String>)],
        last: &HashMap<usize, NodeData>,
        manager_read: Option<std::thread::JoinHandle<Result<ManagerView, String>>>,
    ) -> ClusterSnapshot {
        let mut nodes = Vec::new();
        // (node index, node name, data) for every node we have data for:
        // its answer now, or its last one while it does not answer.
        let mut data: Vec<(usize, String, &NodeData)> = Vec::new();
        for (i, (name, r)) in polled.iter().enumerate() {
            let (state, error) = match r {
                Ok(_) => {
                    self.unreachable_since.remove(&i);
                    // Answering again: a fence confirmed earlier no longer holds.
                    self.fenced.remove(name);
                    (NodeState::Up, None)
                }
                Err(e) => {
                    // Unreachable since its last answer, this run's or an
                    // earlier one's.
                    let now_ms = crate::record::now_ms();
                    let seen = self.seen.get(&i).copied().filter(|s| *s <= now_ms);
                    let (since, at) = *self.unreachable_since.entry(i).or_insert_with(|| {
                        let at = seen.unwrap_or(now_ms);
                        let ago = Duration::from_millis(now_ms - at);
                        (
                            Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
                            at,
                        )
                    });
                    lost_or_unreachable(since.elapsed(), self.cfg.lost_after, at, e)
                }
            };
            let d = last.get(&i);
            nodes.push(Node {
                name: name.clone(),
                state,
                cpus: d.as_ref().map_or(0, |d| d.cpus),
                cpu_used_pct: d
                    .as_ref()
                    .filter(|_| r.is_ok())
                    .map_or(0.0, |d| d.cpu_used_pct),
                mem_total: d.as_ref().map_or(0, |d| d.mem_total),
                mem_used: d
                    .as_ref()
                    .map_or(0, |d| d.mem_total.saturating_sub(d.mem_free)),
                cpu_model: d.as_ref().map_or(String::new(), |d| d.cpu_model.clone()),
                // libvirt does not say; the migration's own bandwidth limit applies.
                nic_bps: 1250 * crate::cluster::MIB,
                error,
                cordon: None,
            });
            if let Some(d) = d {
                data.push((i, name.clone(), d));
            }
        }
        self.log_node_changes(&nodes);
        let (volumes, pool_volume) = self.volumes(&data);
        // Nodes that answered this poll: their VMs are facts, the others'
        // are the last known (a lost node's).
        let fresh: Vec<&str> = polled
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.as_str())
            .collect();
        // The same VM running on two nodes that answer (a lost node came
        // back while its VM had been recovered elsewhere): the loudest alarm.
        let running: Vec<(&str, Vec<&str>)> = data
            .iter()
            .filter(|(_, n, _)| fresh.contains(&n.as_str()))
            .map(|(_, n, d)| {
                let names = d
                    .domains
                    .iter()
                    .filter(|x| {
                        matches!(x.state, VmState::Running | VmState::Paused)
                            && !x.incoming
                            && !x.migrating_out
                    })
                    .map(|x| x.name.as_str())
                    .collect();
                (n.as_str(), names)
            })
            .collect();
        let manager = self.read_manager(&nodes, manager_read);
        let marks = self.marks(&data, &fresh, manager.as_ref());
        let mut alarms = Vec::new();
        for (vm, on) in running_twice(&running) {
            let key = format!("{vm}@{}", on.join("+"));
            let owner = manager
                .as_ref()
                .and_then(|v| v.vms.iter().find(|m| m.domain == vm))
                .map(|m| m.resource.clone())
                .or_else(|| {
                    marks
                        .iter()
                        .find(|m| m.vm == vm)
                        .map(|m| m.resource.clone())
                });
            let text = match owner {
                // Pacemaker stops all copies but one once it sees them
                // (multiple-active); a refresh makes it look now.
                Some(r) => format!(
                    "ALARM: {vm} runs on {} at once — its disks are being corrupted; it is Pacemaker resource {r}: let Pacemaker stop the extra copy (`crm_resource --refresh --resource {}` makes it probe every node now), never destroy one behind its back",
                    on.join(" and "),
                    shell_word(&r)
                ),
                None => format!(
                    "ALARM: {vm} runs on {} at once — its disks are being corrupted; stop the copy that should not run now (`virsh destroy {}` on the node that should not run it: the one that was lost, or where it was started by mistake)",
                    on.join(" and "),
                    shell_word(vm)
                ),
            };
            if !self.alarmed.contains(&key) {
                self.table().log(text.clone());
                self.alarmed.push(key);
            }
            alarms.push(text);
        }
        let mut vms: Vec<Vm> = Vec::new();
        for (i, node, d) in &data {
            // `nodes` follows the poll's order: node i is `nodes[i]`.
            let lost = (nodes[*i].state == NodeState::Down)
                .then(|| self.unreachable_since.get(i))
                .flatten()
                .map(|(_, since_ms)| LostWith {
                    node: node.clone(),
                    since_ms: *since_ms,
                });
            for dom in &d.domains {
                if dom.incoming {
                    continue; // the other side of a running migration
                }
                let vm = Vm {
                    name: dom.name.clone(),
                    node: node.clone(),
                    state: if dom.migrating_out {
                        VmState::Migrating
                    } else {
                        dom.state
                    },
                    vcpus: dom.vcpus,
                    memory: dom.memory,
                    disks: dom
                        .disks
                        .iter()
                        .map(|(dk, size)| Disk {
                            volume: disk_volume(node, &dk.source, d, &pool_volume),
                            size: *size,
                        })
                        .collect(),
                    workload: workload(dom),
                    ha: false,
                    cpu_model: dom.cpu_model.clone(),
                    cpu_used_pct: dom.cpu_pct,
                    lost: lost.clone(),
                };
                // One VM per name: a running copy wins over a stale definition.
                // A copy on a node that answers wins over the last known
                // one of a node that does not.
                let key = |v: &Vm| (fresh.contains(&v.node.as_str()), rank(v.state));
                match vms.iter_mut().find(|v| v.name == vm.name) {
                    Some(v) if key(v) < key(&vm) => *v = vm,
                    Some(_) => {}
                    None => vms.push(vm),
                }
            }
        }
        // Volumes whose disks are not in any pool.
        let mut volumes = volumes;
        for vm in &vms {
            for d in &vm.disks {
                if volumes.iter().all(|v| v.name != d.volume) {
                    volumes.push(Volume {
                        name: d.volume.clone(),
                        kind: VolumeKind::Local,
                        owner: Some(vm.node.clone()),
                        capacity: 0,
                        used: 0,
                        reachable_from: vec![vm.node.clone()],
                    });
                }
            }
        }
        // Shared LUN owner: the node whose VMs use it.
        for v in volumes
            .iter_mut()
            .filter(|v| v.kind == VolumeKind::SharedLun)
        {
            if let Some(vm) = vms
                .iter()
                .find(|m| m.disks.iter().any(|d| d.volume == v.name))
            {
                v.owner = Some(vm.node.clone());
            }
        }
        let stale_copies = stale_copies(&data, &fresh, |i| self.nodes[i].spec.uri.clone());
        for vm in vms.iter_mut() {
            vm.ha |= manager
                .as_ref()
                .is_some_and(|view| view.vms.iter().any(|m| m.domain == vm.name))
                || marks.iter().any(|m| m.vm == vm.name);
        }
        for sc in &stale_copies {
            let key = format!("stale:{}@{}", sc.vm, sc.node);
            if !self.alarmed.contains(&key) {
                self.table().log(format!(
                    "stale copy of {} found on {}: defined and shut off while it runs on {}; starting it would run it twice — remove it: `{}`",
                    sc.vm, sc.node, sc.runs_on, sc.remove
                ));
                self.alarmed.push(key);
            }
        }
        for sc in stale_copies.iter().filter(|sc| sc.autostart) {
            let text = format!(
                "ALARM: the stale, shut-off copy of {} on {} is marked to autostart: libvirt would start it when {} boots, running {} twice (it runs on {}); remove it now: `{}`",
                sc.vm, sc.node, sc.node, sc.vm, sc.runs_on, sc.remove
            );
            let key = format!("autostart:{}@{}", sc.vm, sc.node);
            if !self.alarmed.contains(&key) {
                self.table().log(text.clone());
                self.alarmed.push(key);
            }
            alarms.push(text);
        }
        {
            let mut t = self.table();
            t.uris = data
                .iter()
                .map(|(i, n, _)| (n.clone(), self.nodes[*i].spec.uri.clone()))
                .collect();
            t.managed = manager
                .iter()
                .flat_map(|v| &v.vms)
                .map(|m| {
                    (
                        m.domain.clone(),
                        ManagedBy {
                            manager: "pacemaker".into(),
                            resource: m.resource.clone(),
                        },
                    )
                })
                .collect();
        }
        self.discover(&data);
        self.settle_detached(&nodes, &vms);
        // Storage moves: their ends go to the event log once.
        let (storage_moves, ended) = storage::take_views(&self.storage_moves);
        for text in ended {
            self.table().log(text);
        }
        let (migrations, events) = {
            let t = self.table();
            let mut m: Vec<Migration> = t.entries.values().map(|e| e.view.clone()).collect();
            m.sort_by_key(|m| m.id);
            (m, t.log.iter().cloned().collect())
        };
        for vm in vms.iter_mut() {
            if migrations
                .iter()
                .any(|m| m.vm == vm.name && m.outcome.is_none())
                && vm.state == VmState::Running
            {
                vm.state = VmState::Migrating;
            }
        }
        // A restarted VM is running once a node that answers says so.
        let now = crate::record::now_ms();
        for r in self.recoveries.iter_mut().filter(|r| !r.is_finished()) {
            if vms.iter().any(|v| {
                v.name == r.vm
                    && v.node == r.to
                    && v.state == VmState::Running
                    && fresh.contains(&v.node.as_str())
            }) {
                r.reach(RecoveryStep::Running, now);
            }
        }
        let mut snap = ClusterSnapshot {
            cluster: self.cfg.cluster.clone(),
            backend: "libvirt".into(),
            at_ms: 0,
            nodes,
            volumes,
            vms,
            migrations,
            events,
            costs: MigrationCosts::default(),
            manager,
            recoveries: self.recoveries.clone(),
            alarms,
            storage_moves,
            marks,
            stale_copies,
            cordons_unreadable: None,
        };
        self.give_inputs(&mut snap);
        // A node in standby in Pacemaker is cordoned by Pacemaker.
        if let Some(view) = &snap.manager {
            for n in snap.nodes.iter_mut() {
                let standby = view
                    .nodes
                    .iter()
                    .any(|m| m.name == n.name && (m.standby || m.maintenance));
                if standby {
                    let since = *self
                        .standby_since
                        .entry(n.name.clone())
                        .or_insert_with(crate::record::now_ms);
                    n.cordon = Some(Cordon {
                        since_unix_ms: since,
                        by: "Pacemaker (standby)".into(),
                    });
                } else {
                    self.standby_since.remove(&n.name);
                }
            }
        }
        self.cordons.mark(&mut snap);
        snap
    }

    /// Migrations found running (virsh, another vmshift) get model inputs
    /// from what is measured of their guest, for the live re-prediction.
    fn give_inputs(&self, snap: &mut ClusterSnapshot) {
        let missing: Vec<MigrationId> = snap
            .migrations
            .iter()
            .filter(|m| m.inputs.is_none() && m.outcome.is_none())
            .map(|m| m.id)
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut t = self.table();
        for id in missing {
            let Some(e) = t.entries.get_mut(&id) else {
                continue;
            };
            let (Some(vm), Some(node)) = (snap.vm(&e.view.vm), snap.node(&e.view.to)) else {
                continue;
            };
            e.view.inputs = Some(plan::inputs_for(snap, vm, node, &e.view.options, 0, &[]));
            if let Some(m) = snap.migrations.iter_mut().find(|m| m.id == id) {
                m.inputs.clone_from(&e.view.inputs);
            }
        }
    }

    /// Volumes from the pools of all nodes, and (node, pool) → volume name.
    fn volumes(
        &self,
        data: &[(usize, String, &NodeData)],
    ) -> (Vec<Volume>, HashMap<(String, String), String>) {
        // Group pools by what backs them.
        // (key, kind, [(node, pool)])
        type Group = (String, VolumeKind, Vec<(String, PoolData)>);
        let mut groups: Vec<Group> = Vec::new();
        for (_, node, d) in data {
            for p in d.pools.iter().filter(|p| p.active) {
                let (key, kind) = self.pool_key(node, p);
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => g.2.push((node.clone(), p.clone())),
                    None => groups.push((key, kind, vec![(node.clone(), p.clone())])),
                }
            }
        }
        let mut volumes = Vec::new();
        let mut map = HashMap::new();
        let name_count = |name: &str| {
            groups
                .iter()
                .filter(|g| g.2.iter().any(|(_, p)| p.name == name))
                .count()
        };
        for (key, kind, members) in &groups {
            let shared = members.len() > 1 || key.starts_with("decl:");
            let first = &members[0].1;
            let name = if let Some(decl) = key.strip_prefix("decl:") {
                decl.to_string()
            } else if shared || name_count(&first.name) == 1 {
                first.name.clone()
            } else {
                format!("{}@{}", first.name, members[0].0)
            };
            let kind = if shared { *kind } else { VolumeKind::Local };
            for (node, p) in members {
                map.insert((node.clone(), p.name.clone()), name.clone());
            }
            volumes.push(Volume {
                name,
                kind,
                owner: (!shared).then(|| members[0].0.clone()),
                capacity: members.iter().map(|m| m.1.capacity).max().unwrap_or(0),
                used: members.iter().map(|m| m.1.allocation).max().unwrap_or(0),
                reachable_from: members.iter().map(|m| m.0.clone()).collect(),
            });
        }
        (volumes, map)
    }

    /// Logs a node that stops answering, is lost, or answers again: the
    /// event log keeps when it happened after the card has changed.
    fn log_node_changes(&mut self, nodes: &[Node]) {
        let mut lines = Vec::new();
        for n in nodes {
            let before = self.node_states.insert(n.name.clone(), n.state);
            if before == Some(n.state) || (before.is_none() && n.state == NodeState::Up) {
                continue;
            }
            let why = n.error.as_deref().unwrap_or("no answer");
            lines.push(match n.state {
                NodeState::Up => format!("{} answers again", n.name),
                NodeState::Down => format!("{} is {why}", n.name),
                _ => format!("{} does not answer: {why}", n.name),
            });
        }
        if !lines.is_empty() {
            let mut t = self.table();
            for l in lines {
                t.log(l);
            }
        }
    }

    /// Whether the operator declared `volume` as one coherent storage
    /// (`trusted = true`), which libvirt cannot see for itself.
    fn trusted_volume(&self, volume: &str) -> bool {
        self.cfg
            .shared
            .iter()
            .any(|d| d.trusted && d.name == volume && d.kind == VolumeKind::ClusterShared)
    }

    /// What identifies a pool's storage across nodes, and the kind of
    /// volume it makes when several nodes have it.
    fn pool_key(&self, node: &str, p: &PoolData) -> (String, VolumeKind) {
        if let Some(d) = self.cfg.shared.iter().find(|d| d.pools.contains(&p.name)) {
            return (format!("decl:{}", d.name), d.kind);
        }
        let lun = matches!(
            p.kind.as_str(),
            "iscsi" | "iscsi-direct" | "scsi" | "mpath" | "logical" | "disk"
        );
        let kind = if lun {
            VolumeKind::SharedLun
        } else {
            VolumeKind::ClusterShared
        };
        let networked = matches!(
            p.kind.as_str(),
            "netfs"
                | "gluster"
                | "rbd"
                | "sheepdog"
                | "iscsi"
                | "iscsi-direct"
                | "vstorage"
                | "zfs"
        );
        if networked && !p.source.is_empty() {
            return (format!("src:{}:{}", p.kind, p.source), kind);
        }
        let local_by_convention = LOCAL_PATHS.iter().any(|l| p.target.starts_with(l));
        if matches!(p.kind.as_str(), "dir" | "fs") && !p.target.is_empty() && !local_by_convention {
            // The same directory on several nodes: a shared dir (cluster FS).
            return (format!("path:{}", p.target), kind);
        }
        (format!("local:{node}:{}", p.name), VolumeKind::Local)
    }

    /// The last snapshot with the cluster manager asked afresh (whatever
    /// the poll interval): an action on a VM it may own is decided on its
    /// answer now, never on one from a poll ago.
    fn snapshot_for_action(&mut self) -> Result<ClusterSnapshot, BackendError> {
        let mut snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => return self.snapshot(),
        };
        if self.manager.is_some() {
            let nodes = snap.nodes.clone();
            snap.manager = self.read_manager(&nodes, None);
            if let Some(s) = self.snapshot.as_mut() {
                s.manager = snap.manager.clone();
            }
        }
        Ok(snap)
    }

    /// The VMs that carry vmshift's cluster-manager mark, and the marks
    /// brought in line with what the manager says where it answers: a VM
    /// it owns gets one (on a running domain with no job, on a thread of
    /// its own), one it no longer owns loses it.
    fn marks(
        &self,
        data: &[(usize, String, &NodeData)],
        fresh: &[&str],
        manager: Option<&ManagerView>,
    ) -> Vec<ManagedMark> {
        let mut out: Vec<ManagedMark> = Vec::new();
        for (_, _, d) in data {
            for dom in d.domains.iter().filter(|x| !x.incoming) {
                if let Some(m) = &dom.managed
                    && out.iter().all(|o| o.vm != dom.name)
                {
                    out.push(ManagedMark {
                        vm: dom.name.clone(),
                        manager: m.manager.clone(),
                        resource: m.resource.clone(),
                        since_ms: m.since_ms,
                    });
                }
            }
        }
        // Only a manager that answers now says who it owns.
        let Some(view) = manager.filter(|v| v.known && v.error.is_none()) else {
            return out;
        };
        let now = crate::record::now_ms();
        for (i, node, d) in data {
            if !fresh.contains(&node.as_str()) {
                continue;
            }
            for dom in &d.domains {
                let quiet = dom.state == VmState::Running && !dom.incoming && !dom.migrating_out;
                let owner = view.vms.iter().find(|m| m.domain == dom.name);
                let want = owner.map(|o| xml::MarkXml {
                    manager: view.kind.clone(),
                    resource: o.resource.clone(),
                    since_ms: dom
                        .managed
                        .as_ref()
                        .filter(|m| m.resource == o.resource)
                        .map_or(now, |m| m.since_ms),
                });
                let same = match (&want, &dom.managed) {
                    (Some(w), Some(h)) => w.manager == h.manager && w.resource == h.resource,
                    (None, None) => true,
                    _ => false,
                };
                if let Some(w) = &want
                    && out.iter().all(|o| o.vm != dom.name)
                {
                    out.push(ManagedMark {
                        vm: dom.name.clone(),
                        manager: w.manager.clone(),
                        resource: w.resource.clone(),
                        since_ms: w.since_ms,
                    });
                }
                if same || !quiet {
                    continue;
                }
                if want.is_none() {
                    out.retain(|o| o.vm != dom.name);
                }
                marks::spawn(
                    self.shared.clone(),
                    self.mark_writes.clone(),
                    marks::MarkWrite {
                        uri: self.nodes[*i].spec.uri.clone(),
                        vm: dom.name.clone(),
                        node: node.clone(),
                        mark: want,
                        persistent: dom.persistent,
                    },
                );
            }
        }
        out
    }

    /// The cluster manager's view now, its node names turned into ours;
    /// the last good view (with the error) when it does not answer.
    fn read_manager(
        &mut self,
        nodes: &[Node],
        read: Option<std::thread::JoinHandle<Result<ManagerView, String>>>,
    ) -> Option<ManagerView> {
        let mgr = self.manager.as_ref()?;
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let answer = match read {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err("reading the cluster manager failed".into())),
            None => mgr.read(),
        };
        match answer {
            Ok(mut v) => {
                self.manager_silent_since = None;
                self.manager_names = rename_nodes(&mut v, &names);
                self.manager_view = Some(v.clone());
                Some(v)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cluster manager did not answer");
                let since = self
                    .manager_silent_since
                    .get_or_insert_with(crate::record::now_ms);
                let mut v = self.manager_view.clone().unwrap_or_else(|| ManagerView {
                    kind: mgr.kind().into(),
                    ..Default::default()
                });
                v.error = Some(e);
                v.error_since_ms = Some(*since);
                Some(v)
            }
        }
    }

    /// The manager's name for our node `node`.
    fn manager_node_name(&self, node: &str) -> String {
        self.manager_names
            .iter()
            .find(|(ours, _)| ours == node)
            .map_or_else(|| node.to_string(), |(_, theirs)| theirs.clone())
    }

    /// Outgoing migrations running in the cluster that vmshift does not
    /// follow yet (started by virsh or another vmshift).
    fn discover(&mut self, data: &[(usize, String, &NodeData)]) {
        // The destination of a found migration shows up as a paused
        // incoming domain, maybe a poll later than the source's job.
        {
            let mut t = self.table();
            for e in t
                .entries
                .values_mut()
                .filter(|e| e.discovered && e.view.to == "?")
            {
                if let Some((_, n, _)) = data.iter().find(|(_, n, d)| {
                    *n != e.view.from && d.domains.iter().any(|x| x.name == e.view.vm && x.incoming)
                }) {
                    e.view.to = n.clone();
                }
            }
        }
        let mut found = Vec::new();
        for (i, node, d) in data {
            for dom in d.domains.iter().filter(|d| d.migrating_out) {
                let known = self
                    .table()
                    .entries
                    .values()
                    .any(|e| e.view.vm == dom.name && e.view.outcome.is_none());
                if known {
                    continue;
                }
                let to = data
                    .iter()
                    .find(|(_, n, other)| {
                        n != node
                            && other
                                .domains
                                .iter()
                                .any(|x| x.name == dom.name && x.incoming)
                    })
                    .map_or_else(|| "?".to_string(), |(_, n, _)| n.clone());
                found.push((*i, node.clone(), to, dom.name.clone(), dom.memory));
            }
        }
        for (i, from, to, vm, memory) in found {
            let uri = self.nodes[i].spec.uri.clone();
            // One a vmshift started (this one's predecessor, or another
            // that runs or was killed) and left running?
            let earlier = self
                .detached
                .iter()
                .position(|r| r.migration.vm == vm && r.migration.from == from)
                .map(|p| self.detached.remove(p))
                .or_else(|| self.table().claim(&vm, &from));
            let id = {
                let mut t = self.table();
                t.next_id += 1;
                let id = t.next_id;
                let mut e = Entry::new(id, &vm, &from, &to, Default::default(), memory);
                e.discovered = true;
                e.view.managed_by = t.managed.get(&vm).cloned();
                match &earlier {
                    Some(r) => {
                        e.adopt(r);
                        t.log(match &r.running_by {
                            Some(o) if e.owner_follows() => format!(
                                "found the migration of {vm} {from} → {to} that vmshift {} runs; following it (that vmshift records it)",
                                o.describe()
                            ),
                            Some(o) => format!(
                                "found the migration of {vm} {from} → {to} whose vmshift ({}) is gone; following it, with its stall policy, and recording it as orphaned",
                                o.describe()
                            ),
                            None => format!(
                                "found the migration of {vm} {from} → {to} that vmshift left running; following it"
                            ),
                        });
                    }
                    None => {
                        e.meta = Meta::new(true, None);
                        t.log(format!(
                            "found a running migration of {vm} {from} → {to}; following it"
                        ));
                    }
                }
                t.entries.insert(id, e);
                id
            };
            migrate::follow_in_background(self.shared.clone(), id, vm, uri);
        }
    }

    /// Detached migrations that are not running any more ended while no
    /// vmshift watched: where their VM runs now tells how.
    fn settle_detached(&mut self, nodes: &[Node], vms: &[Vm]) {
        if self.detached.is_empty() {
            return;
        }
        let up = |name: &str| {
            nodes
                .iter()
                .any(|n| n.name == name && n.state == NodeState::Up)
        };
        let mut settled = Vec::new();
        self.detached.retain(|r| {
            let m = &r.migration;
            if !up(&m.from) || !up(&m.to) {
                return true; // cannot tell yet
            }
            let now = vms.iter().find(|v| v.name == m.vm);
            if now.is_some_and(|v| v.state == VmState::Migrating) {
                return true; // a new migration of it; not this one
            }
            let mut m = m.clone();
            m.outcome = Some(match now.map(|v| v.node.as_str()) {
                Some(n) if n == m.to => Outcome::Completed,
                Some(n) => Outcome::Failed {
                    reason: format!(
                        "the migration ended while no vmshift watched it, without moving {}; it runs on {n}",
                        m.vm
                    ),
                },
                None => Outcome::Failed {
                    reason: format!(
                        "the migration ended while no vmshift watched it, and {} is on neither {} nor {} now",
                        m.vm, m.from, m.to
                    ),
                },
            });
            settled.push((r.clone(), m));
            false
        });
        // libvirt's totals of the completed job, from the destination (or
        // the source for one that failed), read so that others can too.
        let settled: Vec<(Record, Migration, bool)> = settled
            .into_iter()
            .map(|(r, mut m)| {
                let node = match m.outcome {
                    Some(Outcome::Completed) => &m.to,
                    _ => &m.from,
                };
                // `nodes` follows the poll's order (and `self.last` is lent
                // out while a snapshot is built).
                let stats = nodes
                    .iter()
                    .position(|n| n.name == *node)
                    .and_then(|i| migrate::ask(&self.nodes[i].spec.uri, &m.vm))
                    .and_then(|s| s.completed);
                if let Some(st) = &stats {
                    rounds::apply_totals(&mut m, &rounds::Stats::from(st));
                }
                (r, m, stats.is_some())
            })
            .collect();
        let t = self.table();
        for (r, m, totals) in settled {
            let mut rec = Record::finished(&Meta::resumed(&r), "libvirt", &t.cluster, &m);
            rec.orphaned = r.running_by.is_some();
            let who = match &r.running_by {
                Some(o) => format!(
                    "orphaned: the vmshift that started it ({}) ended before it, and it ended while no vmshift watched",
                    o.describe()
                ),
                None => "ended while no vmshift was running".into(),
            };
            rec.note = Some(if totals {
                format!(
                    "{who}: the rounds after it was left were not seen; the round count, time, bytes and downtime are libvirt's totals"
                )
            } else {
                format!(
                    "{who}: the rounds after it was left and the actual downtime were not seen (libvirt no longer had the completed job)"
                )
            });
            t.journal.submit(rec);
        }
    }

    /// Refuses an action on a migration the cluster manager runs.
    fn not_managed(&self, id: MigrationId, why: &str) -> Result<(), BackendError> {
        let t = self.table();
        match t.entries.get(&id).and_then(|e| e.view.managed_by.as_ref()) {
            Some(m) => Err(BackendError::NotPossible(format!(
                "Pacemaker runs this migration (resource {}): {why}",
                m.resource
            ))),
            None => Ok(()),
        }
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| node_name(&self.nodes[i].spec, self.last.get(&i)) == name)
    }

    /// Where the last known state of every node is kept between runs (its
    /// domains' definitions, to recover them if the node is lost).
    fn known_path(&self) -> Option<std::path::PathBuf> {
        let name: String = self
            .cfg
            .cluster
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        crate::record::state_dir().map(|d| d.join(format!("libvirt-known-{name}.json")))
    }

    /// Where the time each node last answered is kept between runs.
    fn seen_path(&self) -> Option<std::path::PathBuf> {
        let known = self.known_path()?;
        let name = known
            .file_name()?
            .to_string_lossy()
            .replace("-known-", "-seen-");
        Some(known.with_file_name(name))
    }

    /// Saves when each node last answered, at most every few seconds.
    fn remember_seen(&mut self) {
        let newest = self.seen.values().copied().max().unwrap_or(0);
        if newest < self.seen_saved_ms + SEEN_SAVE_EVERY_MS {
            return;
        }
        self.seen_saved_ms = newest;
        let Some(path) = self.seen_path() else {
            return;
        };
        let map: HashMap<&str, u64> = self
            .seen
            .iter()
            .map(|(i, t)| (self.nodes[*i].spec.uri.as_str(), *t))
            .collect();
        if let Err(e) =
            crate::record::write_whole(&path, &serde_json::to_string(&map).unwrap_or_default())
                .map_err(|e| e.to_string())
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot save when the nodes last answered");
        }
    }

    /// Loads the last known state of nodes that have not answered yet.
    fn recall(&mut self) {
        if let Some(seen) = self
            .seen_path()
            .and_then(|p| state::load(&p, state::MAX_SEEN_BYTES, state::parse_seen))
        {
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some(t) = seen.get(&n.spec.uri) {
                    self.seen.insert(i, *t);
                }
            }
        }
        let Some(path) = self.known_path() else {
            return;
        };
        let Some(known) = state::load(&path, state::MAX_KNOWN_BYTES, state::parse_known) else {
            return;
        };
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(d) = known.get(&n.spec.uri) {
                self.last.entry(i).or_insert_with(|| d.clone());
            }
        }
    }

    /// Saves the last known state when what runs where changed.
    fn remember(&mut self) {
        let shape: String = {
            let mut keys: Vec<(&usize, &NodeData)> = self.last.iter().collect();
            keys.sort_by_key(|k| *k.0);
            keys.iter()
                .map(|(i, d)| {
                    let doms: Vec<String> = d
                        .domains
                        .iter()
                        .map(|x| format!("{}:{:?}:{}", x.name, x.state, x.xml.len()))
                        .collect();
                    format!("{i}={}", doms.join(","))
                })
                .collect::<Vec<_>>()
                .join(";")
        };
        if shape == self.known_shape {
            return;
        }
        self.known_shape = shape;
        let Some(path) = self.known_path() else {
            return;
        };
        let map: HashMap<&str, &NodeData> = self
            .last
            .iter()
            .map(|(i, d)| (self.nodes[*i].spec.uri.as_str(), d))
            .collect();
        let written = serde_json::to_string(&map)
            .map_err(|e| e.to_string())
            .and_then(|t| crate::record::write_whole(&path, &t).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the last known nodes");
        }
    }

    /// Where each disk a copy-storage migration copies goes on the target:
    /// the same file name (or volume) in the target volume's pool there.
    fn disk_moves(
        &self,
        vm: &str,
        src: usize,
        dst: usize,
        copies: &[(String, String, u64)],
    ) -> Result<Vec<xml::DiskMove>, BackendError> {
        let not_possible = |s: String| Err(BackendError::NotPossible(s));
        let data: Vec<(usize, String, &NodeData)> = self
            .last
            .iter()
            .map(|(i, d)| (*i, node_name(&self.nodes[*i].spec, Some(d)), d))
            .collect();
        let (_, map) = self.volumes(&data);
        let (Some(sd), Some(dd)) = (self.last.get(&src), self.last.get(&dst)) else {
            return not_possible(
                "the source or the target node has not answered yet; try again in a moment".into(),
            );
        };
        let src_name = node_name(&self.nodes[src].spec, Some(sd));
        let dst_name = node_name(&self.nodes[dst].spec, Some(dd));
        let Some(dom) = sd.domains.iter().find(|d| d.name == vm && !d.incoming) else {
            return not_possible(format!("{vm} is not on {src_name} any more"));
        };
        let mut moves = Vec::new();
        for (dk, _) in &dom.disks {
            let volume = disk_volume(&src_name, &dk.source, sd, &map);
            let Some((_, to_volume, _)) = copies.iter().find(|c| c.0 == volume) else {
                continue;
            };
            if dk.readonly {
                return not_possible(format!(
                    "disk {} of {vm} is read-only, and libvirt does not copy read-only disks; make it writable or copy it to {to_volume} by hand first",
                    dk.target
                ));
            }
            let Some(pool) = dd
                .pools
                .iter()
                .find(|p| map.get(&(dst_name.clone(), p.name.clone())) == Some(to_volume))
            else {
                return not_possible(format!(
                    "no pool of {dst_name} holds volume {to_volume}; refresh and try again"
                ));
            };
            let to = match &dk.source {
                DiskSource::Path(path) => {
                    let file = path.rsplit('/').next().unwrap_or(path);
                    DiskSource::Path(format!("{}/{file}", pool.target.trim_end_matches('/')))
                }
                DiskSource::PoolVolume { volume, .. } => DiskSource::PoolVolume {
                    pool: pool.name.clone(),
                    volume: volume.clone(),
                },
                _ => {
                    return not_possible(format!(
                        "disk {} of {vm} is neither a file nor a pool volume; vmshift copies only those",
                        dk.target
                    ));
                }
            };
            moves.push(xml::DiskMove {
                dev: dk.target.clone(),
                from: dk.source.clone(),
                to,
            });
        }
        Ok(moves)
    }

    /// An operator action on a running migration: decided under the
    /// table's lock, the libvirt call made after releasing it.
    fn act(&self, id: MigrationId, op: migrate::Op) -> Result<(), BackendError> {
        migrate::act(
            &self.shared,
            id,
            |e| op.decide(e),
            |dom| op.call(&dom),
            |e, r| op.commit(e, r),
        )
        .map_err(|e| match e {
            migrate::ActError::NoSuchMigration => BackendError::NoSuchMigration(id),
            migrate::ActError::Refused(why) => BackendError::NotPossible(why),
        })
    }
}

/// The poll pool's threads build each node's data and the main thread
/// frees it: with glibc's default of one malloc arena per thread, freed
/// memory stays spread over many arenas and the resident set grows with
/// the thread count. Two arenas keep it bounded (`MALLOC_ARENA_MAX` in
/// the environment still wins).
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; called before the pool starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// The manager's node names turned into ours where they name the same host
/// (`hv1` and `hv1.example.com`); returns (ours, theirs) for each renamed.
fn rename_nodes(v: &mut ManagerView, ours: &[String]) -> Vec<(String, String)> {
    let mut map = Vec::new();
    let to_ours = |theirs: &str, map: &mut Vec<(String, String)>| -> String {
        match ours
            .iter()
            .find(|o| *o == theirs)
            .or_else(|| ours.iter().find(|o| crate::manager::same_host(o, theirs)))
        {
            Some(o) => {
                if !map.iter().any(|(a, _): &(String, String)| a == o) {
                    map.push((o.clone(), theirs.to_string()));
                }
                o.clone()
            }
            None => theirs.to_string(),
        }
    };
    for n in &mut v.nodes {
        n.name = to_ours(&n.name, &mut map);
    }
    for vm in &mut v.vms {
        for n in &mut vm.running_on {
            *n = to_ours(n, &mut map);
        }
        for c in &mut vm.constraints {
            c.node = to_ours(&c.node, &mut map);
        }
        for o in &mut vm.recent {
            o.node = to_ours(&o.node, &mut map);
        }
    }
    if let Some(dc) = &mut v.dc {
        *dc = to_ours(dc, &mut map);
    }
    map
}

/// A domain's workload from what its node measured.
fn workload(dom: &node::DomainData) -> Workload {
    let measured = measure::estimate(dom.memory, &dom.samples, dom.mem_stats, dom.tcg);
    Workload {
        kind: if measured.is_some() {
            "measured".into()
        } else {
            "not measured yet".into()
        },
        dirty_bps: measured.as_ref().map_or(0, |m| m.dirty_bps.value as u64),
        wws_bytes: measured
            .as_ref()
            .map_or(dom.memory, |m| m.wws_bytes.value as u64),
        cpu_load: dom.cpu_pct / 100.0,
        touched_bytes: measured.as_ref().map(|m| m.touched_bytes.value as u64),
        measured,
    }
}

/// One page-sampling measurement of `window_s` seconds; `None` if QEMU
/// would not give one (another measurement runs: its result is taken).
fn measure_once(dom: &virt::domain::Domain, window_s: i32) -> Option<measure::Sample> {
    let before = ffi::dirty_rates(std::slice::from_ref(dom))
        .into_values()
        .next()
        .map(|s| s.start);
    let _ = ffi::start_dirty_rate_calc(dom, window_s);
    let deadline = Instant::now() + Duration::from_secs(window_s as u64 + 3);
    // The measurement takes its window; then its result is in the stats.
    std::thread::sleep(Duration::from_millis(window_s as u64 * 1000));
    loop {
        if let Some(s) = ffi::dirty_rates(std::slice::from_ref(dom))
            .into_values()
            .next()
            .filter(|s| Some(s.start) != before)
        {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `virsh -c URI console DOMAIN`: the operator leaves it with Ctrl-].
pub fn console_argv(uri: &str, domain: &str) -> Vec<String> {
    ["virsh", "-c", uri, "console", domain]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// VMs that run on more than one node, with those nodes, from each node's
/// running domains (not counting the two sides of a migration).
fn running_twice<'a>(running: &[(&'a str, Vec<&'a str>)]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (node, vms) in running {
        for vm in vms {
            match out.iter_mut().find(|(v, _)| v == vm) {
                Some((_, on)) => on.push(node),
                None => out.push((vm, vec![node])),
            }
        }
    }
    out.retain(|(_, on)| on.len() > 1);
    out
}

/// Defined, shut-off copies on nodes that answer of VMs that run on
/// another node that answers: starting one runs the VM twice.
fn stale_copies(
    data: &[(usize, String, &NodeData)],
    fresh: &[&str],
    uri_of: impl Fn(usize) -> String,
) -> Vec<StaleCopy> {
    let answers = |n: &str| fresh.contains(&n);
    let mut out = Vec::new();
    for (i, node, d) in data.iter().filter(|(_, n, _)| answers(n)) {
        for dom in d.domains.iter().filter(|x| x.state == VmState::Stopped) {
            let runs_on = data.iter().find(|(_, other, od)| {
                other != node
                    && answers(other)
                    && od.domains.iter().any(|x| {
                        x.name == dom.name
                            && !x.incoming
                            && matches!(x.state, VmState::Running | VmState::Paused)
                    })
            });
            if let Some((_, other, _)) = runs_on {
                out.push(StaleCopy {
                    vm: dom.name.clone(),
                    node: node.clone(),
                    runs_on: other.clone(),
                    autostart: dom.autostart,
                    remove: crate::cluster::text::shell_line(&[
                        "virsh",
                        "-c",
                        &uri_of(*i),
                        "undefine",
                        &dom.name,
                    ]),
                });
            }
        }
    }
    out
}

/// How often the time each node last answered is saved: "last seen"
/// after a restart of vmshift is at most this much too early.
const SEEN_SAVE_EVERY_MS: u64 = 5_000;

/// A start refused because the disk is locked by another user: QEMU's own
/// image locking ("Failed to get \"write\" lock"), virtlockd or sanlock.
fn disk_locked(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("lock")
        && (m.contains("failed to get")
            || m.contains("acquire")
            || m.contains("resource busy")
            || m.contains("held"))
}

/// A node that has not answered for `lost_after` is lost: shown down, with
/// what to do about its VMs.
fn lost_or_unreachable(
    unreachable_for: Duration,
    lost_after: Duration,
    since_unix_ms: u64,
    error: &str,
) -> (NodeState, Option<String>) {
    if unreachable_for < lost_after {
        return (NodeState::Unreachable, Some(error.to_string()));
    }
    let s = since_unix_ms / 1000;
    (
        NodeState::Down,
        Some(format!(
            "lost: not answering since {:02}:{:02}:{:02} UTC ({error}); its VMs are shown as last seen — once it is powered off or fenced, `vmshift recover` restarts them elsewhere",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60
        )),
    )
}

fn rank(s: VmState) -> u8 {
    match s {
        VmState::Running | VmState::Migrating => 3,
        VmState::Paused => 2,
        VmState::Restarting => 1,
        VmState::Stopped => 0,
    }
}

fn node_name(spec: &NodeSpec, data: Option<&NodeData>) -> String {
    spec.name
        .clone()
        .or_else(|| data.map(|d| d.hostname.clone()))
        .unwrap_or_else(|| spec.fallback_name())
}

/// The volume a disk lives on: its pool (by name, or the pool whose target
/// holds the path), or a per-node "unpooled" volume.
fn disk_volume(
    node: &str,
    src: &DiskSource,
    d: &NodeData,
    map: &HashMap<(String, String), String>,
) -> String {
    let pool = match src {
        DiskSource::PoolVolume { pool, .. } => Some(pool.clone()),
        DiskSource::Path(path) => d
            .pools
            .iter()
            .filter(|p| {
                !p.target.is_empty()
                    && path.starts_with(&format!("{}/", p.target.trim_end_matches('/')))
            })
            .max_by_key(|p| p.target.len())
            .map(|p| p.name.clone()),
        DiskSource::Network { name, .. } => {
            let first = name.split('/').next().unwrap_or("");
            d.pools
                .iter()
                .find(|p| p.source.contains(&format!("name={first}")))
                .map(|p| p.name.clone())
        }
        DiskSource::None => None,
    };
    pool.and_then(|p| map.get(&(node.to_string(), p)).cloned())
        .unwrap_or_else(|| format!("unpooled@{node}"))
}

impl Drop for LibvirtCluster {
    fn drop(&mut self) {
        self.pool.stop();
    }
}

impl Backend for LibvirtCluster {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    fn snapshot(&mut self) -> Result<ClusterSnapshot, BackendError> {
        let s = self.build();
        if s.nodes.iter().all(|n| n.state != NodeState::Up) {
            let why: Vec<String> = s
                .nodes
                .iter()
                .map(|n| format!("{}: {}", n.name, n.error.clone().unwrap_or_default()))
                .collect();
            return Err(BackendError::NoNodeAnswered(why.join("; ")));
        }
        self.snapshot = Some(s.clone());
        Ok(s)
    }

    fn start_migration(&mut self, req: &MigrationRequest) -> Result<MigrationId, BackendError> {
        let snap = self.snapshot_for_action()?;
        let vm = snap.require_vm(&req.vm)?;
        let node = snap.require_node(&req.to)?;
        // The path first: a move that would fight the cluster manager is
        // refused whatever else holds.
        let managed = plan::move_path(&snap, &vm.name, &vm.node, &node.name, req.options.via)
            .map_err(BackendError::Refused)?;
        let placement = plan::check(&snap, vm, node, req.options.copy_storage)
            .map_err(BackendError::Refused)?;
        let src = self
            .node_index(&vm.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", vm.node)))?;
        let dst = self
            .node_index(&node.name)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", node.name)))?;
        let src_uri = self.nodes[src].spec.uri.clone();
        let dst_spec = self.nodes[dst].spec.clone();
        let disk_moves = if managed.is_none() && !placement.copies.is_empty() {
            self.disk_moves(&vm.name, src, dst, &placement.copies)?
        } else {
            Vec::new()
        };
        let id = {
            let mut t = self.table();
            t.next_id += 1;
            let id = t.next_id;
            let mut e = Entry::new(
                id,
                &vm.name,
                &vm.node,
                &node.name,
                req.options.clone(),
                vm.memory,
            );
            let inputs = req
                .inputs
                .clone()
                .unwrap_or_else(|| plan::inputs_for(&snap, vm, node, &req.options, 0, &[]));
            e.view.forecast = req
                .forecast
                .clone()
                .or_else(|| Some(plan::predict(&inputs, &req.options).forecast()));
            e.view.inputs = Some(inputs);
            if !disk_moves.is_empty() {
                e.view.storage_bytes = placement.storage_bytes();
                e.view.disk_copy = Some(crate::cluster::DiskCopy {
                    total_bytes: placement.storage_bytes(),
                    ..Default::default()
                });
            }
            e.meta = Meta::new(false, req.forecast_json());
            if let Some(resource) = &managed {
                // Pacemaker's agent runs the job: vmshift follows it and
                // tunes it live, but the policy is Pacemaker's.
                e.discovered = true;
                e.view.managed_by = Some(ManagedBy {
                    manager: "pacemaker".into(),
                    resource: resource.clone(),
                });
            }
            t.entries.insert(id, e);
            t.log(match &managed {
                Some(r) => format!(
                    "migration of {} {} → {} asked of Pacemaker (resource {r})",
                    vm.name, vm.node, node.name
                ),
                None => format!(
                    "migration of {} {} → {} started",
                    vm.name, vm.node, node.name
                ),
            });
            id
        };
        // The record of intent, written before the job starts: a vmshift
        // that finds the migration knows it is this one's, and records it
        // if this one is killed.
        let (journal, intent) = {
            let t = self.table();
            let intent = t
                .entries
                .get(&id)
                .map(|e| Record::started(&e.meta, "libvirt", &t.cluster, &e.view));
            (t.journal.clone(), intent)
        };
        if let Some(r) = intent {
            journal.submit(r);
            let _ = journal.wait_idle(INTENT_WAIT);
        }
        match (managed, &self.manager) {
            (Some(resource), Some(mgr)) => {
                let handle = managed::start(
                    self.shared.clone(),
                    mgr.clone(),
                    managed::ManagedMove {
                        id,
                        vm: vm.name.clone(),
                        resource,
                        target: self.manager_node_name(&node.name),
                        target_ours: node.name.clone(),
                        src_uri,
                        options: req.options.clone(),
                    },
                );
                self.managed_moves.retain(|h| !h.is_finished());
                self.managed_moves.push(handle);
            }
            _ => {
                let copied: Vec<&str> = placement.copies.iter().map(|c| c.0.as_str()).collect();
                let vouched_shared = vm
                    .disks
                    .iter()
                    .filter(|d| !copied.contains(&d.volume.as_str()))
                    .all(|d| self.trusted_volume(&d.volume));
                migrate::start(
                    self.shared.clone(),
                    id,
                    migrate::Job {
                        vm: vm.name.clone(),
                        src_uri,
                        dst_uri: dst_spec.uri.clone(),
                        migrate_host: dst_spec.migrate_host(),
                        disk_moves,
                        vouched_shared: vouched_shared && !vm.disks.is_empty(),
                    },
                )
            }
        }
        Ok(id)
    }

    fn migration(&mut self, id: MigrationId) -> Result<Migration, BackendError> {
        self.table()
            .entries
            .get(&id)
            .map(|e| e.view.clone())
            .ok_or(BackendError::NoSuchMigration(id))
    }

    fn abort(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.not_managed(id, "aborting it would fail Pacemaker's migrate_to, and Pacemaker would recover the VM by restarting it; let it finish, or lower the bandwidth or raise max downtime to help it")?;
        self.act(id, migrate::Op::Abort)
    }

    fn set_max_downtime(&mut self, id: MigrationId, ms: u64) -> Result<(), BackendError> {
        self.act(id, migrate::Op::MaxDowntime(ms))
    }

    fn set_bandwidth(&mut self, id: MigrationId, bps: Option<u64>) -> Result<(), BackendError> {
        self.act(id, migrate::Op::Bandwidth(bps))
    }

    fn start_postcopy(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.not_managed(
            id,
            "post-copy is set by the resource's migrate_options in Pacemaker, not here",
        )?;
        self.act(id, migrate::Op::Postcopy)
    }

    fn move_disk(
        &mut self,
        vm: &str,
        disk: &str,
        volume: &str,
    ) -> Result<crate::cluster::StorageMoveId, BackendError> {
        let snap = self.snapshot()?;
        let v = snap.require_vm(vm)?;
        let bytes =
            plan::check_disk_move(&snap, v, disk, volume).map_err(BackendError::NotPossible)?;
        if snap.managed_vm(vm).is_some() {
            return Err(BackendError::NotPossible(format!(
                "{vm} is a Pacemaker resource: move its disk with Pacemaker's resource stopped or in maintenance, not behind its back"
            )));
        }
        let not_possible = |s: String| Err(BackendError::NotPossible(s));
        let Some(i) = self.node_index(&v.node) else {
            return not_possible(format!("node {} is not configured", v.node));
        };
        let data: Vec<(usize, String, &NodeData)> = self
            .last
            .iter()
            .map(|(i, d)| (*i, node_name(&self.nodes[*i].spec, Some(d)), d))
            .collect();
        let (_, map) = self.volumes(&data);
        let Some(d) = self.last.get(&i) else {
            return not_possible(format!("{} has not answered yet; try again", v.node));
        };
        let Some(dom) = d.domains.iter().find(|x| x.name == vm && !x.incoming) else {
            return not_possible(format!("{vm} is not on {} any more", v.node));
        };
        let Some((dk, _)) = dom
            .disks
            .iter()
            .find(|(dk, _)| disk_volume(&v.node, &dk.source, d, &map) == disk)
        else {
            return not_possible(format!("{vm} has no disk on volume {disk}"));
        };
        let DiskSource::Path(path) = &dk.source else {
            return not_possible(format!(
                "disk {} of {vm} is not a file; vmshift moves file disks only (virsh blockcopy can move others)",
                dk.target
            ));
        };
        if dk.readonly {
            return not_possible(format!(
                "disk {} of {vm} is read-only: nothing writes it, so copy the file to {volume} and change the definition instead",
                dk.target
            ));
        }
        let Some(pool) = d.pools.iter().find(|p| {
            map.get(&(v.node.clone(), p.name.clone()))
                .map(String::as_str)
                == Some(volume)
        }) else {
            return not_possible(format!("no pool of {} holds volume {volume}", v.node));
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        let dest_path = format!("{}/{file}", pool.target.trim_end_matches('/'));
        if std::path::Path::new(&dest_path).exists() && pool.kind == "dir" {
            return not_possible(format!(
                "{dest_path} already exists in {volume}; remove it or move the disk elsewhere"
            ));
        }
        self.next_storage_id += 1;
        let id = self.next_storage_id;
        self.storage_moves.lock().expect("storage moves").insert(
            id,
            storage::Slot {
                view: crate::cluster::StorageMove {
                    id,
                    vm: vm.into(),
                    from: disk.into(),
                    to: volume.into(),
                    total_bytes: bytes,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let started = crate::cluster::StorageMove {
            vm: vm.into(),
            from: disk.into(),
            to: volume.into(),
            total_bytes: bytes,
            ..Default::default()
        }
        .start_sentence();
        self.table()
            .log(format!("{started} (device {})", dk.target));
        storage::start(
            self.storage_moves.clone(),
            storage::Job {
                id,
                uri: self.nodes[i].spec.uri.clone(),
                vm: vm.into(),
                dev: dk.target.clone(),
                dest_path,
                pool: pool.name.clone(),
            },
        );
        Ok(id)
    }

    fn confirm_fenced(&mut self, node: &str) -> Result<(), BackendError> {
        let snap = self.snapshot()?;
        let n = snap.require_node(node)?;
        if n.state != NodeState::Down {
            return Err(BackendError::NotPossible(format!(
                "{node} is {}, not lost: nothing is restarted elsewhere while it may still run its VMs",
                n.state.label()
            )));
        }
        self.fenced
            .insert(node.to_string(), crate::record::now_ms());
        self.table().log(format!(
            "{node} confirmed powered off or fenced by the operator"
        ));
        Ok(())
    }

    fn restart_vm(&mut self, vm: &str, to: &str) -> Result<Recovery, BackendError> {
        let snap = self.snapshot()?;
        let v = snap.require_vm(vm)?;
        let from = snap.require_node(&v.node)?;
        if from.state == NodeState::Up {
            return Err(BackendError::NotPossible(format!(
                "{} answers, so {vm} is not lost; it is never started a second time",
                from.name
            )));
        }
        // Never on trust of the caller alone: a VM started twice on
        // shared storage corrupts its disks.
        let Some(&fenced_ms) = self.fenced.get(&from.name) else {
            return Err(BackendError::NotPossible(format!(
                "{} has not been confirmed powered off or fenced; make sure of it, then `{}`",
                from.name,
                shell_line(&[
                    "vmshift",
                    "recover",
                    &from.name,
                    "--confirm-fenced",
                    &from.name
                ])
            )));
        };
        let t = snap.require_node(to)?;
        if t.state != NodeState::Up {
            return Err(BackendError::NotPossible(format!(
                "{to} is {}; restart {vm} on a node that answers",
                t.state.label()
            )));
        }
        let xml = self
            .node_index(&from.name)
            .and_then(|i| self.last.get(&i))
            .and_then(|d| d.domains.iter().find(|d| d.name == vm))
            .map(|d| d.xml.clone())
            .filter(|x| !x.is_empty())
            .ok_or_else(|| {
                BackendError::NotPossible(format!(
                    "vmshift has no definition of {vm} from {}; define it on {to} by hand",
                    from.name
                ))
            })?;
        let dst = self
            .node_index(to)
            .ok_or_else(|| BackendError::Other(format!("node {to} is not configured")))?;
        let lost_ms = v.lost.as_ref().map_or(fenced_ms, |l| l.since_ms);
        let mut rec = Recovery {
            vm: vm.to_string(),
            from: from.name.clone(),
            to: to.to_string(),
            by: "operator".into(),
            steps: vec![
                (RecoveryStep::Lost, lost_ms),
                (RecoveryStep::FenceConfirmed, fenced_ms),
            ],
            error: None,
        };
        let result = (|| {
            let fail = |what: &str, e: virt::error::Error| {
                let msg = e.message();
                format!(
                    "{what} {vm} on {to} failed: {msg}{}",
                    if disk_locked(msg) {
                        " — its disk is still locked (QEMU's image lock, virtlockd or sanlock): something, maybe the lost node, still uses it, so it was not started a second time; find what holds it before anything else"
                    } else {
                        ""
                    }
                )
            };
            let conn = virt::connect::Connect::open(Some(&self.nodes[dst].spec.uri))
                .map_err(|e| fail("connecting to restart", e))?;
            let dom = conn
                .define_domain_xml(&xml)
                .map_err(|e| fail("defining", e))?;
            rec.reach(RecoveryStep::Defined, crate::record::now_ms());
            dom.create().map_err(|e| fail("starting", e))?;
            rec.reach(RecoveryStep::Started, crate::record::now_ms());
            Ok::<(), String>(())
        })();
        if let Err(e) = &result {
            rec.error = Some(e.clone());
        }
        self.recoveries.retain(|r| r.vm != vm);
        self.recoveries.push(rec.clone());
        match result {
            Ok(()) => {
                self.table().log(format!(
                    "{vm} restarted on {to} (recovered from lost node {})",
                    from.name
                ));
                Ok(rec)
            }
            Err(e) => Err(BackendError::NotPossible(e)),
        }
    }

    fn storage_move(
        &mut self,
        id: crate::cluster::StorageMoveId,
    ) -> Result<crate::cluster::StorageMove, BackendError> {
        self.storage_moves
            .lock()
            .expect("storage moves")
            .get(&id)
            .map(|s| s.view.clone())
            .ok_or_else(|| {
                BackendError::NotPossible(format!("there is no storage move with id {id}"))
            })
    }

    fn abort_storage_move(
        &mut self,
        id: crate::cluster::StorageMoveId,
    ) -> Result<(), BackendError> {
        let mut t = self.storage_moves.lock().expect("storage moves");
        match t.get_mut(&id) {
            Some(s) if s.view.outcome.is_none() => {
                s.abort = true;
                Ok(())
            }
            Some(_) => Err(BackendError::NotPossible(
                "the storage move has already ended".into(),
            )),
            None => Err(BackendError::NotPossible(format!(
                "there is no storage move with id {id}"
            ))),
        }
    }

    fn set_manager_maintenance(&mut self, on: bool) -> Result<(), BackendError> {
        let Some(m) = &self.manager else {
            return Err(BackendError::NotPossible(
                "no cluster manager (Pacemaker) answers here, so there is no maintenance mode to set; set [pacemaker] in the config where one owns the VMs".into(),
            ));
        };
        m.set_maintenance(on).map_err(BackendError::Other)?;
        self.table().log(format!(
            "Pacemaker: maintenance mode {}",
            if on {
                "on (it now moves, restarts and monitors nothing)"
            } else {
                "off"
            }
        ));
        Ok(())
    }

    fn settle(&mut self, max: Duration) {
        let deadline = Instant::now() + max;
        // Cluster-manager marks being written: a short command (status)
        // leaves them done, so that every install sees them.
        let marks_by = Instant::now() + MARK_SETTLE.min(max);
        while self.mark_writes.lock().is_ok_and(|s| !s.is_empty()) && Instant::now() < marks_by {
            std::thread::sleep(Duration::from_millis(20));
        }
        for h in self.managed_moves.drain(..) {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }

    fn measure_workload(
        &mut self,
        vm: &str,
        budget: Duration,
    ) -> Result<Option<Measured>, BackendError> {
        let snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => self.snapshot()?,
        };
        let Some(v) = snap.vm(vm) else {
            return Ok(None);
        };
        let Some(i) = self.node_index(&v.node) else {
            return Ok(None);
        };
        let uri = self.nodes[i].spec.uri.clone();
        let fail = |e: virt::error::Error| {
            BackendError::Other(format!(
                "cannot measure how {vm} uses its memory: {}",
                e.message()
            ))
        };
        let conn = virt::connect::Connect::open(Some(&uri)).map_err(fail)?;
        let dom = conn.lookup_domain_by_name(vm).map_err(fail)?;
        let tcg = dom
            .xml_desc(0)
            .ok()
            .and_then(|x| xml::parse_domain(&x).ok())
            .is_some_and(|x| x.tcg);
        // Short windows for the rate and its spread, long ones for the
        // working set and precision, one after the other, until the
        // samples tell enough or the budget is spent.
        let mut samples = Vec::new();
        for window in measure::schedule(budget.as_secs()) {
            if let Some(s) = measure_once(&dom, window) {
                measure::push(&mut samples, s);
            }
            if measure::settled(&samples) {
                break;
            }
        }
        // Resident memory last: a guest that just booted is still growing.
        let stats = dom
            .memory_stats(0)
            .map(|stats| measure::MemStats::from_tags(stats.iter().map(|s| (s.tag as i32, s.val))))
            .unwrap_or_default();
        Ok(measure::estimate(v.memory, &samples, stats, tcg))
    }

    fn set_journal(&mut self, journal: Journal) {
        // Migrations an earlier vmshift left running: completed when found.
        // and ones whose vmshift was killed; not ones another vmshift follows.
        self.detached = journal
            .read()
            .map(|h| {
                h.open_detached()
                    .into_iter()
                    .filter(|r| r.backend == "libvirt" && r.cluster == self.cfg.cluster)
                    .filter(|r| !r.followed_elsewhere())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut t = self.table();
        t.journal = journal;
        t.cluster = self.cfg.cluster.clone();
    }

    fn vm_action(&mut self, vm: &str, action: VmAction) -> Result<String, BackendError> {
        let snap = self.snapshot_for_action()?;
        let v = snap.require_vm(vm)?;
        plan::check_vm_action(&snap, v, action).map_err(BackendError::NotPossible)?;
        let i = self
            .node_index(&v.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", v.node)))?;
        let uri = self.nodes[i].spec.uri.clone();
        let node = v.node.clone();
        let fail = |e: virt::error::Error| {
            BackendError::Other(format!(
                "cannot {} {vm} on {node}: {}",
                action.verb(),
                e.message()
            ))
        };
        let conn =
            virt::connect::Connect::open(Some(&uri)).map_err(|e| BackendError::Unreachable {
                node: node.clone(),
                reason: ssh::explain(&uri, e.message()),
            })?;
        let result = conn.lookup_domain_by_name(vm).and_then(|dom| match action {
            VmAction::Start => dom.create(),
            VmAction::Shutdown => dom.shutdown(),
            VmAction::Reboot => dom.reboot(0),
            VmAction::PowerOff => dom.destroy(),
        });
        drop(conn);
        result.map_err(fail)?;
        let text = match action {
            VmAction::Start => format!("{vm} started on {node}"),
            VmAction::Shutdown => {
                format!("shutdown (ACPI) of {vm} requested; the guest is shutting down")
            }
            VmAction::Reboot => format!("reboot of {vm} requested; the guest is rebooting"),
            VmAction::PowerOff => format!("{vm} forced off on {node}"),
        };
        self.table().log(text.clone());
        Ok(text)
    }

    fn console_command(&mut self, vm: &str) -> Result<Vec<String>, BackendError> {
        let snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => self.snapshot()?,
        };
        let v = snap.require_vm(vm)?;
        if v.state != VmState::Running && v.state != VmState::Paused {
            return Err(BackendError::NotPossible(format!(
                "{vm} is {}; start it first to reach its console",
                v.state.label()
            )));
        }
        let i = self
            .node_index(&v.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", v.node)))?;
        Ok(console_argv(&self.nodes[i].spec.uri, vm))
    }

    fn cordons(&mut self) -> &mut Cordons {
        &mut self.cordons
    }

    /// A node of the Pacemaker cluster is cordoned through Pacemaker
    /// (standby: it moves its resources off, live where allow-migrate,
    /// and places none there); other nodes in this install's own list.
    fn set_cordon(&mut self, node: &str, on: bool) -> Result<String, BackendError> {
        let snap = self.snapshot()?;
        snap.require_node(node)?;
        let (Some(mgr), Some(m)) = (self.manager.clone(), snap.managed_node(node)) else {
            return set_local_cordon(&mut self.cordons, &snap, node, on);
        };
        if let Some(e) = snap.manager.as_ref().and_then(|v| v.error.as_ref()) {
            return Err(BackendError::NotPossible(format!(
                "node {node} is a Pacemaker node, and Pacemaker does not answer now ({e}); a cordon must go through it (standby): try again when it answers"
            )));
        }
        let changed = m.standby != on;
        mgr.set_standby(&self.manager_node_name(node), on)
            .map_err(BackendError::Other)?;
        // A local cordon of the same node would outlive the standby.
        if !on {
            let _ = set_local_cordon(&mut self.cordons, &snap, node, false);
        }
        let text = match (on, changed) {
            (true, true) => format!(
                "node {node} is in standby in Pacemaker: Pacemaker moves its resources off (live where allow-migrate) and places none there until `vmshift uncordon {}`",
                shell_word(node)
            ),
            (true, false) => format!("node {node} was already in standby in Pacemaker"),
            (false, true) => {
                format!("node {node} is back from standby in Pacemaker: it takes resources again")
            }
            (false, false) => format!("node {node} was not in standby in Pacemaker"),
        };
        self.table().log(format!("Pacemaker: {text}"));
        Ok(text)
    }

    fn shutdown(&mut self, why: &str) -> Vec<Migration> {
        let t = self.table();
        let running: Vec<&Entry> = t
            .entries
            .values()
            .filter(|e| e.view.outcome.is_none())
            .collect();
        for e in &running {
            t.journal.submit(Record::detached(
                &e.meta,
                "libvirt",
                &t.cluster,
                &e.view,
                &e.view.from,
            ));
            tracing::info!(vm = %e.view.vm, %why, "vmshift stops; the migration goes on");
        }
        running.into_iter().map(|e| e.view.clone()).collect()
    }

    fn wait(&mut self, max: Duration) {
        // Wake early when a migration changes (events, follower reads).
        let (lock, cv) = &*self.shared;
        if let Ok(t) = lock.lock() {
            let _ = cv.wait_timeout(t, max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_running_on_two_nodes_is_found() {
        let r = [
            ("a", vec!["web", "db"]),
            ("b", vec!["db", "mail"]),
            ("c", vec!["db"]),
        ];
        assert_eq!(running_twice(&r), [("db", vec!["a", "b", "c"])]);
        assert!(running_twice(&r[..1]).is_empty());
    }

    #[test]
    fn a_node_unreachable_for_the_configured_time_is_lost() {
        let after = Duration::from_secs(60);
        let since =
            1_764_000_000_000 + (3 * 3600 + 4 * 60 + 5) * 1000 - 1_764_000_000_000 % 86_400_000;
        let (s, e) = lost_or_unreachable(
            Duration::from_secs(59),
            after,
            since,
            "did not answer within 5 s",
        );
        assert_eq!(s, NodeState::Unreachable);
        assert_eq!(e.as_deref(), Some("did not answer within 5 s"));
        let (s, e) = lost_or_unreachable(
            Duration::from_secs(60),
            after,
            since,
            "did not answer within 5 s",
        );
        assert_eq!(s, NodeState::Down);
        let e = e.unwrap();
        assert!(
            e.starts_with("lost: not answering since 03:04:05 UTC"),
            "{e}"
        );
        assert!(e.contains("vmshift recover"), "{e}");
    }

    #[test]
    fn a_locked_disk_is_told_apart() {
        // QEMU 7.2's image locking, virtlockd, sanlock.
        assert!(disk_locked(
            "internal error: qemu unexpectedly closed the monitor: Failed to get \"write\" lock\nIs another process using the image [/s/a.img]?"
        ));
        assert!(disk_locked(
            "resource busy: Lockspace resource '/s/a.img' is locked"
        ));
        assert!(disk_locked("Failed to acquire lock: No space left"));
        assert!(!disk_locked(
            "Requested operation is not valid: domain is already running"
        ));
    }
}
