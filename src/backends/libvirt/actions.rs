//! The operator's actions on one VM or node: start, stop, reboot, power
//! off, its console, cordons (through Pacemaker where it owns the node),
//! Pacemaker's maintenance mode, and measuring how a guest uses memory.

use std::time::{Duration, Instant};

use super::{LibvirtCluster, console_argv, ffi, measure, ssh, xml};
use crate::backends::{Backend, set_local_cordon};
use crate::cluster::text::shell_word;
use crate::cluster::{BackendError, Measured, VmAction, VmState};
use crate::plan;

impl LibvirtCluster {
    pub(super) fn run_vm_action(
        &mut self,
        vm: &str,
        action: VmAction,
    ) -> Result<String, BackendError> {
        let snap = self.snapshot_for_action()?;
        let v = snap.require_vm(vm)?;
        plan::check_vm_action(&snap, v, action).map_err(BackendError::NotPossible)?;
        let i = self
            .node_index(&v.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", v.node)))?;
        let uri = self.nodes[i].spec.uri.clone();
        let node = v.node.clone();
        let fail = |e: virt::error::Error| {
            BackendError::Other(format!(
                "cannot {} {vm} on {node}: {}",
                action.verb(),
                e.message()
            ))
        };
        let conn =
            virt::connect::Connect::open(Some(&uri)).map_err(|e| BackendError::Unreachable {
                node: node.clone(),
                reason: ssh::explain(&uri, e.message()),
            })?;
        let result = conn.lookup_domain_by_name(vm).and_then(|dom| match action {
            VmAction::Start => dom.create(),
            VmAction::Shutdown => dom.shutdown(),
            VmAction::Reboot => dom.reboot(0),
            VmAction::PowerOff => dom.destroy(),
        });
        drop(conn);
        result.map_err(fail)?;
        let text = match action {
            VmAction::Start => format!("{vm} started on {node}"),
            VmAction::Shutdown => {
                format!("shutdown (ACPI) of {vm} requested; the guest is shutting down")
            }
            VmAction::Reboot => format!("reboot of {vm} requested; the guest is rebooting"),
            VmAction::PowerOff => format!("{vm} forced off on {node}"),
        };
        self.table().log(text.clone());
        Ok(text)
    }

    pub(super) fn console_for(&mut self, vm: &str) -> Result<Vec<String>, BackendError> {
        let snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => self.snapshot()?,
        };
        let v = snap.require_vm(vm)?;
        if v.state != VmState::Running && v.state != VmState::Paused {
            return Err(BackendError::NotPossible(format!(
                "{vm} is {}; start it first to reach its console",
                v.state.label()
            )));
        }
        let i = self
            .node_index(&v.node)
            .ok_or_else(|| BackendError::Other(format!("node {} is not configured", v.node)))?;
        Ok(console_argv(&self.nodes[i].spec.uri, vm))
    }

    /// A node of the Pacemaker cluster is cordoned through Pacemaker
    /// (standby: it moves its resources off, live where allow-migrate,
    /// and places none there); other nodes in this install's own list.
    pub(super) fn cordon_node(&mut self, node: &str, on: bool) -> Result<String, BackendError> {
        let snap = self.snapshot()?;
        snap.require_node(node)?;
        let (Some(mgr), Some(m)) = (self.manager.clone(), snap.managed_node(node)) else {
            return set_local_cordon(&mut self.cordons, &snap, node, on);
        };
        if let Some(e) = snap.manager.as_ref().and_then(|v| v.error.as_ref()) {
            return Err(BackendError::NotPossible(format!(
                "node {node} is a Pacemaker node, and Pacemaker does not answer now ({e}); a cordon must go through it (standby): try again when it answers"
            )));
        }
        let changed = m.standby != on;
        mgr.set_standby(&self.manager_node_name(node), on)
            .map_err(BackendError::Other)?;
        // A local cordon of the same node would outlive the standby.
        if !on {
            let _ = set_local_cordon(&mut self.cordons, &snap, node, false);
        }
        let text = match (on, changed) {
            (true, true) => format!(
                "node {node} is in standby in Pacemaker: Pacemaker moves its resources off (live where allow-migrate) and places none there until `vmshift uncordon {}`",
                shell_word(node)
            ),
            (true, false) => format!("node {node} was already in standby in Pacemaker"),
            (false, true) => {
                format!("node {node} is back from standby in Pacemaker: it takes resources again")
            }
            (false, false) => format!("node {node} was not in standby in Pacemaker"),
        };
        self.table().log(format!("Pacemaker: {text}"));
        Ok(text)
    }

    pub(super) fn manager_maintenance(&mut self, on: bool) -> Result<(), BackendError> {
        let Some(m) = &self.manager else {
            return Err(BackendError::NotPossible(
                "no cluster manager (Pacemaker) answers here, so there is no maintenance mode to set; set [pacemaker] in the config where one owns the VMs".into(),
            ));
        };
        m.set_maintenance(on).map_err(BackendError::Other)?;
        self.table().log(format!(
            "Pacemaker: maintenance mode {}",
            if on {
                "on (it now moves, restarts and monitors nothing)"
            } else {
                "off"
            }
        ));
        Ok(())
    }

    pub(super) fn measure_guest(
        &mut self,
        vm: &str,
        budget: Duration,
    ) -> Result<Option<Measured>, BackendError> {
        let snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => self.snapshot()?,
        };
        let Some(v) = snap.vm(vm) else {
            return Ok(None);
        };
        let Some(i) = self.node_index(&v.node) else {
            return Ok(None);
        };
        let uri = self.nodes[i].spec.uri.clone();
        let fail = |e: virt::error::Error| {
            BackendError::Other(format!(
                "cannot measure how {vm} uses its memory: {}",
                e.message()
            ))
        };
        let conn = virt::connect::Connect::open(Some(&uri)).map_err(fail)?;
        let dom = conn.lookup_domain_by_name(vm).map_err(fail)?;
        let tcg = dom
            .xml_desc(0)
            .ok()
            .and_then(|x| xml::parse_domain(&x).ok())
            .is_some_and(|x| x.tcg);
        // Short windows for the rate and its spread, long ones for the
        // working set and precision, one after the other, until the
        // samples tell enough or the budget is spent.
        let mut samples = Vec::new();
        for window in measure::schedule(budget.as_secs()) {
            if let Some(s) = measure_once(&dom, window) {
                measure::push(&mut samples, s);
            }
            if measure::settled(&samples) {
                break;
            }
        }
        // Resident memory last: a guest that just booted is still growing.
        let stats = dom
            .memory_stats(0)
            .map(|stats| measure::MemStats::from_tags(stats.iter().map(|s| (s.tag as i32, s.val))))
            .unwrap_or_default();
        Ok(measure::estimate(v.memory, &samples, stats, tcg))
    }
}

/// One page-sampling measurement of `window_s` seconds; `None` if QEMU
/// would not give one (another measurement runs: its result is taken).
pub(super) fn measure_once(dom: &virt::domain::Domain, window_s: i32) -> Option<measure::Sample> {
    let before = ffi::dirty_rates(std::slice::from_ref(dom))
        .into_values()
        .next()
        .map(|s| s.start);
    let _ = ffi::start_dirty_rate_calc(dom, window_s);
    let deadline = Instant::now() + Duration::from_secs(window_s as u64 + 3);
    // The measurement takes its window; then its result is in the stats.
    std::thread::sleep(Duration::from_millis(window_s as u64 * 1000));
    loop {
        if let Some(s) = ffi::dirty_rates(std::slice::from_ref(dom))
            .into_values()
            .next()
            .filter(|s| Some(s.start) != before)
        {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
