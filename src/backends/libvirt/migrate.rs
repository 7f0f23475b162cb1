//! Live migrations through libvirt: the table of migrations vmshift knows
//! (its own and ones found running), the thread that runs a managed
//! peer-to-peer migration, and the follower that turns job stats and domain
//! events into steps and rounds — every migration-iteration event is a
//! round, and the job-completed event brings the actual downtime.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, MigrateParameters};
use virt::sys;

use super::ffi::{self, Event};
use super::rounds::{self, Input, Stats, Tracker};
use super::xml::DiskMove;
use crate::cluster::{
    ClusterEvent, MIB, ManagedBy, Migration, MigrationId, MigrationOptions, OnStall, Outcome,
    PostcopyMode, Step,
};
use crate::plan::{advice, stall};
use crate::record::{Journal, Meta, Owner, Record};

/// How often a running migration's job stats are read.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How long to wait for the job-completed event after the call returned.
const COMPLETED_EVENT_WAIT: Duration = Duration::from_secs(5);
/// libvirt's "no limit" for migration bandwidth, MiB/s.
const UNLIMITED_MIB_S: u64 = (i64::MAX as u64) / (1024 * 1024);

pub struct Entry {
    pub view: Migration,
    pub started: Instant,
    /// The iterations and stats seen, turned into steps and rounds.
    rounds: Tracker,
    abort_reason: Option<String>,
    postcopy_sent: bool,
    /// The migrate call returned (Ok or Err with the message).
    pub(super) returned: Option<Result<(), String>>,
    /// Found running in the cluster, not started by this vmshift.
    pub discovered: bool,
    pub dom: Option<Domain>,
    /// The outcome went to the event log and the flight recorder.
    logged: bool,
    /// Its flight-recorder id, start and prediction.
    pub meta: Meta,
    /// Where the raw inputs go when it ends (`VMSHIFT_RECORD_ROUNDS`).
    record_dir: Option<PathBuf>,
    /// The vmshift that started it, when this one found it by its record
    /// of intent: that process records it, unless it is gone.
    pub owner: Option<Owner>,
    /// Since when the follower's call to the source has gone unanswered.
    asking_since: Option<Instant>,
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
            if let Some(r) = self.claim(dom, node) {
                e.adopt(&r);
            }
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
                    let at_ms = e.now_ms();
                    e.feed(Input::Iteration { at_ms, iteration });
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
                let at_ms = e.now_ms();
                if on_src
                    && event == sys::VIR_DOMAIN_EVENT_SUSPENDED
                    && (detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED
                        || detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)
                {
                    let postcopy = detail == sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY;
                    e.feed(Input::Paused { at_ms, postcopy });
                } else if on_dst
                    && event == sys::VIR_DOMAIN_EVENT_RESUMED
                    && (detail == sys::VIR_DOMAIN_EVENT_RESUMED_MIGRATED
                        || detail == sys::VIR_DOMAIN_EVENT_RESUMED_POSTCOPY)
                {
                    let postcopy = detail == sys::VIR_DOMAIN_EVENT_RESUMED_POSTCOPY;
                    e.feed(Input::Resumed { at_ms, postcopy });
                } else if on_src
                    && event == sys::VIR_DOMAIN_EVENT_STOPPED
                    && detail == sys::VIR_DOMAIN_EVENT_STOPPED_MIGRATED
                {
                    e.feed(Input::StoppedOnSource { at_ms });
                }
            }
            Event::JobCompleted { dom, stats } => {
                // The source's, or else the destination's: they carry the
                // same downtime.
                if let Some(e) = self
                    .running_mut(&dom)
                    .filter(|e| e.view.from == node || e.view.to == node)
                    .filter(|e| !e.rounds.completed())
                {
                    let at_ms = e.now_ms();
                    e.feed(Input::Completed {
                        at_ms,
                        stats: Stats::from(&*stats),
                    });
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
                // The vmshift that started it records it, while it runs:
                // one migration, one record.
                if e.owner_follows() {
                    continue;
                }
                let mut rec = Record::finished(&e.meta, "libvirt", &self.cluster, &e.view);
                if let Some(o) = &e.owner {
                    rec.orphaned = true;
                    rec.note = Some(format!(
                        "orphaned: the vmshift that started it ({}) ended before it; recorded by {} from what it saw and libvirt's totals",
                        o.describe(),
                        Owner::this_process().describe()
                    ));
                }
                self.journal.submit(rec);
            }
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    /// The open record (of intent, or detached) of a migration of `vm`
    /// from `from` that a vmshift started: found again, it keeps its id,
    /// and its owner records it.
    pub(super) fn claim(&self, vm: &str, from: &str) -> Option<Record> {
        let h = self.journal.read().ok()?;
        h.open_detached()
            .into_iter()
            .rev()
            .find(|r| {
                r.backend == "libvirt"
                    && r.cluster == self.cluster
                    && r.migration.vm == vm
                    && (r.migration.from == from || from == "?")
            })
            .cloned()
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
        let record_dir = std::env::var_os("VMSHIFT_RECORD_ROUNDS").map(PathBuf::from);
        Entry {
            view,
            started: Instant::now(),
            rounds: if record_dir.is_some() {
                Tracker::recording()
            } else {
                Tracker::default()
            },
            abort_reason: None,
            postcopy_sent: false,
            returned: None,
            discovered: false,
            dom: None,
            logged: false,
            meta: Meta::new(false, None),
            record_dir,
            owner: None,
            asking_since: None,
        }
    }

    /// Takes on the open record `r` of this migration: its id, options and
    /// prediction, and the process that follows it.
    pub(super) fn adopt(&mut self, r: &Record) {
        self.meta = Meta::resumed(r);
        self.view.options = r.migration.options.clone();
        self.view.forecast = r.migration.forecast.clone();
        if self.view.to == "?" {
            self.view.to = r.migration.to.clone();
        }
        self.owner = r.running_by.clone();
    }

    /// Another vmshift that started this migration still runs and follows it.
    pub(super) fn owner_follows(&self) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| *o != Owner::this_process() && o.alive())
    }

    /// Milliseconds since the migration started (the time of an input).
    pub(super) fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// One event or job-stats read, applied to the rounds and the view.
    pub(super) fn feed(&mut self, input: Input) {
        self.rounds.apply(&mut self.view, input);
    }

    pub(super) fn mark_step(&mut self, s: Step) {
        let at = self.now_ms();
        rounds::mark_step(&mut self.view, s, at);
    }

    /// Decides the outcome once the migrate call returned (the rounds were
    /// closed by the completed job's stats, if they came).
    pub(super) fn settle(&mut self) {
        if self.view.outcome.is_some() {
            return;
        }
        let silent = self.asking_since.map(|s| s.elapsed());
        let _ = self.view.live.take();
        match &self.returned {
            Some(Ok(())) if self.rounds.completed() || self.discovered => {
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
        // The source has not answered the follower for a while as the
        // migration ends (a stalled daemon across the switchover): the
        // figures are what libvirt said afterwards.
        if self.view.outcome.is_some()
            && let Some(silent) = silent.filter(|s| *s >= SLOW_ANSWER)
        {
            let from = self.view.from.clone();
            silent_for(self, &from, silent);
        }
        if self.view.outcome.is_some()
            && let (Some(dir), Some(inputs)) = (&self.record_dir, self.rounds.recorded())
        {
            rounds::write_recording(dir, &self.view, inputs);
        }
    }
}

/// What a migration vmshift runs itself is asked to do.
pub struct Job {
    pub vm: String,
    pub src_uri: String,
    pub dst_uri: String,
    pub migrate_host: Option<String>,
    /// Disks copied to the target (shared-nothing).
    pub disk_moves: Vec<DiskMove>,
    /// Every disk that is not copied is on a volume the operator vouched
    /// for as one coherent storage (`trusted` in `[[libvirt.shared_volume]]`):
    /// libvirt is told so (`VIR_MIGRATE_UNSAFE`), because it cannot see it.
    pub vouched_shared: bool,
}

/// Starts a managed peer-to-peer live migration on its own thread, and a
/// follower for its progress.
pub fn start(shared: Shared, id: MigrationId, job: Job) {
    follow_in_background(shared.clone(), id, job.vm.clone(), job.src_uri.clone());
    thread::Builder::new()
        .name(format!("migrate-{}", job.vm))
        .spawn(move || run_migration(shared, id, job))
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

/// What to do when libvirt does not see a VM's storage as shared.
const UNSAFE_ADVICE: &str = " (libvirt does not see this disk's storage as shared: \
copy it with --copy-storage, or, if the volume is a cluster file system libvirt \
cannot recognise, declare it with `trusted = true` in [[libvirt.shared_volume]])";

pub(super) fn libvirt_reason(e: &virt::error::Error) -> String {
    e.message().trim().to_string()
}

fn run_migration(shared: Shared, id: MigrationId, job: Job) {
    let Job {
        vm,
        src_uri,
        dst_uri,
        migrate_host,
        disk_moves,
        vouched_shared,
    } = job;
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
    if vouched_shared {
        flags |= sys::VIR_MIGRATE_UNSAFE;
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
        params.auto_converge_initial = Some(stall::THROTTLE_INITIAL_PCT as i32);
        params.auto_converge_increment = Some(stall::THROTTLE_STEP_PCT as i32);
    }
    if options.parallel_connections > 1 {
        flags |= sys::VIR_MIGRATE_PARALLEL;
        params.parallel_connections = Some(options.parallel_connections as i32);
    }
    if let Some(host) = &migrate_host {
        params.uri = Some(format!("tcp://{host}"));
        params.listen_address = Some(host.clone());
    }
    if !disk_moves.is_empty() {
        // Copied disks get their place on the target: the destination
        // XML names it, and libvirt creates the volume in that pool
        // before copying over NBD (on the migration address).
        let xml = match dom.xml_desc(sys::VIR_DOMAIN_XML_MIGRATABLE) {
            Ok(x) => x,
            Err(e) => {
                return fail(format!(
                    "cannot read the definition of {vm}: {}",
                    libvirt_reason(&e)
                ));
            }
        };
        match super::xml::retarget_disks(&xml, &disk_moves) {
            Ok(dest) => {
                params.dest_xml = Some(dest.clone());
                params.persist_xml = Some(dest);
                params.migrate_disks = disk_moves.iter().map(|m| m.dev.clone()).collect();
            }
            Err(why) => return fail(format!("cannot copy the disks of {vm}: {why}")),
        }
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
    if let Err(err) = &result
        && !conn.is_alive().unwrap_or(false)
    {
        // The source's daemon went away (killed, restarted, cut off): its
        // error says nothing of the migration. The nodes will.
        let reason = libvirt_reason(err);
        drop(dom);
        drop(conn);
        if let Resolved::StillRunning = resolve(&shared, id, &vm, &src_uri, Silent::Source, &reason)
        {
            follow(shared, id, vm, src_uri);
        }
        return;
    }
    // Where the VM runs after a failure: asked before taking the lock.
    let still_running = result.is_err() && dom.is_active().unwrap_or(false);
    let mut t = lock.lock().expect("migration table");
    match result {
        Ok(()) => {
            if let Some(e) = t.entries.get_mut(&id) {
                e.returned = Some(Ok(()));
            }
            // The job-completed event carries the actual downtime; give it a moment.
            let deadline = Instant::now() + COMPLETED_EVENT_WAIT;
            while t.entries.get(&id).is_some_and(|e| !e.rounds.completed())
                && Instant::now() < deadline
            {
                t = cv
                    .wait_timeout(t, Duration::from_millis(100))
                    .expect("migration table")
                    .0;
            }
            let missing = t.entries.get(&id).is_some_and(|e| !e.rounds.completed());
            if missing {
                // Ask the destination for the completed job instead.
                drop(t);
                let stats = Connect::open(Some(&dst_uri))
                    .ok()
                    .and_then(|c| c.lookup_domain_by_name(&vm).ok())
                    .and_then(|d| ffi::job_stats(&d, true).ok());
                t = lock.lock().expect("migration table");
                if let Some(e) = t.entries.get_mut(&id) {
                    let at_ms = e.now_ms();
                    let stats = stats.as_ref().map(Stats::from).unwrap_or_default();
                    e.feed(Input::Completed { at_ms, stats });
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
            let mut reason = libvirt_reason(&err);
            if matches!(
                err.code(),
                virt::enumutil::Enum::Known(virt::error::ErrorNumber::MigrateUnsafe)
            ) {
                reason.push_str(UNSAFE_ADVICE);
            }
            let msg = if still_running {
                format!("{reason}; {vm} keeps running on {src_name}")
            } else {
                reason
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

/// What the follower does once it has released the table's lock.
enum Next {
    /// Read the stats again after the interval (or an iteration event).
    Wait,
    /// A discovered migration's job is gone: find where the VM runs.
    Gone,
    /// The source did not answer (libvirt's error): wait until the source
    /// or the destination answers and says where the VM runs.
    Unanswered(String),
    /// The stall policy asks libvirt for post-copy or an abort.
    Act(PolicyAction),
    Stop,
}

/// Reads job stats a few times a second (and right after each iteration
/// event), applies the stall policy, and settles discovered migrations.
/// libvirt is never called with the table's lock held: the event
/// callbacks of every node need that lock.
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
        let asked = Instant::now();
        if let Some(e) = lock.lock().expect("migration table").entries.get_mut(&id) {
            e.asking_since = Some(asked);
        }
        let stats = ffi::job_stats(&dom, false);
        let slow = asked.elapsed();
        let next = {
            let mut t = lock.lock().expect("migration table");
            if let Some(e) = t.entries.get_mut(&id) {
                e.asking_since = None;
            }
            match t.entries.get_mut(&id) {
                None => Next::Stop,
                Some(e) if e.view.outcome.is_some() => Next::Stop,
                Some(e) => {
                    if e.dom.is_none() {
                        e.dom = Some(dom.clone());
                    }
                    if slow >= SLOW_ANSWER {
                        let from = e.view.from.clone();
                        silent_for(e, &from, slow);
                    }
                    match &stats {
                        Ok(j) if j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32 => {
                            let at_ms = e.now_ms();
                            e.feed(Input::Stats {
                                at_ms,
                                stats: Stats::from(j),
                            });
                            policy(e).map_or(Next::Wait, Next::Act)
                        }
                        // The source answered: no job, or the domain is
                        // not (running) there any more.
                        Ok(_) if e.discovered && e.rounds.has_stats() => Next::Gone,
                        Err(err) if source_answered(err) => {
                            if e.discovered && e.rounds.has_stats() {
                                Next::Gone
                            } else {
                                Next::Wait
                            }
                        }
                        // Anything else is the source not answering: it
                        // is never taken for an outcome.
                        Err(err) if !conn.is_alive().unwrap_or(false) => {
                            Next::Unanswered(libvirt_reason(err))
                        }
                        _ => Next::Wait,
                    }
                }
            }
        };
        match next {
            Next::Stop => return,
            Next::Unanswered(reason) => {
                drop(dom);
                drop(conn);
                match resolve(&shared, id, &vm, &src_uri, Silent::Source, &reason) {
                    // The source answers again and the job still runs
                    // there: follow it on a new connection.
                    Resolved::StillRunning => return follow(shared, id, vm, src_uri),
                    Resolved::Settled => return,
                }
            }
            Next::Gone => {
                // The job is gone: where does the VM run now? Only what
                // the nodes say decides it, never an error.
                let on_src = match dom.is_active() {
                    Ok(a) => a,
                    Err(e) if source_answered(&e) => false,
                    Err(e) => {
                        let reason = libvirt_reason(&e);
                        drop(dom);
                        drop(conn);
                        if let Resolved::StillRunning =
                            resolve(&shared, id, &vm, &src_uri, Silent::Source, &reason)
                        {
                            return follow(shared, id, vm, src_uri);
                        }
                        return;
                    }
                };
                let mut t = lock.lock().expect("migration table");
                if !on_src {
                    // It left the source: the job-completed event (rounds
                    // closed, the actual downtime) may still be on its way;
                    // give it a moment.
                    let deadline = Instant::now() + COMPLETED_EVENT_WAIT;
                    while t.entries.get(&id).is_some_and(|e| !e.rounds.completed())
                        && Instant::now() < deadline
                    {
                        t = cv
                            .wait_timeout(t, Duration::from_millis(100))
                            .expect("migration table")
                            .0;
                    }
                }
                let (from, to) = match t.entries.get(&id) {
                    Some(e) => (e.view.from.clone(), e.view.to.clone()),
                    None => return,
                };
                let dst_uri = t.uris.get(&to).cloned();
                drop(t);
                // Where it runs now, from the destination too.
                let src = Said {
                    active: on_src,
                    job: false,
                    completed: None,
                };
                let dst = dst_uri.as_deref().and_then(|u| ask(u, &vm));
                let Some(outcome) = verdict(&vm, &from, &to, Some(&src), dst.as_ref()) else {
                    // The destination does not answer: wait for it.
                    drop(dom);
                    drop(conn);
                    let _ = resolve(
                        &shared,
                        id,
                        &vm,
                        &src_uri,
                        Silent::Destination,
                        &format!("{vm} left {from}, and {to} does not answer"),
                    );
                    return;
                };
                let mut t = lock.lock().expect("migration table");
                if let Some(e) = t.entries.get_mut(&id)
                    && e.view.outcome.is_none()
                {
                    if outcome.is_ok()
                        && !e.rounds.completed()
                        && let Some(stats) = dst.as_ref().and_then(|d| d.completed.as_ref())
                    {
                        let at_ms = e.now_ms();
                        e.feed(Input::Completed {
                            at_ms,
                            stats: Stats::from(stats),
                        });
                    }
                    e.returned = Some(outcome);
                    e.settle();
                }
                if let Some(text) = t.finished_text() {
                    t.log(text);
                }
                cv.notify_all();
                return;
            }
            Next::Act(PolicyAction::Postcopy) => {
                let _ = ffi::start_postcopy(&dom);
            }
            Next::Act(PolicyAction::Abort) => {
                let _ = ffi::abort_job(&dom);
            }
            Next::Wait => {}
        }
        // Sleep until the next read, or an iteration event.
        let deadline = Instant::now() + FOLLOW_INTERVAL;
        let mut t = lock.lock().expect("migration table");
        loop {
            let marks = t.entries.get(&id).map_or(0, |e| e.rounds.iterations_seen());
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

/// A libvirt call on the source slower than this counts as the source
/// not answering for that long (a stalled daemon, a hung host).
const SLOW_ANSWER: Duration = Duration::from_secs(3);
/// How often the nodes are asked again while neither answers.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// Whether a job-stats error is the source answering (the domain is not
/// there, or not running there) rather than not answering.
fn source_answered(e: &virt::error::Error) -> bool {
    use virt::enumutil::Enum::Known;
    use virt::error::ErrorNumber::{NoDomain, OperationInvalid};
    matches!(e.code(), Known(NoDomain) | Known(OperationInvalid))
}

/// Notes that `node` did not answer for `silent` while the migration ran.
fn silent_for(e: &mut Entry, node: &str, silent: Duration) {
    e.view.caveats.push(format!(
        "{node} did not answer for {:.0} s during the migration (from {}): what happened then is what libvirt said afterwards, and the guest may have been paused longer than the downtime libvirt measured",
        silent.as_secs_f64(),
        crate::cluster::units::utc_minute(crate::record::now_ms().saturating_sub(silent.as_millis() as u64))
    ));
}

/// What a node says of a VM, asked on a connection of its own.
pub(super) struct Said {
    /// It runs there (paused by the operator counts; the paused incoming
    /// side of a migration does not).
    pub active: bool,
    /// A job (the migration) still runs on it.
    pub job: bool,
    /// Its last completed job's statistics (kept for other readers).
    pub completed: Option<virt::domain::JobStats>,
}

/// Asks the node at `uri` about `vm`; `None` when it does not answer.
pub(super) fn ask(uri: &str, vm: &str) -> Option<Said> {
    let conn = Connect::open(Some(uri)).ok()?;
    match conn.lookup_domain_by_name(vm) {
        Ok(d) => {
            // Running there: not the paused incoming side of a migration.
            let (state, reason) = ffi::state(&d).ok()?;
            let incoming = state == sys::VIR_DOMAIN_PAUSED
                && (reason == sys::VIR_DOMAIN_PAUSED_MIGRATION as i32
                    || reason == sys::VIR_DOMAIN_PAUSED_POSTCOPY as i32);
            let live = matches!(state, sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_PAUSED);
            let active = live && !incoming;
            let job = live
                && ffi::job_stats(&d, false)
                    .ok()
                    .is_some_and(|j| j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32);
            let completed = ffi::job_stats(&d, true)
                .ok()
                .filter(|j| j.r#type == sys::VIR_DOMAIN_JOB_COMPLETED as i32);
            Some(Said {
                active,
                job,
                completed,
            })
        }
        Err(e) if source_answered(&e) => Some(Said {
            active: false,
            job: false,
            completed: None,
        }),
        Err(_) => None,
    }
}

/// Which node of a migration stopped answering.
#[derive(Clone, Copy)]
enum Silent {
    Source,
    Destination,
}

enum Resolved {
    /// The migration has its outcome (or was settled elsewhere).
    Settled,
    /// The source answers again and its job still runs.
    StillRunning,
}

/// What the nodes' answers say of a migration whose source stopped
/// answering: `None` while they cannot tell yet.
fn verdict(
    vm: &str,
    from: &str,
    to: &str,
    src: Option<&Said>,
    dst: Option<&Said>,
) -> Option<Result<(), String>> {
    match (src, dst) {
        (Some(s), _) if s.active && s.job => None,
        (Some(s), Some(d)) if s.active && d.active => Some(Err(format!(
            "{vm} runs on both {from} and {to} after the migration; stop the copy that should not run"
        ))),
        (_, Some(d)) if d.active && src.is_none_or(|s| !s.active) => Some(Ok(())),
        (Some(s), _) if s.active => Some(Err(format!(
            "the migration ended without moving {vm}; it keeps running on {from}"
        ))),
        (Some(_), Some(_)) => Some(Err(format!(
            "{vm} runs on neither {from} nor {to} after the migration; see both nodes' logs"
        ))),
        // The source answers (not running there), the destination does
        // not: it may have moved or stopped; wait for the destination.
        _ => None,
    }
}

/// Waits until the source or the destination answers after libvirt failed
/// on the source, and settles the migration from where the VM runs and
/// libvirt's completed job; until then the migration says it is unknown.
fn resolve(
    shared: &Shared,
    id: MigrationId,
    vm: &str,
    src_uri: &str,
    silent: Silent,
    reason: &str,
) -> Resolved {
    let (lock, cv) = &**shared;
    let since_ms = crate::record::now_ms();
    let (from, to) = {
        let mut t = lock.lock().expect("migration table");
        let Some(e) = t.entries.get_mut(&id).filter(|e| e.view.outcome.is_none()) else {
            return Resolved::Settled;
        };
        let (from, to) = (e.view.from.clone(), e.view.to.clone());
        let node = match silent {
            Silent::Source => from.clone(),
            Silent::Destination => to.clone(),
        };
        e.view.unanswered = Some(crate::cluster::Unanswered {
            node: node.clone(),
            since_ms,
            reason: reason.to_string(),
        });
        t.log(format!(
            "{node} stopped answering during the migration of {vm} ({reason}); where {vm} runs is unknown until {from} or {to} answers"
        ));
        (from, to)
    };
    cv.notify_all();
    loop {
        let dst_uri = {
            let t = lock.lock().expect("migration table");
            match t.entries.get(&id) {
                Some(e) if e.view.outcome.is_none() => t.uris.get(&to).cloned(),
                _ => return Resolved::Settled,
            }
        };
        let src = ask(src_uri, vm);
        let dst = dst_uri.as_deref().and_then(|u| ask(u, vm));
        if src.as_ref().is_some_and(|s| s.active && s.job) {
            let mut t = lock.lock().expect("migration table");
            if let Some(e) = t.entries.get_mut(&id) {
                e.view.caveats.push(format!(
                    "{} did not answer from {} to {}",
                    e.view.unanswered.take().map_or(from.clone(), |u| u.node),
                    crate::cluster::units::utc_minute(since_ms),
                    crate::cluster::units::utc_minute(crate::record::now_ms())
                ));
            }
            t.log(format!(
                "{from} answers again; the migration of {vm} still runs"
            ));
            cv.notify_all();
            return Resolved::StillRunning;
        }
        if let Some(outcome) = verdict(vm, &from, &to, src.as_ref(), dst.as_ref()) {
            let completed = dst
                .as_ref()
                .and_then(|d| d.completed.as_ref())
                .or(src.as_ref().and_then(|s| s.completed.as_ref()));
            let mut t = lock.lock().expect("migration table");
            if let Some(e) = t.entries.get_mut(&id)
                && e.view.outcome.is_none()
            {
                let node = e.view.unanswered.take().map_or(from.clone(), |u| u.node);
                e.view.caveats.push(format!(
                    "{node} did not answer from {} to {} ({reason}); the outcome is where {vm} was found running afterwards{}",
                    crate::cluster::units::utc_minute(since_ms),
                    crate::cluster::units::utc_minute(crate::record::now_ms()),
                    if completed.is_some() {
                        ", with libvirt's completed job"
                    } else {
                        "; libvirt's completed job was not available (a restarted daemon forgets it)"
                    }
                ));
                if outcome.is_ok()
                    && !e.rounds.completed()
                    && let Some(stats) = completed
                {
                    let at_ms = e.now_ms();
                    e.feed(Input::Completed {
                        at_ms,
                        stats: Stats::from(stats),
                    });
                }
                // Found or vmshift's own: what the nodes say decides.
                e.discovered |= outcome.is_ok();
                e.returned = Some(outcome);
                e.settle();
            }
            if let Some(text) = t.finished_text() {
                t.log(text);
            }
            cv.notify_all();
            return Resolved::Settled;
        }
        std::thread::sleep(ASK_AGAIN);
    }
}

/// What the stall policy asks of libvirt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PolicyAction {
    Postcopy,
    Abort,
}

/// Post-copy now / on stall, abort on stall (DESIGN §1, the same rules as
/// the simulator). Decided under the lock; the caller asks libvirt after
/// releasing it.
fn policy(e: &mut Entry) -> Option<PolicyAction> {
    let o = e.view.options.clone();
    // A migration someone else started keeps their settings: only watch it.
    // One a vmshift started keeps its stall policy when that vmshift is
    // gone (killed): the next one applies it.
    let orphan = e.owner.is_some() && !e.owner_follows();
    if (e.discovered && !orphan)
        || e.view.postcopy_active
        || e.postcopy_sent
        || e.abort_reason.is_some()
    {
        return None;
    }
    if o.postcopy == PostcopyMode::Now && e.rounds.iterations_seen() > 0 {
        e.postcopy_sent = true;
        return Some(PolicyAction::Postcopy);
    }
    let history: Vec<f64> = e.view.rounds.iter().map(|r| r.bytes_dirty as f64).collect();
    let bw = o
        .bandwidth_bps
        .map_or(e.view.bandwidth_bps as f64, |b| b as f64)
        .max(1.0);
    let switchover = bw * o.max_downtime_ms as f64 / 1000.0;
    if !stall::stalled(&history, e.view.throttle_pct, o.auto_converge, switchover) {
        return None;
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
            Some(PolicyAction::Postcopy)
        }
        OnStall::Abort => {
            e.abort_reason = Some(advice::stall_sentence(
                &e.view,
                e.view.rounds.len(),
                history.last().copied().unwrap_or(0.0) as u64,
                switchover as u64,
            ));
            Some(PolicyAction::Abort)
        }
        OnStall::Wait => None,
    }
}

/// An operator action on a running migration, in three parts so libvirt
/// is never called with the table's lock held: [`Op::decide`] under the
/// lock (checks, and what it reserves), [`Op::call`] after releasing it,
/// [`Op::commit`] under the lock again with the result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Abort,
    MaxDowntime(u64),
    Bandwidth(Option<u64>),
    Postcopy,
}

impl Op {
    /// Whether the action may run now; reserves it (an abort's reason, a
    /// post-copy request) so the stall policy does not do it twice.
    pub fn decide(self, e: &mut Entry) -> Result<Domain, String> {
        let not_yet = "the migration has not started yet; try again in a moment";
        match self {
            Op::Abort => {
                if e.view.postcopy_active {
                    return Err("the migration is in post-copy: the VM already runs on the target and the migration can no longer be aborted".into());
                }
                let dom = e.dom.clone().ok_or(not_yet)?;
                e.abort_reason = Some("aborted by the operator".into());
                Ok(dom)
            }
            Op::Postcopy => {
                if e.view.postcopy_active || e.postcopy_sent {
                    return Err("the migration is already in post-copy".into());
                }
                let dom = e.dom.clone().ok_or(not_yet)?;
                e.postcopy_sent = true;
                Ok(dom)
            }
            Op::MaxDowntime(_) | Op::Bandwidth(_) => Ok(e.dom.clone().ok_or(not_yet)?),
        }
    }

    /// The libvirt call (blocking; no lock held).
    pub fn call(self, dom: &Domain) -> Result<(), String> {
        match self {
            Op::Abort => ffi::abort_job(dom)
                .map_err(|err| format!("libvirt refused to abort: {}", libvirt_reason(&err))),
            Op::Postcopy => ffi::start_postcopy(dom).map_err(|err| libvirt_reason(&err)),
            Op::MaxDowntime(ms) => dom
                .migrate_set_max_downtime(ms, 0)
                .map_err(|err| libvirt_reason(&err)),
            Op::Bandwidth(bps) => {
                let mib = bps.map_or(UNLIMITED_MIB_S, |b| (b / MIB).max(1));
                dom.migrate_set_max_speed(mib, 0)
                    .map_err(|err| libvirt_reason(&err))
            }
        }
    }

    /// Takes the result: the new limits on success, the reservation back
    /// on failure.
    pub fn commit(self, e: &mut Entry, result: &Result<(), String>) {
        match (self, result) {
            (Op::Abort, Err(_)) => e.abort_reason = None,
            (Op::Postcopy, Err(_)) => e.postcopy_sent = false,
            (Op::MaxDowntime(ms), Ok(())) => e.view.options.max_downtime_ms = ms,
            (Op::Bandwidth(bps), Ok(())) => e.view.options.bandwidth_bps = bps,
            _ => {}
        }
    }
}

/// Runs `decide` under the table's lock, `call` with the lock released,
/// then `commit` under the lock: the event callbacks of every node take
/// this lock, so a slow libvirt call must never run while it is held.
pub fn act<D>(
    shared: &Shared,
    id: MigrationId,
    decide: impl FnOnce(&mut Entry) -> Result<D, String>,
    call: impl FnOnce(D) -> Result<(), String>,
    commit: impl FnOnce(&mut Entry, &Result<(), String>),
) -> Result<(), ActError> {
    let (lock, cv) = &**shared;
    let handle = {
        let mut t = lock.lock().expect("migration table");
        let e = t.entries.get_mut(&id).ok_or(ActError::NoSuchMigration)?;
        if e.view.outcome.is_some() {
            return Err(ActError::Refused(format!(
                "the migration of {} has already finished",
                e.view.vm
            )));
        }
        decide(e).map_err(ActError::Refused)?
    };
    let result = call(handle);
    {
        let mut t = lock.lock().expect("migration table");
        if let Some(e) = t.entries.get_mut(&id) {
            commit(e, &result);
        }
    }
    cv.notify_all();
    result.map_err(ActError::Refused)
}

/// Why an operator action did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum ActError {
    NoSuchMigration,
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(active: bool, job: bool) -> Said {
        Said {
            active,
            job,
            completed: None,
        }
    }

    /// After libvirt failed on the source, only where the VM is found
    /// running decides the outcome; while nothing says so, there is none.
    #[test]
    fn the_verdict_comes_from_where_the_vm_runs_never_from_an_error() {
        let v = |s: Option<Said>, d: Option<Said>| verdict("web", "a", "b", s.as_ref(), d.as_ref());
        assert_eq!(v(None, None), None, "nobody answers: unknown");
        assert_eq!(
            v(Some(said(false, false)), None),
            None,
            "gone from the source, the destination silent: unknown"
        );
        assert_eq!(v(Some(said(true, true)), None), None, "still migrating");
        assert_eq!(v(None, Some(said(true, false))), Some(Ok(())));
        assert_eq!(
            v(Some(said(false, false)), Some(said(true, false))),
            Some(Ok(()))
        );
        let stayed = v(Some(said(true, false)), None).unwrap().unwrap_err();
        assert!(stayed.contains("keeps running on a"), "{stayed}");
        let stayed = v(Some(said(true, false)), Some(said(false, false)))
            .unwrap()
            .unwrap_err();
        assert!(stayed.contains("keeps running on a"), "{stayed}");
        let both = v(Some(said(true, false)), Some(said(true, false)))
            .unwrap()
            .unwrap_err();
        assert!(both.contains("runs on both a and b"), "{both}");
        let none = v(Some(said(false, false)), Some(said(false, false)))
            .unwrap()
            .unwrap_err();
        assert!(none.contains("neither a nor b"), "{none}");
        assert_eq!(
            v(None, Some(said(false, false))),
            None,
            "the source silent, not on the destination: it may still run on the source"
        );
    }
    use crate::cluster::Round;

    fn entry() -> Entry {
        Entry::new(7, "web", "a", "b", MigrationOptions::default(), 256 * MIB)
    }

    fn shared_with(e: Entry) -> Shared {
        let shared: Shared = Arc::new((Mutex::new(Table::default()), Condvar::new()));
        shared.0.lock().unwrap().entries.insert(e.view.id, e);
        shared
    }

    #[test]
    fn the_libvirt_call_runs_with_the_table_unlocked() {
        let shared = shared_with(entry());
        let mut during = None;
        let r = act(
            &shared,
            7,
            |e| {
                e.abort_reason = Some("reserved".into());
                Ok(e.view.vm.clone())
            },
            |vm| {
                // What a node's event callback does meanwhile.
                let t = shared.0.try_lock();
                during = Some(t.is_ok());
                drop(t);
                assert_eq!(vm, "web");
                Err("libvirt said no".into())
            },
            |e, r| {
                assert!(r.is_err());
                e.abort_reason = None;
            },
        );
        assert_eq!(during, Some(true), "the lock was free during the call");
        assert_eq!(r, Err(ActError::Refused("libvirt said no".into())));
        assert_eq!(shared.0.lock().unwrap().entries[&7].abort_reason, None);
    }

    #[test]
    fn actions_on_unknown_or_finished_migrations_never_reach_libvirt() {
        let mut e = entry();
        e.view.outcome = Some(Outcome::Completed);
        let shared = shared_with(e);
        let called = std::cell::Cell::new(false);
        let call = |_: ()| {
            called.set(true);
            Ok(())
        };
        let r = act(&shared, 7, |_| Ok(()), call, |_, _| {});
        assert_eq!(
            r,
            Err(ActError::Refused(
                "the migration of web has already finished".into()
            ))
        );
        let r = act(&shared, 8, |_| Ok(()), call, |_, _| {});
        assert_eq!(r, Err(ActError::NoSuchMigration));
        assert!(!called.get());
    }

    #[test]
    fn abort_is_refused_in_postcopy_and_before_the_job_has_a_domain() {
        let mut e = entry();
        e.view.postcopy_active = true;
        let why = Op::Abort.decide(&mut e).unwrap_err();
        assert!(why.contains("can no longer be aborted"), "{why}");
        let mut e = entry();
        let why = Op::Abort.decide(&mut e).unwrap_err();
        assert!(why.contains("try again in a moment"), "{why}");
        assert_eq!(e.abort_reason, None, "nothing reserved when refused");
        e.postcopy_sent = true;
        let why = Op::Postcopy.decide(&mut e).unwrap_err();
        assert!(why.contains("already in post-copy"), "{why}");
    }

    #[test]
    fn commit_keeps_limits_that_libvirt_took_and_releases_failed_reservations() {
        let mut e = entry();
        Op::MaxDowntime(500).commit(&mut e, &Ok(()));
        assert_eq!(e.view.options.max_downtime_ms, 500);
        Op::MaxDowntime(900).commit(&mut e, &Err("no".into()));
        assert_eq!(e.view.options.max_downtime_ms, 500);
        Op::Bandwidth(Some(30 * MIB)).commit(&mut e, &Ok(()));
        assert_eq!(e.view.options.bandwidth_bps, Some(30 * MIB));
        e.abort_reason = Some("aborted by the operator".into());
        Op::Abort.commit(&mut e, &Err("no".into()));
        assert_eq!(e.abort_reason, None);
        e.postcopy_sent = true;
        Op::Postcopy.commit(&mut e, &Err("no".into()));
        assert!(!e.postcopy_sent);
    }

    #[test]
    fn the_stall_policy_decides_once_and_leaves_found_migrations_alone() {
        let mut e = entry();
        e.view.options.postcopy = PostcopyMode::Now;
        assert_eq!(policy(&mut e), None, "no iteration yet");
        e.feed(Input::Iteration {
            at_ms: 10.0,
            iteration: 1,
        });
        assert_eq!(policy(&mut e), Some(PolicyAction::Postcopy));
        assert_eq!(policy(&mut e), None, "asked once");

        let stalled = |on_stall| {
            let mut e = entry();
            e.view.options.bandwidth_bps = Some(20 * MIB);
            e.view.options.on_stall = on_stall;
            e.view.rounds = (0..4)
                .map(|i| Round {
                    index: i,
                    bytes_dirty: 100 * MIB,
                    ..Default::default()
                })
                .collect();
            e
        };
        let mut e = stalled(OnStall::Abort);
        assert_eq!(policy(&mut e), Some(PolicyAction::Abort));
        assert!(e.view.stalled);
        assert!(e.abort_reason.is_some());
        assert_eq!(policy(&mut e), None);
        let mut e = stalled(OnStall::Wait);
        assert_eq!(policy(&mut e), None);
        assert!(e.view.stalled);
        let mut e = stalled(OnStall::Abort);
        e.discovered = true;
        assert_eq!(policy(&mut e), None, "someone else's migration");
        assert!(!e.view.stalled);
    }
}
