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

use super::migrate::Shared;
use super::xml::{MarkXml, VMSHIFT_KEY, VMSHIFT_NS};

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
