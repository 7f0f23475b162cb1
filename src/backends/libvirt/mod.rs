//! The real backend: a cluster of libvirt nodes (DESIGN §3.2).
//!
//! Nodes are polled by a bounded pool of threads ([`node`]); migrations run as managed
//! peer-to-peer migrations on their own threads ([`migrate`]); the few C
//! APIs the `virt` crate lacks live in [`ffi`]. Everything the app gets is an
//! owned snapshot; no call here waits on a node longer than the timeout.
//!
//! This file holds the backend's state and its [`Backend`] impl, which
//! hands each command to the room of its concern: the snapshot built from
//! the nodes' answers ([`snapshot`]), volumes from pools ([`volumes`]),
//! the files kept between runs ([`state`]), migrations found or left
//! detached ([`adopt`]), starting a migration ([`start`]), recovery of a
//! lost node's VMs ([`recovery`]), disk moves ([`storage`]), the cluster
//! manager's view ([`manager_view`]) and its marks ([`marks`]), and the
//! actions on one VM or node ([`actions`]).

mod actions;
mod adopt;
mod ffi;
mod managed;
mod manager_view;
mod marks;
pub mod measure;
mod migrate;
pub mod node;
mod recovery;
mod rounds;
mod snapshot;
pub mod ssh;
mod start;
pub mod state;
mod storage;
pub mod testdriver;
mod volumes;
mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::backends::Backend;
use crate::cluster::{
    BackendError, ClusterSnapshot, ManagerView, Measured, Migration, MigrationId, MigrationRequest,
    NodeState, Recovery, VmAction, VolumeKind,
};
use crate::manager::ClusterManager;
use crate::record::{Cordons, Journal, Record};
use migrate::{Entry, Shared, Table};
pub use node::NodeSpec;
use node::{NodeData, NodeHandle};

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
    /// Placement rules from the config (`[[rule]]`); the cluster
    /// manager's constraints are added to them at every poll.
    pub rules: Vec<crate::cluster::Rule>,
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
    /// When the cluster manager was last asked (see `manager_due`).
    manager_read_at: Option<Instant>,
}

/// Longest wait at exit for cluster-manager marks being written.
const MARK_SETTLE: Duration = Duration::from_secs(10);

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
            manager_read_at: None,
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

/// `virsh -c URI console DOMAIN`: the operator leaves it with Ctrl-].
pub fn console_argv(uri: &str, domain: &str) -> Vec<String> {
    ["virsh", "-c", uri, "console", domain]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn node_name(spec: &NodeSpec, data: Option<&NodeData>) -> String {
    spec.name
        .clone()
        .or_else(|| data.map(|d| d.hostname.clone()))
        .unwrap_or_else(|| spec.fallback_name())
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
        self.start_job(req)
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
        self.start_disk_move(vm, disk, volume)
    }

    fn confirm_fenced(&mut self, node: &str) -> Result<(), BackendError> {
        self.confirm_node_fenced(node)
    }

    fn restart_vm(&mut self, vm: &str, to: &str) -> Result<Recovery, BackendError> {
        self.restart_lost_vm(vm, to)
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
        self.manager_maintenance(on)
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
        self.measure_guest(vm, budget)
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
        self.run_vm_action(vm, action)
    }

    fn console_command(&mut self, vm: &str) -> Result<Vec<String>, BackendError> {
        self.console_for(vm)
    }

    fn cordons(&mut self) -> &mut Cordons {
        &mut self.cordons
    }

    fn set_cordon(&mut self, node: &str, on: bool) -> Result<String, BackendError> {
        self.cordon_node(node, on)
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
