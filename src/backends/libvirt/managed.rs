//! Moves of VMs a cluster manager owns (DESIGN §3.3): vmshift asks the
//! manager (Pacemaker: a move constraint), follows the live migration its
//! resource agent runs through libvirt — every round and the downtime, as
//! for vmshift's own —, waits for the manager to report the VM started on
//! the target, and clears the constraint unless asked to keep it. The
//! manager is never bypassed: no second copy of a VM can start behind it.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::sys;

use super::ffi;
use super::migrate::{self, Shared};
use crate::cluster::text::shell_word;
use crate::cluster::{MIB, MigrationId, MigrationOptions, Outcome, Step};
use crate::manager::{ClusterManager, same_host};

/// How long the manager may take to start migrating after the move was asked.
const START_WAIT: Duration = Duration::from_secs(120);
/// How long the manager may take to report the VM started on the target.
const CONFIRM_WAIT: Duration = Duration::from_secs(90);
/// How often the source domain is checked for the migration job.
const JOB_POLL: Duration = Duration::from_millis(50);

/// What a managed move needs.
pub struct ManagedMove {
    pub id: MigrationId,
    pub vm: String,
    pub resource: String,
    /// The target as the manager names it, and as we do.
    pub target: String,
    pub target_ours: String,
    pub src_uri: String,
    pub options: MigrationOptions,
}

/// Starts the move on its own thread; the handle ends once the manager has
/// settled it (constraint cleared or kept).
pub fn start(
    shared: Shared,
    mgr: Arc<dyn ClusterManager>,
    mv: ManagedMove,
) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(format!("managed-move-{}", mv.vm))
        .spawn(move || run(shared, mgr, mv))
        .expect("spawn a managed move")
}

fn log(shared: &Shared, text: String) {
    let (lock, cv) = &**shared;
    if let Ok(mut t) = lock.lock() {
        t.log(text);
    }
    cv.notify_all();
}

/// Ends the migration with `outcome` (when the job was never seen).
fn end(shared: &Shared, id: MigrationId, outcome: Result<(), String>) {
    let (lock, cv) = &**shared;
    if let Ok(mut t) = lock.lock() {
        if let Some(e) = t.entries.get_mut(&id)
            && e.view.outcome.is_none()
        {
            e.returned = Some(outcome);
            e.settle();
            if e.view.outcome.is_none() {
                // Settled without libvirt's stats: say so plainly.
                e.view.outcome = Some(Outcome::Failed {
                    reason: "the migration ended without libvirt's figures".into(),
                });
            }
        }
        if let Some(text) = t.finished_text() {
            t.log(text);
        }
    }
    cv.notify_all();
}

