//! Following a running migration to its end: its job stats read a few
//! times a second (and right after each iteration event), the stall
//! policy applied, and [`await_completion`], the one place where a
//! migration's end is waited for — vmshift's own (its migrate call
//! returned) and found ones (their job is gone from the source) alike.

use std::sync::MutexGuard;
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use super::control::{PolicyAction, policy};
use super::resolve::{Resolved, Said, Silent, ask, resolve, verdict};
use super::rounds::{Input, Stats};
use super::{Entry, Shared, Table, libvirt_reason};
use crate::backends::libvirt::ffi;
use crate::cluster::MigrationId;

/// How often a running migration's job stats are read.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How long to wait for the job-completed event after the job ended.
const COMPLETED_EVENT_WAIT: Duration = Duration::from_secs(5);
/// A libvirt call on the source slower than this counts as the source
/// not answering for that long (a stalled daemon, a hung host).
pub(super) const SLOW_ANSWER: Duration = Duration::from_secs(3);

/// Follows a migration's progress on its own thread (vmshift's own, or one
/// found already running, started by virsh or another vmshift).
pub fn follow_in_background(shared: Shared, id: MigrationId, vm: String, src_uri: String) {
    thread::Builder::new()
        .name(format!("follow-{vm}"))
        .spawn(move || follow(shared, id, vm, src_uri))
        .expect("spawn a migration follower");
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
pub fn follow(shared: Shared, id: MigrationId, vm: String, src_uri: String) {
    let Ok(conn) = Connect::open(Some(&src_uri)) else {
        return;
    };
    let Ok(dom) = conn.lookup_domain_by_name(&vm) else {
        return;
    };
    let mut seen_marks = 0;
    loop {
        match read_job(&shared, id, &conn, &dom) {
            Next::Stop => return,
            Next::Unanswered(reason) => {
                drop(dom);
                drop(conn);
                return on_source_silent(shared, id, vm, src_uri, &reason);
            }
            Next::Gone => {
                // The job is gone: where does the VM run now? Only what
                // the nodes say decides it, never an error.
                let on_source = match dom.is_active() {
                    Ok(a) => a,
                    Err(e) if source_answered(&e) => false,
                    Err(e) => {
                        let reason = libvirt_reason(&e);
                        drop(dom);
                        drop(conn);
                        return on_source_silent(shared, id, vm, src_uri, &reason);
                    }
                };
                drop(dom);
                drop(conn);
                await_completion(&shared, id, &vm, &src_uri, JobEnded::Gone { on_source });
                return;
            }
            Next::Act(PolicyAction::Postcopy) => {
                if let Err(e) = ffi::start_postcopy(&dom) {
                    // The next read shows whether it switched; the policy
                    // asks once, as the operator's key would.
                    tracing::warn!(%vm, error = %libvirt_reason(&e), "post-copy asked by the stall policy refused");
                }
            }
            Next::Act(PolicyAction::Abort) => {
                if let Err(e) = ffi::abort_job(&dom) {
                    tracing::warn!(%vm, error = %libvirt_reason(&e), "abort asked by the stall policy refused");
                }
            }
            Next::Wait => {}
        }
        seen_marks = wait_for_next_read(&shared, id, seen_marks);
    }
}

/// The source stopped answering: wait until a node says where the VM
/// runs; if the source answers again and the job still runs there,
/// follow it on a new connection.
fn on_source_silent(shared: Shared, id: MigrationId, vm: String, src_uri: String, reason: &str) {
    if let Resolved::StillRunning = resolve(&shared, id, &vm, &src_uri, Silent::Source, reason) {
        follow(shared, id, vm, src_uri);
    }
}

/// One read of the job stats, applied to the migration; what to do next.
fn read_job(shared: &Shared, id: MigrationId, conn: &Connect, dom: &Domain) -> Next {
    let (lock, _) = &**shared;
    let asked = Instant::now();
    if let Some(e) = lock.lock().expect("migration table").entries.get_mut(&id) {
        e.asking_since = Some(asked);
    }
    let stats = ffi::job_stats(dom, false);
    let slow = asked.elapsed();
    let mut t = lock.lock().expect("migration table");
    if let Some(e) = t.entries.get_mut(&id) {
        e.asking_since = None;
    }
    let e = match t.entries.get_mut(&id) {
        None => return Next::Stop,
        Some(e) if e.view.outcome.is_some() => return Next::Stop,
        Some(e) => e,
    };
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
        // The source answered: no job, or the domain is not (running)
        // there any more.
        Ok(_) if e.discovered && e.rounds.has_stats() => Next::Gone,
        Err(err) if source_answered(err) => {
            if e.discovered && e.rounds.has_stats() {
                Next::Gone
            } else {
                Next::Wait
            }
        }
        // Anything else is the source not answering: it is never taken
        // for an outcome.
        Err(err) if !conn.is_alive().unwrap_or(false) => Next::Unanswered(libvirt_reason(err)),
        _ => Next::Wait,
    }
}

