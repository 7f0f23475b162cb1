//! Recovering the VMs of a lost node: the operator confirms it fenced,
//! then each VM is defined and started elsewhere from its last known
//! definition, never a second time while its disk is locked.

use super::LibvirtCluster;
use crate::backends::Backend;
use crate::cluster::text::shell_line;
use crate::cluster::{BackendError, NodeState, Recovery, RecoveryStep};

impl LibvirtCluster {
    pub(super) fn confirm_node_fenced(&mut self, node: &str) -> Result<(), BackendError> {
        let snap = self.snapshot()?;
        let n = snap.require_node(node)?;
        if n.state != NodeState::Down {
            return Err(BackendError::NotPossible(format!(
                "{node} is {}, not lost: nothing is restarted elsewhere while it may still run its VMs",
                n.state.label()
            )));
        }
        self.fenced
            .insert(node.to_string(), crate::record::now_ms());
        self.table().log(format!(
            "{node} confirmed powered off or fenced by the operator"
        ));
        Ok(())
    }

    pub(super) fn restart_lost_vm(&mut self, vm: &str, to: &str) -> Result<Recovery, BackendError> {
        let snap = self.snapshot()?;
        let v = snap.require_vm(vm)?;
        let from = snap.require_node(&v.node)?;
        if from.state == NodeState::Up {
            return Err(BackendError::NotPossible(format!(
                "{} answers, so {vm} is not lost; it is never started a second time",
                from.name
            )));
        }
        // Never on trust of the caller alone: a VM started twice on
        // shared storage corrupts its disks.
        let Some(&fenced_ms) = self.fenced.get(&from.name) else {
            return Err(BackendError::NotPossible(format!(
                "{} has not been confirmed powered off or fenced; make sure of it, then `{}`",
                from.name,
                shell_line(&[
                    "vmshift",
                    "recover",
                    &from.name,
                    "--confirm-fenced",
                    &from.name
                ])
            )));
        };
        let t = snap.require_node(to)?;
        if t.state != NodeState::Up {
            return Err(BackendError::NotPossible(format!(
                "{to} is {}; restart {vm} on a node that answers",
                t.state.label()
            )));
        }
        let xml = self
            .node_index(&from.name)
            .and_then(|i| self.last.get(&i))
            .and_then(|d| d.domains.iter().find(|d| d.name == vm))
            .map(|d| d.xml.clone())
            .filter(|x| !x.is_empty())
            .ok_or_else(|| {
                BackendError::NotPossible(format!(
                    "vmshift has no definition of {vm} from {}; define it on {to} by hand",
                    from.name
                ))
            })?;
        let dst = self
            .node_index(to)
            .ok_or_else(|| BackendError::Other(format!("node {to} is not configured")))?;
        let lost_ms = v.lost.as_ref().map_or(fenced_ms, |l| l.since_ms);
        let mut rec = Recovery {
            vm: vm.to_string(),
            from: from.name.clone(),
            to: to.to_string(),
            by: "operator".into(),
            steps: vec![
                (RecoveryStep::Lost, lost_ms),
                (RecoveryStep::FenceConfirmed, fenced_ms),
            ],
            error: None,
        };
        let result = (|| {
            let fail = |what: &str, e: virt::error::Error| {
                let msg = e.message();
                format!(
                    "{what} {vm} on {to} failed: {msg}{}",
                    if disk_locked(msg) {
                        " — its disk is still locked (QEMU's image lock, virtlockd or sanlock): something, maybe the lost node, still uses it, so it was not started a second time; find what holds it before anything else"
                    } else {
                        ""
                    }
                )
            };
            let conn = virt::connect::Connect::open(Some(&self.nodes[dst].spec.uri))
                .map_err(|e| fail("connecting to restart", e))?;
            let dom = conn
                .define_domain_xml(&xml)
                .map_err(|e| fail("defining", e))?;
            rec.reach(RecoveryStep::Defined, crate::record::now_ms());
            dom.create().map_err(|e| fail("starting", e))?;
            rec.reach(RecoveryStep::Started, crate::record::now_ms());
            Ok::<(), String>(())
        })();
        if let Err(e) = &result {
            rec.error = Some(e.clone());
        }
        self.recoveries.retain(|r| r.vm != vm);
        self.recoveries.push(rec.clone());
        match result {
            Ok(()) => {
                self.table().log(format!(
                    "{vm} restarted on {to} (recovered from lost node {})",
                    from.name
                ));
                Ok(rec)
            }
            Err(e) => Err(BackendError::NotPossible(e)),
        }
    }
}

/// A start refused because the disk is locked by another user: QEMU's own
/// image locking ("Failed to get \"write\" lock"), virtlockd or sanlock.
pub(super) fn disk_locked(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("lock")
        && (m.contains("failed to get")
            || m.contains("acquire")
            || m.contains("resource busy")
            || m.contains("held"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_disk_is_told_apart() {
        // QEMU 7.2's image locking, virtlockd, sanlock.
        assert!(disk_locked(
            "internal error: qemu unexpectedly closed the monitor: Failed to get \"write\" lock\nIs another process using the image [/s/a.img]?"
        ));
        assert!(disk_locked(
            "resource busy: Lockspace resource '/s/a.img' is locked"
        ));
        assert!(disk_locked("Failed to acquire lock: No space left"));
        assert!(!disk_locked(
            "Requested operation is not valid: domain is already running"
        ));
    }
}
