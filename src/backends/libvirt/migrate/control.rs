//! What acts on a running migration: the stall policy (post-copy or
//! abort, the simulator's rules) and the operator's actions, each
//! decided under the table's lock and sent to libvirt without it.

use virt::domain::Domain;

use super::{Entry, Shared, bandwidth_mib_s, libvirt_reason};
use crate::backends::libvirt::ffi;
use crate::cluster::{MigrationId, OnStall, PostcopyMode};
use crate::plan::{advice, stall};

/// What the stall policy asks of libvirt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PolicyAction {
    Postcopy,
    Abort,
}

/// Post-copy now / on stall, abort on stall (DESIGN §1, the same rules as
/// the simulator). Decided under the lock; the caller asks libvirt after
/// releasing it.
pub(super) fn policy(e: &mut Entry) -> Option<PolicyAction> {
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
                let mib = bandwidth_mib_s(bps);
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
