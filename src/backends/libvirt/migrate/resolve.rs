//! A migration whose node stopped answering: the nodes are asked again
//! until one says where the VM runs, and that alone decides the outcome
//! (never an error from the node that went silent).

use virt::connect::Connect;
use virt::sys;

use super::Shared;
use super::follow::source_answered;
use super::rounds::Stats;
use crate::backends::libvirt::ffi;
use crate::cluster::MigrationId;

/// How often the nodes are asked again while neither answers.
const ASK_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// What a node says of a VM, asked on a connection of its own.
pub struct Said {
    /// It runs there (paused by the operator counts; the paused incoming
    /// side of a migration does not).
    pub active: bool,
    /// A job (the migration) still runs on it.
    pub job: bool,
    /// Its last completed job's statistics (kept for other readers).
    pub completed: Option<virt::domain::JobStats>,
}

/// Asks the node at `uri` about `vm`; `None` when it does not answer.
pub fn ask(uri: &str, vm: &str) -> Option<Said> {
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
pub(super) enum Silent {
    Source,
    Destination,
}

pub(super) enum Resolved {
    /// The migration has its outcome (or was settled elsewhere).
    Settled,
    /// The source answers again and its job still runs.
    StillRunning,
}

/// What the nodes' answers say of a migration whose source stopped
/// answering: `None` while they cannot tell yet.
pub(super) fn verdict(
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
pub(super) fn resolve(
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
                // Found or vmshift's own: what the nodes say decides.
                e.discovered |= outcome.is_ok();
                e.settle_with(outcome, completed.map(Stats::from));
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
