//! Cordons kept by this vmshift install: `cordons.json` in the state dir.
//!
//! A cordoned node is never offered as a target (placement refuses it).
//! The list is local to this install: another vmshift, virsh or a cluster
//! manager does not see it. A backend whose cluster manager has its own
//! notion (Pacemaker standby) overrides [`crate::backends::Backend::set_cordon`]
//! and marks its nodes itself; the others use this list.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MAX_DATE_MS;
use crate::cluster::{ClusterSnapshot, Cordon};
use crate::input::ReadError;

pub const CORDON_FILE: &str = "cordons.json";

/// The largest cordon list read: far more than any cluster's nodes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a cordon list's bytes: (cluster, node, since Unix ms) of each
/// entry. `Err` says what is wrong (not UTF-8, not the list's JSON, an
/// entry dated after year 9999).
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String, u64)>, String> {
    Ok(parse_entries(bytes)?
        .into_iter()
        .map(|e| (e.cluster, e.node, e.since_unix_ms))
        .collect())
}

fn parse_entries(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text: bad byte at offset {}", e.valid_up_to()))?;
    let body: FileBody = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(e) = body.cordons.iter().find(|e| e.since_unix_ms > MAX_DATE_MS) {
        return Err(format!(
            "the cordon of {} is dated after year 9999",
            crate::cluster::text::escape(&e.node)
        ));
    }
    Ok(body.cordons)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    cluster: String,
    node: String,
    since_unix_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct FileBody {
    cordons: Vec<Entry>,
}

/// The cordon list: a file in the state dir, or (tests, no state dir)
/// memory only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cordons {
    file: Option<PathBuf>,
    mem: Vec<Entry>,
}

impl Cordons {
    /// Kept in memory only: gone when vmshift ends.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// `cordons.json` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            file: Some(dir.join(CORDON_FILE)),
            mem: Vec::new(),
        }
    }

    /// The state dir's list (memory only when there is no state dir).
    pub fn open_default() -> Self {
        match super::state_dir() {
            Some(d) => Self::in_dir(&d),
            None => Self::in_memory(),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn read(&self) -> Result<Vec<Entry>, String> {
        let Some(path) = &self.file else {
            return Ok(self.mem.clone());
        };
        let repair = "fix it or remove it and cordon the nodes again";
        let bytes = match crate::input::read_bytes(path, MAX_FILE_BYTES) {
            Ok(b) => b,
            Err(ReadError::NotFound) => return Ok(Vec::new()),
            Err(ReadError::Other(e)) => {
                return Err(format!(
                    "the cordon list {} cannot be read: {e}; {repair}",
                    path.display()
                ));
            }
        };
        parse_entries(&bytes).map_err(|e| {
            format!(
                "the cordon list {} is damaged ({e}); {repair}",
                path.display()
            )
        })
    }

    fn write(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let Some(path) = &self.file else {
            self.mem = entries;
            return Ok(());
        };
        let fail = |e: std::io::Error| {
            format!(
                "cannot write the cordon list {}: {e}; check that the state dir is writable",
                path.display()
            )
        };
        let body = serde_json::to_string_pretty(&FileBody { cordons: entries })
            .expect("cordons serialize");
        super::write_whole(path, &(body + "\n")).map_err(fail)
    }

    /// The cordoned nodes of `cluster`: (node, cordon).
    pub fn list(&self, cluster: &str) -> Result<Vec<(String, Cordon)>, String> {
        Ok(self
            .read()?
            .into_iter()
            .filter(|e| e.cluster == cluster)
            .map(|e| (e.node, Cordon::local(e.since_unix_ms)))
            .collect())
    }

    /// Cordons (`on`) or uncordons `node` of `cluster` at `now_unix_ms`;
    /// returns whether anything changed (cordoning a cordoned node keeps
    /// its first time).
    pub fn set(
        &mut self,
        cluster: &str,
        node: &str,
        on: bool,
        now_unix_ms: u64,
    ) -> Result<bool, String> {
        let mut entries = self.read()?;
        let pos = entries
            .iter()
            .position(|e| e.cluster == cluster && e.node == node);
        match (pos, on) {
            (Some(_), true) | (None, false) => return Ok(false),
            (None, true) => entries.push(Entry {
                cluster: cluster.into(),
                node: node.into(),
                since_unix_ms: now_unix_ms,
            }),
            (Some(i), false) => {
                entries.remove(i);
            }
        }
        self.write(entries)?;
        Ok(true)
    }

    /// Marks the cordoned nodes of `snap`. A list that cannot be read
    /// fails closed: `snap` says so ([`ClusterSnapshot::cordons_unreadable`]),
    /// placement refuses every node, and it is an alarm.
    pub fn mark(&self, snap: &mut ClusterSnapshot) {
        match self.list(&snap.cluster) {
            Ok(list) => {
                for (node, c) in list {
                    if let Some(n) = snap.nodes.iter_mut().find(|n| n.name == node)
                        && n.cordon.is_none()
                    {
                        n.cordon = Some(c);
                    }
                }
            }
            Err(e) => {
                snap.alarms.push(format!(
                    "{e}; until then no VM is moved, started or restarted onto any node"
                ));
                snap.cordons_unreadable = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cordons_survive_a_restart_per_cluster_and_keep_their_first_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cordons::in_dir(dir.path());
        assert_eq!(c.set("demo", "hv-01", true, 1000), Ok(true));
        assert_eq!(c.set("demo", "hv-01", true, 2000), Ok(false));
        assert_eq!(c.set("other", "hv-01", true, 3000), Ok(true));
        let again = Cordons::in_dir(dir.path());
        assert_eq!(
            again.list("demo").unwrap(),
            vec![("hv-01".to_string(), Cordon::local(1000))]
        );
        let mut again = again;
        assert_eq!(again.set("demo", "hv-01", false, 4000), Ok(true));
        assert_eq!(again.set("demo", "hv-01", false, 4000), Ok(false));
        assert!(Cordons::in_dir(dir.path()).list("demo").unwrap().is_empty());
        assert_eq!(Cordons::in_dir(dir.path()).list("other").unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_list_is_one_sentence_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CORDON_FILE), "{not json").unwrap();
        let mut c = Cordons::in_dir(dir.path());
        let e = c.set("demo", "hv-01", true, 1).unwrap_err();
        assert!(e.contains("cordons.json is damaged"), "{e}");
        assert!(e.contains("remove it"), "{e}");
    }

    #[test]
    fn memory_only_lists_work_without_a_state_dir() {
        let mut c = Cordons::in_memory();
        assert!(c.path().is_none());
        c.set("demo", "a", true, 5).unwrap();
        assert_eq!(c.list("demo").unwrap()[0].1.since_unix_ms, 5);
    }
}
