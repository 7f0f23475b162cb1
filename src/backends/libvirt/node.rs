//! Polling nodes: a bounded pool of threads ([`Pool`]) polls every node
//! on request; each node keeps its own libvirt connection between polls
//! (libvirt calls block), reconnects with back-off, subscribes to domain
//! events, and answers with an owned `NodeData`. The backend waits for the
//! answers at most its timeout, so a hung node never delays the others,
//! and holds at most one thread while it hangs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use super::ffi::{self, Sink};
use super::measure::{self, Sample};
use super::xml::{self, DiskXml};
use crate::cluster::VmState;

/// Receives a node's domain events with the node's name.
pub type EventSink = Arc<dyn Fn(&str, ffi::Event) + Send + Sync>;

/// A node as configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeSpec {
    /// Name to show; default: the host's name.
    pub name: Option<String>,
    pub uri: String,
    /// Address the migration stream uses on this node (as destination).
    pub migrate_host: Option<String>,
    /// Labels placement rules can name.
    pub labels: Vec<String>,
}

impl NodeSpec {
    /// The migration address: configured, or loopback for nodes reached
    /// through a local socket (they run on this machine).
    pub fn migrate_host(&self) -> Option<String> {
        self.migrate_host.clone().or_else(|| {
            let local = self.uri.starts_with("qemu+unix://") || self.uri.starts_with("qemu:///");
            local.then(|| "127.0.0.1".to_string())
        })
    }

    /// A name before the node has ever answered.
    pub fn fallback_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        // qemu+ssh://root@host/system -> host; sockets -> the socket's dir.
        let rest = self.uri.split("://").nth(1).unwrap_or(&self.uri);
        let host = rest.split('/').next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        if !host.is_empty() {
            return host.to_string();
        }
        self.uri.clone()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeData {
    pub hostname: String,
    pub cpus: u32,
    pub mem_total: u64,
    pub mem_free: u64,
    pub cpu_model: String,
    pub cpu_used_pct: f64,
    pub domains: Vec<DomainData>,
    pub pools: Vec<PoolData>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DomainData {
    pub name: String,
    pub state: VmState,
    /// Paused as the incoming side of a migration.
    pub incoming: bool,
    /// An outgoing migration job runs.
    pub migrating_out: bool,
    pub vcpus: u32,
    pub memory: u64,
    pub cpu_pct: f64,
    pub disks: Vec<(DiskXml, u64)>,
    pub cpu_model: String,
    /// Finished page-sampling dirty-rate measurements, oldest first.
    pub samples: Vec<Sample>,
    /// The QEMU process's resident memory and the guest's own memory
    /// statistics (from a quiet poll).
    #[serde(default)]
    pub mem_stats: super::measure::MemStats,
    /// Emulated (TCG) rather than KVM.
    pub tcg: bool,
    /// Its definition (live XML), to restart it elsewhere if this node is lost.
    #[serde(default)]
    pub xml: String,
    /// vmshift's mark that a cluster manager owns it (from its metadata).
    #[serde(default)]
    pub managed: Option<super::xml::MarkXml>,
    /// Defined (persistent), not only running.
    #[serde(default)]
    pub persistent: bool,
    /// libvirt starts it when the node boots.
    #[serde(default)]
    pub autostart: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolData {
    pub name: String,
    pub active: bool,
    pub kind: String,
    pub source: String,
    pub target: String,
    pub capacity: u64,
    pub allocation: u64,
}

#[derive(Default)]
struct Slot {
    want: u64,
    done: u64,
    result: Option<Result<NodeData, String>>,
    /// Waiting in the pool's queue or being polled: never twice at once,
    /// so a node that hangs holds one thread at most.
    queued: bool,
    /// The node has answered a poll at least once.
    answered: bool,
}

/// Threads that poll nodes, however many nodes there are.
pub const POLL_THREADS: usize = 16;
/// More threads start only while polls hang (a dead node's connect can
/// block for minutes), up to this many in all.
pub const MAX_POLL_THREADS: usize = 2 * POLL_THREADS;

/// One node: what the cluster asked of it, and its connection and state.
struct NodeCell {
    slot: Mutex<Slot>,
    cv: Condvar,
    worker: Mutex<Worker>,
}

struct PoolState {
    queue: VecDeque<usize>,
    threads: usize,
    idle: usize,
    /// When each busy thread started its current poll.
    busy: HashMap<u64, Instant>,
    next_thread: u64,
    quit: bool,
}

/// A node that has never answered gets this many times the timeout: a
/// daemon that has just started (or a first connection over ssh) is slow
/// to give its first answer, and later polls are quick.
pub const FIRST_ANSWER_GRACE: u32 = 3;

/// How long to wait for a node's poll: the timeout, or
/// [`FIRST_ANSWER_GRACE`] times it until the node has answered once.
pub fn patience(timeout: Duration, answered_before: bool) -> Duration {
    if answered_before {
        timeout
    } else {
        timeout * FIRST_ANSWER_GRACE
    }
}

/// The bounded pool every node of a cluster is polled by: at most
/// [`POLL_THREADS`] threads (more only while polls hang, up to
/// [`MAX_POLL_THREADS`]); one connection per node, kept between polls
/// for its events and its keep-alive.
pub struct Pool {
    cells: Vec<Arc<NodeCell>>,
    state: Mutex<PoolState>,
    cv: Condvar,
    base: usize,
    max: usize,
    /// A poll running longer than this counts as hung.
    stuck_after: Duration,
}

impl Pool {
    /// The pool and a handle per node; `events` receives each node's
    /// domain events with the node's name. A poll longer than
    /// `stuck_after` lets another thread start.
    pub fn start(
        specs: &[NodeSpec],
        events: impl Fn(&NodeSpec) -> EventSink,
        stuck_after: Duration,
    ) -> (Arc<Pool>, Vec<NodeHandle>) {
        let cells: Vec<Arc<NodeCell>> = specs
            .iter()
            .map(|spec| {
                Arc::new(NodeCell {
                    slot: Mutex::new(Slot::default()),
                    cv: Condvar::new(),
                    worker: Mutex::new(Worker::new(spec.clone(), events(spec))),
                })
            })
            .collect();
        let base = POLL_THREADS.min(specs.len()).max(1);
        let pool = Arc::new(Pool {
            cells,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                busy: HashMap::new(),
                next_thread: 0,
                quit: false,
            }),
            cv: Condvar::new(),
            base,
            max: MAX_POLL_THREADS.max(base),
            stuck_after,
        });
        let handles = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| NodeHandle {
                spec: spec.clone(),
                index,
                pool: pool.clone(),
            })
            .collect();
        (pool, handles)
    }

