//! The real binary, end to end, on the simulated cluster at `--speed max`.

use assert_cmd::Command;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn vmshift(args: &[&str], state: &std::path::Path) -> Run {
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(args)
        .env("VMSHIFT_STATE_DIR", state)
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", state)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn status_json_shows_nodes_volumes_reachability_and_placement() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["status", "--json"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 4);
    let silver = v["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "csv-silver")
        .unwrap();
    assert_eq!(silver["kind"], "cluster-shared");
    assert_eq!(
        silver["reachable_from"],
        serde_json::json!(["hv-01", "hv-02", "hv-03"])
    );
    let lun = v["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "lun-db")
        .unwrap();
    assert_eq!(lun["owner"], "hv-02");
    let vms = v["vms"].as_array().unwrap();
    assert!(vms.len() >= 12);
    let web = vms.iter().find(|x| x["name"] == "web-01").unwrap();
    assert_eq!(web["node"], "hv-01");
    assert_eq!(web["state"], "running");
}

#[test]
fn status_text_lists_every_vm() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["status"], dir.path());
    assert_eq!(r.code, 0);
    for vm in ["web-01", "db-main", "batch-etl", "vdi-pool"] {
        assert!(r.stdout.contains(vm), "{vm} missing:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("4/4 nodes up"));
}

#[test]
fn migrating_a_web_vm_prints_shrinking_rounds_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &["migrate", "web-01", "hv-04", "--speed", "max", "--json"],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines = json_lines(&r.stdout);
    assert_eq!(lines[0]["event"], "plan");
    assert_eq!(lines[0]["prediction"]["converges"], true);
    let rounds: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "round")
        .map(|l| &l["round"])
        .collect();
    assert!(rounds.len() >= 2, "{} rounds", rounds.len());
    for w in rounds.windows(2) {
        assert!(
            w[1]["bytes_dirty"].as_u64() <= w[0]["bytes_dirty"].as_u64(),
            "remaining shrinks"
        );
    }
    assert!(rounds[0]["bytes_dirty"].as_u64() > rounds[rounds.len() - 2]["bytes_dirty"].as_u64());
    assert_eq!(
        rounds.last().unwrap()["bytes_dirty"],
        0,
        "the final copy leaves nothing"
    );
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "step")
        .map(|l| l["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "prepare_target",
            "pre_copy",
            "pause",
            "final_copy",
            "resume_on_target",
            "clean_up_source"
        ]
    );
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["outcome"]["result"], "completed");
    let downtime = done["actual_downtime_ms"].as_f64().unwrap();
    assert!(downtime > 0.0 && downtime <= 300.0, "downtime {downtime}");

    let h = vmshift(&["history", "--json"], dir.path());
    let recs = json_lines(&h.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["migration"]["vm"], "web-01");
    assert_eq!(
        recs[0]["migration"]["rounds"].as_array().unwrap().len(),
        rounds.len()
    );
    let text = vmshift(&["history"], dir.path());
    assert!(
        text.stdout.contains("web-01") && text.stdout.contains("completed"),
        "{}",
        text.stdout
    );
}

#[test]
fn the_text_output_has_a_line_per_round_and_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &["migrate", "db-main", "hv-01", "--speed", "max"],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("LUN lun-db holds only db-main"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().filter(|l| l.starts_with("round")).count() >= 2);
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("done     db-main now runs on hv-01")
    );
}

#[test]
fn the_batch_job_is_predicted_not_to_converge_and_the_dry_run_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["migrate", "batch-etl", "hv-01", "--dry-run"], dir.path());
    assert_eq!(r.code, 4);
    assert!(r.stdout.contains("will not converge"), "{}", r.stdout);
    for fix in ["raise max downtime to", "auto-converge", "post-copy"] {
        assert!(
            r.stdout.contains(fix),
            "advice {fix:?} missing:\n{}",
            r.stdout
        );
    }
    assert!(r.stderr.contains("would not converge"));
    // A dry run changes nothing and records nothing.
    assert!(
        vmshift(&["history", "--json"], dir.path())
            .stdout
            .is_empty()
    );
}

