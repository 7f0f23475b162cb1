//! The state dir's files are input (issue 16): a FIFO, a folder, a link to
//! `/dev/zero`, a truncated file or absurd values never hang, panic or get
//! trusted; a damaged cordon list fails closed; a record that cannot be
//! written (lock held, full disk) is exit 6 with the record on stderr and
//! never a partial line. Through the real binary where it matters, and a
//! property test over every state-file reader.

mod common;

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{Cordon, NodeState, VmAction};
use vmshift::plan::{self, Refusal};
use vmshift::record::check::{MAX_BYTES, MAX_DOWNTIME_MS, MAX_DURATION_MS, MAX_RATE_BPS};
use vmshift::record::{Cordons, Journal, MAX_DATE_MS, Record, Recorder, cordon, parse_lines};

/// Longest any command here may take: far beyond a quick answer, far
/// below a hang.
const PROMPT: Duration = Duration::from_secs(30);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn vmshift(args: &[&str], state: &Path) -> Run {
    let start = Instant::now();
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(args)
        .env("VMSHIFT_STATE_DIR", state)
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", state)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("VMSHIFT_LOG")
        .timeout(PROMPT)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        took: start.elapsed(),
    };
    assert!(
        r.took < PROMPT && r.code != -1,
        "vmshift {args:?} hung ({:?}): {}{}",
        r.took,
        r.stdout,
        r.stderr
    );
    assert_ne!(r.code, 101, "vmshift {args:?} panicked: {}", r.stderr);
    r
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// `vmshift migrate` onto `node` of the default cluster, for real.
fn migrate(state: &Path, node: &str) -> Run {
    vmshift(&["migrate", "web-01", node, "--speed", "max"], state)
}

/// The JSON record printed on stderr (to add by hand), if any.
fn record_on_stderr(stderr: &str) -> Option<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("migration").is_some())
}

// ---- cordons.json: every damage fails closed --------------------------

/// Ways a cordon list can be damaged, each made in `dir`, hv-02 cordoned
/// in what was meant.
fn damage_cordons(dir: &Path, how: &str) {
    let path = dir.join("cordons.json");
    let whole = r#"{"cordons":[{"cluster":"demo","node":"hv-02","since_unix_ms":1764000000000}]}"#;
    match how {
        "fifo" => mkfifo(&path),
        "directory" => std::fs::create_dir(&path).unwrap(),
        "truncated" => std::fs::write(&path, &whole[..whole.len() - 9]).unwrap(),
        "year 10000" => std::fs::write(
            &path,
            whole.replace("1764000000000", &(MAX_DATE_MS + 1).to_string()),
        )
        .unwrap(),
        "/dev/zero" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
        "not UTF-8" => std::fs::write(&path, b"{\"cordons\":[\xff]}").unwrap(),
        _ => unreachable!(),
    }
}

const CORDON_DAMAGE: [&str; 6] = [
    "fifo",
    "directory",
    "truncated",
    "year 10000",
    "/dev/zero",
    "not UTF-8",
];

/// `status` answers at once and says the list is damaged; `migrate` onto
/// a node the list does not even name is refused (exit 3) with one
/// sentence naming the file and its repair, and nothing moves or is
/// recorded; `cordon` refuses too.
#[test]
fn a_damaged_cordon_list_refuses_every_move_through_the_binary() {
    for how in CORDON_DAMAGE {
        let dir = tempfile::tempdir().unwrap();
        damage_cordons(dir.path(), how);
        let file = dir.path().join("cordons.json");
        let file = file.display().to_string();

        let s = vmshift(&["status"], dir.path());
        assert_eq!(s.code, 0, "{how}: {}", s.stderr);
        assert!(
            s.stdout.contains(&format!("the cordon list {file}")),
            "{how}: the alarm in the status: {}",
            s.stdout
        );

        let m = migrate(dir.path(), "hv-03");
        assert_eq!(m.code, 3, "{how}: {}{}", m.stdout, m.stderr);
        let said: Vec<&str> = m.stderr.lines().collect();
        assert!(
            said.iter()
                .any(|l| l.contains(&format!("the cordon list {file}"))
                    && l.contains("remove it and cordon the nodes again")
                    && l.contains("no VM is moved, started or restarted onto any node")),
            "{how}: {}",
            m.stderr
        );
        assert!(
            !m.stdout.contains("done"),
            "{how}: nothing moves: {}",
            m.stdout
        );
        assert!(
            !dir.path().join("migrations.jsonl").exists(),
            "{how}: nothing ran, nothing is recorded"
        );

        let c = vmshift(&["cordon", "hv-04"], dir.path());
        assert_ne!(c.code, 0, "{how}: {}", c.stdout);
        assert!(c.stderr.contains("the cordon list"), "{how}: {}", c.stderr);
    }
}

