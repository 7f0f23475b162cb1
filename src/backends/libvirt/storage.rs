//! Storage moves on libvirt (`vmshift move-disk`): a block copy of one disk
//! of a running domain to a file in another pool, followed with its block
//! job info, then pivoted (`virDomainBlockJobAbort` with PIVOT). Each move
//! runs on its own thread; libvirt is never called with the table locked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::sys;

use super::LibvirtCluster;
use super::ffi;
use super::migrate::libvirt_reason;
use super::volumes::disk_volume;
use super::xml::DiskSource;
use crate::backends::Backend;
use crate::cluster::BackendError;
use crate::cluster::{Outcome, StorageMove, StorageMoveId};
use crate::plan;

/// Why a storage move the operator aborted ended.
pub const STOPPED: &str = "the operator stopped it before the pivot";

/// How often the block job is read.
const POLL: Duration = Duration::from_millis(200);
/// How long a pivot may be retried while the job is not ready yet.
const PIVOT_WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
pub struct Slot {
    pub view: StorageMove,
    /// The operator asked to stop it before the pivot.
    pub abort: bool,
    /// Its end is in the event log.
    pub reported: bool,
}

pub type Moves = Arc<Mutex<HashMap<StorageMoveId, Slot>>>;

/// Storage moves that ended kept (for the snapshot and `storage_move`).
const KEPT: usize = 20;

/// Every storage move for the snapshot (oldest first), and the sentences
/// of those that ended since the last call, for the event log. Moves that
/// ended long ago are forgotten.
pub fn take_views(moves: &Moves) -> (Vec<StorageMove>, Vec<String>) {
    let mut t = moves.lock().expect("storage moves");
    let mut ended = Vec::new();
    for s in t.values_mut() {
        if !s.reported
            && let Some(text) = s.view.outcome_sentence()
        {
            s.reported = true;
            ended.push((s.view.id, text));
        }
    }
    let mut done: Vec<StorageMoveId> = t
        .values()
        .filter(|s| s.reported)
        .map(|s| s.view.id)
        .collect();
    done.sort_unstable();
    for id in done.iter().take(done.len().saturating_sub(KEPT)) {
        t.remove(id);
    }
    let mut views: Vec<StorageMove> = t.values().map(|s| s.view.clone()).collect();
    views.sort_by_key(|m| m.id);
    ended.sort_by_key(|e| e.0);
    (views, ended.into_iter().map(|e| e.1).collect())
}

/// One disk to move: where it is, where it goes.
pub struct Job {
    pub id: StorageMoveId,
    pub uri: String,
    pub vm: String,
    /// Target device (vda...).
    pub dev: String,
    /// The new file, in the target pool's directory.
    pub dest_path: String,
    /// The target pool (refreshed once the copy is in use).
    pub pool: String,
}

fn xml_attr(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// The destination disk of a block copy: a raw file (the whole disk, so
/// any source format works).
pub fn dest_xml(path: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/></disk>",
        xml_attr(path)
    )
}

pub fn start(moves: Moves, job: Job) {
    thread::Builder::new()
        .name(format!("move-disk-{}", job.vm))
        .spawn(move || run(&moves, &job))
        .expect("spawn a storage move");
}

fn update(moves: &Moves, id: StorageMoveId, f: impl FnOnce(&mut Slot)) -> bool {
    let mut t = moves.lock().expect("storage moves");
    match t.get_mut(&id) {
        Some(s) => {
            f(s);
            s.abort
        }
        None => false,
    }
}

fn end(moves: &Moves, id: StorageMoveId, started: Instant, outcome: Outcome) {
    update(moves, id, |s| {
        s.view.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        s.view.bps = 0;
        s.view.outcome = Some(outcome);
    });
}

