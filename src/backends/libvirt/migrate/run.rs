//! Starting vmshift's own migration: a managed peer-to-peer live
//! migration (`migrate_to_uri3`) on its own thread, its flags and
//! parameters from the options, and what its return means.

use std::thread;

use virt::connect::Connect;
use virt::domain::{Domain, MigrateParameters};
use virt::sys;

use super::follow::{JobEnded, await_completion, follow, follow_in_background};
use super::resolve::{Resolved, Silent, resolve};
use super::{Shared, bandwidth_mib_s, libvirt_reason};
use crate::backends::libvirt::xml::DiskMove;
use crate::cluster::{MigrationId, MigrationOptions};
use crate::plan::stall;

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

/// What to do when libvirt does not see a VM's storage as shared.
const UNSAFE_ADVICE: &str = " (libvirt does not see this disk's storage as shared: \
copy it with --copy-storage, or, if the volume is a cluster file system libvirt \
cannot recognise, declare it with `trusted = true` in [[libvirt.shared_volume]])";

fn run_migration(shared: Shared, id: MigrationId, job: Job) {
    let (lock, _) = &*shared;
    let options = {
        let t = lock.lock().expect("migration table");
        match t.entries.get(&id) {
            Some(e) => e.view.options.clone(),
            None => return,
        }
    };
    let (conn, dom, flags, params) = match prepare(&job, &options) {
        Ok(p) => p,
        Err(msg) => return fail(&shared, id, msg),
    };
    // The downtime limit is a migration parameter of the domain.
    if let Err(e) = dom.migrate_set_max_downtime(options.max_downtime_ms, 0) {
        // The migration runs with the domain's own limit; the detail shows
        // the one asked for, and `+`/`-` set it again while it runs.
        tracing::warn!(vm = %job.vm, error = %libvirt_reason(&e), "max downtime not set before the migration");
    }
    {
        let mut t = lock.lock().expect("migration table");
        if let Some(e) = t.entries.get_mut(&id) {
            e.dom = Some(dom.clone());
        }
    }
    let Job {
        vm,
        src_uri,
        dst_uri,
        ..
    } = job;
    tracing::info!(%vm, %src_uri, %dst_uri, flags, "migrate_to_uri3");
    let result = dom.migrate_to_uri3(Some(&dst_uri), params, flags);
    tracing::info!(%vm, result = ?result.as_ref().map_err(libvirt_reason), "migrate_to_uri3 returned");
    match result {
        Ok(()) => await_completion(&shared, id, &vm, &src_uri, JobEnded::Returned { dst_uri }),
        Err(err) if !conn.is_alive().unwrap_or(false) => {
            // The source's daemon went away (killed, restarted, cut off): its
            // error says nothing of the migration. The nodes will.
            let reason = libvirt_reason(&err);
            drop(dom);
            drop(conn);
            if let Resolved::StillRunning =
                resolve(&shared, id, &vm, &src_uri, Silent::Source, &reason)
            {
                follow(shared, id, vm, src_uri);
            }
        }
        Err(err) => {
            // Where the VM runs after a failure: asked before taking the lock.
            let still_running = dom.is_active().unwrap_or_else(|e| {
                tracing::warn!(%vm, error = %libvirt_reason(&e), "the source does not say whether the VM still runs; the failure does not claim it does");
                false
            });
            failed(&shared, id, &vm, &err, still_running);
        }
    }
}

/// The migration could not start: it fails with `msg`.
fn fail(shared: &Shared, id: MigrationId, msg: String) {
    let (lock, cv) = &**shared;
    let mut t = lock.lock().expect("migration table");
    if let Some(e) = t.entries.get_mut(&id) {
        e.returned = Some(Err(msg));
        e.settle();
    }
    if let Some(text) = t.finished_text() {
        t.log(text);
    }
    cv.notify_all();
}

/// The connection to the source, the domain, and the migrate call's flags
/// and parameters; `Err` is the sentence of why it cannot start.
fn prepare(
    job: &Job,
    options: &MigrationOptions,
) -> Result<(Connect, Domain, u32, MigrateParameters), String> {
    let vm = &job.vm;
    let conn = Connect::open(Some(&job.src_uri)).map_err(|e| {
        format!(
            "cannot connect to the source node ({}): {}",
            job.src_uri,
            libvirt_reason(&e)
        )
    })?;
    let dom = conn.lookup_domain_by_name(vm).map_err(|e| {
        format!(
            "{vm} is not on the source node any more: {}",
            libvirt_reason(&e)
        )
    })?;
    let (flags, mut params) =
        flags_and_params(options, job.vouched_shared, job.migrate_host.as_deref());
    if !job.disk_moves.is_empty() {
        // Copied disks get their place on the target: the destination
        // XML names it, and libvirt creates the volume in that pool
        // before copying over NBD (on the migration address).
        let xml = dom
            .xml_desc(sys::VIR_DOMAIN_XML_MIGRATABLE)
            .map_err(|e| format!("cannot read the definition of {vm}: {}", libvirt_reason(&e)))?;
        let dest = crate::backends::libvirt::xml::retarget_disks(&xml, &job.disk_moves)
            .map_err(|why| format!("cannot copy the disks of {vm}: {why}"))?;
        params.dest_xml = Some(dest.clone());
        params.persist_xml = Some(dest);
        params.migrate_disks = job.disk_moves.iter().map(|m| m.dev.clone()).collect();
    }
    Ok((conn, dom, flags, params))
}

/// The flags and parameters of a managed peer-to-peer live migration with
/// `options`.
fn flags_and_params(
    options: &MigrationOptions,
    vouched_shared: bool,
    migrate_host: Option<&str>,
) -> (u32, MigrateParameters) {
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
        bandwidth: Some(bandwidth_mib_s(options.bandwidth_bps)),
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
    if let Some(host) = migrate_host {
        params.uri = Some(format!("tcp://{host}"));
        params.listen_address = Some(host.to_string());
    }
    (flags, params)
}

/// The migrate call failed while the source answers: the migration fails
/// (or ends aborted) with libvirt's reason, and says where the VM runs.
fn failed(
    shared: &Shared,
    id: MigrationId,
    vm: &str,
    err: &virt::error::Error,
    still_running: bool,
) {
    let (lock, cv) = &**shared;
    let mut t = lock.lock().expect("migration table");
    let src_name = t
        .entries
        .get(&id)
        .map(|e| e.view.from.clone())
        .unwrap_or_default();
    let mut reason = libvirt_reason(err);
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
    if let Some(text) = t.finished_text() {
        t.log(text);
    }
    cv.notify_all();
}
