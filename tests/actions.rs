//! Actions on a VM (start, shutdown, reboot, force off, console) and
//! cordons, through the `Backend` trait: the simulator on its virtual
//! clock, and libvirt's own test driver (no daemon).

use std::time::Duration;

use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{
    BackendError, Cordon, MigrationOptions, MigrationRequest, VmAction, VmState,
};
use vmshift::plan::{self, Refusal};
use vmshift::record::Cordons;

fn sim() -> SimCluster {
    SimCluster::from_spec("default", Speed::Max).unwrap()
}

fn state(s: &mut SimCluster, vm: &str) -> VmState {
    s.snapshot().unwrap().vm(vm).unwrap().state
}

fn events(s: &mut SimCluster) -> Vec<String> {
    s.snapshot()
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.text)
        .collect()
}

#[test]
fn a_shutdown_takes_a_few_simulated_seconds_then_start_brings_it_back() {
    let mut s = sim();
    let text = s.vm_action("web-01", VmAction::Shutdown).unwrap();
    assert!(
        text.contains("shutdown (ACPI) of web-01 requested"),
        "{text}"
    );
    s.advance(Duration::from_secs(2));
    assert_eq!(
        state(&mut s, "web-01"),
        VmState::Running,
        "still shutting down"
    );
    let again = s.vm_action("web-01", VmAction::Shutdown).unwrap_err();
    assert!(again.to_string().contains("already"), "{again}");
    s.advance(Duration::from_secs(4));
    assert_eq!(state(&mut s, "web-01"), VmState::Stopped);
    assert!(events(&mut s).iter().any(|e| e == "web-01 shut down"));

    let e = s.vm_action("web-01", VmAction::Shutdown).unwrap_err();
    assert_eq!(
        e.to_string(),
        "web-01 is stopped; only a running guest can shut down"
    );
    assert_eq!(
        s.vm_action("web-01", VmAction::Start).unwrap(),
        "web-01 started on hv-01"
    );
    assert_eq!(state(&mut s, "web-01"), VmState::Running);
    let e = s.vm_action("web-01", VmAction::Start).unwrap_err();
    assert_eq!(e.to_string(), "web-01 is running already");
}

#[test]
fn force_off_is_at_once_and_beats_a_pending_shutdown() {
    let mut s = sim();
    s.vm_action("api-01", VmAction::Shutdown).unwrap();
    s.vm_action("api-01", VmAction::PowerOff).unwrap();
    assert_eq!(state(&mut s, "api-01"), VmState::Stopped);
    s.advance(Duration::from_secs(30));
    assert!(
        !events(&mut s).iter().any(|e| e == "api-01 shut down"),
        "the shutdown it was carrying out is gone with it"
    );
    let e = s.vm_action("api-01", VmAction::PowerOff).unwrap_err();
    assert_eq!(e.to_string(), "api-01 is stopped; nothing to force off");
}

#[test]
fn a_reboot_keeps_the_guest_running_and_is_logged_when_done() {
    let mut s = sim();
    s.vm_action("monitor", VmAction::Reboot).unwrap();
    s.advance(Duration::from_secs(7));
    assert!(!events(&mut s).iter().any(|e| e == "monitor rebooted"));
    s.advance(Duration::from_secs(2));
    assert!(events(&mut s).iter().any(|e| e == "monitor rebooted"));
    assert_eq!(state(&mut s, "monitor"), VmState::Running);
}

#[test]
fn no_action_on_a_migrating_vm_and_unknown_names_list_the_known_ones() {
    let mut s = sim();
    s.start_migration(&MigrationRequest::new(
        "web-01",
        "hv-03",
        MigrationOptions::default(),
    ))
    .unwrap();
    let e = s.vm_action("web-01", VmAction::PowerOff).unwrap_err();
    assert_eq!(
        e.to_string(),
        "web-01 is migrating; wait for the migration to end or abort it first"
    );
    let e = s.vm_action("nope", VmAction::Start).unwrap_err();
    assert!(matches!(e, BackendError::UnknownVm { .. }), "{e}");
}

#[test]
fn the_simulator_has_no_console_and_says_so() {
    let mut s = sim();
    let e = s.console_command("web-01").unwrap_err().to_string();
    assert!(e.contains("no consoles"), "{e}");
    assert!(e.contains("--connect"), "{e}");
}