fn run(moves: &Moves, job: &Job) {
    let started = Instant::now();
    let fail = |why: String| end(moves, job.id, started, Outcome::Failed { reason: why });
    let conn = match Connect::open(Some(&job.uri)) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot connect to {}: {}",
                job.uri,
                libvirt_reason(&e)
            ));
        }
    };
    let dom = match conn.lookup_domain_by_name(&job.vm) {
        Ok(d) => d,
        Err(e) => return fail(format!("{} is gone: {}", job.vm, libvirt_reason(&e))),
    };
    if let Err(e) = ffi::block_copy(&dom, &job.dev, &dest_xml(&job.dest_path)) {
        return fail(format!(
            "libvirt refused the block copy of {}: {}",
            job.dev,
            libvirt_reason(&e)
        ));
    }
    let mut last: Option<(u64, Instant)> = None;
    let mut ready_since: Option<Instant> = None;
    loop {
        let info = ffi::block_job(&dom, &job.dev);
        let abort = match &info {
            Ok(Some((cur, total))) => {
                let now = Instant::now();
                let bps = last
                    .filter(|(_, t)| now > *t)
                    .map(|(c, t)| (cur.saturating_sub(c) as f64 / (now - t).as_secs_f64()) as u64)
                    .unwrap_or(0);
                last = Some((*cur, now));
                update(moves, job.id, |s| {
                    s.view.copied_bytes = *cur;
                    s.view.total_bytes = s.view.total_bytes.max(*total);
                    s.view.bps = bps;
                    s.view.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                })
            }
            Ok(None) => {
                return fail(format!(
                    "the block job of {} ended before the pivot",
                    job.dev
                ));
            }
            Err(e) => return fail(libvirt_reason(e)),
        };
        if abort {
            let r = ffi::block_job_abort(&dom, &job.dev, false);
            return end(
                moves,
                job.id,
                started,
                match r {
                    Ok(()) => Outcome::Aborted {
                        reason: STOPPED.into(),
                    },
                    Err(e) => Outcome::Failed {
                        reason: format!("the abort failed: {}", libvirt_reason(&e)),
                    },
                },
            );
        }
        if let Ok(Some((cur, total))) = info
            && total > 0
            && cur == total
        {
            // In sync (mirroring): switch the VM over to the copy.
            let since = *ready_since.get_or_insert_with(Instant::now);
            match ffi::block_job_abort(&dom, &job.dev, true) {
                Ok(()) => break,
                Err(e) if since.elapsed() > PIVOT_WAIT => {
                    return fail(format!("the pivot failed: {}", libvirt_reason(&e)));
                }
                Err(_) => {} // not ready yet; again after the poll
            }
        }
        thread::sleep(POLL);
    }
    // The next boot uses the new disk too, and the pool shows it.
    if let Ok(xml) = dom.xml_desc(sys::VIR_DOMAIN_XML_MIGRATABLE) {
        let _ = conn.define_domain_xml(&xml);
    }
    if let Ok(p) = conn.lookup_storage_pool_by_name(&job.pool) {
        let _ = p.refresh(0);
    }
    update(moves, job.id, |s| {
        s.view.pivoted = true;
        s.view.copied_bytes = s.view.total_bytes;
    });
    end(moves, job.id, started, Outcome::Completed);
}

impl LibvirtCluster {
    pub(super) fn start_disk_move(
        &mut self,
        vm: &str,
        disk: &str,
        volume: &str,
    ) -> Result<crate::cluster::StorageMoveId, BackendError> {
        let snap = self.snapshot()?;
        let v = snap.require_vm(vm)?;
        let bytes =
            plan::check_disk_move(&snap, v, disk, volume).map_err(BackendError::NotPossible)?;
        if snap.managed_vm(vm).is_some() {
            return Err(BackendError::NotPossible(format!(
                "{vm} is a Pacemaker resource: move its disk with Pacemaker's resource stopped or in maintenance, not behind its back"
            )));
        }
        let not_possible = |s: String| Err(BackendError::NotPossible(s));
        let Some(i) = self.node_index(&v.node) else {
            return not_possible(format!("node {} is not configured", v.node));
        };
        let map = self.pool_volumes();
        let Some(d) = self.last.get(&i) else {
            return not_possible(format!("{} has not answered yet; try again", v.node));
        };
        let Some(dom) = d.domains.iter().find(|x| x.name == vm && !x.incoming) else {
            return not_possible(format!("{vm} is not on {} any more", v.node));
        };
        let Some((dk, _)) = dom
            .disks
            .iter()
            .find(|(dk, _)| disk_volume(&v.node, &dk.source, d, &map) == disk)
        else {
            return not_possible(format!("{vm} has no disk on volume {disk}"));
        };
        let DiskSource::Path(path) = &dk.source else {
            return not_possible(format!(
                "disk {} of {vm} is not a file; vmshift moves file disks only (virsh blockcopy can move others)",
                dk.target
            ));
        };
        if dk.readonly {
            return not_possible(format!(
                "disk {} of {vm} is read-only: nothing writes it, so copy the file to {volume} and change the definition instead",
                dk.target
            ));
        }
        let Some(pool) = d.pools.iter().find(|p| {
            map.get(&(v.node.clone(), p.name.clone()))
                .map(String::as_str)
                == Some(volume)
        }) else {
            return not_possible(format!("no pool of {} holds volume {volume}", v.node));
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        let dest_path = format!("{}/{file}", pool.target.trim_end_matches('/'));
        if std::path::Path::new(&dest_path).exists() && pool.kind == "dir" {
            return not_possible(format!(
                "{dest_path} already exists in {volume}; remove it or move the disk elsewhere"
            ));
        }
        self.next_storage_id += 1;
        let id = self.next_storage_id;
        self.storage_moves.lock().expect("storage moves").insert(
            id,
            Slot {
                view: crate::cluster::StorageMove {
                    id,
                    vm: vm.into(),
                    from: disk.into(),
                    to: volume.into(),
                    total_bytes: bytes,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let started = crate::cluster::StorageMove {
            vm: vm.into(),
            from: disk.into(),
            to: volume.into(),
            total_bytes: bytes,
            ..Default::default()
        }
        .start_sentence();
        self.table()
            .log(format!("{started} (device {})", dk.target));
        start(
            self.storage_moves.clone(),
            Job {
                id,
                uri: self.nodes[i].spec.uri.clone(),
                vm: vm.into(),
                dev: dk.target.clone(),
                dest_path,
                pool: pool.name.clone(),
            },
        );
        Ok(id)
    }
}