    /// Threads running now (for tests and the bench).
    pub fn threads(&self) -> usize {
        self.state.lock().map_or(0, |s| s.threads)
    }

    fn enqueue(self: &Arc<Self>, index: usize) {
        let mut st = self.state.lock().expect("poll pool");
        st.queue.push_back(index);
        let hung = st
            .busy
            .values()
            .any(|since| since.elapsed() >= self.stuck_after);
        let grow =
            st.idle == 0 && !st.quit && (st.threads < self.base || (hung && st.threads < self.max));
        if grow {
            st.threads += 1;
            st.next_thread += 1;
            let id = st.next_thread;
            let pool = self.clone();
            let spawned = thread::Builder::new()
                .name(format!("vmshift-poll-{id}"))
                .spawn(move || pool.run(id));
            if spawned.is_err() {
                st.threads -= 1;
            }
        }
        self.cv.notify_one();
    }

    /// One pool thread: polls the nodes in the queue, one at a time.
    fn run(self: Arc<Self>, id: u64) {
        loop {
            let index = {
                let mut st = self.state.lock().expect("poll pool");
                loop {
                    if st.quit {
                        st.threads -= 1;
                        return;
                    }
                    if let Some(i) = st.queue.pop_front() {
                        st.busy.insert(id, Instant::now());
                        break i;
                    }
                    // Threads started while polls hung leave when idle.
                    if st.threads > self.base {
                        st.threads -= 1;
                        return;
                    }
                    st.idle += 1;
                    st = self.cv.wait(st).expect("poll pool");
                    st.idle -= 1;
                }
            };
            let cell = &self.cells[index];
            let ticket = cell.slot.lock().expect("node slot").want;
            let result = cell.worker.lock().expect("node worker").poll();
            let again = {
                let mut s = cell.slot.lock().expect("node slot");
                s.answered |= result.is_ok();
                s.result = Some(result);
                s.done = ticket;
                let again = s.want > s.done;
                s.queued = again;
                cell.cv.notify_all();
                again
            };
            self.state.lock().expect("poll pool").busy.remove(&id);
            if again {
                self.enqueue(index);
            }
        }
    }
}

