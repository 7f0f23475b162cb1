//! vmshift's mark on the VMs a cluster manager owns (issue: never fight the
//! cluster manager, even when it does not answer). When Pacemaker answers
//! and owns a VM, vmshift writes `<managed manager resource since/>` into
//! the domain's `<metadata>` under its own namespace; the mark goes with
//! the domain when it migrates, and every vmshift install sees it, also
//! one whose Pacemaker does not answer or is not configured: such a VM is
//! then never moved, started or recovered behind its manager's back.
//!
//! Writes run on threads of their own: `virDomainSetMetadata` waits for the
//! domain's job lock (30 s behind a migration), so they are only tried on a
//! running domain with no job, and never hold up a poll.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use virt::sys;

use super::LibvirtCluster;
use super::migrate::Shared;
use super::node::NodeData;
use super::xml::{MarkXml, VMSHIFT_KEY, VMSHIFT_NS};
use crate::cluster::{ManagedMark, ManagerView, VmState};

/// One change of a domain's mark: written (`Some`) or removed (`None`).
pub struct MarkWrite {
    pub uri: String,
    pub vm: String,
    pub node: String,
    pub mark: Option<MarkXml>,
    pub persistent: bool,
}

/// Domains whose mark is being written now (vm@node).
pub type InFlight = Arc<Mutex<HashSet<String>>>;

/// Writes (or removes) the mark on its own thread; the event log says what
/// was done, or why it could not be.
pub fn spawn(shared: Shared, inflight: InFlight, w: MarkWrite) {
    let key = format!("{}@{}", w.vm, w.node);
    let new = inflight.lock().is_ok_and(|mut set| set.insert(key.clone()));
    if !new {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name(format!("mark-{}", w.vm))
        .spawn({
            let inflight = inflight.clone();
            let key = key.clone();
            move || {
                let text = match write(&w) {
                    Ok(()) => match &w.mark {
                        Some(m) => format!(
                            "{} marked in its libvirt metadata as {} resource {} (every vmshift then leaves it to {} even when {} does not answer)",
                            w.vm,
                            title(&m.manager),
                            m.resource,
                            title(&m.manager),
                            title(&m.manager)
                        ),
                        None => format!(
                            "{}: vmshift's cluster-manager mark removed from its metadata (no longer a resource)",
                            w.vm
                        ),
                    },
                    Err(e) => format!(
                        "could not {} vmshift's cluster-manager mark of {} on {}: {e}; vmshift tries again at the next poll",
                        if w.mark.is_some() { "write" } else { "remove" },
                        w.vm,
                        w.node
                    ),
                };
                let (lock, cv) = &*shared;
                if let Ok(mut t) = lock.lock() {
                    t.log(text);
                }
                cv.notify_all();
                if let Ok(mut set) = inflight.lock() {
                    set.remove(&key);
                }
            }
        });
    if spawned.is_err()
        && let Ok(mut set) = inflight.lock()
    {
        set.remove(&key);
    }
}

fn title(manager: &str) -> &'static str {
    match manager {
        "pacemaker" => "Pacemaker",
        _ => "its cluster manager",
    }
}

fn write(w: &MarkWrite) -> Result<(), String> {
    let conn = virt::connect::Connect::open(Some(&w.uri)).map_err(|e| e.message().to_string())?;
    let dom = conn
        .lookup_domain_by_name(&w.vm)
        .map_err(|e| e.message().to_string())?;
    let element = w.mark.as_ref().map(MarkXml::element);
    let mut flags = sys::VIR_DOMAIN_AFFECT_LIVE;
    if w.persistent {
        flags |= sys::VIR_DOMAIN_AFFECT_CONFIG;
    }
    dom.set_metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        element.as_deref(),
        Some(VMSHIFT_KEY),
        Some(VMSHIFT_NS),
        flags,
    )
    .map_err(|e| e.message().to_string())
}

impl LibvirtCluster {
    /// The VMs that carry vmshift's cluster-manager mark, and the marks
    /// brought in line with what the manager says where it answers: a VM
    /// it owns gets one (on a running domain with no job, on a thread of
    /// its own), one it no longer owns loses it.
    pub(super) fn marks(
        &self,
        data: &[(usize, String, &NodeData)],
        fresh: &[&str],
        manager: Option<&ManagerView>,
    ) -> Vec<ManagedMark> {
        let mut out: Vec<ManagedMark> = Vec::new();
        for (_, _, d) in data {
            for dom in d.domains.iter().filter(|x| !x.incoming) {
                if let Some(m) = &dom.managed
                    && out.iter().all(|o| o.vm != dom.name)
                {
                    out.push(ManagedMark {
                        vm: dom.name.clone(),
                        manager: m.manager.clone(),
                        resource: m.resource.clone(),
                        since_ms: m.since_ms,
                    });
                }
            }
        }
        // Only a manager that answers now says who it owns.
        let Some(view) = manager.filter(|v| v.known && v.error.is_none()) else {
            return out;
        };
        let now = crate::record::now_ms();
        for (i, node, d) in data {
            if !fresh.contains(&node.as_str()) {
                continue;
            }
            for dom in &d.domains {
                let quiet = dom.state == VmState::Running && !dom.incoming && !dom.migrating_out;
                let owner = view.vms.iter().find(|m| m.domain == dom.name);
                let want = owner.map(|o| MarkXml {
                    manager: view.kind.clone(),
                    resource: o.resource.clone(),
                    since_ms: dom
                        .managed
                        .as_ref()
                        .filter(|m| m.resource == o.resource)
                        .map_or(now, |m| m.since_ms),
                });
                let same = match (&want, &dom.managed) {
                    (Some(w), Some(h)) => w.manager == h.manager && w.resource == h.resource,
                    (None, None) => true,
                    _ => false,
                };
                if let Some(w) = &want
                    && out.iter().all(|o| o.vm != dom.name)
                {
                    out.push(ManagedMark {
                        vm: dom.name.clone(),
                        manager: w.manager.clone(),
                        resource: w.resource.clone(),
                        since_ms: w.since_ms,
                    });
                }
                if same || !quiet {
                    continue;
                }
                if want.is_none() {
                    out.retain(|o| o.vm != dom.name);
                }
                spawn(
                    self.shared.clone(),
                    self.mark_writes.clone(),
                    MarkWrite {
                        uri: self.nodes[*i].spec.uri.clone(),
                        vm: dom.name.clone(),
                        node: node.clone(),
                        mark: want,
                        persistent: dom.persistent,
                    },
                );
            }
        }
        out
    }
}
