//! The flight recorder: one JSON line per migration in `migrations.jsonl`
//! in the state dir.
//!
//! Migrations are recorded at their source of truth: the backend that runs
//! them hands each one to a [`Journal`] when it ends (the simulator's
//! engine, libvirt's job-completed event or failure), exactly once,
//! whichever front end started it. A migration vmshift leaves running (a
//! libvirt migration when vmshift stops) is recorded as detached and
//! completed by a later record with the same id.
//!
//! Writes are appended under an advisory lock and fsynced ([`Recorder`]);
//! the reader skips and counts lines it cannot use and never loses the rest.

pub mod check;
pub mod cordon;
mod file;
mod journal;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cluster::Migration;

pub use cordon::Cordons;
pub use file::{Damaged, History, MAX_FILE_BYTES, Recorder, parse as parse_lines, state_dir};
pub use journal::{Failure, Journal};

pub const FILE_NAME: &str = "migrations.jsonl";

/// The record format this vmshift writes. Schema 1 (no `schema` field)
/// had no id, start or end; it is still read.
pub const SCHEMA: u32 = 2;

pub use crate::cluster::units::MAX_DATE_MS;

/// One line of the recorder. Fields added later must have defaults so that
/// older lines stay readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default = "schema_1")]
    pub schema: u32,
    /// Unique id of the migration; a later record with the same id (the
    /// completion of a detached one) supersedes an earlier one.
    #[serde(default)]
    pub id: String,
    /// Unix time in ms when vmshift started (or found) the migration.
    #[serde(default)]
    pub started_at_ms: u64,
    /// Unix time in ms when it ended; `None` while detached.
    #[serde(default)]
    pub ended_at_ms: Option<u64>,
    /// Unix time in ms when the record was written.
    pub recorded_at_ms: u64,
    pub operator: String,
    pub backend: String,
    pub cluster: String,
    /// Started outside this vmshift (virsh, another vmshift) and found running.
    #[serde(default)]
    pub found: bool,
    /// vmshift stopped while the migration still ran on this node (its
    /// source); a later record with the same id completes it.
    #[serde(default)]
    pub detached_on: Option<String>,
    /// The prediction shown before it started, as it was then.
    #[serde(default)]
    pub prediction: Option<serde_json::Value>,
    /// Anything the record cannot say otherwise (e.g. rounds not seen).
    #[serde(default)]
    pub note: Option<String>,
    /// A record of intent, written before the job starts: this process
    /// runs and follows the migration; its final record (same id) ends it.
    /// Another vmshift that finds the migration leaves the record to it,
    /// and writes it, marked orphaned, once that process is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_by: Option<Owner>,
    /// The vmshift that started it ended before it (killed, power loss):
    /// recorded by another from what it saw and libvirt's totals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orphaned: bool,
    /// The whole migration: options, every round, outcome, actual downtime.
    pub migration: Migration,
}

fn schema_1() -> u32 {
    1
}

/// A vmshift process: which host, which pid, and when it started (so that
/// a reused pid is not taken for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`).
    pub start_ticks: u64,
}

impl Owner {
    /// This process.
    pub fn this_process() -> Owner {
        let pid = std::process::id();
        Owner {
            host: host_name(),
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
        }
    }

    /// Whether the process still runs. One on another host cannot be
    /// seen from here: it counts as running.
    pub fn alive(&self) -> bool {
        if self.host != host_name() {
            return true;
        }
        start_ticks(self.pid).is_some_and(|t| t == self.start_ticks)
    }

    /// "pid 4242 on jump1".
    pub fn describe(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold
/// spaces and parentheses).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What a backend keeps about a migration from its start, for its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub id: String,
    pub started_at_ms: u64,
    pub found: bool,
    pub prediction: Option<serde_json::Value>,
}

impl Meta {
    /// A migration that starts (or is found) now.
    pub fn new(found: bool, prediction: Option<serde_json::Value>) -> Meta {
        Meta {
            id: uuid::Uuid::new_v4().to_string(),
            started_at_ms: now_ms(),
            found,
            prediction,
        }
    }