#[test]
fn a_cordoned_node_is_refused_with_the_way_out_and_kept_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sim();
    *s.cordons() = Cordons::in_dir(dir.path());
    let text = s.set_cordon("hv-02", true).unwrap();
    assert!(text.starts_with("node hv-02 is cordoned"), "{text}");
    let snap = s.snapshot().unwrap();
    let c = snap.node("hv-02").unwrap().cordon.clone().unwrap();
    assert!(c.is_local());
    assert_eq!(c.by, Cordon::LOCAL);

    let e = s
        .start_migration(&MigrationRequest::new(
            "web-01",
            "hv-02",
            MigrationOptions::default(),
        ))
        .unwrap_err();
    match &e {
        BackendError::Refused(Refusal::Cordoned { node, by, .. }) => {
            assert_eq!(
                (node.as_str(), by.as_str()),
                ("hv-02", "this vmshift install")
            );
        }
        other => panic!("not a cordon refusal: {other}"),
    }
    let text = e.to_string();
    assert!(
        text.starts_with("node hv-02 is cordoned (since ")
            && text.contains("by this vmshift install); uncordon it with `:uncordon hv-02`"),
        "{text}"
    );

    // A drain never plans a move onto it.
    let plan = plan::plan_drain(&snap, "hv-01", &MigrationOptions::default(), &[]);
    assert!(!plan.moves.is_empty());
    assert!(
        plan.moves.iter().all(|m| m.to != "hv-02"),
        "{:?}",
        plan.moves
    );

    // Another vmshift process with the same state dir sees it.
    let mut other = sim();
    *other.cordons() = Cordons::in_dir(dir.path());
    assert!(
        other
            .snapshot()
            .unwrap()
            .node("hv-02")
            .unwrap()
            .cordon
            .is_some()
    );
    assert_eq!(
        other.set_cordon("hv-02", false).unwrap(),
        "node hv-02 is uncordoned: it takes VMs again"
    );
    assert!(
        s.snapshot()
            .unwrap()
            .node("hv-02")
            .unwrap()
            .cordon
            .is_none()
    );
    s.start_migration(&MigrationRequest::new(
        "web-01",
        "hv-02",
        MigrationOptions::default(),
    ))
    .unwrap();
    let e = s.set_cordon("hv-99", true).unwrap_err();
    assert!(matches!(e, BackendError::UnknownNode { .. }), "{e}");
}

#[test]
fn a_stopped_vm_does_not_start_on_a_cordoned_node() {
    let mut s = sim();
    s.vm_action("cache-01", VmAction::PowerOff).unwrap();
    s.set_cordon("hv-04", true).unwrap();
    let e = s.vm_action("cache-01", VmAction::Start).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot start cache-01: node hv-04 is cordoned"),
        "{e}"
    );
}

#[test]
fn ha_restarts_skip_cordoned_nodes() {
    let mut s = sim();
    let ha: Vec<String> = s
        .snapshot()
        .unwrap()
        .vms
        .iter()
        .filter(|v| v.node == "hv-01" && v.ha)
        .map(|v| v.name.clone())
        .collect();
    assert!(!ha.is_empty(), "the default scenario has HA VMs on hv-01");
    for n in ["hv-02", "hv-03"] {
        s.set_cordon(n, true).unwrap();
    }
    s.fail_node("hv-01");
    s.advance(Duration::from_secs(600));
    let snap = s.snapshot().unwrap();
    // Each HA VM runs again on hv-04, the one node left to take it, or
    // its recovery failed and says why; none runs on a cordoned node.
    let mut restarted = Vec::new();
    for vm in &ha {
        let v = snap.vm(vm).unwrap();
        if v.state == VmState::Running {
            assert_eq!(v.node, "hv-04", "{vm} restarted on cordoned {}", v.node);
            restarted.push(vm.as_str());
        } else {
            let r = snap.recoveries.iter().rev().find(|r| r.vm == *vm);
            assert!(
                r.is_some_and(|r| r.error.is_some()),
                "{vm} is {:?} with no failed recovery: {r:?}",
                v.state
            );
        }
    }
    assert!(
        !restarted.is_empty(),
        "no HA VM restarted on hv-04: {ha:?} {:#?}",
        snap.recoveries
    );
}

