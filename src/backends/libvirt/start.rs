//! Starting a migration: checked against the last snapshot (the cluster
//! manager asked afresh), its record of intent written, then run by
//! libvirt (or by the cluster manager for a VM it owns).

use std::time::Duration;

use super::migrate::Entry;
use super::volumes::disk_volume;
use super::xml::DiskSource;
use super::{LibvirtCluster, managed, migrate, node_name, xml};
use crate::cluster::{BackendError, ManagedBy, MigrationId, MigrationRequest};
use crate::plan;
use crate::record::{Meta, Record};

/// Longest wait for the record of intent before a migration starts (a
/// recorder that cannot write is reported with the migration's record).
pub(super) const INTENT_WAIT: Duration = Duration::from_secs(2);

impl LibvirtCluster {
    pub(super) fn start_job(
        &mut self,
        req: &MigrationRequest,
    ) -> Result<MigrationId, BackendError> {
        let snap = self.snapshot_for_action()?;
        let vm = snap.require_vm(&req.vm)?;
        let node = snap.require_node(&req.to)?;
        // The path first: a move that would fight the cluster manager is
        // refused whatever else holds.
        let managed = plan::move_path(&snap, &vm.name, &vm.node, &node.name, req.options.via)
            .map_err(BackendError::Refused)?;
        let placement =
            plan::check_request(&snap, vm, node, &req.options).map_err(BackendError::Refused)?;
        let src = self
            .node_index(&vm.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", vm.node)))?;
        let dst = self
            .node_index(&node.name)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", node.name)))?;
        let src_uri = self.nodes[src].spec.uri.clone();
        let dst_spec = self.nodes[dst].spec.clone();
        let disk_moves = if managed.is_none() && !placement.copies.is_empty() {
            self.disk_moves(&vm.name, src, dst, &placement.copies)?
        } else {
            Vec::new()
        };
        let id = {
            let mut t = self.table();
            t.next_id += 1;
            let id = t.next_id;
            let mut e = Entry::new(
                id,
                &vm.name,
                &vm.node,
                &node.name,
                req.options.clone(),
                vm.memory,
            );
            let inputs = req
                .inputs
                .clone()
                .unwrap_or_else(|| plan::inputs_for(&snap, vm, node, &req.options, 0, &[]));
            e.view.forecast = req
                .forecast
                .clone()
                .or_else(|| Some(plan::predict(&inputs, &req.options).forecast()));
            e.view.inputs = Some(inputs);
            if !disk_moves.is_empty() {
                e.view.storage_bytes = placement.storage_bytes();
                e.view.disk_copy = Some(crate::cluster::DiskCopy {
                    total_bytes: placement.storage_bytes(),
                    ..Default::default()
                });
            }
            e.meta = Meta::new(false, req.forecast_json());
            if let Some(resource) = &managed {
                // Pacemaker's agent runs the job: vmshift follows it and
                // tunes it live, but the policy is Pacemaker's.
                e.discovered = true;
                e.view.managed_by = Some(ManagedBy {
                    manager: "pacemaker".into(),
                    resource: resource.clone(),
                });
            }
            t.entries.insert(id, e);
            t.log(match &managed {
                Some(r) => format!(
                    "migration of {} {} → {} asked of Pacemaker (resource {r})",
                    vm.name, vm.node, node.name
                ),
                None => format!(
                    "migration of {} {} → {} started",
                    vm.name, vm.node, node.name
                ),
            });
            for b in &req.options.broken_rules {
                t.log(b.log_line(&vm.name, &vm.node, &node.name));
            }
            id
        };
        // The record of intent, written before the job starts: a vmshift
        // that finds the migration knows it is this one's, and records it
        // if this one is killed.
        let (journal, intent) = {
            let t = self.table();
            let intent = t
                .entries
                .get(&id)
                .map(|e| Record::started(&e.meta, "libvirt", &t.cluster, &e.view));
            (t.journal.clone(), intent)
        };
        if let Some(r) = intent {
            journal.submit(r);
            let _ = journal.wait_idle(INTENT_WAIT);
        }
        match (managed, &self.manager) {
            (Some(resource), Some(mgr)) => {
                let handle = managed::start(
                    self.shared.clone(),
                    mgr.clone(),
                    managed::ManagedMove {
                        id,
                        vm: vm.name.clone(),
                        resource,
                        target: self.manager_node_name(&node.name),
                        target_ours: node.name.clone(),
                        src_uri,
                        options: req.options.clone(),
                    },
                );
                self.managed_moves.retain(|h| !h.is_finished());
                self.managed_moves.push(handle);
            }
            _ => {
                let copied: Vec<&str> = placement.copies.iter().map(|c| c.0.as_str()).collect();
                let vouched_shared = vm
                    .disks
                    .iter()
                    .filter(|d| !copied.contains(&d.volume.as_str()))
                    .all(|d| self.trusted_volume(&d.volume));
                migrate::start(
                    self.shared.clone(),
                    id,
                    migrate::Job {
                        vm: vm.name.clone(),
                        src_uri,
                        dst_uri: dst_spec.uri.clone(),
                        migrate_host: dst_spec.migrate_host(),
                        disk_moves,
                        vouched_shared: vouched_shared && !vm.disks.is_empty(),
                    },
                )
            }
        }
        Ok(id)
    }

    /// Where each disk a copy-storage migration copies goes on the target:
    /// the same file name (or volume) in the target volume's pool there.
    pub(super) fn disk_moves(
        &self,
        vm: &str,
        src: usize,
        dst: usize,
        copies: &[(String, String, u64)],
    ) -> Result<Vec<xml::DiskMove>, BackendError> {
        let not_possible = |s: String| Err(BackendError::NotPossible(s));
        let map = self.pool_volumes();
        let (Some(sd), Some(dd)) = (self.last.get(&src), self.last.get(&dst)) else {
            return not_possible(
                "the source or the target node has not answered yet; try again in a moment".into(),
            );
        };
        let src_name = node_name(&self.nodes[src].spec, Some(sd));
        let dst_name = node_name(&self.nodes[dst].spec, Some(dd));
        let Some(dom) = sd.domains.iter().find(|d| d.name == vm && !d.incoming) else {
            return not_possible(format!("{vm} is not on {src_name} any more"));
        };
        let mut moves = Vec::new();
        for (dk, _) in &dom.disks {
            let volume = disk_volume(&src_name, &dk.source, sd, &map);
            let Some((_, to_volume, _)) = copies.iter().find(|c| c.0 == volume) else {
                continue;
            };
            if dk.readonly {
                return not_possible(format!(
                    "disk {} of {vm} is read-only, and libvirt does not copy read-only disks; make it writable or copy it to {to_volume} by hand first",
                    dk.target
                ));
            }
            let Some(pool) = dd
                .pools
                .iter()
                .find(|p| map.get(&(dst_name.clone(), p.name.clone())) == Some(to_volume))
            else {
                return not_possible(format!(
                    "no pool of {dst_name} holds volume {to_volume}; refresh and try again"
                ));
            };
            let to = match &dk.source {
                DiskSource::Path(path) => {
                    let file = path.rsplit('/').next().unwrap_or(path);
                    DiskSource::Path(format!("{}/{file}", pool.target.trim_end_matches('/')))
                }
                DiskSource::PoolVolume { volume, .. } => DiskSource::PoolVolume {
                    pool: pool.name.clone(),
                    volume: volume.clone(),
                },
                _ => {
                    return not_possible(format!(
                        "disk {} of {vm} is neither a file nor a pool volume; vmshift copies only those",
                        dk.target
                    ));
                }
            };
            moves.push(xml::DiskMove {
                dev: dk.target.clone(),
                from: dk.source.clone(),
                to,
            });
        }
        Ok(moves)
    }
}
