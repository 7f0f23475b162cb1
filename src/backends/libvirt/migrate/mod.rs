//! Live migrations through libvirt: the table of migrations vmshift knows
//! (its own and ones found running) and the domain events that turn into
//! their steps and rounds — every migration-iteration event is a round,
//! and the job-completed event brings the actual downtime.
//!
//! The rooms: [`run`] starts vmshift's own managed peer-to-peer migration;
//! [`follow`] reads a running migration's job stats and waits for its end,
//! the one place a migration's completion is awaited, vmshift's own and
//! found ones alike; [`resolve`] settles a migration whose node stopped
//! answering from where the VM is found running; [`control`] holds the
//! stall policy and the operator's actions on a running migration.

mod control;
mod follow;
mod resolve;
mod run;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use virt::domain::Domain;
use virt::sys;

use super::ffi::Event;
use super::rounds::{self, Input, Stats, Tracker};
use crate::cluster::{
    ClusterEvent, MIB, ManagedBy, Migration, MigrationId, MigrationOptions, Outcome, Step,
};
use crate::record::{Journal, Meta, Owner, Record};

pub use control::{ActError, Op, act};
use follow::{SLOW_ANSWER, silent_for};
pub(super) use follow::{follow, follow_in_background};
pub(super) use resolve::ask;
#[cfg(test)]
use resolve::{Said, verdict};
pub use run::{Job, start};

/// libvirt's "no limit" for migration bandwidth, MiB/s.
const UNLIMITED_MIB_S: u64 = (i64::MAX as u64) / (1024 * 1024);

/// `bps` as libvirt's migration bandwidth in MiB/s (`None`: no limit).
fn bandwidth_mib_s(bps: Option<u64>) -> u64 {
    bps.map_or(UNLIMITED_MIB_S, |b| (b / MIB).max(1))
}

pub(super) fn libvirt_reason(e: &virt::error::Error) -> String {
    e.message().trim().to_string()
}

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

    /// Settles the migration with `outcome` (unless it has one), closing
    /// its rounds with libvirt's completed job if they are still open.
    pub(super) fn settle_with(&mut self, outcome: Result<(), String>, completed: Option<Stats>) {
        if self.view.outcome.is_some() {
            return;
        }
        if outcome.is_ok()
            && !self.rounds.completed()
            && let Some(stats) = completed
        {
            let at_ms = self.now_ms();
            self.feed(Input::Completed { at_ms, stats });
        }
        self.returned = Some(outcome);
        self.settle();
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

#[cfg(test)]
mod tests {
    use super::control::{PolicyAction, policy};
    use super::*;
    use crate::cluster::{OnStall, PostcopyMode};

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