#[cfg(feature = "libvirt")]
mod libvirt_test_driver {
    use vmshift::backends::Backend;
    use vmshift::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec};
    use vmshift::cluster::{VmAction, VmState};

    fn cluster() -> LibvirtCluster {
        LibvirtCluster::connect(LibvirtConfig {
            cluster: "t".into(),
            nodes: vec![NodeSpec {
                name: Some("n1".into()),
                uri: "test:///default".into(),
                migrate_host: None,
                labels: Vec::new(),
            }],
            shared: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            manager: None,
            rules: Vec::new(),
            lost_after: std::time::Duration::from_secs(60),
        })
        .unwrap()
    }

    fn state(c: &mut LibvirtCluster) -> VmState {
        c.snapshot().unwrap().vm("test").unwrap().state
    }

    // test:///default is one driver for the whole process while a
    // connection to it is open (the node's poller keeps one).
    #[test]
    fn actions_reach_libvirt_and_its_refusals_come_back_as_sentences() {
        let mut c = cluster();
        assert_eq!(state(&mut c), VmState::Running);
        assert_eq!(
            c.vm_action("test", VmAction::PowerOff).unwrap(),
            "test forced off on n1"
        );
        assert_eq!(state(&mut c), VmState::Stopped);
        let e = c.vm_action("test", VmAction::Reboot).unwrap_err();
        assert_eq!(
            e.to_string(),
            "test is stopped; only a running guest can reboot"
        );
        let e = c.console_command("test").unwrap_err();
        assert!(e.to_string().contains("start it first"), "{e}");
        assert_eq!(
            c.vm_action("test", VmAction::Start).unwrap(),
            "test started on n1"
        );
        assert_eq!(state(&mut c), VmState::Running);
        let argv = c.console_command("test").unwrap();
        assert_eq!(argv, ["virsh", "-c", "test:///default", "console", "test"]);
        assert!(
            c.vm_action("test", VmAction::Shutdown)
                .unwrap()
                .starts_with("shutdown (ACPI) of test requested")
        );
        // The test driver's guests obey at once.
        assert_eq!(state(&mut c), VmState::Stopped);
    }
}

#[cfg(feature = "libvirt")]
mod many_nodes {
    use std::time::Duration;

    use vmshift::backends::Backend;
    use vmshift::backends::libvirt::node::POLL_THREADS;
    use vmshift::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec, testdriver};
    use vmshift::cluster::NodeState;

    #[test]
    fn sixty_nodes_are_polled_by_at_most_the_pool_and_all_answer() {
        let dir = tempfile::tempdir().unwrap();
        let uris = testdriver::write_nodes(dir.path(), 60, 5).unwrap();
        let mut c = LibvirtCluster::connect(LibvirtConfig {
            cluster: "many".into(),
            nodes: uris
                .iter()
                .enumerate()
                .map(|(i, uri)| NodeSpec {
                    name: Some(format!("n{i}")),
                    uri: uri.clone(),
                    migrate_host: None,
                    labels: Vec::new(),
                })
                .collect(),
            shared: Vec::new(),
            timeout: Duration::from_secs(30),
            manager: None,
            rules: Vec::new(),
            lost_after: std::time::Duration::from_secs(60),
        })
        .unwrap();
        for _ in 0..3 {
            let s = c.snapshot().unwrap();
            assert_eq!(s.nodes.len(), 60);
            let down: Vec<_> = s
                .nodes
                .iter()
                .filter(|n| n.state != NodeState::Up)
                .map(|n| (&n.name, &n.error))
                .collect();
            assert!(down.is_empty(), "{down:?}");
            assert_eq!(s.vms.len(), 300);
            assert_eq!(s.vm("n59-vm04").unwrap().node, "n59");
        }
        let threads = c.poll_threads();
        assert!(
            (1..=POLL_THREADS).contains(&threads),
            "{threads} poll threads for 60 nodes"
        );
        // Nothing else: the old design had a thread per node.
        let all = std::fs::read_dir("/proc/self/task").unwrap().count();
        assert!(all < 60, "{all} threads in the test process");
    }
}