#[test]
fn the_batch_job_stalls_and_is_aborted_on_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &[
            "migrate",
            "batch-etl",
            "hv-01",
            "--on-stall",
            "abort",
            "--speed",
            "max",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 4);
    let lines = json_lines(&r.stdout);
    assert!(lines.iter().any(|l| l["event"] == "stalled"));
    let done = lines.last().unwrap();
    assert_eq!(done["outcome"]["result"], "aborted");
    let reason = done["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("stalled") && reason.contains("keeps running on hv-03"),
        "{reason}"
    );
    assert!(r.stderr.contains("aborted"), "{}", r.stderr);
    let rec = json_lines(&vmshift(&["history", "--json"], dir.path()).stdout);
    assert_eq!(rec[0]["migration"]["outcome"]["result"], "aborted");
}

#[test]
fn the_batch_job_completes_with_auto_converge_or_postcopy() {
    let dir = tempfile::tempdir().unwrap();
    for opt in [&["--auto-converge"][..], &["--postcopy", "auto"][..]] {
        let mut args = vec!["migrate", "batch-etl", "hv-01", "--speed", "max", "--json"];
        args.extend_from_slice(opt);
        let r = vmshift(&args, dir.path());
        assert_eq!(r.code, 0, "{opt:?}: {}", r.stderr);
        let done = json_lines(&r.stdout).pop().unwrap();
        assert_eq!(done["outcome"]["result"], "completed");
        assert_eq!(done["postcopy"], opt[0] == "--postcopy");
        if opt[0] == "--auto-converge" {
            // What is left fits in the limit; the fixed cost comes on top.
            assert!(done["actual_downtime_ms"].as_f64().unwrap() <= 300.0 + 40.0);
        }
    }
}

#[test]
fn every_refusal_is_one_sentence_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (vec!["web-01", "hv-01"], "already runs on hv-01"),
        (vec!["batch-etl", "hv-04"], "free but batch-etl needs"),
        (vec!["build-runner", "hv-01"], "--copy-storage"),
        (vec!["erp-app", "hv-02"], "also holds erp-report"),
        (vec!["dc-01", "hv-01"], "CPU model Icelake-Server"),
    ];
    for (args, expect) in cases {
        let mut a = vec!["migrate"];
        a.extend(args.iter());
        let r = vmshift(&a, dir.path());
        assert_eq!(r.code, 3, "{args:?}");
        assert!(r.stderr.contains(expect), "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "one sentence: {}",
            r.stderr
        );
    }
}

#[test]
fn a_node_that_is_down_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("down.toml");
    std::fs::write(
        &scen,
        "name = \"t\"\n[[node]]\nname = \"a\"\ncpus = 4\nmemory_gib = 16\n[[node]]\nname = \"b\"\ncpus = 4\nmemory_gib = 16\nstate = \"down\"\n[[volume]]\nname = \"v\"\nkind = \"cluster-shared\"\ncapacity_gib = 100\nnodes = [\"a\", \"b\"]\n[[vm]]\nname = \"x\"\nnode = \"a\"\nvcpus = 1\nmemory_gib = 1\nworkload = \"idle\"\ndisks = [{ volume = \"v\", size_gib = 1 }]\n",
    )
    .unwrap();
    let r = vmshift(
        &["--scenario", scen.to_str().unwrap(), "migrate", "x", "b"],
        dir.path(),
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("node b is down"), "{}", r.stderr);
}

#[test]
fn unknown_names_list_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["migrate", "web-99", "hv-02"], dir.path());
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no VM named \"web-99\"") && r.stderr.contains("web-01, web-02"),
        "{}",
        r.stderr
    );
    let r = vmshift(&["migrate", "web-01", "hv-9"], dir.path());
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("hv-01, hv-02, hv-03, hv-04"),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_scenario_and_config_files_are_reported_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("bad.toml");
    std::fs::write(
        &scen,
        "name = \"x\"\n[[node]]\nname = \"a\"\ncpus = \"four\"\n",
    )
    .unwrap();
    let r = vmshift(
        &["--scenario", scen.to_str().unwrap(), "status"],
        dir.path(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{}:4:8:", scen.display())),
        "{}",
        r.stderr
    );

    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[migration]\nmax_downtime_ms = 300\npostcopy = \"maybe\"\n",
    )
    .unwrap();
    let r = vmshift(&["--config", cfg.to_str().unwrap(), "status"], dir.path());
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{}:3:12:", cfg.display())),
        "{}",
        r.stderr
    );

    let r = vmshift(
        &["--config", "/nonexistent/vmshift.toml", "status"],
        dir.path(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read the config file"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_config_sets_migration_defaults_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[migration]\nauto_converge = true\nmax_downtime_ms = 400\n",
    )
    .unwrap();
    let r = vmshift(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "migrate",
            "batch-etl",
            "hv-01",
            "--dry-run",
            "--json",
            "--max-downtime",
            "350",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan = &json_lines(&r.stdout)[0];
    assert_eq!(plan["options"]["auto_converge"], true);
    assert_eq!(plan["options"]["max_downtime_ms"], 350);
}

#[test]
fn read_only_refuses_to_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["--read-only", "migrate", "web-01", "hv-04"], dir.path());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
}