/// The same list read by a backend: placement refuses every VM on every
/// node, a start anywhere and a recovery too, each with the file's name.
#[test]
fn a_damaged_cordon_list_makes_placement_refuse_every_node() {
    for how in CORDON_DAMAGE {
        let dir = tempfile::tempdir().unwrap();
        damage_cordons(dir.path(), how);
        let mut sim = SimCluster::from_spec("default", Speed::Max).unwrap();
        *sim.cordons() = Cordons::in_dir(dir.path());
        let mut snap = sim.snapshot().unwrap();
        let why = snap
            .cordons_unreadable
            .clone()
            .unwrap_or_else(|| panic!("{how}: the damage is not seen"));
        assert!(why.contains("cordons.json"), "{how}: {why}");
        assert!(
            snap.alarms.iter().any(|a| a.contains("cordons.json")),
            "{how}: it is an alarm"
        );
        let mut checked = 0;
        for vm in &snap.vms {
            for node in &snap.nodes {
                if vm.node == node.name {
                    continue;
                }
                match plan::check(&snap, vm, node, true) {
                    Err(Refusal::CordonsUnreadable(e)) => assert_eq!(e, why),
                    // Refused for another reason first (not running, the
                    // node down): it does not move either.
                    Err(_) => {}
                    Ok(_) => panic!("{how}: {} may go to {}", vm.name, node.name),
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "{how}: {checked}");
        let stopped = snap
            .vms
            .iter()
            .find(|v| v.state == vmshift::cluster::VmState::Stopped);
        if let Some(vm) = stopped {
            let e = plan::check_vm_action(&snap, vm, VmAction::Start).unwrap_err();
            assert!(e.contains("cordons.json"), "{how}: {e}");
        }
        let lost = snap.nodes[0].name.clone();
        snap.nodes[0].state = NodeState::Down;
        let e = plan::plan_recover(&snap, &lost).unwrap_err();
        assert!(e.contains("cordons.json"), "{how}: {e}");
    }
}

/// A good list: recovery restarts nothing onto a cordoned node (and does
/// onto the others).
#[test]
fn recovery_never_restarts_onto_a_cordoned_node() {
    let targets = |cordon: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut sim = SimCluster::from_spec("default", Speed::Max).unwrap();
        *sim.cordons() = Cordons::in_dir(dir.path());
        if cordon {
            sim.set_cordon("hv-02", true).unwrap();
        }
        let mut snap = sim.snapshot().unwrap();
        snap.nodes
            .iter_mut()
            .find(|n| n.name == "hv-01")
            .unwrap()
            .state = NodeState::Down;
        let plan = plan::plan_recover(&snap, "hv-01").unwrap();
        plan.restarts.into_iter().map(|r| r.to).collect::<Vec<_>>()
    };
    assert!(
        targets(false).iter().any(|t| t == "hv-02"),
        "{:?}",
        targets(false)
    );
    let t = targets(true);
    assert!(!t.is_empty() && !t.iter().any(|t| t == "hv-02"), "{t:?}");
}

/// The simulator's HA restarts go through the same check: with a damaged
/// list no VM of a failed node is restarted anywhere, and each says why;
/// with a good list they are.
#[test]
fn the_simulators_ha_restarts_refuse_every_node_when_the_cordon_list_is_damaged() {
    let restarted_elsewhere = |damaged: bool| {
        let dir = tempfile::tempdir().unwrap();
        if damaged {
            damage_cordons(dir.path(), "truncated");
        }
        let mut sim = SimCluster::from_spec("default", Speed::Max).unwrap();
        *sim.cordons() = Cordons::in_dir(dir.path());
        let ha: Vec<String> = sim
            .snapshot()
            .unwrap()
            .vms
            .iter()
            .filter(|v| v.node == "hv-01" && v.ha && v.state == vmshift::cluster::VmState::Running)
            .map(|v| v.name.clone())
            .collect();
        assert!(!ha.is_empty());
        sim.fail_node("hv-01");
        sim.advance(Duration::from_secs(600));
        let snap = sim.snapshot().unwrap();
        let moved = snap
            .vms
            .iter()
            .filter(|v| ha.contains(&v.name) && v.node != "hv-01")
            .count();
        let said = snap
            .events
            .iter()
            .filter(|e| e.text.contains("could not be restarted: the cordon list"))
            .count();
        (moved, said, ha.len())
    };
    let (moved, said, n) = restarted_elsewhere(true);
    assert_eq!((moved, said), (0, n), "damaged list");
    let (moved, said, n) = restarted_elsewhere(false);
    assert_eq!((moved, said), (n, 0), "good list");
}

/// The interactive view with a FIFO as the cordon list and as the flight
/// recorder: it opens at once, the alarm names the cordon list, and the
/// target list refuses every node with its sentence.
#[test]
fn the_view_opens_at_once_and_refuses_every_target_when_the_cordon_list_is_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("cordons.json"));
    mkfifo(&dir.path().join("migrations.jsonl"));
    let cmd = format!(
        "env VMSHIFT_CONFIG= VMSHIFT_STATE_DIR={} {} --speed 20; echo VMSHIFT-EXIT=$?; sleep 600",
        dir.path().display(),
        env!("CARGO_BIN_EXE_vmshift")
    );
    let t = common::tmux::Tmux::start("fifo", 200, 50, &cmd);
    let s = t.wait_text("hv-04", PROMPT);
    assert!(s.contains("the cordon list"), "the alarm:\n{s}");
    t.keys(&["m"]);
    // Each of the other nodes refused with the sentence (the list fills
    // in as the verdicts come).
    let refused = |s: &str, node: &str| {
        s.lines().any(|l| {
            l.contains(&format!("✗ {node} "))
                && l.contains("the cordon list")
                && l.contains("cordons.json cannot be read")
        })
    };
    let s = t.wait_for("every target refused", PROMPT, |s| {
        s.contains("move web-01 from hv-01")
            && ["hv-02", "hv-03", "hv-04"].iter().all(|n| refused(s, n))
    });
    assert!(s.contains("0 allowed"), "{s}");
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    t.wait_text("VMSHIFT-EXIT=0", PROMPT);
}