impl Pool {
    /// Lets every pool thread end (a thread in a hung libvirt call ends
    /// when the call returns); the connections close when the last
    /// thread and handle are gone.
    pub fn stop(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.quit = true;
            st.queue.clear();
        }
        self.cv.notify_all();
    }
}

/// The handle the backend keeps for a node.
pub struct NodeHandle {
    pub spec: NodeSpec,
    index: usize,
    pool: Arc<Pool>,
}

impl NodeHandle {
    /// Asks for a fresh poll; returns a ticket to wait on. A node still
    /// busy with an earlier poll is polled again when that one ends.
    pub fn request(&self) -> u64 {
        let cell = &self.pool.cells[self.index];
        let (ticket, enqueue) = {
            let mut s = cell.slot.lock().expect("node slot");
            s.want += 1;
            let enqueue = !s.queued;
            s.queued = true;
            (s.want, enqueue)
        };
        if enqueue {
            self.pool.enqueue(self.index);
        }
        ticket
    }

    /// How long to wait for this node's next poll ([`patience`]).
    pub fn patience(&self, timeout: Duration) -> Duration {
        let cell = &self.pool.cells[self.index];
        patience(timeout, cell.slot.lock().expect("node slot").answered)
    }

    /// The poll result for `ticket`, waiting until `deadline`.
    pub fn wait(&self, ticket: u64, deadline: Instant) -> Option<Result<NodeData, String>> {
        let cell = &self.pool.cells[self.index];
        let mut s = cell.slot.lock().expect("node slot");
        while s.done < ticket {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = cell
                .cv
                .wait_timeout(s, deadline - now)
                .expect("node slot")
                .0;
        }
        s.result.clone()
    }
}

struct Worker {
    spec: NodeSpec,
    events: EventSink,
    conn: Option<Connect>,
    event_ids: Vec<i32>,
    backoff: Duration,
    next_try: Instant,
    last_error: String,
    cpu_prev: Option<(u64, u64)>,
    dom_prev: HashMap<String, (u64, Instant)>,
    /// Finished dirty-rate measurements per domain.
    samples: HashMap<String, Vec<Sample>>,
    mem_stats: HashMap<String, super::measure::MemStats>,
    /// Disk capacities per domain and target, from the last quiet poll.
    disk_sizes: HashMap<String, HashMap<String, u64>>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Drop for Worker {
    fn drop(&mut self) {
        self.disconnect();
    }
}

impl Worker {
    fn new(spec: NodeSpec, events: EventSink) -> Worker {
        Worker {
            spec,
            events,
            conn: None,
            event_ids: Vec::new(),
            backoff: Duration::from_secs(1),
            next_try: Instant::now(),
            last_error: String::new(),
            cpu_prev: None,
            dom_prev: HashMap::new(),
            samples: HashMap::new(),
            mem_stats: HashMap::new(),
            disk_sizes: HashMap::new(),
        }
    }

    fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            ffi::deregister_events(&c, &self.event_ids);
            self.event_ids.clear();
            drop(c);
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        if Instant::now() < self.next_try {
            let wait = self.next_try - Instant::now();
            return Err(format!(
                "{}; retrying in {} s",
                self.last_error,
                wait.as_secs() + 1
            ));
        }
        match Connect::open(Some(&self.spec.uri)) {
            Ok(c) => {
                tracing::info!(uri = %self.spec.uri, "connected");
                let _ = c.set_keep_alive(5, 3);
                let name = c.hostname().unwrap_or_else(|_| self.spec.fallback_name());
                let shown = self.spec.name.clone().unwrap_or(name);
                let events = self.events.clone();
                let sink: Sink = Arc::new(move |e| events(&shown, e));
                self.event_ids = ffi::register_events(&c, sink).unwrap_or_default();
                self.conn = Some(c);
                self.backoff = Duration::from_secs(1);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(uri = %self.spec.uri, error = %e.message(), "cannot connect");
                self.last_error = super::ssh::explain(&self.spec.uri, e.message());
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(self.last_error.clone())
            }
        }
    }