#[test]
fn bad_arguments_are_refused_by_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["migrate", "web-01", "hv-04", "--postcopy", "sometimes"],
        vec!["migrate", "web-01", "hv-04", "--max-downtime", "0"],
        vec!["--speed", "-1", "status"],
        vec!["--scenario", "gen:nodes=0,vms=1", "status"],
    ] {
        let r = vmshift(&args, dir.path());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty());
    }
}

#[test]
fn a_generated_cluster_has_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &["--scenario", "gen:nodes=20,vms=300", "status", "--json"],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 20);
    assert_eq!(v["vms"].as_array().unwrap().len(), 300);
}

#[test]
fn drain_plans_moves_and_names_the_vms_that_cannot_leave() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["drain", "hv-01", "--dry-run", "--json"], dir.path());
    assert_eq!(r.code, 4, "two VMs share a LUN: not drainable");
    let plan = &json_lines(&r.stdout)[0];
    assert_eq!(plan["event"], "drain_plan");
    let moves: Vec<&str> = plan["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["vm"].as_str().unwrap())
        .collect();
    assert_eq!(moves, ["api-01", "web-01"]);
    let stuck: Vec<&str> = plan["stuck"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["vm"].as_str().unwrap())
        .collect();
    assert_eq!(stuck, ["erp-app", "erp-report"]);
    assert!(r.stderr.contains("cannot leave hv-01"), "{}", r.stderr);
    assert!(
        vmshift(&["history", "--json"], dir.path())
            .stdout
            .is_empty(),
        "a dry run moves nothing"
    );
}

#[test]
fn drain_moves_every_running_vm_off_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["drain", "hv-02", "--speed", "max", "--json"], dir.path());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines = json_lines(&r.stdout);
    let done: Vec<&Value> = lines.iter().filter(|l| l["event"] == "done").collect();
    assert_eq!(done.len(), 3, "web-02, db-main (with its LUN), monitor");
    assert!(done.iter().all(|d| d["outcome"]["result"] == "completed"));
    assert_eq!(lines.last().unwrap()["event"], "drain_done");
    assert_eq!(
        json_lines(&vmshift(&["history", "--json"], dir.path()).stdout).len(),
        3
    );
    // Each VM went where the plan said.
    let plan = &lines[0];
    for m in plan["moves"].as_array().unwrap() {
        let d = done.iter().find(|d| d["vm"] == m["vm"]).unwrap();
        assert_eq!(d["node"], m["to"]);
    }
}

#[test]
fn without_storage_moves_the_stuck_vms_name_the_move_disk_that_frees_them() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["drain", "hv-01", "--dry-run", "--json"], dir.path());
    assert_eq!(r.code, 4);
    let plan = &json_lines(&r.stdout)[0];
    for s in plan["stuck"].as_array().unwrap() {
        let vm = s["vm"].as_str().unwrap();
        let reason = s["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("vmshift move-disk {vm} lun-legacy csv-")),
            "{reason}"
        );
    }
}