/// A cordon dated after year 9999 (from a cluster manager, which the list
/// does not check) is shown, never a panic.
#[test]
fn a_cordon_beyond_year_9999_is_shown_not_a_panic() {
    for ms in [MAX_DATE_MS + 1, u64::MAX] {
        assert_eq!(Cordon::local(ms).since_text(), "after year 9999");
    }
    assert_eq!(
        Cordon::local(MAX_DATE_MS).since_text(),
        "9999-12-31 23:59 UTC"
    );
}

// ---- migrations.jsonl: read with bounds, records checked -------------

/// A FIFO, a folder or a link to `/dev/zero` as the flight recorder:
/// `history` says so at once; `migrate --dry-run` predicts without it;
/// a real `migrate` cannot record and exits 6 with the record on stderr.
#[test]
fn a_flight_recorder_that_is_not_a_file_is_refused_at_once() {
    for how in ["fifo", "directory", "/dev/zero"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("migrations.jsonl");
        match how {
            "fifo" => mkfifo(&path),
            "directory" => std::fs::create_dir(&path).unwrap(),
            _ => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
        }
        let st = vmshift(&["status"], dir.path());
        assert_eq!(st.code, 0, "{how}: {}", st.stderr);
        let h = vmshift(&["history"], dir.path());
        assert_eq!(h.code, 2, "{how}: {}", h.stdout);
        assert!(
            h.stderr.contains(&format!(
                "cannot read the flight recorder {}: it is not a regular file",
                path.display()
            )) && h.stderr.contains("move it aside"),
            "{how}: {}",
            h.stderr
        );
        let d = vmshift(
            &["migrate", "web-01", "hv-04", "--speed", "max", "--dry-run"],
            dir.path(),
        );
        assert_eq!(d.code, 0, "{how}: {}", d.stderr);
        assert!(d.stdout.contains("predict"), "{how}: {}", d.stdout);
        let m = migrate(dir.path(), "hv-04");
        assert_eq!(m.code, 6, "{how}: {}{}", m.stdout, m.stderr);
        assert!(
            m.stderr
                .contains("the migration of web-01 could not be recorded"),
            "{how}: {}",
            m.stderr
        );
        let r = record_on_stderr(&m.stderr).expect("the record on stderr");
        assert_eq!(r["migration"]["vm"], "web-01");
    }
}