fn run(shared: Shared, mgr: Arc<dyn ClusterManager>, mv: ManagedMove) {
    let ManagedMove {
        id,
        vm,
        resource,
        target,
        target_ours,
        src_uri,
        options,
    } = mv;
    let lifetime = options
        .keep_placement
        .then_some(options.placement_lifetime.as_deref())
        .flatten();
    if let Err(e) = mgr.move_to(&resource, &target, lifetime) {
        end(
            &shared,
            id,
            Err(format!(
                "Pacemaker did not take the move of {resource}: {e}"
            )),
        );
        return;
    }
    log(
        &shared,
        format!(
            "Pacemaker: move constraint set for {resource} (`{}`); waiting for it to migrate {vm}",
            mgr.move_command(&resource, &target)
        ),
    );
    match wait_for_job(&shared, id, &vm, &src_uri, &options) {
        Ok(true) => migrate::follow(shared.clone(), id, vm.clone(), src_uri.clone()),
        Ok(false) => {
            // Gone from the source without a migration job vmshift saw.
            let started_on_target = confirm(&*mgr, &resource, &target_ours, CONFIRM_WAIT);
            end(
                &shared,
                id,
                Err(if started_on_target {
                    format!(
                        "Pacemaker moved {vm} to {target_ours} without a live migration vmshift could follow; it may have stopped and restarted it (see crm_mon's operation history)"
                    )
                } else {
                    format!(
                        "{vm} left {} without a live migration, and Pacemaker does not show it started on {target_ours}; see crm_mon",
                        src_name(&shared, id)
                    )
                }),
            );
        }
        Err(why) => end(&shared, id, Err(why)),
    }
    // The libvirt side is over: let the manager settle, then tidy up.
    let completed = {
        let (lock, _) = &*shared;
        lock.lock().ok().and_then(|t| {
            t.entries
                .get(&id)
                .map(|e| matches!(e.view.outcome, Some(Outcome::Completed)))
        })
    }
    .unwrap_or(false);
    if completed {
        if confirm(&*mgr, &resource, &target_ours, CONFIRM_WAIT) {
            log(
                &shared,
                format!("Pacemaker: {resource} ({vm}) Started on {target_ours}"),
            );
        } else {
            log(
                &shared,
                format!(
                    "Pacemaker has not reported {resource} ({vm}) started on {target_ours} within {} s; check crm_mon",
                    CONFIRM_WAIT.as_secs()
                ),
            );
        }
    }
    if options.keep_placement {
        log(
            &shared,
            format!(
                "Pacemaker: the move constraint of {resource} stays{}, keeping {vm} on {target_ours}; `crm_resource --clear --resource {}` removes it",
                lifetime.map_or(String::new(), |l| format!(" for {l}")),
                shell_word(&resource)
            ),
        );
        return;
    }
    match mgr.clear_move(&resource) {
        Ok(()) => log(
            &shared,
            format!("Pacemaker: move constraint of {resource} cleared"),
        ),
        Err(e) => log(
            &shared,
            format!(
                "Pacemaker: could not clear the move constraint of {resource} ({e}); clear it with `crm_resource --clear --resource {}`",
                shell_word(&resource)
            ),
        ),
    }
}

fn src_name(shared: &Shared, id: MigrationId) -> String {
    let (lock, _) = &**shared;
    lock.lock()
        .ok()
        .and_then(|t| t.entries.get(&id).map(|e| e.view.from.clone()))
        .unwrap_or_default()
}

/// Waits for the manager's migration job on the source domain: `Ok(true)`
/// once it runs (with the operator's max downtime and bandwidth applied to
/// it), `Ok(false)` if the domain left the source without one.
fn wait_for_job(
    shared: &Shared,
    id: MigrationId,
    vm: &str,
    src_uri: &str,
    options: &MigrationOptions,
) -> Result<bool, String> {
    let conn = Connect::open(Some(src_uri)).map_err(|e| {
        format!(
            "cannot connect to the source node ({src_uri}) to follow the move: {}",
            migrate::libvirt_reason(&e)
        )
    })?;
    let dom = conn.lookup_domain_by_name(vm).map_err(|e| {
        format!(
            "{vm} is not on the source node any more: {}",
            migrate::libvirt_reason(&e)
        )
    })?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(j) = ffi::job_stats(&dom, false)
            && j.r#type != sys::VIR_DOMAIN_JOB_NONE as i32
        {
            break;
        }
        if !dom.is_active().unwrap_or(false) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "Pacemaker did not start migrating {vm} within {} s; see crm_mon for why",
                START_WAIT.as_secs()
            ));
        }
        thread::sleep(JOB_POLL);
    }
    // Live tuning works on the manager's job as on ours.
    let _ = dom.migrate_set_max_downtime(options.max_downtime_ms, 0);
    if let Some(bps) = options.bandwidth_bps {
        let _ = dom.migrate_set_max_speed((bps / MIB).max(1), 0);
    }
    let (lock, cv) = &**shared;
    if let Ok(mut t) = lock.lock()
        && let Some(e) = t.entries.get_mut(&id)
    {
        e.dom = Some(dom.clone());
        e.mark_step(Step::PreCopy);
    }
    cv.notify_all();
    Ok(true)
}

/// Whether the manager reports `resource` started on `node` alone, within `max`.
fn confirm(mgr: &dyn ClusterManager, resource: &str, node: &str, max: Duration) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if let Ok(v) = mgr.read()
            && v.vms.iter().any(|m| {
                m.resource == resource
                    && m.role == "Started"
                    && m.running_on.iter().any(|n| same_host(n, node))
                    && m.running_on.len() == 1
            })
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(250));
    }
}