#[test]
fn drain_with_storage_moves_plans_every_running_vm_out_and_empties_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &["drain", "hv-01", "--storage-moves", "--dry-run", "--json"],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let plan = &json_lines(&r.stdout)[0];
    assert!(plan["stuck"].as_array().unwrap().is_empty(), "{plan}");
    let moves = plan["moves"].as_array().unwrap();
    let vms: Vec<&str> = moves.iter().map(|m| m["vm"].as_str().unwrap()).collect();
    assert_eq!(vms, ["api-01", "erp-app", "erp-report", "web-01"]);
    let disk_moves: Vec<&Value> = moves
        .iter()
        .flat_map(|m| m["disk_moves"].as_array().unwrap())
        .collect();
    assert_eq!(disk_moves.len(), 1);
    assert_eq!(disk_moves[0]["from"], "lun-legacy");

    // Run it: the disk moves, then every VM leaves.
    let r = vmshift(
        &[
            "drain",
            "hv-01",
            "--storage-moves",
            "--speed",
            "max",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines = json_lines(&r.stdout);
    let moved_disk = lines
        .iter()
        .position(|l| l["event"] == "done" && l["storage_move"]["pivoted"] == true)
        .expect("the storage move finished");
    let its_migration = lines
        .iter()
        .position(|l| l["event"] == "done" && l["vm"] == disk_moves[0]["vm"])
        .unwrap();
    assert!(moved_disk < its_migration, "the disk first");
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "drain_done");
    assert_eq!(done["moved"], 4);
    assert!(done["failed"].as_array().unwrap().is_empty());
}

#[test]
fn move_disk_moves_a_running_vms_disk_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &[
            "move-disk",
            "erp-app",
            "lun-legacy",
            "csv-gold",
            "--speed",
            "max",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("copy     erp-app: disk lun-legacy → csv-gold"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("done     erp-app's disk is on csv-gold now (120.0 GiB copied"),
        "{}",
        r.stdout
    );
    for (args, says) in [
        (
            ["move-disk", "erp-app", "csv-gold", "csv-silver"],
            "erp-app has no disk on volume csv-gold; name the disk by the volume it is on: lun-legacy",
        ),
        (
            ["move-disk", "erp-app", "lun-legacy", "nowhere"],
            "there is no volume named \"nowhere\"",
        ),
        (
            ["move-disk", "erp-app", "lun-legacy", "local-hv-04"],
            "local-hv-04 is not reachable from hv-01, where erp-app runs",
        ),
        (
            ["move-disk", "nobody", "lun-legacy", "csv-gold"],
            "there is no VM named \"nobody\"",
        ),
        (
            // lun-db is db-main's plain LUN, in use by hv-02.
            ["move-disk", "erp-app", "lun-legacy", "lun-db"],
            "lun-db is a plain LUN in use by hv-02: only one node at a time may use it",
        ),
    ] {
        let r = vmshift(&args, dir.path());
        assert_ne!(r.code, 0, "{args:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one sentence: {}", r.stderr);
    }
}

// ----- faults: closed output, signals, a recorder that cannot write -----

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// The binary with its own state dir and the given stdout, stderr piped.
fn command(args: &[&str], state: &std::path::Path, stdout: Stdio) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vmshift"));
    c.args(args)
        .env("VMSHIFT_STATE_DIR", state)
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", state)
        .env_remove("XDG_CONFIG_HOME")
        .stdout(stdout)
        .stderr(Stdio::piped());
    c
}