/// The log (written, not read, but opened in the state dir too): a FIFO in
/// its place is a warning and vmshift goes on, never waits for a reader.
#[test]
fn a_fifo_as_the_log_is_a_warning_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("vmshift.log");
    mkfifo(&log);
    let start = Instant::now();
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .arg("status")
        .env("VMSHIFT_STATE_DIR", dir.path())
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", dir.path())
        .env("VMSHIFT_LOG", "info")
        .timeout(PROMPT)
        .output()
        .unwrap();
    assert!(start.elapsed() < PROMPT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("the log {} cannot be written", log.display()))
            && stderr.contains("going on without a log"),
        "{stderr}"
    );
}

/// One record with a downtime of 1e308 ms (and others with absurd rates,
/// durations and sizes): `history` skips and counts them, and the
/// prediction is exactly what it is without them.
#[test]
fn absurd_history_records_are_skipped_counted_and_never_predict() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(migrate(dir.path(), "hv-04").code, 0);
    let dry = ["migrate", "web-01", "hv-04", "--speed", "max", "--dry-run"];
    let before = vmshift(&dry, dir.path());
    assert_eq!(before.code, 0, "{}", before.stderr);
    let path = dir.path().join("migrations.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    let good: Value = serde_json::from_str(good.trim()).unwrap();
    let absurd: [(&str, Value); 5] = [
        ("/migration/actual_downtime_ms", 1e308.into()),
        ("/migration/rounds/0/duration_ms", 1e300.into()),
        ("/migration/rounds/0/bandwidth_bps", u64::MAX.into()),
        ("/migration/elapsed_ms", (-5.0).into()),
        ("/migration/memory", u64::MAX.into()),
    ];
    let mut text = String::new();
    for (i, (ptr, v)) in absurd.iter().enumerate() {
        let mut r = good.clone();
        r["id"] = format!("absurd-{i}").into();
        *r.pointer_mut(ptr).unwrap_or_else(|| panic!("{ptr}")) = v.clone();
        text += &format!("{r}\n");
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();

    let after = vmshift(&dry, dir.path());
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(
        after.stderr.contains("5 damaged lines skipped")
            && after
                .stderr
                .contains("the predictions leave those lines out"),
        "{}",
        after.stderr
    );
    assert_eq!(
        after.stdout, before.stdout,
        "the absurd records changed the prediction"
    );
    let h = vmshift(&["history"], dir.path());
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert_eq!(h.stdout.lines().count(), 1, "{}", h.stdout);
    assert!(
        h.stderr.contains("5 damaged lines skipped")
            && h.stderr.contains("downtime 1e308 ms is out of range"),
        "{}",
        h.stderr
    );
    let read = Recorder::in_dir(dir.path()).read().unwrap();
    assert_eq!((read.records.len(), read.damaged.len()), (1, 5));
}

// ---- writing a record: durable, or exit 6 ------------------------------

/// Holds an exclusive flock on `path` until dropped.
struct Held(#[allow(dead_code)] File);

fn hold_lock(path: &Path) -> Held {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    Held(f)
}

/// Another process holds the flight recorder's lock all along: `migrate`
/// exits 6 with the record on stderr (it used to exit 0 and lose it), and
/// the file is untouched.
#[test]
fn a_lock_held_by_another_process_is_exit_6_with_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrations.jsonl");
    let held = hold_lock(&path);
    let m = migrate(dir.path(), "hv-04");
    drop(held);
    assert_eq!(m.code, 6, "{}{}", m.stdout, m.stderr);
    assert!(
        m.stdout.contains("done     web-01 now runs on hv-04"),
        "{}",
        m.stdout
    );
    assert!(
        m.stderr.contains("could not be recorded") && m.stderr.contains("lock"),
        "{}",
        m.stderr
    );
    let r = record_on_stderr(&m.stderr).expect("the record on stderr");
    assert_eq!(r["migration"]["vm"], "web-01");
    assert_eq!(r["migration"]["outcome"]["result"], "completed");
    assert!(m.took < Duration::from_secs(20), "{:?}", m.took);
    assert_eq!(std::fs::read(&path).unwrap(), b"", "nothing written");
}

/// The journal's flush, out of time while the record waits for the lock:
/// the record comes back failed (it used to be in neither the queue nor
/// the failures, and so lost); a second one queued behind it too.
#[test]
fn a_flush_out_of_time_returns_the_record_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::in_dir(dir.path());
    let held = hold_lock(rec.path());
    let journal = Journal::new(Ok(rec.clone()));
    let template = template_record();
    let mut a: Record = serde_json::from_value(template.clone()).unwrap();
    a.id = "a".into();
    let mut b = a.clone();
    b.id = "b".into();
    journal.submit(a);
    journal.submit(b);
    let start = Instant::now();
    let failures = journal.flush(Duration::from_millis(300));
    let took = start.elapsed();
    drop(held);
    let ids: Vec<&str> = failures.iter().map(|f| f.record.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{failures:?}");
    assert!(ids.contains(&"a") && ids.contains(&"b"), "{ids:?}");
    let a = failures.iter().find(|f| f.record.id == "a").unwrap();
    assert!(a.error.contains("lock"), "{}", a.error);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(journal.written(), 0);
    assert_eq!(std::fs::read(rec.path()).unwrap(), b"");
}

/// Waiting for the record of intent (before a migration starts) gives up
/// nothing: while another process holds the lock it says "not yet" and
/// the record waits on; once the lock is free it is written.
#[test]
fn waiting_for_the_record_of_intent_gives_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::in_dir(dir.path());
    let held = hold_lock(rec.path());
    let journal = Journal::new(Ok(rec.clone()));
    let mut a: Record = serde_json::from_value(template_record()).unwrap();
    a.id = "intent".into();
    journal.submit(a);
    assert!(
        !journal.wait_idle(Duration::from_millis(300)),
        "the lock is held"
    );
    assert_eq!(journal.written(), 0);
    drop(held);
    assert!(journal.wait_idle(Duration::from_secs(10)));
    assert_eq!(journal.written(), 1);
    assert!(
        journal.flush(Duration::from_secs(1)).is_empty(),
        "no failure"
    );
    let h = rec.read().unwrap();
    assert_eq!(h.records.len(), 1);
    assert_eq!(h.records[0].id, "intent");
}

