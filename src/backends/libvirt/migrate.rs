//! Live migrations through libvirt: the table of migrations vmshift knows
//! (its own and ones found running), the thread that runs a managed
//! peer-to-peer migration, and the follower that turns job stats and domain
//! events into steps and rounds — every migration-iteration event is a
//! round, and the job-completed event brings the actual downtime.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, JobStats, MigrateParameters};
use virt::sys;

use super::ffi::{self, Event};
use crate::cluster::{
    ClusterEvent, MIB, ManagedBy, Migration, MigrationId, MigrationOptions, OnStall, Outcome,
    PostcopyMode, Round, Step,
};
use crate::plan::{self, rules};
use crate::record::{Journal, Meta, Record};

/// How often a running migration's job stats are read.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How long to wait for the job-completed event after the call returned.
const COMPLETED_EVENT_WAIT: Duration = Duration::from_secs(5);
/// libvirt's "no limit" for migration bandwidth, MiB/s.
const UNLIMITED_MIB_S: u64 = (i64::MAX as u64) / (1024 * 1024);

/// The start of one libvirt iteration (a dirty-bitmap sync).
#[derive(Debug, Clone)]
struct Mark {
    iteration: i32,
    at: Instant,
    /// Memory processed and remaining right after the sync (first job
    /// stats read after the event).
    processed: Option<u64>,
    remaining: Option<u64>,
    dirty_bps: u64,
    bandwidth_bps: u64,
    throttle: u32,
}

pub struct Entry {
    pub view: Migration,
    pub started: Instant,
    marks: Vec<Mark>,
    last_stats: Option<JobStats>,
    completed: Option<JobStats>,
    abort_reason: Option<String>,
    postcopy_sent: bool,
    /// The migrate call returned (Ok or Err with the message).
    pub(super) returned: Option<Result<(), String>>,
    paused_at: Option<Instant>,
    /// Found running in the cluster, not started by this vmshift.
    pub discovered: bool,
    pub dom: Option<Domain>,
    /// The outcome went to the event log and the flight recorder.
    logged: bool,
    /// Its flight-recorder id, start and prediction.
    pub meta: Meta,
}

/// Migrations and the cluster event log, shared with the node workers'
/// event callbacks.
#[derive(Default)]
pub struct Table {
    pub entries: HashMap<MigrationId, Entry>,
    pub log: VecDeque<ClusterEvent>,
    pub next_id: MigrationId,
    pub epoch: Option<Instant>,
    /// Where finished migrations are recorded, and the cluster's name for it.
    pub journal: Journal,
    pub cluster: String,
    /// Each node's URI by node name, for following a migration found by
    /// its events.
    pub uris: HashMap<String, String>,
    /// The VMs a cluster manager owns (domain → resource), from the last poll.
    pub managed: HashMap<String, ManagedBy>,
}

/// A migration found by its first event: follow it from this node's URI.
pub struct Found {
    pub id: MigrationId,
    pub vm: String,
    pub uri: String,
}

pub type Shared = Arc<(Mutex<Table>, Condvar)>;

impl Table {
    pub fn log(&mut self, text: String) {
        let at_ms = self
            .epoch
            .get_or_insert_with(Instant::now)
            .elapsed()
            .as_millis() as u64;
        if self.log.len() == 200 {
            self.log.pop_front();
        }
        self.log.push_back(ClusterEvent { at_ms, text });
    }

    fn running_mut(&mut self, vm: &str) -> Option<&mut Entry> {
        self.entries
            .values_mut()
            .find(|e| e.view.vm == vm && e.view.outcome.is_none())
    }

