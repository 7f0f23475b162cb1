//! The libvirt backend's files in the state dir, written and read back: the last known
//! state of each node (`libvirt-known-CLUSTER.json`, to show and recover
//! the VMs of a node that is lost) and when each node last answered
//! (`libvirt-seen-CLUSTER.json`). Input like any other: read through
//! [`crate::input::read_state`], every figure range-checked; a file that
//! fails is ignored as a whole (with a warning in the log), never trusted.

use std::collections::HashMap;
use std::path::Path;

use super::LibvirtCluster;
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

/// How often the time each node last answered is saved: "last seen"
/// after a restart of vmshift is at most this much too early.
pub(super) const SEEN_SAVE_EVERY_MS: u64 = 5_000;

impl LibvirtCluster {
    /// Where the last known state of every node is kept between runs (its
    /// domains' definitions, to recover them if the node is lost).
    pub(super) fn known_path(&self) -> Option<std::path::PathBuf> {
        let name: String = self
            .cfg
            .cluster
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        crate::record::state_dir().map(|d| d.join(format!("libvirt-known-{name}.json")))
    }

    /// Where the time each node last answered is kept between runs.
    pub(super) fn seen_path(&self) -> Option<std::path::PathBuf> {
        let known = self.known_path()?;
        let name = known
            .file_name()?
            .to_string_lossy()
            .replace("-known-", "-seen-");
        Some(known.with_file_name(name))
    }

    /// Saves when each node last answered, at most every few seconds.
    pub(super) fn remember_seen(&mut self) {
        let newest = self.seen.values().copied().max().unwrap_or(0);
        if newest < self.seen_saved_ms + SEEN_SAVE_EVERY_MS {
            return;
        }
        self.seen_saved_ms = newest;
        let Some(path) = self.seen_path() else {
            return;
        };
        let map: HashMap<&str, u64> = self
            .seen
            .iter()
            .map(|(i, t)| (self.nodes[*i].spec.uri.as_str(), *t))
            .collect();
        if let Err(e) =
            crate::record::write_whole(&path, &serde_json::to_string(&map).unwrap_or_default())
                .map_err(|e| e.to_string())
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot save when the nodes last answered");
        }
    }

    /// Loads the last known state of nodes that have not answered yet.
    pub(super) fn recall(&mut self) {
        if let Some(seen) = self
            .seen_path()
            .and_then(|p| load(&p, MAX_SEEN_BYTES, parse_seen))
        {
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some(t) = seen.get(&n.spec.uri) {
                    self.seen.insert(i, *t);
                }
            }
        }
        let Some(path) = self.known_path() else {
            return;
        };
        let Some(known) = load(&path, MAX_KNOWN_BYTES, parse_known) else {
            return;
        };
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(d) = known.get(&n.spec.uri) {
                self.last.entry(i).or_insert_with(|| d.clone());
            }
        }
    }

    /// Saves the last known state when what runs where changed.
    pub(super) fn remember(&mut self) {
        let shape: String = {
            let mut keys: Vec<(&usize, &NodeData)> = self.last.iter().collect();
            keys.sort_by_key(|k| *k.0);
            keys.iter()
                .map(|(i, d)| {
                    let doms: Vec<String> = d
                        .domains
                        .iter()
                        .map(|x| format!("{}:{:?}:{}", x.name, x.state, x.xml.len()))
                        .collect();
                    format!("{i}={}", doms.join(","))
                })
                .collect::<Vec<_>>()
                .join(";")
        };
        if shape == self.known_shape {
            return;
        }
        self.known_shape = shape;
        let Some(path) = self.known_path() else {
            return;
        };
        let map: HashMap<&str, &NodeData> = self
            .last
            .iter()
            .map(|(i, d)| (self.nodes[*i].spec.uri.as_str(), d))
            .collect();
        let written = serde_json::to_string(&map)
            .map_err(|e| e.to_string())
            .and_then(|t| crate::record::write_whole(&path, &t).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the last known nodes");
        }
    }
}
