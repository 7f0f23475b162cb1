//! Cluster managers that own VMs (DESIGN §3.3), behind one small interface
//! beside the backends. Where one owns a VM, vmshift reads its state and
//! asks it to move, drain and cordon; libvirt stays the source of the live
//! figures (rounds, downtime) of the migrations it runs. Today: Pacemaker.

pub mod pacemaker;
pub mod runner;

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::ManagerView;
use crate::config::{PacemakerMode, PacemakerSettings};
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

/// The manager to use with the `[pacemaker]` settings, for a cluster of
/// libvirt nodes at `node_uris`: `None` when off, or in auto mode with no
/// `ssh`/`command_prefix` where Pacemaker's tools answer neither here nor
/// (for `qemu+ssh://` nodes) on the first node over ssh. Where a way to
/// reach it is configured (or mode is `on`), it is the manager whether it
/// answers now or not: one that does not answer holds every action on the
/// VMs it may own, rather than being taken for absent.
pub fn connect(s: &PacemakerSettings, node_uris: &[String]) -> Option<Arc<dyn ClusterManager>> {
    let timeout = Duration::from_millis(s.timeout_ms);
    let configured = if !s.command_prefix.is_empty() {
        Some(Via::Prefix(s.command_prefix.clone()))
    } else {
        s.ssh.clone().map(Via::Ssh)
    };
    match s.mode {
        PacemakerMode::Off => None,
        PacemakerMode::On => Some(Arc::new(Pacemaker::new(Runner::new(
            configured.unwrap_or(Via::Local),
            timeout,
        )))),
        PacemakerMode::Auto if configured.is_some() => Some(Arc::new(Pacemaker::new(Runner::new(
            configured.expect("checked"),
            timeout,
        )))),
        PacemakerMode::Auto => {
            let candidates: Vec<Via> = std::iter::once(Via::Local)
                .chain(
                    node_uris
                        .iter()
                        .filter_map(|u| ssh_dest(u))
                        .take(1)
                        .map(Via::Ssh),
                )
                .collect();
            candidates.into_iter().find_map(|via| {
                let p = Pacemaker::new(Runner::new(via, timeout));
                p.answers().then(|| {
                    tracing::info!(place = %p.place(), "Pacemaker answers: the VMs it owns move through it");
                    Arc::new(p) as Arc<dyn ClusterManager>
                })
            })
        }
    }
}

/// Whether the manager's name for a node and ours name the same host
/// (`hv1`, `hv1.example.com`).
pub fn same_host(a: &str, b: &str) -> bool {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    a == b || short(a) == short(b)
}

/// `user@host` of a `qemu+ssh://user@host[:port]/system` URI.
fn ssh_dest(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("qemu+ssh://")?;
    let authority = rest.split('/').next()?;
    let host = authority.split(':').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_destination_of_a_node_uri() {
        assert_eq!(
            ssh_dest("qemu+ssh://root@hv1:2222/system?no_tty=1").as_deref(),
            Some("root@hv1")
        );
        assert_eq!(ssh_dest("qemu:///system"), None);
        assert_eq!(ssh_dest("qemu+ssh:///system"), None);
    }

    #[test]
    fn off_means_none_and_on_means_pacemaker_even_unanswered() {
        let mut s = PacemakerSettings {
            mode: PacemakerMode::Off,
            ..Default::default()
        };
        assert!(connect(&s, &[]).is_none());
        s.mode = PacemakerMode::On;
        s.command_prefix = vec!["/nonexistent/prefix".into()];
        let m = connect(&s, &[]).expect("on: always a manager");
        let e = m.read().unwrap_err();
        assert!(e.contains("/nonexistent/prefix"), "{e}");
        s.mode = PacemakerMode::Auto;
        let m = connect(&s, &[]).expect("auto with a configured runner: always a manager");
        assert!(m.read().is_err(), "that does not answer");
        s.command_prefix.clear();
        s.ssh = Some("root@hv1".into());
        assert!(
            connect(&s, &[]).is_some(),
            "auto with ssh configured: a manager, even unanswered"
        );
        s.ssh = None;
        // Nothing configured: only where the tools answer (this machine
        // has no crm_mon answering as this test runs, or has: either way
        // the answer decides).
        let local = Pacemaker::new(Runner::new(Via::Local, Duration::from_millis(5000)));
        assert_eq!(connect(&s, &[]).is_some(), local.answers());
    }
}