    /// A domain event from node `node`. A migration nobody follows yet
    /// (started by virsh, or by Pacemaker for a move, a standby or a
    /// failover) is found by its first iteration event, so its rounds are
    /// seen from the start; the caller follows it.
    pub fn on_event(&mut self, node: &str, ev: Event) -> Option<Found> {
        let mut found = None;
        if let Event::Iteration { dom, .. } = &ev
            && self.running_mut(dom).is_none()
            && let Some(uri) = self.uris.get(node).cloned()
        {
            self.next_id += 1;
            let id = self.next_id;
            let mut e = Entry::new(id, dom, node, "?", Default::default(), 0);
            e.discovered = true;
            e.meta = Meta::new(true, None);
            e.view.managed_by = self.managed.get(dom).cloned();
            let by = match &e.view.managed_by {
                Some(m) => format!(" by Pacemaker (resource {})", m.resource),
                None => String::new(),
            };
            self.entries.insert(id, e);
            self.log(format!(
                "found a migration of {dom} from {node}{by}; following it"
            ));
            found = Some(Found {
                id,
                vm: dom.clone(),
                uri,
            });
        }
        match ev {
            Event::Iteration { dom, iteration } => {
                if let Some(e) = self.running_mut(&dom).filter(|e| e.view.from == node) {
                    e.marks.push(Mark {
                        iteration,
                        at: Instant::now(),
                        processed: None,
                        remaining: None,
                        dirty_bps: 0,
                        bandwidth_bps: 0,
                        throttle: 0,
                    });
                    e.mark_step(Step::PreCopy);
                }
            }
            Event::Lifecycle { dom, event, detail } => {
                let event = event as u32;
                let detail = detail as u32;
                let Some(e) = self.running_mut(&dom) else {
                    return found;
                };
                // A found migration's target: where the incoming domain starts.
                if e.view.to == "?"
                    && e.view.from != node
                    && ((event == sys::VIR_DOMAIN_EVENT_STARTED
                        && detail == sys::VIR_DOMAIN_EVENT_STARTED_MIGRATED)
                        || (event == sys::VIR_DOMAIN_EVENT_RESUMED
                            && detail == sys::VIR_DOMAIN_EVENT_RESUMED_MIGRATED))
                {
                    e.view.to = node.to_string();
                }
                let on_src = e.view.from == node;
                let on_dst = e.view.to == node;
                if on_src && event == sys::VIR_DOMAIN_EVENT_SUSPENDED {
                    if detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED
                        || detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY
                    {
                        e.paused_at.get_or_insert_with(Instant::now);
                        e.mark_step(Step::Pause);
                        e.mark_step(Step::FinalCopy);
                        if detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY {
                            e.view.postcopy_active = true;
                        }
                    }
                } else if on_dst && event == sys::VIR_DOMAIN_EVENT_RESUMED {
                    if detail == sys::VIR_DOMAIN_EVENT_RESUMED_MIGRATED
                        || detail == sys::VIR_DOMAIN_EVENT_RESUMED_POSTCOPY
                    {
                        e.mark_step(Step::Pause);
                        e.mark_step(Step::FinalCopy);
                        e.mark_step(Step::ResumeOnTarget);
                        if detail == sys::VIR_DOMAIN_EVENT_RESUMED_POSTCOPY {
                            e.view.postcopy_active = true;
                        }
                    }
                } else if on_src
                    && event == sys::VIR_DOMAIN_EVENT_STOPPED
                    && detail == sys::VIR_DOMAIN_EVENT_STOPPED_MIGRATED
                {
                    e.mark_step(Step::Pause);
                    e.mark_step(Step::FinalCopy);
                    e.mark_step(Step::ResumeOnTarget);
                    e.mark_step(Step::CleanUpSource);
                }
            }
            Event::JobCompleted { dom, stats } => {
                if let Some(e) = self.running_mut(&dom).filter(|e| e.view.from == node) {
                    e.completed = Some(*stats);
                    e.settle();
                } else if let Some(e) = self
                    .running_mut(&dom)
                    .filter(|e| e.view.to == node && e.completed.is_none())
                {
                    // The destination's completed stats carry the same downtime.
                    e.completed = Some(*stats);
                    e.settle();
                }
            }
        }
        if let Some(text) = self.finished_text() {
            self.log(text);
        }
        found
    }