/// A small tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn small_tmpfs() -> Option<Tmpfs> {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Tmpfs(dir.path().to_path_buf(), dir))
}

/// Fills the file system under `dir` to the last byte.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = File::create(dir.join("filler")).unwrap();
    for chunk in [4096, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
}

/// A full disk: the flight recorder's last page has room for part of the
/// record only. `migrate` exits 6 with the record on stderr, and the file
/// is exactly as it was (the part that fitted is cut back off).
#[test]
fn a_full_disk_is_exit_6_and_never_a_partial_line() {
    let Some(fs) = small_tmpfs() else {
        // Not allowed to mount here (not root): the same cut-back is
        // covered by the file-size limit below, which needs no rights.
        eprintln!("cannot mount a tmpfs here; the full-disk case runs as root only");
        return;
    };
    let state = fs.0.join("state");
    std::fs::create_dir(&state).unwrap();
    let path = state.join("migrations.jsonl");
    // One good record, then blank lines up to 100 bytes short of a page.
    let mut before = format!("{}\n", template_record()).into_bytes();
    before.resize(4096 - 100, b'\n');
    std::fs::write(&path, &before).unwrap();
    fill(&fs.0);
    let m = migrate(&state, "hv-04");
    assert_eq!(m.code, 6, "{}{}", m.stdout, m.stderr);
    assert!(
        m.stderr.contains("could not be recorded") && m.stderr.contains("No space left"),
        "{}",
        m.stderr
    );
    assert_eq!(
        record_on_stderr(&m.stderr).expect("the record on stderr")["migration"]["vm"],
        "web-01"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "no partial line");
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    let h = Recorder::in_dir(&state).read().unwrap();
    assert_eq!((h.records.len(), h.damaged.len()), (1, 0));
}

