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
            })
            .collect(),
        shared: Vec::new(),
        timeout: Duration::from_secs(10),
        manager: vmshift::manager::connect(&settings, &[]),
        lost_after: Duration::from_secs(60),
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