/// [`command`], started, not yet waited for.
fn spawn(args: &[&str], state: &std::path::Path, stdout: Stdio) -> Child {
    command(args, state, stdout).spawn().unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

fn history(state: &std::path::Path) -> Vec<Value> {
    json_lines(&vmshift(&["history", "--json"], state).stdout)
}

/// `vmshift migrate … | head -1`: the reader goes away after one line (or
/// before the first); the migration runs to its end, is recorded, and
/// nothing panics. The log shows that a write did meet the closed pipe.
#[test]
fn a_closed_stdout_ends_the_output_not_the_migration() {
    let hit_the_closed_pipe = |dir: &std::path::Path| {
        let log = std::fs::read_to_string(dir.join("vmshift.log")).unwrap_or_default();
        log.contains("stdout is closed; output ends here")
    };
    // Closed before vmshift writes anything: its first write fails.
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = spawn_logged(
        &["migrate", "web-01", "hv-04", "--speed", "max"],
        dir.path(),
        Stdio::from(writer),
    );
    let err = stderr_of(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        hit_the_closed_pipe(dir.path()),
        "no write met the closed pipe"
    );
    let recs = history(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["migration"]["outcome"]["result"], "completed");

    // Closed after the first line, while the migration runs (about 5 s of
    // simulated time at 5×: its rounds and result come a second later).
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_logged(
        &["migrate", "web-01", "hv-04", "--speed", "5"],
        dir.path(),
        Stdio::piped(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("plan "), "{first}");
    drop(out); // like head -1
    let err = stderr_of(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        hit_the_closed_pipe(dir.path()),
        "no write met the closed pipe"
    );
    let recs = history(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["migration"]["outcome"]["result"], "completed");
}

/// [`spawn`] with the log on (`VMSHIFT_LOG=info`, in the state dir).
fn spawn_logged(args: &[&str], state: &std::path::Path, stdout: Stdio) -> Child {
    command(args, state, stdout)
        .env("VMSHIFT_LOG", "info")
        .spawn()
        .unwrap()
}

#[test]
fn a_full_disk_under_stdout_ends_the_output_not_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = spawn(
        &["migrate", "web-01", "hv-04", "--speed", "max"],
        dir.path(),
        Stdio::from(full),
    );
    let err = stderr_of(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        history(dir.path())[0]["migration"]["outcome"]["result"],
        "completed"
    );
}

/// SIGINT, SIGTERM and SIGHUP during a simulated migration: each ends it
/// (the simulator lives in the process), says so, records it and exits
/// 128 + the signal.
#[test]
fn signals_during_a_cli_migration_leave_a_record_and_a_sentence() {
    for (sig, code, said, reason) in [
        (
            libc::SIGINT,
            130,
            "interrupt aborting the migration of web-01 (Ctrl-C); it keeps running on hv-01",
            "aborted by the operator",
        ),
        (
            libc::SIGTERM,
            143,
            "stopped by SIGTERM",
            "vmshift stopped (SIGTERM)",
        ),
        (
            libc::SIGHUP,
            129,
            "stopped by SIGHUP",
            "vmshift stopped (SIGHUP)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn(
            &["migrate", "web-01", "hv-04", "--speed", "0.5"],
            dir.path(),
            Stdio::piped(),
        );
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        // Signal once pre-copy runs (the line says so).
        loop {
            let mut l = String::new();
            assert!(
                out.read_line(&mut l).unwrap() > 0,
                "output ended early: {lines:?}"
            );
            let pre_copy = l.starts_with("step     pre-copy");
            lines.push(l);
            if pre_copy {
                break;
            }
        }
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        for l in out.lines() {
            lines.push(l.unwrap());
        }
        let err = stderr_of(&mut child);
        assert_eq!(
            child.wait().unwrap().code(),
            Some(code),
            "signal {sig}: {err}"
        );
        let all = format!("{}{err}", lines.join("\n"));
        assert!(all.contains(said), "signal {sig}: {all}");
        let recs = history(dir.path());
        assert_eq!(recs.len(), 1, "signal {sig}");
        assert_eq!(recs[0]["migration"]["outcome"]["result"], "aborted");
        let r = recs[0]["migration"]["outcome"]["reason"].as_str().unwrap();
        assert!(r.contains(reason), "signal {sig}: {r}");
    }
}

/// A migration that ran but could not be recorded exits 6, says why, and
/// gives its record so that nothing is lost.
#[test]
fn a_migration_that_cannot_be_recorded_exits_6() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(["migrate", "web-01", "hv-04", "--speed", "max"])
        .env("VMSHIFT_STATE_DIR", blocker.join("state"))
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("done     web-01 now runs on hv-04"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("the migration of web-01 could not be recorded"),
        "{}",
        r.stderr
    );
    let record = r
        .stderr
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .expect("the record on stderr");
    assert_eq!(record["migration"]["vm"], "web-01");
    assert_eq!(record["schema"], 2);
}