/// Sleeps until the next read, or an iteration event; returns the
/// iterations seen.
fn wait_for_next_read(shared: &Shared, id: MigrationId, mut seen_marks: usize) -> usize {
    let (lock, cv) = &**shared;
    let deadline = Instant::now() + FOLLOW_INTERVAL;
    let mut t = lock.lock().expect("migration table");
    loop {
        let marks = t.entries.get(&id).map_or(0, |e| e.rounds.iterations_seen());
        if marks != seen_marks {
            seen_marks = marks;
            return seen_marks;
        }
        let now = Instant::now();
        if now >= deadline {
            return seen_marks;
        }
        t = cv
            .wait_timeout(t, deadline - now)
            .expect("migration table")
            .0;
    }
}

/// How a migration's job was seen to end.
pub(super) enum JobEnded {
    /// vmshift's own migrate call returned without an error; `dst_uri` is
    /// where it went.
    Returned { dst_uri: String },
    /// The job is gone from the source (a found migration); whether the
    /// VM still runs there.
    Gone { on_source: bool },
}

/// The one place a migration's end is waited for. When the VM left the
/// source, the job-completed event (rounds closed, the actual downtime)
/// may still be on its way: it gets a moment. Then the destination is
/// asked for where the VM runs and for libvirt's completed job, and the
/// migration settles: vmshift's own from its migrate call, a found one
/// from where the VM runs. A destination that does not answer leaves it
/// to [`resolve`].
pub(super) fn await_completion(
    shared: &Shared,
    id: MigrationId,
    vm: &str,
    src_uri: &str,
    ended: JobEnded,
) {
    let (lock, cv) = &**shared;
    let mut t = lock.lock().expect("migration table");
    if let JobEnded::Returned { .. } = ended
        && let Some(e) = t.entries.get_mut(&id)
    {
        e.returned = Some(Ok(()));
    }
    if !matches!(ended, JobEnded::Gone { on_source: true }) {
        t = wait_for_completed_event(t, cv, id);
    }
    let Some(e) = t.entries.get(&id) else {
        return;
    };
    let (from, to, closed) = (e.view.from.clone(), e.view.to.clone(), e.rounds.completed());
    let known_uri = t.uris.get(&to).cloned();
    drop(t);
    let (outcome, completed) = match ended {
        JobEnded::Returned { dst_uri } => {
            // Only the completed job is missing: ask the destination for
            // it, and close the rounds with nothing if it has none.
            let stats = (!closed)
                .then(|| ask(&dst_uri, vm).and_then(|d| d.completed))
                .flatten()
                .map(|s| Stats::from(&s))
                .or((!closed).then(Stats::default));
            (Ok(()), stats)
        }
        JobEnded::Gone { on_source } => {
            // Where it runs now, from the destination too.
            let src = Said {
                active: on_source,
                job: false,
                completed: None,
            };
            let dst = known_uri.as_deref().and_then(|u| ask(u, vm));
            let Some(outcome) = verdict(vm, &from, &to, Some(&src), dst.as_ref()) else {
                // The destination does not answer: wait for it.
                let why = format!("{vm} left {from}, and {to} does not answer");
                resolve(shared, id, vm, src_uri, Silent::Destination, &why);
                return;
            };
            let stats = dst.and_then(|d| d.completed).map(|s| Stats::from(&s));
            (outcome, stats)
        }
    };
    let mut t = lock.lock().expect("migration table");
    if let Some(e) = t.entries.get_mut(&id) {
        e.settle_with(outcome, completed);
    }
    if let Some(text) = t.finished_text() {
        t.log(text);
    }
    cv.notify_all();
}

/// Waits (at most [`COMPLETED_EVENT_WAIT`]) for the job-completed event of
/// migration `id` to close its rounds.
fn wait_for_completed_event<'a>(
    mut t: MutexGuard<'a, Table>,
    cv: &std::sync::Condvar,
    id: MigrationId,
) -> MutexGuard<'a, Table> {
    let deadline = Instant::now() + COMPLETED_EVENT_WAIT;
    while t.entries.get(&id).is_some_and(|e| !e.rounds.completed()) && Instant::now() < deadline {
        t = cv
            .wait_timeout(t, Duration::from_millis(100))
            .expect("migration table")
            .0;
    }
    t
}

/// Whether a job-stats error is the source answering (the domain is not
/// there, or not running there) rather than not answering.
pub(super) fn source_answered(e: &virt::error::Error) -> bool {
    use virt::enumutil::Enum::Known;
    use virt::error::ErrorNumber::{NoDomain, OperationInvalid};
    matches!(e.code(), Known(NoDomain) | Known(OperationInvalid))
}

/// Notes that `node` did not answer for `silent` while the migration ran.
pub(super) fn silent_for(e: &mut Entry, node: &str, silent: Duration) {
    e.view.caveats.push(format!(
        "{node} did not answer for {:.0} s during the migration (from {}): what happened then is what libvirt said afterwards, and the guest may have been paused longer than the downtime libvirt measured",
        silent.as_secs_f64(),
        crate::cluster::units::utc_minute(crate::record::now_ms().saturating_sub(silent.as_millis() as u64))
    ));
}