    /// The migration a detached record left running, found again.
    pub fn resumed(r: &Record) -> Meta {
        Meta {
            id: r.id.clone(),
            started_at_ms: r.started_at_ms,
            found: r.found,
            prediction: r.prediction.clone(),
        }
    }
}

impl Record {
    fn from_meta(meta: &Meta, backend: &str, cluster: &str, migration: &Migration) -> Record {
        Record {
            schema: SCHEMA,
            id: meta.id.clone(),
            started_at_ms: meta.started_at_ms,
            ended_at_ms: None,
            recorded_at_ms: now_ms(),
            operator: operator(),
            backend: backend.into(),
            cluster: cluster.into(),
            found: meta.found,
            detached_on: None,
            prediction: meta.prediction.clone(),
            note: None,
            running_by: None,
            orphaned: false,
            migration: migration.clone(),
        }
    }

    /// The record of intent of a migration this process starts now.
    pub fn started(meta: &Meta, backend: &str, cluster: &str, migration: &Migration) -> Record {
        let mut r = Self::from_meta(meta, backend, cluster, migration);
        r.running_by = Some(Owner::this_process());
        r
    }

    /// Whether a vmshift still follows this (open) record's migration: the
    /// process that started it runs (and is not this one).
    pub fn followed_elsewhere(&self) -> bool {
        self.running_by
            .as_ref()
            .is_some_and(|o| *o != Owner::this_process() && o.alive())
    }

    /// The record of a migration that has ended.
    pub fn finished(meta: &Meta, backend: &str, cluster: &str, migration: &Migration) -> Record {
        let mut r = Self::from_meta(meta, backend, cluster, migration);
        r.ended_at_ms = Some(r.recorded_at_ms);
        r
    }

    /// The record of a migration vmshift leaves running on `node`.
    pub fn detached(
        meta: &Meta,
        backend: &str,
        cluster: &str,
        migration: &Migration,
        node: &str,
    ) -> Record {
        let mut r = Self::from_meta(meta, backend, cluster, migration);
        r.detached_on = Some(node.into());
        r
    }

    /// Whether this record ends its migration's story.
    pub fn is_final(&self) -> bool {
        self.detached_on.is_none() && self.running_by.is_none()
    }
}

/// Writes `text` to `path` (and its folder) whole: beside it first, then
/// renamed over it, so a reader never sees half a file.
pub fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The wall clock in Unix ms (the clock a real cluster's times are on).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Who runs vmshift: the user behind sudo, else the login name, else the
/// account of the process's user id. Worked out once per process.
pub fn operator() -> String {
    static OPERATOR: OnceLock<String> = OnceLock::new();
    OPERATOR.get_or_init(find_operator).clone()
}

fn find_operator() -> String {
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

/// Past migrations of `cluster` from the default flight recorder (the last
/// record of each), oldest first, for the predictions to learn from; none
/// when it cannot be read.
pub fn past_migrations(cluster: &str) -> Vec<Migration> {
    past_migrations_noted(cluster).0
}

/// [`past_migrations`], and one sentence when the predictions learn from
/// less than the file holds: damaged records skipped (and counted), or a
/// file that cannot be read.
pub fn past_migrations_noted(cluster: &str) -> (Vec<Migration>, Option<String>) {
    let (records, note) = past_records_noted(cluster);
    (records.into_iter().map(|r| r.migration).collect(), note)
}

/// The records of `cluster` in the default flight recorder (the last of
/// each migration), oldest first; none when it cannot be read.
pub fn past_records(cluster: &str) -> Vec<Record> {
    past_records_noted(cluster).0
}

fn past_records_noted(cluster: &str) -> (Vec<Record>, Option<String>) {
    let rec = match Recorder::open_default() {
        Ok(r) => r,
        Err(_) => return (Vec::new(), None),
    };
    match rec.read() {
        Ok(h) => (
            h.latest()
                .into_iter()
                .filter(|r| r.cluster == cluster)
                .cloned()
                .collect(),
            h.damage_sentence(rec.path())
                .map(|s| format!("{s}, and the predictions leave those lines out")),
        ),
        Err(e) => (
            Vec::new(),
            Some(format!("the predictions learn from no past migration: {e}")),
        ),
    }
}