/// History shows every good record around damaged lines, and says how many
/// it skipped.
#[test]
fn history_shows_every_record_around_damaged_lines() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        vmshift(
            &["migrate", "web-01", "hv-04", "--speed", "max"],
            dir.path()
        )
        .code,
        0
    );
    let path = dir.path().join("migrations.jsonl");
    let good = std::fs::read(&path).unwrap();
    let mut far: Value = serde_json::from_slice(&good).unwrap();
    far["id"] = "far".into();
    far["recorded_at_ms"] = 253_402_300_800_000u64.into();
    let mut bytes = good.clone();
    bytes.extend_from_slice(b"\xff\xfe garbage\n");
    bytes.extend_from_slice(format!("{far}\n").as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        vmshift(
            &["migrate", "web-02", "hv-04", "--speed", "max"],
            dir.path()
        )
        .code,
        0
    );
    // And a torn last line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"schema\":2,\"id\":\"to").unwrap();
    let r = vmshift(&["history"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("web-01         hv-01 → hv-04")
            && r.stdout.contains("web-02         hv-02 → hv-04"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("3 damaged lines skipped"), "{}", r.stderr);
    assert!(r.stderr.contains("the file is kept"), "{}", r.stderr);
    let kept = std::fs::read(&path).unwrap();
    assert!(kept.starts_with(&bytes), "the file is kept as it was");
}

/// Names and the operator come from outside: no control character of
/// theirs reaches the terminal from history or errors.
#[test]
fn outside_strings_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(["migrate", "web-01", "hv-04", "--speed", "max"])
        .env("VMSHIFT_STATE_DIR", dir.path())
        .env("VMSHIFT_CONFIG", "")
        .env("USER", "ops\x1b]0;pwned\x07\x1b[2J\x7f")
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let clean = |b: &[u8]| !b.iter().any(|&c| (c < 0x20 && c != b'\n') || c == 0x7f);
    for args in [
        &["history"][..],
        &["history", "--json"],
        &["migrate", "web-\x1b[31m01", "hv-04"],
    ] {
        let r = Command::cargo_bin("vmshift")
            .unwrap()
            .args(args)
            .env("VMSHIFT_STATE_DIR", dir.path())
            .env("VMSHIFT_CONFIG", "")
            .output()
            .unwrap();
        assert!(
            clean(&r.stdout),
            "{args:?} stdout: {:?}",
            String::from_utf8_lossy(&r.stdout)
        );
        assert!(
            clean(&r.stderr),
            "{args:?} stderr: {:?}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let h = vmshift(&["history"], dir.path());
    assert!(h.stdout.contains("ops\\x1b]0;pwned\\x07"), "{}", h.stdout);
}

/// Ctrl-C in a drain lets the current move finish and starts no other.
#[test]
fn ctrl_c_stops_a_drain_after_its_current_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(
        &["drain", "hv-02", "--speed", "5"],
        dir.path(),
        Stdio::piped(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "{lines:?}");
        let first_move = l.starts_with("step     pre-copy");
        lines.push(l);
        if first_move {
            break;
        }
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    for l in out.lines() {
        lines.push(l.unwrap());
    }
    let err = stderr_of(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(130), "{lines:?}{err}");
    let all = lines.join("\n");
    assert!(
        all.contains("interrupt the drain stops after this move"),
        "{all}"
    );
    assert_eq!(
        all.matches("\nmigrate  ").count() + usize::from(lines[0].starts_with("migrate  ")),
        1,
        "{all}"
    );
    assert!(err.contains("stopped by Ctrl-C before moving"), "{err}");
    let recs = history(dir.path());
    assert_eq!(recs.len(), 1, "only the move under way ran");
    assert_eq!(recs[0]["migration"]["outcome"]["result"], "completed");
}

/// VMSHIFT_LOG with a state dir that cannot be written: a warning, no panic.
#[test]
fn an_unwritable_log_is_a_warning_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(["status"])
        .env("VMSHIFT_LOG", "debug")
        .env("VMSHIFT_STATE_DIR", blocker.join("state"))
        .env("VMSHIFT_CONFIG", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("going on without a log"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Names that look alike or hide characters (issue 16): `status` shows
/// each escaped, the same way everywhere, so "web" and "web" + a zero-width
/// space are told apart; `--json` keeps the real names; a refusal names
/// the node escaped and quotes the command to copy for a shell.
#[test]
fn look_alike_names_are_shown_escaped_and_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let scen = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/names.toml");
    let hidden = |s: &str| s.chars().any(vmshift::cluster::text::is_escaped);
    let r = vmshift(&["--scenario", scen, "status"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !hidden(r.stdout.replace('\n', "").as_str()),
        "{:?}",
        r.stdout
    );
    let vm_rows: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| *l != "VMS")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    let names: Vec<&str> = vm_rows
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web", "web\\u{200b}", "\\u{202e}gpj.exe", "db\\u{2060}"],
        "{}",
        r.stdout
    );
    assert!(vm_rows[3].contains(" hv-a\\u{200b} "), "{}", r.stdout);
    assert!(r.stdout.contains("csv\\u{ad}1:40.0 GiB"), "{}", r.stdout);
    // JSON: the real names, and still nothing raw on the terminal.
    let r = vmshift(&["--scenario", scen, "status", "--json"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!hidden(&r.stdout.replace('\n', "")), "{:?}", r.stdout);
    assert!(r.stdout.contains(r#""web\u200b""#), "{}", r.stdout);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let json_names: Vec<&str> = v["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        json_names,
        ["web", "web\u{200b}", "\u{202e}gpj.exe", "db\u{2060}"]
    );
    // An error sentence names the VM escaped; a cordon's advice quotes
    // the node for a shell, so that pasting it names exactly that node.
    let r = vmshift(
        &["--scenario", scen, "migrate", "web\u{200b}", "hv-a"],
        dir.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("web\\u{200b} already runs on hv-a"),
        "{}",
        r.stderr
    );
    let r = vmshift(&["--scenario", scen, "cordon", "hv-a\u{200b}"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = vmshift(
        &["--scenario", scen, "migrate", "web", "hv-a\u{200b}"],
        dir.path(),
    );
    assert_ne!(r.code, 0);
    assert!(!hidden(&r.stderr.replace('\n', "")), "{:?}", r.stderr);
    assert!(
        r.stderr.contains("node hv-a\\u{200b} is cordoned")
            && r.stderr.contains(r"`vmshift uncordon $'hv-a\xe2\x80\x8b'`"),
        "{}",
        r.stderr
    );
    // A name typed as it is shown names nothing on the command line: the
    // error says how to write it for a shell.
    let r = vmshift(
        &["--scenario", scen, "migrate", r"web\u{200b}", "hv-a"],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(r"; to name web\u{200b} in a shell, write $'web\xe2\x80\x8b'"),
        "{}",
        r.stderr
    );
}

/// Placement rules on the command line: a must rule refuses and names the
/// override; the override needs a typed reason, which the flight recorder
/// keeps; a should rule needs its confirmation; names are checked.
#[test]
fn rules_are_refused_overridden_with_a_reason_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(
        &["migrate", "db-main", "hv-03", "--speed", "max"],
        dir.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("apart from db-replica: rule db-pair (must, scenario)")
            && r.stderr.contains("--override-rule db-pair --reason TEXT"),
        "{}",
        r.stderr
    );
    let r = vmshift(
        &[
            "migrate",
            "db-main",
            "hv-03",
            "--speed",
            "max",
            "--override-rule",
            "db-pair",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("takes a typed reason"), "{}", r.stderr);
    let r = vmshift(
        &[
            "migrate",
            "db-main",
            "hv-03",
            "--override-rule",
            "db-par",
            "--reason",
            "x",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("there is no rule named \"db-par\"") && r.stderr.contains("db-pair"),
        "{}",
        r.stderr
    );
    let r = vmshift(
        &["migrate", "web-01", "hv-02", "--speed", "max"],
        dir.path(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("confirm with --override-rule web-pool"),
        "{}",
        r.stderr
    );
    assert!(
        !dir.path().join("migrations.jsonl").exists(),
        "nothing moved yet"
    );
    let r = vmshift(
        &[
            "migrate",
            "db-main",
            "hv-03",
            "--speed",
            "max",
            "--override-rule",
            "db-pair",
            "--reason",
            "hv-01 is patched tonight",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("rule     db-main → hv-03 breaks apart from db-replica"),
        "{}",
        r.stdout
    );
    let h = vmshift(&["history"], dir.path());
    assert!(
        h.stdout
            .contains("broke rule db-pair (must, scenario), reason: hv-01 is patched tonight"),
        "{}",
        h.stdout
    );
    let j = vmshift(&["history", "--json"], dir.path());
    let rec: Value = serde_json::from_str(j.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        rec["migration"]["options"]["broken_rules"][0]["reason"],
        "hv-01 is patched tonight"
    );
}

/// `vmshift rules` lists every rule with its origin and state; the drain
/// of hv-02 keeps them.
#[test]
fn rules_are_listed_and_drains_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let r = vmshift(&["rules"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("holds")
            && l.contains("db-pair")
            && l.contains("must")
            && l.contains("scenario")),
        "{}",
        r.stdout
    );
    let j = vmshift(&["rules", "--json"], dir.path());
    let v: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["rules"].as_array().unwrap().len(), 5);
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["holds"] == true)
    );
    let d = vmshift(&["drain", "hv-02", "--dry-run"], dir.path());
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(
        d.stdout.contains("move     db-main → hv-01"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("move     web-02 → hv-04"), "{}", d.stdout);
    assert!(!d.stdout.contains("breaks"), "{}", d.stdout);
}
