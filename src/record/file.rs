//! `migrations.jsonl` on disk: appends under an advisory lock with fsync,
//! and a reader that skips what it cannot use and counts it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{FILE_NAME, Record, SCHEMA};

/// Longest wait for another vmshift's lock on the file.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest flight recorder read (some 20,000 migrations).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Recorder {
    path: PathBuf,
    /// Tests: how long the write takes once the lock is held (a slow disk).
    #[cfg(test)]
    pub(crate) slow_disk: Option<Duration>,
}

/// A line the reader skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Damaged {
    /// 1-based line number.
    pub line: usize,
    pub why: String,
}

/// What reading the recorder found.
#[derive(Debug, Default)]
pub struct History {
    /// Every readable record, in file order.
    pub records: Vec<Record>,
    /// Lines that could not be used (torn, not UTF-8, not a record, from a
    /// newer vmshift, dated beyond year 9999).
    pub damaged: Vec<Damaged>,
}

impl History {
    /// One record per migration, in the order they first appear: the
    /// latest record of each id (a detached migration's completion replaces
    /// its detached record).
    pub fn latest(&self) -> Vec<&Record> {
        let mut order: Vec<&str> = Vec::new();
        let mut last: HashMap<&str, &Record> = HashMap::new();
        for r in &self.records {
            if last.insert(r.id.as_str(), r).is_none() {
                order.push(r.id.as_str());
            }
        }
        order.into_iter().map(|id| last[id]).collect()
    }

    /// Migrations last recorded as detached (left running), not completed since.
    pub fn open_detached(&self) -> Vec<&Record> {
        self.latest()
            .into_iter()
            .filter(|r| !r.is_final())
            .collect()
    }

    /// "2 damaged lines skipped (line 3: not UTF-8; …); the file is kept".
    pub fn damage_sentence(&self, path: &Path) -> Option<String> {
        if self.damaged.is_empty() {
            return None;
        }
        let n = self.damaged.len();
        let shown: Vec<String> = self
            .damaged
            .iter()
            .take(5)
            .map(|d| format!("line {}: {}", d.line, d.why))
            .collect();
        Some(format!(
            "{n} damaged line{} skipped in {} ({}{}); the file is kept",
            if n == 1 { "" } else { "s" },
            path.display(),
            shown.join("; "),
            if n > 5 { "; …" } else { "" }
        ))
    }
}

impl Recorder {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            #[cfg(test)]
            slow_disk: None,
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

    /// Appends one record under an exclusive advisory lock and syncs it to
    /// disk; a new file's (and a new folder's) directory entry is synced too.
    pub fn append(&self, record: &Record) -> Result<(), String> {
        self.append_unless(record, LOCK_TIMEOUT, &AtomicBool::new(false))
    }

