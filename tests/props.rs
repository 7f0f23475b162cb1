//! Property tests of everything that reads input: scenario files, config
//! files, flight-recorder lines and command-line arguments. Any input gives
//! a value or an error with a place — never a panic, a hang or a wrapped
//! number. 10,000 cases per parser. A failing case is kept in
//! `tests/props.proptest-regressions` and tried first on every later run.

use std::path::Path;

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use vmshift::backends::sim::clock::Speed;
use vmshift::backends::sim::{HOST_RESERVE, scenario};
use vmshift::cli::Cli;
use vmshift::cluster::{GIB, MIB, NodeState, VmState};
use vmshift::config::{self, ConfigError};
use vmshift::record::{self, Meta, Record};

const SMALL: &str = include_str!("../assets/scenarios/small.toml");

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/props.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Numbers as they may be written: ordinary, at the edges, absurd.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..64).prop_map(|n| n.to_string()),
        (0u64..5000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_string()),
        Just("-1".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("nan".to_string()),
        Just("1e308".to_string()),
        (-1e6f64..1e6).prop_map(|f| format!("{f:?}")),
        Just("\"12\"".to_string()),
    ]
}

/// Names as they may be written: ordinary, empty, with control characters.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "v", "w"]).prop_map(|s| format!("{s:?}")),
        1 => "[ -~]{0,6}".prop_map(|s| format!("{s:?}")),
        1 => prop::sample::select(vec!["", " ", "a\u{1b}]0;x\u{7}", "a\nb", "\u{9b}1m", "é"]).prop_map(|s| format!("{s:?}")),
    ]
}

fn line(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(keys), prop_oneof![number(), name()])
        .prop_map(|(k, v)| format!("{k} = {v}\n"))
}

fn table(header: &'static str, keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(line(keys), 0..4)
        .prop_map(move |lines| format!("{header}\n{}", lines.concat()))
}

/// A scenario text: real keys with odd values, in tables that may repeat.
fn scenario_text() -> impl Strategy<Value = String> {
    const TOP: &[&str] = &["name", "seed", "link_mib_s", "setup_ms", "ha_restart_s"];
    const NODE: &[&str] = &[
        "name",
        "cpus",
        "memory_gib",
        "nic_mib_s",
        "cpu_model",
        "state",
    ];
    const VOL: &[&str] = &["name", "kind", "capacity_gib", "owner"];
    const VM: &[&str] = &[
        "name",
        "node",
        "vcpus",
        "memory_gib",
        "workload",
        "dirty_mib_s",
        "wws_mib",
        "cpu_load",
        "state",
        "ha",
    ];
    let node = (table("[[node]]", NODE), name(), number(), number()).prop_map(|(t, n, c, m)| {
        format!(
            "[[node]]\nname = {n}\ncpus = {c}\nmemory_gib = {m}\n{}",
            &t[9..]
        )
    });
    let volume = (table("[[volume]]", VOL), name(), number(), prop::sample::select(vec!["cluster-shared", "shared-lun", "local", "bogus"]))
        .prop_map(|(t, n, c, k)| {
            format!("[[volume]]\nname = {n}\nkind = \"{k}\"\ncapacity_gib = {c}\nnodes = [\"a\", \"b\"]\n{}", &t[11..])
        });
    let vm = (table("[[vm]]", VM), name(), number(), number(), prop::sample::select(vec!["web", "idle", "batch", "x"]), number())
        .prop_map(|(t, n, c, m, w, d)| {
            format!(
                "[[vm]]\nname = {n}\nnode = \"a\"\nvcpus = {c}\nmemory_gib = {m}\nworkload = \"{w}\"\ndisks = [{{ volume = \"v\", size_gib = {d} }}]\n{}",
                &t[7..]
            )
        });
    (
        prop::collection::vec(line(TOP), 0..3),
        prop::collection::vec(node, 0..3),
        prop::collection::vec(volume, 0..2),
        prop::collection::vec(vm, 0..3),
    )
        .prop_map(|(top, nodes, vols, vms)| {
            format!(
                "name = \"p\"\n{}{}{}{}",
                top.concat(),
                nodes.concat(),
                vols.concat(),
                vms.concat()
            )
        })
}

