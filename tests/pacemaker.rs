//! The cluster manager seen through libvirt's test driver (no daemon): a
//! Pacemaker that does not answer is an error shown with the snapshot, in
//! time, and nothing moves while vmshift cannot tell what it owns.
#![cfg(feature = "libvirt")]

use std::time::{Duration, Instant};

use vmshift::backends::Backend;
use vmshift::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec};
use vmshift::cluster::{BackendError, MigrationOptions, MigrationRequest};
use vmshift::config::{PacemakerMode, PacemakerSettings};

fn cluster(prefix: &[&str], timeout_ms: u64) -> LibvirtCluster {
    let settings = PacemakerSettings {
        mode: PacemakerMode::On,
        command_prefix: prefix.iter().map(|s| s.to_string()).collect(),
        timeout_ms,
        ..Default::default()
    };
    LibvirtCluster::connect(LibvirtConfig {
        cluster: "t".into(),
        nodes: ["n1", "n2"]
            .iter()
            .map(|n| NodeSpec {
                name: Some((*n).into()),
                uri: "test:///default".into(),
                migrate_host: None,
                labels: Vec::new(),
            })
            .collect(),
        shared: Vec::new(),
        timeout: Duration::from_secs(10),
        manager: vmshift::manager::connect(&settings, &[]),
        lost_after: Duration::from_secs(60),
        rules: Vec::new(),
    })
    .unwrap()
}

#[test]
fn a_pacemaker_that_hangs_is_an_error_in_time_and_nothing_moves() {
    // Every Pacemaker tool "hangs" for 30 s behind this prefix.
    let mut c = cluster(&["sh", "-c", "sleep 30", "--"], 300);
    let t0 = Instant::now();
    let s = c.snapshot().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the poll waited {:?}",
        t0.elapsed()
    );
    let m = s.manager.as_ref().expect("the manager's state is shown");
    let e = m.error.as_deref().unwrap_or_default();
    assert!(e.contains("did not answer within 300 ms"), "{e}");
    assert!(!m.known);
    // It never answered: which VMs it owns is unknown, so none moves.
    let vm = s.vms[0].name.clone();
    let err = c
        .start_migration(&MigrationRequest::new(
            &vm,
            "n2",
            MigrationOptions::default(),
        ))
        .unwrap_err();
    let BackendError::Refused(r) = &err else {
        panic!("{err}")
    };
    let text = r.to_string();
    assert!(
        text.contains("has not answered since") && text.contains("second copy"),
        "{text}"
    );
}

#[test]
fn a_missing_pacemaker_tool_says_which_and_where() {
    let mut c = cluster(&["/nonexistent/on-node"], 2000);
    let s = c.snapshot().unwrap();
    let e = s.manager.unwrap().error.unwrap_or_default();
    assert!(
        e.contains("cannot run") && e.contains("/nonexistent/on-node"),
        "{e}"
    );
}

/// A Pacemaker whose tools answer from fixtures and count their runs:
/// while nothing moves, polls keep its last good answer for a while (its
/// tools per poll were most of the view's idle cost); an action asks it
/// afresh at once.
#[test]
fn a_quiet_cluster_does_not_ask_pacemaker_at_every_poll_but_an_action_does() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("runs");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crm_mon");
    let script = dir.path().join("on-node");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> {count}\ncase \"$1\" in\n  crm_mon) cat {fixtures}/both-online.xml ;;\n  cibadmin) printf '<configuration>'; cat {fixtures}/resources.xml; printf '<constraints/></configuration>' ;;\n  *) exit 1 ;;\nesac\n",
            count = count.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runs = || {
        std::fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "crm_mon")
            .count()
    };
    let mut c = cluster(&[script.to_str().unwrap()], 5000);
    let s = c.snapshot().unwrap();
    let m = s.manager.as_ref().unwrap();
    assert!(m.known && m.error.is_none(), "{m:?}");
    assert_eq!(runs(), 1);
    for _ in 0..5 {
        let s = c.snapshot().unwrap();
        assert!(
            s.manager.as_ref().unwrap().known,
            "the kept answer is shown"
        );
    }
    assert_eq!(runs(), 1, "five quiet polls asked Pacemaker again");
    // An action asks it now, whatever the poll interval.
    let vm = s.vms[0].name.clone();
    let _ = c.start_migration(&MigrationRequest::new(
        &vm,
        "n2",
        MigrationOptions::default(),
    ));
    assert_eq!(runs(), 2, "the action did not ask Pacemaker afresh");
}