    fn poll(&mut self) -> Result<NodeData, String> {
        self.connect()?;
        match self.gather() {
            Ok(d) => Ok(d),
            Err(e) => {
                // A broken connection is rebuilt on the next poll.
                let alive = self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.is_alive().unwrap_or(false));
                if !alive {
                    self.disconnect();
                    self.last_error = format!("lost the connection to {}: {e}", self.spec.uri);
                    self.next_try = Instant::now();
                    return Err(self.last_error.clone());
                }
                Err(e)
            }
        }
    }

    fn gather(&mut self) -> Result<NodeData, String> {
        // A second reference to the connection: the steps below update
        // this worker's memory of the domains while using it.
        let c = self.conn.clone().expect("connected");
        let hostname = c.hostname().map_err(|e| err("hostname", e))?;
        let info = c.node_info().map_err(|e| err("node info", e))?;
        let mem_free = c.free_memory().unwrap_or_else(|e| {
            tracing::debug!(uri = %self.spec.uri, error = %e.message(), "free memory not reported; shown as 0");
            0
        });
        let cpu_model = c
            .capabilities()
            .map(|x| xml::host_cpu_model(&x))
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or(info.model.clone());
        let cpu_used_pct = self.node_cpu_pct(&c);
        let doms = c
            .list_all_domains(0)
            .map_err(|e| err("listing domains", e))?;
        let mut domains = Vec::with_capacity(doms.len());
        let mut running: Vec<Domain> = Vec::new();
        let now = Instant::now();
        for d in doms {
            if let Some(data) = self.read_domain(&d, now, &mut running) {
                domains.push(data);
            }
        }
        self.dirty_rates(&running, &mut domains);
        Ok(NodeData {
            hostname,
            cpus: info.cpus,
            mem_total: info.memory * 1024,
            mem_free,
            cpu_model,
            cpu_used_pct,
            domains,
            pools: read_pools(&c)?,
        })
    }

    /// The node's CPU use since the last poll (0 on the first).
    fn node_cpu_pct(&mut self, c: &Connect) -> f64 {
        match (ffi::node_cpu_times(c), self.cpu_prev) {
            (Ok((busy, total)), Some((pb, pt))) if total > pt => {
                self.cpu_prev = Some((busy, total));
                (busy.saturating_sub(pb)) as f64 / (total - pt) as f64 * 100.0
            }
            (Ok(now), _) => {
                self.cpu_prev = Some(now);
                0.0
            }
            _ => 0.0,
        }
    }

    /// One domain as the node reports it; a running domain with no job
    /// goes into `running` (its dirty rate is measured). `None` when it
    /// vanished while being read.
    fn read_domain(
        &mut self,
        d: &Domain,
        now: Instant,
        running: &mut Vec<Domain>,
    ) -> Option<DomainData> {
        let name = d.name().ok()?;
        let (state, reason) = ffi::state(d).ok()?;
        let dinfo = d.info().ok()?;
        let dom_xml = d.xml_desc(0).unwrap_or_default();
        let parsed = xml::parse_domain(&dom_xml).unwrap_or_default();
        let active = matches!(state, sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_PAUSED);
        let vm_state = match state {
            sys::VIR_DOMAIN_RUNNING => VmState::Running,
            sys::VIR_DOMAIN_PAUSED => VmState::Paused,
            _ => VmState::Stopped,
        };
        let incoming = state == sys::VIR_DOMAIN_PAUSED
            && (reason == sys::VIR_DOMAIN_PAUSED_MIGRATION as i32
                || reason == sys::VIR_DOMAIN_PAUSED_POSTCOPY as i32);
        // Any job (a migration in or out, a dirty-rate measurement...)
        // makes job-locked calls wait; an unreadable job counts as busy.
        let job = if active {
            ffi::job_stats(d, false).ok()
        } else {
            None
        };
        let busy = active
            && job
                .as_ref()
                .is_none_or(|j| j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32);
        let migrating_out = !incoming
            && job.as_ref().is_some_and(|j| {
                j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32
                    && j.operation == Some(sys::VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT as i32)
            });
        let cpu_pct = match self.dom_prev.insert(name.clone(), (dinfo.cpu_time, now)) {
            Some((prev, at)) if dinfo.cpu_time >= prev && now > at => {
                let secs = (now - at).as_secs_f64() * dinfo.nr_virt_cpu.max(1) as f64;
                ((dinfo.cpu_time - prev) as f64 / 1e9 / secs * 100.0).clamp(0.0, 100.0)
            }
            _ => 0.0,
        };
        // Calls that need the domain's job lock wait behind a running
        // migration (up to 30 s): make them only on a quiet domain, and
        // reuse what was learnt before otherwise.
        let quiet = state == sys::VIR_DOMAIN_RUNNING && !busy;
        let known = self.disk_sizes.entry(name.clone()).or_default();
        let disks = parsed
            .disks
            .iter()
            .map(|dk| {
                let size = if quiet {
                    let s = d.block_info(&dk.target, 0).map_or(0, |b| b.capacity);
                    known.insert(dk.target.clone(), s);
                    s
                } else {
                    known.get(&dk.target).copied().unwrap_or(0)
                };
                (dk.clone(), size)
            })
            .collect();
        if quiet {
            running.push(d.clone());
            // Resident memory bounds what the guest ever wrote.
            // With the guest's own figures where its balloon reports them.
            if let Ok(stats) = d.memory_stats(0) {
                let st = super::measure::MemStats::from_tags(
                    stats.iter().map(|s| (s.tag as i32, s.val)),
                );
                if st.rss.is_some() {
                    self.mem_stats.insert(name.clone(), st);
                }
            }
        }
        Some(DomainData {
            name,
            state: vm_state,
            incoming,
            migrating_out,
            vcpus: dinfo.nr_virt_cpu,
            memory: dinfo.max_mem * 1024,
            cpu_pct,
            disks,
            cpu_model: parsed.cpu_model,
            samples: Vec::new(),
            mem_stats: Default::default(),
            tcg: parsed.tcg,
            xml: dom_xml,
            managed: parsed.managed,
            persistent: d.is_persistent().unwrap_or(false),
            autostart: d.autostart().unwrap_or(false),
        })
    }

    /// Dirty rates: keep each finished measurement, start the next one
    /// (page sampling, 1 s: a longer one still running when a migration
    /// starts held that migration up on the lab; the long windows are
    /// taken just before a migration instead, by `measure_workload`).
    fn dirty_rates(&mut self, running: &[Domain], domains: &mut [DomainData]) {
        for (name, sample) in ffi::dirty_rates(running) {
            measure::push(self.samples.entry(name).or_default(), sample);
        }
        for d in running {
            if let Err(e) = ffi::start_dirty_rate_calc(d, 1) {
                // A domain that just stopped or started a job: its rate is
                // measured again at the next poll.
                tracing::debug!(uri = %self.spec.uri, error = %e.message(), "dirty-rate measurement not started");
            }
        }
        for d in domains.iter_mut() {
            d.samples = self.samples.get(&d.name).cloned().unwrap_or_default();
            d.mem_stats = self.mem_stats.get(&d.name).copied().unwrap_or_default();
        }
    }
}

