//! `Backend`: what the app needs from a cluster, whether simulated or real.
//!
//! Calls may block (libvirt is blocking C), so callers run them off the UI
//! task. Everything returned is owned: no locks are shared with the caller.

use std::time::Duration;

use super::model::{ClusterSnapshot, Migration, MigrationId, MigrationOptions, Node, Vm};
use crate::plan::Refusal;
use crate::record::Journal;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationRequest {
    pub vm: String,
    pub to: String,
    pub options: MigrationOptions,
    /// The prediction shown before starting, kept for the flight recorder
    /// as it was (opaque here).
    pub prediction: Option<serde_json::Value>,
}

/// Errors a backend reports; each reads as a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("there is no VM named {name:?}; known VMs: {}", known.join(", "))]
    UnknownVm { name: String, known: Vec<String> },
    #[error("there is no node named {name:?}; known nodes: {}", known.join(", "))]
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

/// Names for an error message, shortened for huge clusters.
fn known_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let all: Vec<&str> = names.collect();
    let mut out: Vec<String> = all.iter().take(25).map(|s| s.to_string()).collect();
    if all.len() > 25 {
        out.push(format!("and {} more", all.len() - 25));
    }
    out
}

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
    /// Measures a VM's memory dirty rate now (bytes/s), where the backend
    /// has to measure it (libvirt); `None` when it already knows it.
    fn measure_dirty_rate(&mut self, _vm: &str) -> Result<Option<u64>, BackendError> {
        Ok(None)
    }
    /// From now on every migration this backend runs or finds is handed to
    /// `journal` when it ends, exactly once, whoever started it.
    fn set_journal(&mut self, journal: Journal);
    /// vmshift stops (`why`: "quit", "SIGTERM"…). Migrations that live in
    /// this process (the simulator's) end now and are recorded; migrations
    /// that go on without vmshift (libvirt peer-to-peer) are recorded as
    /// detached and returned.
    fn shutdown(&mut self, why: &str) -> Vec<Migration>;
}
