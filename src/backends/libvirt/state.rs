//! The libvirt backend's files in the state dir, read back: the last known
//! state of each node (`libvirt-known-CLUSTER.json`, to show and recover
//! the VMs of a node that is lost) and when each node last answered
//! (`libvirt-seen-CLUSTER.json`). Input like any other: read through
//! [`crate::input::read_state`], every figure range-checked; a file that
//! fails is ignored as a whole (with a warning in the log), never trusted.

use std::collections::HashMap;
use std::path::Path;

use super::node::NodeData;
use crate::record::MAX_DATE_MS;
use crate::record::check::{MAX_BYTES, MAX_RATE_BPS, num};

/// The largest last-known file read (every domain's XML of every node).
pub const MAX_KNOWN_BYTES: u64 = 64 << 20;
/// The largest last-seen file read.
pub const MAX_SEEN_BYTES: u64 = 1 << 20;
/// The most CPUs a node or a domain may have.
const MAX_CPUS: u32 = 1 << 16;

/// Node URI → its last known state, from the bytes of a last-known file.
pub fn parse_known(bytes: &[u8]) -> Result<HashMap<String, NodeData>, String> {
    let known: HashMap<String, NodeData> =
        serde_json::from_slice(bytes).map_err(|e| format!("not the last known nodes ({e})"))?;
    for (uri, n) in &known {
        check_node(n).map_err(|e| format!("node {}: {e}", crate::cluster::text::escape(uri)))?;
    }
    Ok(known)
}

/// Node URI → when it last answered (Unix ms), from the bytes of a
/// last-seen file.
pub fn parse_seen(bytes: &[u8]) -> Result<HashMap<String, u64>, String> {
    let seen: HashMap<String, u64> =
        serde_json::from_slice(bytes).map_err(|e| format!("not the last-seen times ({e})"))?;
    match seen.iter().find(|(_, t)| **t > MAX_DATE_MS) {
        Some((uri, _)) => Err(format!(
            "node {} last answered after year 9999",
            crate::cluster::text::escape(uri)
        )),
        None => Ok(seen),
    }
}

/// Reads the file at `path` with `parse`: `None` when there is none, or
/// when it cannot be used (said in the log).
pub fn load<T>(path: &Path, limit: u64, parse: fn(&[u8]) -> Result<T, String>) -> Option<T> {
    let used = crate::input::read_state(path, "the state file", limit).and_then(|b| {
        b.map(|b| parse(&b))
            .transpose()
            .map_err(|e| format!("{}: {e}", path.display()))
    });
    match used {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "a state file of the libvirt backend is ignored");
            None
        }
    }
}

fn figure(what: &str, v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {} is out of range (0 to {max})", num(v)))
    }
}

fn size(what: &str, v: u64) -> Result<(), String> {
    if v <= MAX_BYTES {
        Ok(())
    } else {
        Err(format!("{what} {v} bytes is out of range"))
    }
}

fn cpus(what: &str, v: u32) -> Result<(), String> {
    if v <= MAX_CPUS {
        Ok(())
    } else {
        Err(format!("{v} {what} is more than {MAX_CPUS}"))
    }
}

fn check_node(n: &NodeData) -> Result<(), String> {
    cpus("CPUs", n.cpus)?;
    size("memory", n.mem_total)?;
    size("free memory", n.mem_free)?;
    figure("CPU use %", n.cpu_used_pct, 100.0 * f64::from(MAX_CPUS))?;
    for p in &n.pools {
        size("pool capacity", p.capacity)?;
        size("pool allocation", p.allocation)?;
    }
    for d in &n.domains {
        let name = crate::cluster::text::escape(&d.name);
        let fail = |e: String| format!("domain {name}: {e}");
        cpus("vCPUs", d.vcpus).map_err(fail)?;
        size("memory", d.memory).map_err(fail)?;
        figure("CPU use %", d.cpu_pct, 100.0 * f64::from(MAX_CPUS)).map_err(fail)?;
        for (_, bytes) in &d.disks {
            size("disk", *bytes).map_err(fail)?;
        }
        for s in &d.samples {
            figure("sample period s", s.period_s, 86_400.0).map_err(fail)?;
            figure("dirty rate", s.bps, MAX_RATE_BPS as f64).map_err(fail)?;
        }
        for m in [d.mem_stats.rss, d.mem_stats.guest_in_use]
            .into_iter()
            .flatten()
        {
            size("memory in use", m).map_err(fail)?;
        }
    }
    Ok(())
}
