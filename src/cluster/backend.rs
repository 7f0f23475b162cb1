//! `Backend`: what the app needs from a cluster, whether simulated or real.
//!
//! Calls may block (libvirt is blocking C), so callers run them off the UI
//! task. Everything returned is owned: no locks are shared with the caller.

use std::time::Duration;

use super::Refusal;
use super::model::{
    ClusterSnapshot, Forecast, Measured, Migration, MigrationId, MigrationInputs, MigrationOptions,
    Node, Recovery, StorageMove, StorageMoveId, Vm, VmAction,
};
use crate::record::{Cordons, Journal};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationRequest {
    pub vm: String,
    pub to: String,
    pub options: MigrationOptions,
    /// What the front end predicted from (and what it predicted), kept
    /// with the migration for live re-prediction and the record.
    pub inputs: Option<MigrationInputs>,
    pub forecast: Option<Forecast>,
}

impl MigrationRequest {
    /// What was predicted, as the flight recorder keeps it.
    pub fn forecast_json(&self) -> Option<serde_json::Value> {
        self.forecast
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok())
    }

    /// A move with nothing predicted yet (the backend predicts it itself).
    pub fn new(vm: &str, to: &str, options: MigrationOptions) -> Self {
        Self {
            vm: vm.into(),
            to: to.into(),
            options,
            inputs: None,
            forecast: None,
        }
    }
}

/// Errors a backend reports; each reads as a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("there is no VM named {name:?}; known VMs: {}{}", known.join(", "), shell_hint(name, known))]
    UnknownVm { name: String, known: Vec<String> },
    #[error("there is no node named {name:?}; known nodes: {}{}", known.join(", "), shell_hint(name, known))]
    UnknownNode { name: String, known: Vec<String> },
    #[error("{0}")]
    Refused(Refusal),
    #[error("there is no migration with id {0}; it may have finished already")]
    NoSuchMigration(MigrationId),
    #[error("{0}")]
    NotPossible(String),
    #[error("node {node} is unreachable: {reason}")]
    Unreachable { node: String, reason: String },
    #[error(
        "no node answered ({0}); check the URIs and that libvirtd runs and accepts this user there"
    )]
    NoNodeAnswered(String),
    #[error("{0}")]
    Other(String),
}

impl ClusterSnapshot {
    /// The VM named `name`, or the error that lists the known ones.
    pub fn require_vm(&self, name: &str) -> Result<&Vm, BackendError> {
        self.vm(name).ok_or_else(|| BackendError::UnknownVm {
            name: name.to_string(),
            known: known_names(self.vms.iter().map(|v| v.name.as_str())),
        })
    }

    /// The node named `name`, or the error that lists the known ones.
    pub fn require_node(&self, name: &str) -> Result<&Node, BackendError> {
        self.node(name).ok_or_else(|| BackendError::UnknownNode {
            name: name.to_string(),
            known: known_names(self.nodes.iter().map(|n| n.name.as_str())),
        })
    }
}

/// A name typed as it is shown (`web\u{200b}` for "web" + a zero-width
/// space) names nothing on the command line: how to write it for a shell.
fn shell_hint(typed: &str, known: &[String]) -> String {
    known
        .iter()
        .find(|k| k.as_str() != typed && super::text::typed_names(typed, k))
        .map_or(String::new(), |k| {
            format!(
                "; to name {k} in a shell, write {}",
                super::text::shell_word(k)
            )
        })
}

/// Names for an error message, shortened for huge clusters.
fn known_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let all: Vec<&str> = names.collect();
    let mut out: Vec<String> = all.iter().take(25).map(|s| s.to_string()).collect();
    if all.len() > 25 {
        out.push(format!("and {} more", all.len() - 25));
    }
    out
}

/// What cordoning or uncordoning `node` did, as one sentence.
pub fn cordon_sentence(node: &str, on: bool, changed: bool) -> String {
    match (on, changed) {
        (true, true) => format!(
            "node {node} is cordoned: no VM is moved, started or restarted onto it until `vmshift uncordon {}` (kept by this vmshift install)",
            super::text::shell_word(node)
        ),
        (true, false) => format!("node {node} was already cordoned"),
        (false, true) => format!("node {node} is uncordoned: it takes VMs again"),
        (false, false) => format!("node {node} was not cordoned"),
    }
}

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