/// A write error injected without any rights: a file-size limit (with
/// SIGXFSZ ignored, the write past it fails with EFBIG after part of the
/// line went in). Exit 6, the record on stderr, the file as it was.
#[test]
fn a_write_cut_short_by_a_file_size_limit_is_exit_6_and_never_a_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrations.jsonl");
    let mut before = format!("{}\n", template_record()).into_bytes();
    assert!(before.len() < 3900, "the template fits under the limit");
    before.resize(4096 - 100, b'\n');
    std::fs::write(&path, &before).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("vmshift");
    let start = Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" migrate web-01 hv-04 --speed max")
        .arg(&bin)
        .env("VMSHIFT_STATE_DIR", dir.path())
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", dir.path())
        .env_remove("VMSHIFT_LOG")
        .output()
        .unwrap();
    assert!(start.elapsed() < PROMPT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("cannot write the flight recorder") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert_eq!(
        record_on_stderr(&stderr).expect("the record on stderr")["migration"]["vm"],
        "web-01"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "no partial line");
}

// ---- every reader, fed random bytes and random JSON ---------------------

/// A record as `vmshift migrate` writes it (once per test run).
fn template_record() -> Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(migrate(dir.path(), "hv-04").code, 0);
        let text = std::fs::read_to_string(dir.path().join("migrations.jsonl")).unwrap();
        serde_json::from_str(text.trim()).unwrap()
    })
    .clone()
}

fn cordon_template() -> Value {
    serde_json::json!({"cordons": [
        {"cluster": "demo", "node": "hv-02", "since_unix_ms": 1_764_000_000_000u64},
        {"cluster": "other", "node": "n1", "since_unix_ms": 0}
    ]})
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/state_files.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Any JSON value, its keys often ones the readers know.
fn json() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(0u64),
            Just(MAX_DATE_MS),
            Just(MAX_DATE_MS + 1),
            Just(u64::MAX),
            Just(1u64 << 53)
        ]
        .prop_map(Value::from),
        prop_oneof![Just(1e308), Just(-1.0), Just(0.5), Just(3.6e6 + 1.0)].prop_map(Value::from),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number,
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "cordons",
            "cluster",
            "node",
            "since_unix_ms",
            "schema",
            "id",
            "recorded_at_ms",
            "started_at_ms",
            "migration",
            "rounds",
            "actual_downtime_ms",
            "hostname",
            "domains",
            "memory",
        ])
        .prop_map(String::from),
        "[a-z_]{1,10}",
    ]
}