    /// A log line for each migration that just got its outcome; each such
    /// migration goes to the flight recorder here, once.
    pub(super) fn finished_text(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        for e in self.entries.values_mut() {
            if let (Some(text), false) = (e.view.outcome_sentence(), e.logged) {
                lines.push(text);
                e.logged = true;
                self.journal
                    .submit(Record::finished(&e.meta, "libvirt", &self.cluster, &e.view));
            }
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

impl Entry {
    pub fn new(
        id: MigrationId,
        vm: &str,
        from: &str,
        to: &str,
        options: MigrationOptions,
        memory: u64,
    ) -> Entry {
        let view = Migration::starting(id, vm, from, to, options, memory, 0, 0);
        Entry {
            view,
            started: Instant::now(),
            marks: Vec::new(),
            last_stats: None,
            completed: None,
            abort_reason: None,
            postcopy_sent: false,
            returned: None,
            paused_at: None,
            discovered: false,
            dom: None,
            logged: false,
            meta: Meta::new(false, None),
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    pub(super) fn mark_step(&mut self, s: Step) {
        let at = self.elapsed_ms();
        if self.view.step_started_ms[s.index()].is_none() {
            self.view.step_started_ms[s.index()] = Some(at);
        }
        if s > self.view.step {
            self.view.step = s;
        }
    }

    /// Applies live job stats.
    fn apply_stats(&mut self, j: &JobStats) {
        let page = j.mem_page_size.unwrap_or(4096);
        let processed = j.mem_processed.unwrap_or(0);
        let remaining = j.mem_remaining.unwrap_or(0) + j.disk_remaining.unwrap_or(0);
        let dirty = j.mem_dirty_rate.unwrap_or(0) * page;
        let bw = j.mem_bps.unwrap_or(0);
        let throttle = j.auto_converge_throttle.unwrap_or(0).max(0) as u32;
        for m in self.marks.iter_mut().filter(|m| m.processed.is_none()) {
            m.processed = Some(processed);
            m.remaining = Some(j.mem_remaining.unwrap_or(0));
            m.dirty_bps = dirty;
            m.bandwidth_bps = bw;
            m.throttle = throttle;
        }
        if processed > 0 || j.mem_iteration.unwrap_or(0) > 0 {
            self.mark_step(Step::PreCopy);
        }
        let v = &mut self.view;
        if v.memory == 0 {
            // Found by its first event, before any poll saw the domain.
            v.memory = j.mem_total.unwrap_or(0);
        }
        v.remaining_bytes = remaining;
        if dirty > 0 {
            v.dirty_bps = dirty;
        }
        v.bandwidth_bps = bw;
        v.throttle_pct = throttle;
        v.transferred_bytes = v
            .transferred_bytes
            .max(j.data_processed.unwrap_or(processed));
        v.storage_bytes = v.storage_bytes.max(j.disk_total.unwrap_or(0));
        // The first pass: how much of memory it has scanned, and how much
        // of that held data (zero pages go as markers).
        if self.marks.len() <= 1 {
            let normal = j.mem_normal.unwrap_or(0) * page;
            v.data_bytes = j.mem_normal_bytes.unwrap_or(normal).max(normal);
            v.scanned_bytes = v.data_bytes + j.mem_constant.unwrap_or(0) * page;
        }
        self.last_stats = Some(j.clone());
        self.rebuild_rounds(processed, false);
        self.view.live = plan::live(&self.view);
        // What a pause now would cost: QEMU's own figure divides by the
        // limited bandwidth, but the final copy goes at line speed.
        self.view.expected_downtime_ms = match &self.view.live {
            Some(f) => f.downtime_now_ms.unwrap_or(f.downtime_ms.value),
            None => j.downtime.unwrap_or(0) as f64,
        };
    }

    /// Rounds from the iteration marks: round i spans iteration i+1's start
    /// to the next start (or the end of the job when `finished`).
    fn rebuild_rounds(&mut self, processed_now: u64, finished: bool) {
        let mut rounds = Vec::new();
        for (i, m) in self.marks.iter().enumerate() {
            let (end_processed, end_remaining, end_at) = match self.marks.get(i + 1) {
                Some(n) => (n.processed, n.remaining, n.at),
                None if finished => (
                    Some(processed_now),
                    Some(0),
                    self.paused_at.unwrap_or_else(Instant::now).max(m.at),
                ),
                None => break,
            };
            let (Some(start), Some(end)) = (m.processed, end_processed) else {
                break;
            };
            let secs = end_at.saturating_duration_since(m.at).as_secs_f64();
            let sent = end.saturating_sub(start);
            rounds.push(Round {
                index: (m.iteration.max(1) - 1) as u32,
                bytes_sent: sent,
                bytes_dirty: end_remaining.unwrap_or(0),
                dirty_bps: m.dirty_bps,
                bandwidth_bps: if secs > 0.0 {
                    (sent as f64 / secs) as u64
                } else {
                    m.bandwidth_bps
                },
                duration_ms: secs * 1000.0,
                throttle_pct: m.throttle,
            });
        }
        self.view.current_round_sent = self
            .marks
            .last()
            .and_then(|m| m.processed)
            .map_or(0, |p| processed_now.saturating_sub(p));
        self.view.rounds = rounds;
        self.view.elapsed_ms = self.elapsed_ms();
    }

    /// The job is over on libvirt's side: close the rounds, take the downtime,
    /// and decide the outcome once the migrate call returned.
    pub(super) fn settle(&mut self) {
        if self.view.outcome.is_some() {
            return;
        }
        if let Some(c) = self.completed.clone() {
            let iterations = c.mem_iteration.unwrap_or(0) as i32;
            // Iterations whose events were not seen still count as rounds.
            let have = self.marks.last().map_or(0, |m| m.iteration);
            let at = self.paused_at.unwrap_or_else(Instant::now);
            for it in have + 1..=iterations {
                self.marks.push(Mark {
                    iteration: it,
                    at,
                    processed: self.marks.last().and_then(|m| m.processed).or(Some(0)),
                    remaining: Some(0),
                    dirty_bps: 0,
                    bandwidth_bps: 0,
                    throttle: 0,
                });
            }
            let processed = c.mem_processed.unwrap_or(0);
            self.rebuild_rounds(processed, true);
            if let Some(d) = c.downtime {
                self.view.actual_downtime_ms = Some(d as f64);
            }
            self.view.transferred_bytes = c.data_processed.unwrap_or(processed);
            self.view.remaining_bytes = 0;
            self.view.elapsed_ms = c.time_elapsed.map_or(self.elapsed_ms(), |t| t as f64);
        }
        let _ = self.view.live.take();
        match &self.returned {
            Some(Ok(())) if self.completed.is_some() || self.discovered => {
                for s in Step::ALL {
                    self.mark_step(s);
                }
                self.view.outcome = Some(Outcome::Completed);
            }
            Some(Err(msg)) => {
                let reason = match &self.abort_reason {
                    Some(r) => r.clone(),
                    None => msg.clone(),
                };
                self.view.outcome = Some(if self.abort_reason.is_some() {
                    Outcome::Aborted { reason }
                } else {
                    Outcome::Failed { reason }
                });
            }
            _ => {}
        }
    }
}

/// Starts a managed peer-to-peer live migration of `vm` on its own thread,
/// and a follower for its progress.
pub fn start(
    shared: Shared,
    id: MigrationId,
    vm: String,
    src_uri: String,
    dst_uri: String,
    migrate_host: Option<String>,
) {
    follow_in_background(shared.clone(), id, vm.clone(), src_uri.clone());
    thread::Builder::new()
        .name(format!("migrate-{vm}"))
        .spawn(move || run_migration(shared, id, vm, src_uri, dst_uri, migrate_host))
        .expect("spawn a migration thread");
}

/// Follows a migration's progress on its own thread (vmshift's own, or one
/// found already running, started by virsh or another vmshift).
pub fn follow_in_background(shared: Shared, id: MigrationId, vm: String, src_uri: String) {
    thread::Builder::new()
        .name(format!("follow-{vm}"))
        .spawn(move || follow(shared, id, vm, src_uri))
        .expect("spawn a migration follower");
}

pub(super) fn libvirt_reason(e: &virt::error::Error) -> String {
    e.message().trim().to_string()
}

fn run_migration(
    shared: Shared,
    id: MigrationId,
    vm: String,
    src_uri: String,
    dst_uri: String,
    migrate_host: Option<String>,
) {
    let (lock, cv) = &*shared;
    let fail = |msg: String| {
        let mut t = lock.lock().expect("migration table");
        if let Some(e) = t.entries.get_mut(&id) {
            e.returned = Some(Err(msg));
            e.settle();
        }
        if let Some(text) = t.finished_text() {
            t.log(text);
        }
        cv.notify_all();
    };
    let conn = match Connect::open(Some(&src_uri)) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot connect to the source node ({}): {}",
                src_uri,
                libvirt_reason(&e)
            ));
        }
    };
    let dom = match conn.lookup_domain_by_name(&vm) {
        Ok(d) => d,
        Err(e) => {
            return fail(format!(
                "{vm} is not on the source node any more: {}",
                libvirt_reason(&e)
            ));
        }
    };
    let options = {
        let t = lock.lock().expect("migration table");
        match t.entries.get(&id) {
            Some(e) => e.view.options.clone(),
            None => return,
        }
    };
    let mut flags = sys::VIR_MIGRATE_LIVE
        | sys::VIR_MIGRATE_PEER2PEER
        | sys::VIR_MIGRATE_PERSIST_DEST
        | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
    // Post-copy is enabled so it can be switched on at any time; it only
    // happens when asked (now, on stall, or by the operator).
    flags |= sys::VIR_MIGRATE_POSTCOPY;
    if options.auto_converge {
        flags |= sys::VIR_MIGRATE_AUTO_CONVERGE;
    }
    if options.copy_storage {
        flags |= sys::VIR_MIGRATE_NON_SHARED_DISK;
    }
    let mut params = MigrateParameters {
        bandwidth: Some(
            options
                .bandwidth_bps
                .map_or(UNLIMITED_MIB_S, |b| (b / MIB).max(1)),
        ),
        ..Default::default()
    };
    if options.auto_converge {
        params.auto_converge_initial = Some(rules::THROTTLE_INITIAL_PCT as i32);
        params.auto_converge_increment = Some(rules::THROTTLE_STEP_PCT as i32);
    }
    if options.parallel_connections > 1 {
        flags |= sys::VIR_MIGRATE_PARALLEL;
        params.parallel_connections = Some(options.parallel_connections as i32);
    }
    if let Some(host) = &migrate_host {
        params.uri = Some(format!("tcp://{host}"));
        params.listen_address = Some(host.clone());
    }
    // The downtime limit is a migration parameter of the domain.
    let _ = dom.migrate_set_max_downtime(options.max_downtime_ms, 0);
    {
        let mut t = lock.lock().expect("migration table");
        if let Some(e) = t.entries.get_mut(&id) {
            e.dom = Some(dom.clone());
        }
    }
    tracing::info!(%vm, %src_uri, %dst_uri, flags, "migrate_to_uri3");
    let result = dom.migrate_to_uri3(Some(&dst_uri), params, flags);
    tracing::info!(%vm, result = ?result.as_ref().map_err(libvirt_reason), "migrate_to_uri3 returned");
    let mut t = lock.lock().expect("migration table");
    match result {
        Ok(()) => {
            if let Some(e) = t.entries.get_mut(&id) {
                e.returned = Some(Ok(()));
            }
            // The job-completed event carries the actual downtime; give it a moment.
            let deadline = Instant::now() + COMPLETED_EVENT_WAIT;
            while t.entries.get(&id).is_some_and(|e| e.completed.is_none())
                && Instant::now() < deadline
            {
                t = cv
                    .wait_timeout(t, Duration::from_millis(100))
                    .expect("migration table")
                    .0;
            }
            let missing = t.entries.get(&id).is_some_and(|e| e.completed.is_none());
            if missing {
                // Ask the destination for the completed job instead.
                drop(t);
                let stats = Connect::open(Some(&dst_uri))
                    .ok()
                    .and_then(|c| c.lookup_domain_by_name(&vm).ok())
                    .and_then(|d| ffi::job_stats(&d, true).ok());
                t = lock.lock().expect("migration table");
                if let Some(e) = t.entries.get_mut(&id) {
                    e.completed = Some(stats.unwrap_or_default());
                }
            }
            if let Some(e) = t.entries.get_mut(&id) {
                e.settle();
            }
        }
        Err(err) => {
            let src_name = t
                .entries
                .get(&id)
                .map(|e| e.view.from.clone())
                .unwrap_or_default();
            let still_running = dom.is_active().unwrap_or(false);
            let msg = if still_running {
                format!("{}; {vm} keeps running on {src_name}", libvirt_reason(&err))
            } else {
                libvirt_reason(&err)
            };
            if let Some(e) = t.entries.get_mut(&id) {
                if let Some(r) = &mut e.abort_reason
                    && still_running
                    && !r.contains("keeps running")
                {
                    r.push_str(&format!("; {vm} keeps running on {src_name}"));
                }
                e.returned = Some(Err(msg));
                e.settle();
            }
        }
    }
    if let Some(text) = t.finished_text() {
        t.log(text);
    }
    cv.notify_all();
}

/// Reads job stats a few times a second (and right after each iteration
/// event), applies the stall policy, and settles discovered migrations.
pub(super) fn follow(shared: Shared, id: MigrationId, vm: String, src_uri: String) {
    let (lock, cv) = &*shared;
    let Ok(conn) = Connect::open(Some(&src_uri)) else {
        return;
    };
    let Ok(dom) = conn.lookup_domain_by_name(&vm) else {
        return;
    };
    let mut seen_marks = 0;
    loop {
        let stats = ffi::job_stats(&dom, false);
        let mut t = lock.lock().expect("migration table");
        let Some(e) = t.entries.get_mut(&id) else {
            return;
        };
        if e.view.outcome.is_some() {
            return;
        }
        if e.dom.is_none() {
            e.dom = Some(dom.clone());
        }
        match &stats {
            Ok(j) if j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32 => {
                e.apply_stats(j);
                policy(e, &dom);
            }
            _ if e.discovered && e.last_stats.is_some() => {
                // The job is gone: where does the VM run now?
                let on_src = dom.is_active().unwrap_or(false);
                e.returned = Some(if on_src {
                    Err(format!(
                        "the migration ended without moving {vm}; it keeps running on {}",
                        e.view.from
                    ))
                } else {
                    Ok(())
                });
                e.settle();
                if let Some(text) = t.finished_text() {
                    t.log(text);
                }
                cv.notify_all();
                return;
            }
            _ => {}
        }
        // Sleep until the next read, or an iteration event.
        let deadline = Instant::now() + FOLLOW_INTERVAL;
        loop {
            let marks = t.entries.get(&id).map_or(0, |e| e.marks.len());
            if marks != seen_marks {
                seen_marks = marks;
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            t = cv
                .wait_timeout(t, deadline - now)
                .expect("migration table")
                .0;
        }
    }
}

/// Post-copy now / on stall, abort on stall (DESIGN §1, the same rules as the simulator).
fn policy(e: &mut Entry, dom: &Domain) {
    let o = e.view.options.clone();
    // A migration someone else started keeps their settings: only watch it.
    if e.discovered || e.view.postcopy_active || e.postcopy_sent || e.abort_reason.is_some() {
        return;
    }
    if o.postcopy == PostcopyMode::Now && !e.marks.is_empty() {
        e.postcopy_sent = true;
        let _ = ffi::start_postcopy(dom);
        return;
    }
    let history: Vec<f64> = e.view.rounds.iter().map(|r| r.bytes_dirty as f64).collect();
    let bw = o
        .bandwidth_bps
        .map_or(e.view.bandwidth_bps as f64, |b| b as f64)
        .max(1.0);
    let switchover = bw * o.max_downtime_ms as f64 / 1000.0;
    if !rules::stalled(&history, e.view.throttle_pct, o.auto_converge, switchover) {
        return;
    }
    e.view.stalled = true;
    let policy = if o.postcopy == PostcopyMode::Auto {
        OnStall::Postcopy
    } else {
        o.on_stall
    };
    match policy {
        OnStall::Postcopy => {
            e.postcopy_sent = true;
            let _ = ffi::start_postcopy(dom);
        }
        OnStall::Abort => {
            e.abort_reason = Some(rules::stall_sentence(
                &e.view,
                e.view.rounds.len(),
                history.last().copied().unwrap_or(0.0) as u64,
                switchover as u64,
            ));
            let _ = ffi::abort_job(dom);
        }
        OnStall::Wait => {}
    }
}

/// Operator actions on a running migration.
pub fn abort(e: &mut Entry) -> Result<(), String> {
    if e.view.postcopy_active {
        return Err("the migration is in post-copy: the VM already runs on the target and the migration can no longer be aborted".into());
    }
    let dom = e
        .dom
        .clone()
        .ok_or("the migration has not started yet; try again in a moment")?;
    e.abort_reason = Some("aborted by the operator".into());
    ffi::abort_job(&dom).map_err(|err| {
        e.abort_reason = None;
        format!("libvirt refused to abort: {}", libvirt_reason(&err))
    })
}

pub fn set_max_downtime(e: &mut Entry, ms: u64) -> Result<(), String> {
    let dom = e
        .dom
        .clone()
        .ok_or("the migration has not started yet; try again in a moment")?;
    dom.migrate_set_max_downtime(ms, 0)
        .map_err(|err| libvirt_reason(&err))?;
    e.view.options.max_downtime_ms = ms;
    Ok(())
}

pub fn set_bandwidth(e: &mut Entry, bps: Option<u64>) -> Result<(), String> {
    let dom = e
        .dom
        .clone()
        .ok_or("the migration has not started yet; try again in a moment")?;
    let mib = bps.map_or(UNLIMITED_MIB_S, |b| (b / MIB).max(1));
    dom.migrate_set_max_speed(mib, 0)
        .map_err(|err| libvirt_reason(&err))?;
    e.view.options.bandwidth_bps = bps;
    Ok(())
}

pub fn start_postcopy(e: &mut Entry) -> Result<(), String> {
    if e.view.postcopy_active || e.postcopy_sent {
        return Err("the migration is already in post-copy".into());
    }
    let dom = e
        .dom
        .clone()
        .ok_or("the migration has not started yet; try again in a moment")?;
    ffi::start_postcopy(&dom).map_err(|err| libvirt_reason(&err))?;
    e.postcopy_sent = true;
    Ok(())
}