    /// [`Recorder::append`], waiting at most `lock_timeout` for another
    /// process's lock, and giving up that wait as soon as `cancel` is set.
    /// Returns only once the record is on disk (synced) or has failed; a
    /// write or sync that fails is cut back off the file, so the file never
    /// keeps part of a line (a full disk).
    pub fn append_unless(
        &self,
        record: &Record,
        lock_timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<(), String> {
        let fail = |what: &str, e: io::Error| {
            format!(
                "cannot {what} the flight recorder {}: {e}",
                self.path.display()
            )
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_synced(dir).map_err(|e| fail("create the folder of", e))?;
        }
        let mut line = serde_json::to_string(record).map_err(|e| e.to_string())?;
        line.push('\n');
        // O_NONBLOCK: a FIFO in its place must not make this wait.
        let open = |new: bool| {
            let mut o = OpenOptions::new();
            o.append(true).read(true).custom_flags(libc::O_NONBLOCK);
            if new {
                o.create_new(true);
            }
            o.open(&self.path)
        };
        let (mut f, created) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (open(false).map_err(|e| fail("open", e))?, false)
            }
            Err(e) => return Err(fail("create", e)),
        };
        if !f.metadata().map_err(|e| fail("read", e))?.is_file() {
            return Err(format!(
                "the flight recorder {} is not a regular file (a folder, FIFO or device); move it aside (vmshift starts a new one)",
                self.path.display()
            ));
        }
        if created && let Some(dir) = self.path.parent() {
            sync_dir(dir).map_err(|e| fail("sync the folder of", e))?;
        }
        lock_exclusive(&f, lock_timeout, cancel).map_err(|e| fail("lock", e))?;
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
        #[cfg(test)]
        if let Some(d) = self.slow_disk {
            std::thread::sleep(d);
        }
        let written = f
            .write_all(line.as_bytes())
            .map_err(|e| fail("write", e))
            .and_then(|()| f.sync_all().map_err(|e| fail("sync", e)));
        if let Err(e) = written {
            // Part of the line may be in the file (a full disk takes what
            // fits): cut it back off, so that no later line is joined to it.
            return Err(match f.set_len(len).and_then(|()| f.sync_all()) {
                Ok(()) => e,
                Err(t) => format!(
                    "{e}; part of the line may be left at its end (cutting it off failed: {t})"
                ),
            });
        }
        Ok(())
        // Closing the file releases the lock.
    }

    /// Every usable record, oldest first; damaged lines are counted, never
    /// fatal. A file that is not a regular file (a FIFO, a folder, a link
    /// to a device) or larger than [`MAX_FILE_BYTES`] is one sentence.
    pub fn read(&self) -> Result<History, String> {
        match crate::input::read_state(&self.path, "the flight recorder", MAX_FILE_BYTES) {
            Ok(Some(bytes)) => Ok(parse(&bytes)),
            Ok(None) => Ok(History::default()),
            Err(e) => Err(format!("{e}; move it aside (vmshift starts a new one)")),
        }
    }
}

/// Reads the recorder's lines; anything unusable is skipped and counted.
pub fn parse(bytes: &[u8]) -> History {
    let mut h = History::default();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(raw, i + 1) {
            Ok(r) => h.records.push(r),
            Err(why) => h.damaged.push(Damaged { line: i + 1, why }),
        }
    }
    h
}

fn parse_line(raw: &[u8], line: usize) -> Result<Record, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON record ({e})"))?;
    let schema = match value.get("schema") {
        None => 1,
        Some(s) => s
            .as_u64()
            .ok_or_else(|| format!("schema {s} is not a version number"))?,
    };
    if schema > SCHEMA as u64 {
        return Err(format!(
            "written by a newer vmshift (schema {schema}); upgrade vmshift to read it"
        ));
    }
    let mut r: Record =
        serde_json::from_value(value).map_err(|e| format!("not a migration record ({e})"))?;
    if r.id.is_empty() {
        // Schema 1 had no id: the line number makes one.
        r.id = format!("line-{line}");
    }
    if r.started_at_ms == 0 {
        r.started_at_ms = r
            .recorded_at_ms
            .saturating_sub(r.migration.elapsed_ms.max(0.0) as u64);
    }
    if r.ended_at_ms.is_none() && r.is_final() {
        r.ended_at_ms = Some(r.recorded_at_ms);
    }
    super::check::record(&r)?;
    Ok(r)
}