/// `template` with the value at one of its places replaced by `v`.
fn mutate(template: &Value, at: prop::sample::Index, v: Value) -> Value {
    fn places(v: &Value, here: String, out: &mut Vec<String>) {
        out.push(here.clone());
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    places(x, format!("{here}/{i}"), out);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    places(
                        x,
                        format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    places(template, String::new(), &mut all);
    let mut t = template.clone();
    *t.pointer_mut(at.get(&all).as_str()).unwrap() = v;
    t
}

/// Bytes: random, or a good file with bytes changed or cut short.
fn bytes_like(template: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = template.len();
    let t2 = template.clone();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (0..=n).prop_map(move |cut| template[..cut].to_vec()),
        proptest::collection::vec((0..n, any::<u8>()), 1..6).prop_map(move |flips| {
            let mut b = t2.clone();
            for (i, x) in flips {
                b[i] = x;
            }
            b
        }),
    ]
}

/// Every record the history reader lets through is within range, and a
/// prediction learnt from it stays finite and bounded.
fn history_holds(bytes: &[u8]) -> Result<(), TestCaseError> {
    let h = parse_lines(bytes);
    for r in &h.records {
        let m = &r.migration;
        prop_assert!(r.recorded_at_ms <= MAX_DATE_MS && r.started_at_ms <= MAX_DATE_MS);
        prop_assert!(r.ended_at_ms.is_none_or(|e| e <= MAX_DATE_MS));
        prop_assert!(
            m.actual_downtime_ms
                .is_none_or(|d| (0.0..=MAX_DOWNTIME_MS).contains(&d))
        );
        prop_assert!((0.0..=MAX_DURATION_MS).contains(&m.elapsed_ms));
        prop_assert!(m.memory <= MAX_BYTES && m.bandwidth_bps <= MAX_RATE_BPS);
        for x in &m.rounds {
            prop_assert!((0.0..=MAX_DURATION_MS).contains(&x.duration_ms));
            prop_assert!(x.bytes_sent <= MAX_BYTES && x.bandwidth_bps <= MAX_RATE_BPS);
        }
        prop_assert!(vmshift::record::check::record(r).is_ok());
    }
    let ms: Vec<_> = h.records.iter().map(|r| r.migration.clone()).collect();
    if let Some(m) = ms.first()
        && let Some((s, line)) = plan::switchover_fit(&ms, &m.vm, &m.from, &m.to, 1 << 30)
    {
        prop_assert!(
            s.value.is_finite() && s.hi.is_finite() && s.hi <= 2.0 * MAX_DOWNTIME_MS + 16.0
        );
        prop_assert!(line <= 20_000_000_000);
    }
    Ok(())
}

fn cordons_hold(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(list) = cordon::parse(bytes) {
        for (_, _, since) in list {
            prop_assert!(since <= MAX_DATE_MS);
            prop_assert!(!Cordon::local(since).since_text().starts_with("after"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn history_reader_random_bytes(b in bytes_like(format!("{}\n{}\n", template_record(), template_record()).into_bytes())) {
        history_holds(&b)?;
    }

    #[test]
    fn history_reader_random_json(
        v in prop_oneof![json(), (any::<prop::sample::Index>(), json()).prop_map(|(i, v)| mutate(&template_record(), i, v))]
    ) {
        history_holds(format!("{v}\n").as_bytes())?;
    }

    #[test]
    fn cordon_reader_random_bytes(b in bytes_like(cordon_template().to_string().into_bytes())) {
        cordons_hold(&b)?;
    }

    #[test]
    fn cordon_reader_random_json(
        v in prop_oneof![json(), (any::<prop::sample::Index>(), json()).prop_map(|(i, v)| mutate(&cordon_template(), i, v))]
    ) {
        cordons_hold(v.to_string().as_bytes())?;
    }
}

#[cfg(feature = "libvirt")]
mod libvirt_files {
    use super::*;
    use vmshift::backends::libvirt::state::{parse_known, parse_seen};

    fn known_template() -> Value {
        serde_json::json!({"qemu+ssh://hv1/system": {
            "hostname": "hv1", "cpus": 8, "mem_total": 34359738368u64, "mem_free": 1073741824u64,
            "cpu_model": "Icelake-Server", "cpu_used_pct": 12.5,
            "domains": [{
                "name": "web", "state": "running", "incoming": false, "migrating_out": false,
                "vcpus": 2, "memory": 2147483648u64, "cpu_pct": 40.0,
                "disks": [[{"target": "vda", "source": {"Path": "/var/lib/x.qcow2"}, "readonly": false}, 10737418240u64]],
                "cpu_model": "Icelake-Server",
                "samples": [{"start": 100, "period_s": 1.0, "bps": 1.5e8}],
                "mem_stats": {"rss": 2147483648u64, "guest_in_use": 1073741824u64},
                "tcg": false, "xml": "<domain/>"
            }],
            "pools": [{"name": "default", "active": true, "kind": "dir", "source": "", "target": "/var/lib",
                       "capacity": 107374182400u64, "allocation": 1073741824u64}]
        }})
    }

    fn seen_template() -> Value {
        serde_json::json!({"qemu+ssh://hv1/system": 1_764_000_000_000u64, "qemu:///system": 0})
    }

    fn known_holds(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(known) = parse_known(bytes) {
            for n in known.values() {
                prop_assert!(n.mem_total <= MAX_BYTES && n.cpu_used_pct.is_finite());
                for d in &n.domains {
                    prop_assert!(
                        d.memory <= MAX_BYTES && d.cpu_pct.is_finite() && d.cpu_pct >= 0.0
                    );
                    for s in &d.samples {
                        prop_assert!(
                            s.bps.is_finite()
                                && s.bps <= MAX_RATE_BPS as f64
                                && s.period_s.is_finite()
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn seen_holds(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(seen) = parse_seen(bytes) {
            prop_assert!(seen.values().all(|t| *t <= MAX_DATE_MS));
        }
        Ok(())
    }

    /// The files as the backend loads them: a FIFO, a folder, a link to
    /// `/dev/zero` or a damaged file is ignored at once, a good one read.
    #[test]
    fn libvirt_state_files_that_are_not_files_are_ignored_at_once() {
        use vmshift::backends::libvirt::state::{MAX_KNOWN_BYTES, MAX_SEEN_BYTES, load};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libvirt-known-demo.json");
        let start = Instant::now();
        mkfifo(&p);
        assert!(load(&p, MAX_KNOWN_BYTES, parse_known).is_none());
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(load(&p, MAX_KNOWN_BYTES, parse_known).is_none());
        std::fs::remove_dir(&p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        assert!(load(&p, MAX_KNOWN_BYTES, parse_known).is_none());
        std::fs::remove_file(&p).unwrap();
        let text = known_template().to_string();
        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        assert!(load(&p, MAX_KNOWN_BYTES, parse_known).is_none());
        std::fs::write(&p, &text).unwrap();
        assert_eq!(load(&p, MAX_KNOWN_BYTES, parse_known).unwrap().len(), 1);
        let s = dir.path().join("libvirt-seen-demo.json");
        std::fs::write(&s, format!("{{\"qemu:///system\": {}}}", MAX_DATE_MS + 1)).unwrap();
        assert!(load(&s, MAX_SEEN_BYTES, parse_seen).is_none());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_templates_are_read() {
        assert_eq!(
            parse_known(known_template().to_string().as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_seen(seen_template().to_string().as_bytes())
                .unwrap()
                .len(),
            2
        );
        let mut t = known_template();
        t["qemu+ssh://hv1/system"]["domains"][0]["samples"][0]["bps"] = 1e308.into();
        let e = parse_known(t.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("dirty rate 1e308 is out of range"), "{e}");
    }

    proptest! {
        #![proptest_config(cases())]

        #[test]
        fn known_reader_random_bytes(b in bytes_like(known_template().to_string().into_bytes())) {
            known_holds(&b)?;
        }

        #[test]
        fn known_reader_random_json(
            v in prop_oneof![json(), (any::<prop::sample::Index>(), json()).prop_map(|(i, v)| mutate(&known_template(), i, v))]
        ) {
            known_holds(v.to_string().as_bytes())?;
        }

        #[test]
        fn seen_reader_random_bytes(b in bytes_like(seen_template().to_string().into_bytes())) {
            seen_holds(&b)?;
        }

        #[test]
        fn seen_reader_random_json(
            v in prop_oneof![json(), (any::<prop::sample::Index>(), json()).prop_map(|(i, v)| mutate(&seen_template(), i, v))]
        ) {
            seen_holds(v.to_string().as_bytes())?;
        }
    }
}