/// What a scenario that parsed must never hold: wrapped or non-finite
/// numbers, or a cluster that could not exist.
fn check_scenario(s: &scenario::Scenario) {
    for n in &s.nodes {
        assert!(n.mem_total >= GIB && n.mem_total % GIB == 0, "{n:?}");
        assert!(n.nic_bps >= MIB && n.cpus >= 1, "{n:?}");
        if n.state == NodeState::Down {
            assert!(
                s.vms
                    .iter()
                    .filter(|v| v.node == n.name)
                    .all(|v| v.state == VmState::Stopped)
            );
        }
        let used: u128 = s
            .vms
            .iter()
            .filter(|v| v.node == n.name && v.state != VmState::Stopped)
            .map(|v| v.memory as u128)
            .sum();
        assert!(
            used + HOST_RESERVE as u128 <= n.mem_total as u128 || used == 0,
            "{n:?}"
        );
    }
    for v in &s.volumes {
        assert!(v.used <= v.capacity, "{v:?}");
    }
    for v in &s.vms {
        assert!(!v.name.trim().is_empty() && !v.name.chars().any(char::is_control));
        assert!(v.memory > 0 && v.workload.wws_bytes <= v.memory && v.vcpus >= 1);
        assert!((0.0..=1.0).contains(&v.workload.cpu_load));
    }
    assert!(s.setup_s.is_finite() && s.ha_restart_s.is_finite());
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn scenario_files_give_a_cluster_or_an_error_with_a_place(text in scenario_text()) {
        match scenario::parse(&text, "p.toml") {
            Ok(s) => check_scenario(&s),
            Err(e) => {
                prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
                prop_assert!(e.line <= text.lines().count().max(1) + 1, "{e}");
                prop_assert!(e.to_string().starts_with("p.toml:"));
            }
        }
    }

    #[test]
    fn any_text_as_a_scenario_is_a_cluster_or_an_error_with_a_place(
        text in prop_oneof![
            "\\PC{0,80}",
            // A scenario with anything after it.
            (scenario_text(), "\\PC{0,30}").prop_map(|(s, junk)| s + &junk),
            // A good scenario with a few characters typed into it
            // somewhere: often still one.
            (0usize..2000, "[ -~\\n]{0,3}").prop_map(|(at, typed)| {
                let mut s = SMALL.to_string();
                let at = (0..=at.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                s.insert_str(at, &typed);
                s
            }),
        ],
    ) {
        match scenario::parse(&text, "p.toml") {
            Ok(s) => check_scenario(&s),
            Err(e) => {
                // The place is in the text: a line it has, a column on it
                // (or just past its end).
                let lines: Vec<&str> = text.split('\n').collect();
                prop_assert!(e.line >= 1 && e.line <= lines.len(), "{e}");
                let on = lines[e.line - 1].chars().count();
                prop_assert!(e.column >= 1 && e.column <= on + 1, "{e}");
                prop_assert!(
                    e.to_string().starts_with(&format!("p.toml:{}:{}: ", e.line, e.column)),
                    "{e}"
                );
                prop_assert!(!e.message.trim().is_empty(), "{e}");
            }
        }
    }

    #[test]
    fn generator_specs_give_a_cluster_or_a_sentence(
        nodes in prop_oneof![0u64..40, any::<u64>()],
        vms in prop_oneof![0u64..200, any::<u64>()],
        extra in prop::sample::select(vec!["", ",seed=3", ",racks=2", ",nodes", ",vms=-1", ",,"]),
    ) {
        let spec = format!("gen:nodes={nodes},vms={vms}{extra}");
        match scenario::load(&spec) {
            Ok(s) => {
                prop_assert_eq!(s.nodes.len() as u64, nodes);
                prop_assert_eq!(s.vms.len() as u64, vms);
            }
            Err(e) => prop_assert!(e.to_string().starts_with(&format!("--scenario {spec}: ")), "{}", e),
        }
    }

    #[test]
    fn config_files_give_settings_or_an_error_with_a_place(
        parts in prop::collection::vec(prop_oneof![
            table("[backend]", &["kind", "scenario", "speed"]),
            table("[ui]", &["poll_interval_ms", "mouse", "read_only"]),
            table("[migration]", &["max_downtime_ms", "bandwidth_mib", "auto_converge", "postcopy", "on_stall", "parallel_connections"]),
            table("[keys]", &["x", "\"ctrl-d\"", "\"hyper-q\"", "\"f5\""]),
            table("[libvirt]", &["cluster", "timeout_ms"]),
            table("[[libvirt.node]]", &["uri", "name", "migrate_host"]),
        ], 0..5),
    ) {
        let text = parts.concat();
        match config::parse(&text, Path::new("c.toml")) {
            Ok(c) => {
                prop_assert!((100..=600_000).contains(&c.poll_interval_ms));
                prop_assert!((1..=600_000).contains(&c.migration.max_downtime_ms));
                prop_assert!(c.migration.bandwidth_bps.is_none_or(|b| b >= MIB && b % MIB == 0));
                prop_assert!(c.libvirt.nodes.iter().all(|n| !n.uri.chars().any(char::is_control)));
                if let Speed::Times(x) = c.speed {
                    prop_assert!(x.is_finite() && x >= 0.0);
                }
            }
            Err(ConfigError::At { line, column, .. }) => {
                prop_assert!(line >= 1 && column >= 1);
            }
            Err(e) => prop_assert!(false, "no place: {e}"),
        }
    }

    #[test]
    fn recorder_lines_are_records_or_counted_as_damaged(
        lines in prop::collection::vec(prop_oneof![
            Just(None),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Some),
            "\\PC{0,30}".prop_map(|s| Some(s.into_bytes())),
        ], 0..12),
    ) {
        let good = serde_json::to_vec(&Record::finished(
            &Meta::new(false, None),
            "sim",
            "c",
            &vmshift::cluster::Migration::default(),
        ))
        .unwrap();
        // Good records between random lines: every good one is read.
        let mut bytes = Vec::new();
        let mut goods = 0;
        for l in &lines {
            match l {
                None => {
                    bytes.extend_from_slice(&good);
                    goods += 1;
                }
                Some(b) => bytes.extend(b.iter().map(|&c| if c == b'\n' { b' ' } else { c })),
            }
            bytes.push(b'\n');
        }
        let h = record::parse_lines(&bytes);
        prop_assert!(h.records.len() >= goods);
        let non_blank = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        prop_assert_eq!(h.records.len() + h.damaged.len(), non_blank);
        for r in &h.records {
            prop_assert!(r.recorded_at_ms <= record::MAX_DATE_MS && r.started_at_ms <= record::MAX_DATE_MS);
        }
    }

    #[test]
    fn command_lines_parse_or_give_an_error(
        args in prop::collection::vec(prop::sample::select(vec![
            "status", "migrate", "drain", "history", "--json", "--dry-run", "--speed", "--scenario",
            "--max-downtime", "--bandwidth", "--postcopy", "--on-stall", "--auto-converge",
            "--copy-storage", "--read-only", "--no-mouse", "--connect", "web-01", "hv-02", "max",
            "0", "1", "-1", "nan", "inf", "1e400", "18446744073709551616", "now", "auto", "off",
            "wait", "gen:nodes=3,vms=5", "gen:nodes=0", "default", "--", "-x", "\u{1b}[2J",
        ]), 0..8),
    ) {
        let argv = std::iter::once("vmshift").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => {
                if let Some(Speed::Times(x)) = cli.speed {
                    prop_assert!(x.is_finite() && (0.0..=10_000.0).contains(&x));
                }
                if let Some(spec) = cli
                    .scenario
                    .as_deref()
                    .filter(|s| s.starts_with("gen:") || *s == "default")
                    && let Err(e) = scenario::load(spec)
                {
                    prop_assert!(e.to_string().starts_with("--scenario "), "{}", e);
                }
            }
            Err(e) => {
                // No --help or --version among them: a usage error, on
                // stderr, exit status 2, that says what is wrong first.
                prop_assert!(e.use_stderr(), "{:?}: {}", e.kind(), e);
                prop_assert_eq!(e.exit_code(), 2, "{}", e);
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("");
                prop_assert!(
                    first.starts_with("error: ") && first.len() > "error: ".len(),
                    "{:?}: {}",
                    e.kind(),
                    text
                );
            }
        }
    }
}
