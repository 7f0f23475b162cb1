//! The flight recorder: one JSON line per finished migration in
//! `migrations.jsonl` in the state dir, written with fsync so a crash never
//! loses a finished record.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cluster::Migration;

pub const FILE_NAME: &str = "migrations.jsonl";

/// One line of the recorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time in ms when the record was written.
    pub recorded_at_ms: u64,
    pub operator: String,
    pub backend: String,
    pub cluster: String,
    /// The whole migration: options, every round, outcome, actual downtime.
    pub migration: Migration,
}

impl Record {
    pub fn new(backend: &str, cluster: &str, migration: Migration) -> Self {
        Self {
            recorded_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            operator: operator(),
            backend: backend.into(),
            cluster: cluster.into(),
            migration,
        }
    }
}

/// Who runs vmshift: the user behind sudo, else the login name, else the
/// account of the process's user id.
fn operator() -> String {
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var).map(|v| v.trim().to_string())
            && !v.is_empty()
        {
            return v;
        }
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    uid.and_then(|uid| {
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
    })
    .or_else(|| uid.map(|u| format!("uid {u}")))
    .unwrap_or_else(|| "unknown".into())
}

/// The state dir: `VMSHIFT_STATE_DIR`, else the platform's state (or local
/// data) dir for vmshift.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VMSHIFT_STATE_DIR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let dirs = directories::ProjectDirs::from("", "", "vmshift")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf(),
    )
}

#[derive(Debug, Clone)]
pub struct Recorder {
    path: PathBuf,
}

/// What reading the recorder found.
#[derive(Debug, Default)]
pub struct History {
    pub records: Vec<Record>,
    /// Lines that could not be read (line number, error), e.g. a torn write.
    pub damaged: Vec<(usize, String)>,
}

impl Recorder {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
        }
    }

    /// The recorder in the default state dir.
    pub fn open_default() -> Result<Self, String> {
        state_dir().map(|d| Self::in_dir(&d)).ok_or_else(|| {
            "cannot find a state dir (no home directory); set VMSHIFT_STATE_DIR".into()
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&self, record: &Record) -> Result<(), String> {
        let fail = |what: &str, e: std::io::Error| {
            format!(
                "cannot {what} the flight recorder {}: {e}",
                self.path.display()
            )
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
        }
        let mut line = serde_json::to_string(record).map_err(|e| e.to_string())?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(|e| fail("open", e))?;
        // A torn last line (crash mid-write) must not swallow this record.
        let len = f.metadata().map_err(|e| fail("read", e))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))
                .map_err(|e| fail("read", e))?;
            f.read_exact(&mut last).map_err(|e| fail("read", e))?;
            if last[0] != b'\n' {
                line.insert(0, '\n');
            }
        }
        f.write_all(line.as_bytes()).map_err(|e| fail("write", e))?;
        f.sync_all().map_err(|e| fail("sync", e))
    }

    /// Every readable record, oldest first; damaged lines are listed, not fatal.
    pub fn read(&self) -> Result<History, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => {
                return Err(format!(
                    "cannot read the flight recorder {}: {e}",
                    self.path.display()
                ));
            }
        };
        let mut h = History::default();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str(line) {
                Ok(r) => h.records.push(r),
                Err(e) => h.damaged.push((i + 1, e.to_string())),
            }
        }
        Ok(h)
    }
}

/// Past migrations of `cluster` from the default flight recorder, oldest
/// first, for the predictions to learn from (none when it cannot be read).
pub fn past_migrations(cluster: &str) -> Vec<Migration> {
    Recorder::open_default()
        .and_then(|r| r.read())
        .map(|h| {
            h.records
                .into_iter()
                .filter(|r| r.cluster == cluster)
                .map(|r| r.migration)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::{SimCluster, clock::Speed};
    use crate::cluster::{Backend, MigrationRequest};

    #[test]
    fn records_survive_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::in_dir(dir.path());
        let mut sim = SimCluster::from_spec("small", Speed::Max).unwrap();
        let id = sim
            .start_migration(&MigrationRequest {
                vm: "web".into(),
                to: "node-b".into(),
                options: Default::default(),
                inputs: None,
                forecast: None,
            })
            .unwrap();
        let m = loop {
            sim.wait(std::time::Duration::from_millis(100));
            let m = sim.migration(id).unwrap();
            if m.is_finished() {
                break m;
            }
        };
        rec.append(&Record::new("sim", "small", m.clone())).unwrap();
        // A crash mid-write leaves half a line behind.
        let mut f = OpenOptions::new().append(true).open(rec.path()).unwrap();
        f.write_all(b"{\"recorded_at_ms\": 12").unwrap();
        rec.append(&Record::new("sim", "small", m.clone())).unwrap();
        let h = rec.read().unwrap();
        assert_eq!(
            h.records.len(),
            2,
            "the record after the torn line is whole"
        );
        assert_eq!(h.records[0].migration, m);
        assert_eq!(h.damaged.len(), 1);
        assert_eq!(h.damaged[0].0, 2);
    }
}
