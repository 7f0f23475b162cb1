//! Cluster managers that own VMs (DESIGN §3.3), behind one small interface
//! beside the backends. Where one owns a VM, vmshift reads its state and
//! asks it to move, drain and cordon; libvirt stays the source of the live
//! figures (rounds, downtime) of the migrations it runs. Today: Pacemaker.

pub mod pacemaker;
pub mod runner;

use std::time::Duration;

use crate::cluster::ManagerView;
pub use pacemaker::Pacemaker;
pub use runner::{Runner, Via};

pub trait ClusterManager: Send + Sync {
    /// `pacemaker`.
    fn kind(&self) -> &'static str;
    /// Nodes, VM resources, constraints and recent operations now.
    fn read(&self) -> Result<ManagerView, String>;
    /// Asks the manager to move `resource` to `node` (a move constraint
    /// that lasts `lifetime`, ISO 8601, or until cleared).
    fn move_to(&self, resource: &str, node: &str, lifetime: Option<&str>) -> Result<(), String>;
    /// Removes the constraints a move left.
    fn clear_move(&self, resource: &str) -> Result<(), String>;
    /// Standby: the node keeps no resources (the manager moves them off).
    fn set_standby(&self, node: &str, on: bool) -> Result<(), String>;
    /// Maintenance mode for the whole cluster: the manager acts on nothing.
    fn set_maintenance(&self, on: bool) -> Result<(), String>;
    /// The command an operator would type for a move, for messages.
    fn move_command(&self, resource: &str, node: &str) -> String;
}

/// `[pacemaker]` in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerSettings {
    pub mode: ManagerMode,
    pub via: Via,
    pub timeout: Duration,
}

impl Default for ManagerSettings {
    fn default() -> Self {
        Self {
            mode: ManagerMode::Auto,
            via: Via::Local,
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerMode {
    /// Use Pacemaker where its tools answer; none otherwise.
    Auto,
    /// Pacemaker owns VMs here: when it does not answer, refuse moves.
    On,
    /// Never ask Pacemaker.
    Off,
}

/// The manager to use with these settings: `None` when off, or in auto
/// mode where Pacemaker's tools are not there or do not answer.
pub fn connect(s: &ManagerSettings) -> Option<std::sync::Arc<dyn ClusterManager>> {
    let pcmk = Pacemaker::new(Runner::new(s.via.clone(), s.timeout));
    match s.mode {
        ManagerMode::Off => None,
        ManagerMode::On => Some(std::sync::Arc::new(pcmk)),
        ManagerMode::Auto => pcmk.answers().then(|| {
            tracing::info!("Pacemaker answers: managed VMs move through it");
            std::sync::Arc::new(pcmk) as std::sync::Arc<dyn ClusterManager>
        }),
    }
}