fn err(what: &str, e: virt::error::Error) -> String {
    format!("{what}: {}", e.message())
}

/// The node's storage pools, with what their definitions say.
fn read_pools(c: &Connect) -> Result<Vec<PoolData>, String> {
    let mut pools = Vec::new();
    for p in c
        .list_all_storage_pools(0)
        .map_err(|e| err("listing storage pools", e))?
    {
        let Ok(name) = p.name() else { continue };
        let parsed = p
            .xml_desc(0)
            .ok()
            .and_then(|x| xml::parse_pool(&x).ok())
            .unwrap_or_default();
        let active = p.is_active().unwrap_or(false);
        let (capacity, allocation) = p.info().map_or((0, 0), |i| (i.capacity, i.allocation));
        pools.push(PoolData {
            name,
            active,
            kind: parsed.kind,
            source: parsed.source,
            target: parsed.target,
            capacity,
            allocation,
        });
    }
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use super::{FIRST_ANSWER_GRACE, NodeSpec, patience};
    use std::time::Duration;

    #[test]
    fn a_node_that_never_answered_gets_longer_for_its_first_answer() {
        let t = Duration::from_secs(5);
        assert_eq!(patience(t, false), Duration::from_secs(15));
        assert_eq!(FIRST_ANSWER_GRACE, 3);
        assert_eq!(patience(t, true), t);
    }

    #[test]
    fn names_and_migration_hosts_from_uris() {
        let s = NodeSpec {
            name: None,
            uri: "qemu+ssh://root@hv1.example/system".into(),
            migrate_host: None,
            labels: Vec::new(),
        };
        assert_eq!(s.fallback_name(), "hv1.example");
        assert_eq!(s.migrate_host(), None);
        let s = NodeSpec {
            name: None,
            uri: "qemu+unix:///system?socket=/x/sock".into(),
            migrate_host: None,
            labels: Vec::new(),
        };
        assert_eq!(s.migrate_host().as_deref(), Some("127.0.0.1"));
        let s = NodeSpec {
            name: Some("a".into()),
            uri: "qemu:///system".into(),
            migrate_host: Some("10.0.0.5".into()),
            labels: Vec::new(),
        };
        assert_eq!(
            (s.fallback_name().as_str(), s.migrate_host().as_deref()),
            ("a", Some("10.0.0.5"))
        );
    }
}