/// Creates `dir` (and its parents); each folder created is synced into its
/// parent so that a crash cannot lose it.
fn create_dir_synced(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_synced(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// `flock(LOCK_EX)`, waiting at most `timeout` for another holder, and no
/// longer once `cancel` is set.
fn lock_exclusive(f: &File, timeout: Duration, cancel: &AtomicBool) -> io::Result<()> {
    let start = Instant::now();
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        let busy = matches!(
            e.raw_os_error(),
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR)
        );
        if !busy {
            return Err(e);
        }
        let waited = start.elapsed();
        if waited >= timeout || cancel.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "another process has held its lock for the {:.1} s vmshift waited (another vmshift stuck, or a hung disk)",
                    waited.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::{Migration, MigrationOptions, Outcome};
    use crate::record::{Journal, MAX_DATE_MS, Meta};

    fn migration(vm: &str) -> Migration {
        let mut m =
            Migration::starting(1, vm, "a", "b", MigrationOptions::default(), 1 << 30, 0, 0);
        m.outcome = Some(Outcome::Completed);
        m.actual_downtime_ms = Some(42.0);
        m
    }

    fn record(vm: &str) -> Record {
        Record::finished(&Meta::new(false, None), "sim", "c", &migration(vm))
    }

    #[test]
    fn records_survive_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::in_dir(dir.path());
        rec.append(&record("one")).unwrap();
        // A crash mid-write leaves half a line behind.
        let mut f = OpenOptions::new().append(true).open(rec.path()).unwrap();
        f.write_all(b"{\"recorded_at_ms\": 12").unwrap();
        rec.append(&record("two")).unwrap();
        let h = rec.read().unwrap();
        let vms: Vec<&str> = h.records.iter().map(|r| r.migration.vm.as_str()).collect();
        assert_eq!(
            vms,
            ["one", "two"],
            "the record after the torn line is whole"
        );
        assert_eq!(h.damaged.len(), 1);
        assert_eq!(h.damaged[0].line, 2);
    }

    /// A `\xff` line, a torn line, a record from year 10000 and one from a
    /// newer vmshift: each is skipped and counted, every other record shown.
    #[test]
    fn damaged_lines_are_skipped_and_counted_never_the_rest() {
        let good = serde_json::to_string(&record("good")).unwrap();
        let mut far = record("far");
        far.started_at_ms = MAX_DATE_MS + 1;
        let far = serde_json::to_string(&far).unwrap();
        let mut newer: serde_json::Value = serde_json::to_value(record("newer")).unwrap();
        newer["schema"] = 99.into();
        let mut bytes = Vec::new();
        for line in [
            good.as_bytes(),
            b"\xff\xfe{",
            good.as_bytes(),
            b"{\"schema\":2,\"id\":",
            far.as_bytes(),
            newer.to_string().as_bytes(),
            b"[1,2]",
            b"",
            good.as_bytes(),
        ] {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        let h = parse(&bytes);
        assert_eq!(h.records.len(), 3);
        assert!(h.records.iter().all(|r| r.migration.vm == "good"));
        let why: Vec<(usize, &str)> = h.damaged.iter().map(|d| (d.line, d.why.as_str())).collect();
        assert_eq!(why.len(), 5, "{why:?}");
        assert_eq!(why[0], (2, "not UTF-8"));
        assert!(why[1].1.starts_with("not a JSON record"), "{why:?}");
        assert_eq!(why[2], (5, "dated after year 9999"));
        assert!(why[3].1.contains("newer vmshift (schema 99)"), "{why:?}");
        assert!(why[4].1.starts_with("not a migration record"), "{why:?}");
        let s = h.damage_sentence(Path::new("m.jsonl")).unwrap();
        assert!(
            s.starts_with("5 damaged lines skipped in m.jsonl (line 2: not UTF-8;"),
            "{s}"
        );
        assert!(s.ends_with("; the file is kept"), "{s}");
    }

    /// A line written by the first vmshift (schema 1: no schema, id, start
    /// or end; fewer migration fields) still reads.
    #[test]
    fn schema_1_records_stay_readable() {
        let line = r#"{"recorded_at_ms":1764000000000,"operator":"ops","backend":"sim","cluster":"prod-east","migration":{"id":3,"vm":"web-01","from":"hv-01","to":"hv-02","options":{"max_downtime_ms":300,"bandwidth_bps":null,"auto_converge":false,"postcopy":"off","on_stall":"abort","copy_storage":false},"memory":4294967296,"started_at_ms":0,"step":"clean_up_source","rounds":[{"index":0,"bytes_sent":4294967296,"bytes_dirty":536870912,"dirty_bps":157286400,"bandwidth_bps":1153433600,"duration_ms":3723.6,"throttle_pct":0}],"outcome":{"result":"completed"},"actual_downtime_ms":35.5,"elapsed_ms":5000.0}}"#;
        let h = parse(format!("{line}\n{line}\n").as_bytes());
        assert!(h.damaged.is_empty(), "{:?}", h.damaged);
        let r = &h.records[0];
        assert_eq!((r.schema, r.id.as_str()), (1, "line-1"));
        assert_eq!(
            h.records[1].id, "line-2",
            "two old records are two migrations"
        );
        assert_eq!(r.started_at_ms, 1_764_000_000_000 - 5000);
        assert_eq!(r.ended_at_ms, Some(1_764_000_000_000));
        assert_eq!(r.migration.rounds.len(), 1);
        assert_eq!(
            r.migration.options.parallel_connections, 1,
            "a field added later"
        );
        assert_eq!(h.latest().len(), 2);
    }

    #[test]
    fn a_detached_record_is_completed_by_a_later_one_with_its_id() {
        let meta = Meta::new(false, Some(serde_json::json!({"rounds": 2})));
        let mut m = migration("web");
        m.outcome = None;
        let detached = Record::detached(&meta, "libvirt", "c", &m, "a");
        let other = record("other");
        let h = History {
            records: vec![detached.clone(), other.clone()],
            damaged: Vec::new(),
        };
        assert_eq!(h.open_detached(), [&detached]);
        let done = Record::finished(&meta, "libvirt", "c", &migration("web"));
        let h = History {
            records: vec![detached, other, done.clone()],
            damaged: Vec::new(),
        };
        assert!(h.open_detached().is_empty());
        let latest = h.latest();
        assert_eq!(latest.len(), 2);
        assert_eq!(
            latest[0], &done,
            "in the place of the first record of its id"
        );
        assert_eq!(done.prediction, Some(serde_json::json!({"rounds": 2})));
    }

    /// Many writers at once (threads here, processes in real life): the
    /// lock keeps every line whole.
    #[test]
    fn concurrent_appends_never_tear_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("state/vmshift");
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let rec = Recorder::in_dir(&nested);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        rec.append(&record(&format!("vm-{w}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let h = Recorder::in_dir(&nested).read().unwrap();
        assert!(h.damaged.is_empty(), "{:?}", h.damaged);
        assert_eq!(h.latest().len(), 80);
    }

    /// A disk so slow that the write has not ended when the flush's time
    /// and its grace are up: the record comes back failed (with the
    /// warning not to add it twice, since the write may still land) rather
    /// than in neither the written nor the failed.
    #[test]
    fn a_flush_returns_a_record_a_slow_disk_has_not_written_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::in_dir(dir.path());
        rec.slow_disk = Some(Duration::from_secs(4));
        let j = Journal::new(Ok(rec));
        j.submit(record("slow"));
        let start = std::time::Instant::now();
        let failures = j.flush(Duration::from_millis(200));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].record.migration.vm, "slow");
        assert!(
            failures[0]
                .error
                .contains("the disk had not finished writing it")
                && failures[0].error.contains("do not add it again"),
            "{}",
            failures[0].error
        );
    }

    #[test]
    fn the_journal_writes_each_final_record_once_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(Ok(Recorder::in_dir(dir.path())));
        let r = record("web");
        j.submit(r.clone());
        j.submit(r.clone());
        assert!(j.flush(Duration::from_secs(10)).is_empty());
        assert_eq!(j.written(), 1);
        assert_eq!(j.read().unwrap().records, [r]);

        // A state dir that cannot exist (under a file).
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"").unwrap();
        let j = Journal::new(Ok(Recorder::in_dir(&file.join("state"))));
        let heard = std::sync::Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        j.on_failure(move |e| h.lock().unwrap().push(e.to_string()));
        j.submit(record("lost"));
        let failures = j.flush(Duration::from_secs(10));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].record.migration.vm, "lost");
        assert!(
            failures[0].error.contains("cannot create the folder"),
            "{}",
            failures[0].error
        );
        let heard = heard.lock().unwrap();
        assert!(
            heard[0].starts_with("the migration of lost could not be recorded"),
            "{heard:?}"
        );
    }
}
