//! `Backend`: what the app needs from a cluster, whether simulated or real.
//!
//! Calls may block (libvirt is blocking C), so callers run them off the UI
//! task. Everything returned is owned: no locks are shared with the caller.

use std::time::Duration;

use crate::cluster::{
    BackendError, ClusterSnapshot, Measured, Migration, MigrationId, MigrationRequest, Recovery,
    StorageMove, StorageMoveId, VmAction, cordon_sentence,
};
use crate::record::{Cordons, Journal};

/// Cordons or uncordons `node` in this vmshift install's own list.
pub fn set_local_cordon(
    cordons: &mut Cordons,
    snap: &ClusterSnapshot,
    node: &str,
    on: bool,
) -> Result<String, BackendError> {
    let changed = cordons
        .set(&snap.cluster, node, on, crate::record::now_ms())
        .map_err(BackendError::Other)?;
    Ok(cordon_sentence(node, on, changed))
}

/// Why the simulator has no operator recovery: it models a cluster manager.
const SIM_HA: &str =
    "the simulator restarts the VMs of a failed node itself (HA), as a cluster manager does";

pub trait Backend: Send {
    /// `sim` or `libvirt`.
    fn kind(&self) -> &'static str;
    /// The whole cluster as it is now, migrations included.
    fn snapshot(&mut self) -> Result<ClusterSnapshot, BackendError>;
    /// Starts a live migration; progress is read with [`Backend::migration`].
    fn start_migration(&mut self, req: &MigrationRequest) -> Result<MigrationId, BackendError>;
    /// The migration's state now: every round so far, step, downtime, outcome.
    fn migration(&mut self, id: MigrationId) -> Result<Migration, BackendError>;
    fn abort(&mut self, id: MigrationId) -> Result<(), BackendError>;
    fn set_max_downtime(&mut self, id: MigrationId, ms: u64) -> Result<(), BackendError>;
    /// `None` lifts the limit (link speed).
    fn set_bandwidth(&mut self, id: MigrationId, bps: Option<u64>) -> Result<(), BackendError>;
    fn start_postcopy(&mut self, id: MigrationId) -> Result<(), BackendError>;
    /// Lets up to `max` of backend time pass, returning early when something
    /// may have changed. The simulator advances its clock here.
    fn wait(&mut self, max: Duration);
    /// Measures how a VM uses its memory now (dirty rate, working set,
    /// memory in use, each with its range), where the backend has to
    /// measure it (libvirt), by means that cannot harm the guest; `None`
    /// when it already knows.
    /// It takes up to `budget`.
    fn measure_workload(
        &mut self,
        _vm: &str,
        _budget: Duration,
    ) -> Result<Option<Measured>, BackendError> {
        Ok(None)
    }
    /// Maintenance mode of the cluster manager that owns VMs here (Pacemaker):
    /// while on, it moves, restarts and monitors nothing.
    fn set_manager_maintenance(&mut self, _on: bool) -> Result<(), BackendError> {
        Err(BackendError::NotPossible(
            "no cluster manager (Pacemaker) owns VMs here, so there is no maintenance mode to set; set [pacemaker] in the config where one does".into(),
        ))
    }
    /// Moves the disk of running `vm` that is on volume `disk` to volume
    /// `volume` while the VM runs (copy, then pivot); progress is read with
    /// [`Backend::storage_move`].
    fn move_disk(
        &mut self,
        vm: &str,
        disk: &str,
        volume: &str,
    ) -> Result<StorageMoveId, BackendError> {
        let _ = (vm, disk, volume);
        Err(BackendError::NotPossible(format!(
            "the {} backend cannot move disks yet; use the simulator, or virsh blockcopy --pivot",
            self.kind()
        )))
    }
    /// Starts `vm`, last seen on a lost node, on node `to` from its last
    /// known definition. Only after the operator confirmed the lost node
    /// is powered off or fenced (the caller's duty).
    /// Returns the recovery's timeline so far (defined, started); the
    /// snapshot's `recoveries` add `running` once the node reports it.
    /// Refused unless [`Backend::confirm_fenced`] was called for its node.
    fn restart_vm(&mut self, vm: &str, to: &str) -> Result<Recovery, BackendError> {
        let _ = (vm, to);
        Err(BackendError::NotPossible(SIM_HA.into()))
    }
    /// The operator confirmed that lost node `node` is powered off or
    /// fenced (by typing its name): its VMs may be restarted elsewhere.
    fn confirm_fenced(&mut self, node: &str) -> Result<(), BackendError> {
        let _ = node;
        Err(BackendError::NotPossible(SIM_HA.into()))
    }
    /// A storage move's state now.
    fn storage_move(&mut self, id: StorageMoveId) -> Result<StorageMove, BackendError> {
        Err(BackendError::NotPossible(format!(
            "there is no storage move with id {id}"
        )))
    }
    /// Stops a storage move before its pivot; the VM stays on its volume.
    fn abort_storage_move(&mut self, id: StorageMoveId) -> Result<(), BackendError> {
        Err(BackendError::NotPossible(format!(
            "there is no storage move with id {id}"
        )))
    }
    /// Waits up to `max` for work the backend still does after migrations
    /// ended (a cluster manager confirming a move and clearing its
    /// constraint), before vmshift exits.
    fn settle(&mut self, _max: Duration) {}
    /// From now on every migration this backend runs or finds is handed to
    /// `journal` when it ends, exactly once, whoever started it.
    fn set_journal(&mut self, journal: Journal);
    /// Starts, shuts down (ACPI), reboots or forces off `vm`, after
    /// [`crate::plan::check_vm_action`]; returns one sentence for the
    /// operator. Shutdown and reboot are requests the guest acts on.
    fn vm_action(&mut self, vm: &str, action: VmAction) -> Result<String, BackendError>;
    /// The command line that opens `vm`'s serial console in this terminal
    /// (`virsh -c URI console DOMAIN`); it ends when the operator leaves it.
    fn console_command(&mut self, vm: &str) -> Result<Vec<String>, BackendError>;
    /// The cordon list this backend marks its nodes from: memory only until
    /// the front end attaches the state dir's ([`Cordons::open_default`]).
    fn cordons(&mut self) -> &mut Cordons;
    /// Cordons (`on`) or uncordons `node`: a cordoned node is never a
    /// target. By default this vmshift install's own list (state dir); a
    /// backend with a cluster manager (Pacemaker standby) overrides it.
    /// Returns one sentence for the operator.
    fn set_cordon(&mut self, node: &str, on: bool) -> Result<String, BackendError> {
        let snap = self.snapshot()?;
        snap.require_node(node)?;
        set_local_cordon(self.cordons(), &snap, node, on)
    }
    /// vmshift stops (`why`: "quit", "SIGTERM"…). Migrations that live in
    /// this process (the simulator's) end now and are recorded; migrations
    /// that go on without vmshift (libvirt peer-to-peer) are recorded as
    /// detached and returned.
    fn shutdown(&mut self, why: &str) -> Vec<Migration>;
}
