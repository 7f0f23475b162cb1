//! The simulated cluster through the `Backend` trait, on the virtual clock.

use std::time::Duration;

use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{
    BackendError, Migration, MigrationId, MigrationOptions, MigrationRequest, NodeState, OnStall,
    Outcome, PostcopyMode, RecoveryStep, Step, VmState,
};
use vmshift::plan::{self, Refusal};

fn sim() -> SimCluster {
    SimCluster::from_spec("default", Speed::Max).unwrap()
}

fn start(s: &mut SimCluster, vm: &str, to: &str, options: MigrationOptions) -> MigrationId {
    s.start_migration(&MigrationRequest {
        vm: vm.into(),
        to: to.into(),
        options,
        inputs: None,
        forecast: None,
    })
    .unwrap()
}

fn run_to_end(s: &mut SimCluster, id: MigrationId) -> Migration {
    run_watching(s, id).0
}

/// Runs to the end; also returns (first-pass data sent, live total
/// expected) every 100 ms of the first pass.
fn run_watching(s: &mut SimCluster, id: MigrationId) -> (Migration, Vec<(u64, f64)>) {
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        let m = s.migration(id).unwrap();
        if m.is_finished() {
            return (m, seen);
        }
        if let (true, Some(f)) = (m.rounds.is_empty(), &m.live) {
            seen.push((m.data_bytes, f.total_ms.value));
        }
        s.wait(Duration::from_millis(100));
    }
    panic!("migration {id} never finished");
}

#[test]
fn same_seed_same_run() {
    let run = || {
        let mut s = sim();
        let id = start(&mut s, "db-replica", "hv-01", MigrationOptions::default());
        run_to_end(&mut s, id)
    };
    assert_eq!(run(), run());
}

#[test]
fn the_vm_moves_and_memory_is_held_on_both_ends_while_it_runs() {
    let mut s = sim();
    let before = s.snapshot().unwrap();
    let free = |snap: &vmshift::cluster::ClusterSnapshot, n: &str| snap.node(n).unwrap().mem_free();
    let id = start(&mut s, "web-01", "hv-02", MigrationOptions::default());
    s.advance(Duration::from_secs(2));
    let during = s.snapshot().unwrap();
    assert_eq!(during.vm("web-01").unwrap().state, VmState::Migrating);
    assert_eq!(
        free(&before, "hv-02") - free(&during, "hv-02"),
        during.vm("web-01").unwrap().memory
    );
    let m = run_to_end(&mut s, id);
    assert_eq!(m.outcome, Some(Outcome::Completed));
    let after = s.snapshot().unwrap();
    let vm = after.vm("web-01").unwrap();
    assert_eq!((vm.node.as_str(), vm.state), ("hv-02", VmState::Running));
    assert_eq!(free(&after, "hv-01"), free(&before, "hv-01") + vm.memory);
    assert!(
        after
            .events
            .iter()
            .any(|e| e.text.contains("web-01 migrated hv-01 → hv-02"))
    );
}

#[test]
fn a_lun_with_one_vm_changes_owner_with_it() {
    let mut s = sim();
    let id = start(&mut s, "db-main", "hv-01", MigrationOptions::default());
    assert_eq!(run_to_end(&mut s, id).outcome, Some(Outcome::Completed));
    let snap = s.snapshot().unwrap();
    assert_eq!(
        snap.volume("lun-db").unwrap().owner.as_deref(),
        Some("hv-01")
    );
}

#[test]
fn shared_nothing_moves_the_disk_to_the_target_local_volume() {
    let mut s = sim();
    let options = MigrationOptions {
        copy_storage: true,
        ..Default::default()
    };
    let id = start(&mut s, "build-runner", "hv-01", options);
    let m = run_to_end(&mut s, id);
    assert_eq!(m.outcome, Some(Outcome::Completed));
    assert!(
        m.transferred_bytes > m.storage_bytes + m.data_bytes,
        "disk and memory both crossed the link"
    );
    let snap = s.snapshot().unwrap();
    assert_eq!(
        snap.vm("build-runner").unwrap().disks[0].volume,
        "local-hv-01"
    );
    assert_eq!(snap.volume("local-hv-04").unwrap().used, 0);
}

#[test]
fn refusals_come_back_through_the_backend() {
    let mut s = sim();
    let err = s
        .start_migration(&MigrationRequest {
            vm: "erp-app".into(),
            to: "hv-02".into(),
            options: Default::default(),
            inputs: None,
            forecast: None,
        })
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Refused(Refusal::LunShared { .. })),
        "{err}"
    );
    let err = s
        .start_migration(&MigrationRequest {
            vm: "webby".into(),
            to: "hv-02".into(),
            options: Default::default(),
            inputs: None,
            forecast: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("web-01"), "lists known VMs: {err}");
}

#[test]
fn abort_keeps_the_vm_on_the_source() {
    let mut s = sim();
    let id = start(&mut s, "db-replica", "hv-01", MigrationOptions::default());
    s.advance(Duration::from_secs(5));
    assert_eq!(s.migration(id).unwrap().step, Step::PreCopy);
    s.abort(id).unwrap();
    let m = s.migration(id).unwrap();
    assert!(matches!(m.outcome, Some(Outcome::Aborted { .. })));
    let snap = s.snapshot().unwrap();
    let vm = snap.vm("db-replica").unwrap();
    assert_eq!((vm.node.as_str(), vm.state), ("hv-03", VmState::Running));
    // Nothing stays reserved on the target.
    s.advance(Duration::from_secs(1));
    assert!(
        s.abort(id).is_err(),
        "a finished migration cannot be aborted twice"
    );
}

/// The source failing takes the VM down with it: its migration does not
/// say it keeps running there (HA restarts it elsewhere; not HA, it stops).
#[test]
fn source_failure_mid_migration_says_the_vm_went_down_with_it() {
    let mut s = sim();
    let ha = start(&mut s, "db-main", "hv-01", MigrationOptions::default());
    s.advance(Duration::from_secs(1));
    s.fail_node("hv-02");
    let r = match s.migration(ha).unwrap().outcome {
        Some(Outcome::Failed { reason }) => reason,
        o => panic!("{o:?}"),
    };
    assert!(!r.contains("keeps running"), "{r}");
    assert!(
        r.contains("db-main went down with hv-02 and HA restarts it on another node"),
        "{r}"
    );
    assert_eq!(
        s.snapshot().unwrap().vm("db-main").unwrap().state,
        VmState::Restarting
    );
}

#[test]
fn target_failure_mid_migration_leaves_the_vm_on_the_source() {
    let mut s = sim();
    let id = start(&mut s, "db-replica", "hv-01", MigrationOptions::default());
    s.advance(Duration::from_secs(4));
    s.fail_node("hv-01");
    let m = s.migration(id).unwrap();
    let Some(Outcome::Failed { reason }) = &m.outcome else {
        panic!("{:?}", m.outcome);
    };
    assert!(
        reason.contains("hv-01 failed") && reason.contains("keeps running on hv-03"),
        "{reason}"
    );
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.vm("db-replica").unwrap().node, "hv-03");
    assert_eq!(snap.vm("db-replica").unwrap().state, VmState::Running);
}

#[test]
fn link_failure_mid_migration_fails_it_and_blocks_new_ones() {
    let mut s = sim();
    let id = start(&mut s, "api-01", "hv-02", MigrationOptions::default());
    s.advance(Duration::from_secs(2));
    s.fail_link("hv-02", "hv-01");
    assert!(matches!(
        s.migration(id).unwrap().outcome,
        Some(Outcome::Failed { .. })
    ));
    let err = s
        .start_migration(&MigrationRequest {
            vm: "api-01".into(),
            to: "hv-02".into(),
            options: Default::default(),
            inputs: None,
            forecast: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("link"), "{err}");
}

#[test]
fn a_failed_node_restarts_its_ha_vms_elsewhere() {
    let mut s = sim();
    s.fail_node("hv-04");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.node("hv-04").unwrap().state, NodeState::Down);
    assert_eq!(snap.vm("cache-01").unwrap().state, VmState::Restarting);
    assert_eq!(
        snap.vm("vdi-pool").unwrap().state,
        VmState::Stopped,
        "not HA"
    );
    // Every VM of the node is shown as lost with it, from when it failed.
    let failed_at = snap.at_ms;
    for v in snap.vms_on("hv-04") {
        let lost = v.lost.as_ref().expect("lost with its node");
        assert_eq!((lost.node.as_str(), lost.since_ms), ("hv-04", failed_at));
    }
    let r = snap.recoveries.iter().find(|r| r.vm == "cache-01").unwrap();
    assert_eq!(r.steps, vec![(RecoveryStep::Lost, failed_at)]);
    assert_eq!(r.by, "HA");
    s.advance(Duration::from_secs(25));
    let snap = s.snapshot().unwrap();
    let cache = snap.vm("cache-01").unwrap();
    assert_eq!(cache.state, VmState::Running);
    assert_ne!(cache.node, "hv-04");
    assert_eq!(cache.lost, None, "running elsewhere: not lost any more");
    assert!(snap.vm("vdi-pool").unwrap().lost.is_some());
    // The same timeline as a recovery on libvirt: lost → fence confirmed →
    // defined → started → running, on the simulated clock.
    let r = snap.recoveries.iter().find(|r| r.vm == "cache-01").unwrap();
    let steps: Vec<RecoveryStep> = r.steps.iter().map(|s| s.0).collect();
    assert_eq!(
        steps,
        [
            RecoveryStep::Lost,
            RecoveryStep::FenceConfirmed,
            RecoveryStep::Defined,
            RecoveryStep::Started,
            RecoveryStep::Running
        ]
    );
    assert_eq!(r.to, cache.node);
    assert!(r.reached(RecoveryStep::Running).unwrap() > failed_at);
    let br = snap
        .recoveries
        .iter()
        .find(|r| r.vm == "build-runner")
        .unwrap();
    assert!(
        br.error
            .as_deref()
            .unwrap_or("")
            .contains("no up node reaches its disks"),
        "{br:?}"
    );
    s.recover_node("hv-04");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.vm("vdi-pool").unwrap().lost, None);
    // build-runner's disk is local to the dead node: it cannot come back.
    assert_eq!(snap.vm("build-runner").unwrap().state, VmState::Stopped);
    assert!(
        snap.events
            .iter()
            .any(|e| e.text.contains("cache-01 restarted on"))
    );
    assert!(
        snap.events
            .iter()
            .any(|e| e.text.contains("build-runner could not be restarted"))
    );
}

#[test]
fn limits_changed_mid_flight_take_effect() {
    let mut s = sim();
    let options = MigrationOptions {
        on_stall: OnStall::Wait,
        ..Default::default()
    };
    let id = start(&mut s, "batch-etl", "hv-01", options);
    s.advance(Duration::from_secs(90));
    let m = s.migration(id).unwrap();
    assert!(m.stalled && !m.is_finished());
    s.set_bandwidth(id, Some(100 * 1024 * 1024)).unwrap();
    s.advance(Duration::from_secs(1));
    assert_eq!(s.migration(id).unwrap().bandwidth_bps, 100 * 1024 * 1024);
    s.set_bandwidth(id, None).unwrap();
    s.start_postcopy(id).unwrap();
    let m = run_to_end(&mut s, id);
    assert_eq!(m.outcome, Some(Outcome::Completed));
    assert!(m.postcopy_active);
}

#[test]
fn concurrent_migrations_share_a_nic() {
    let mut s = sim();
    let a = start(&mut s, "web-01", "hv-02", MigrationOptions::default());
    let b = start(&mut s, "api-01", "hv-03", MigrationOptions::default());
    s.advance(Duration::from_secs(2));
    let (ma, mb) = (s.migration(a).unwrap(), s.migration(b).unwrap());
    let nic = s.snapshot().unwrap().node("hv-01").unwrap().nic_bps;
    assert_eq!(ma.bandwidth_bps + mb.bandwidth_bps, nic - (nic % 2));
}

/// The predictor against the simulator, for every VM of the default
/// scenario, to the first node that accepts it.
#[test]
fn prediction_matches_the_simulator_for_every_vm() {
    let mut s = sim();
    let snap = s.snapshot().unwrap();
    let mut checked = 0;
    let mut with_live = 0;
    for vm in &snap.vms {
        let options = MigrationOptions {
            copy_storage: true,
            ..Default::default()
        };
        let Some((node, placement)) = snap
            .nodes
            .iter()
            .find_map(|n| plan::check(&snap, vm, n, true).ok().map(|p| (n, p)))
        else {
            // Only VMs tied to a LUN they share may be stuck everywhere.
            let n = snap.nodes.iter().find(|n| n.name != vm.node).unwrap();
            let refusal = plan::check(&snap, vm, n, true).unwrap_err();
            assert!(
                matches!(refusal, Refusal::LunShared { .. }),
                "{}: {refusal}",
                vm.name
            );
            continue;
        };
        let p = plan::predict_for(&snap, vm, node, &options, placement.storage_bytes(), &[]);
        let mut fresh = sim();
        let id = start(&mut fresh, &vm.name, &node.name, options);
        let (m, live) = run_watching(&mut fresh, id);
        checked += 1;
        if !p.converges {
            assert!(
                matches!(m.outcome, Some(Outcome::Aborted { .. })) && m.stalled,
                "{}: predicted not to converge, simulator: {:?}",
                vm.name,
                m.outcome
            );
            continue;
        }
        if p.may_not_converge && m.outcome != Some(Outcome::Completed) {
            assert!(m.stalled, "{}: {:?}", vm.name, m.outcome);
            continue;
        }
        assert_eq!(m.outcome, Some(Outcome::Completed), "{}", vm.name);
        // The bars: rounds ±1, total time within 25 %, downtime
        // within 30 % or 10 ms, and every figure inside its range.
        let rounds = m.rounds.len() as f64;
        assert!(
            (rounds - p.rounds as f64).abs() <= 1.0,
            "{}: predicted {} rounds, simulated {rounds}",
            vm.name,
            p.rounds
        );
        assert!(
            p.rounds_range.lo <= rounds && rounds <= p.rounds_range.hi,
            "{}: {rounds} rounds outside {:?}",
            vm.name,
            p.rounds_range
        );
        let total = m.elapsed_ms;
        assert!(
            (total - p.total_ms).abs() <= 0.25 * total,
            "{}: predicted {:.0} ms in all, simulated {total:.0} ms",
            vm.name,
            p.total_ms
        );
        assert!(
            p.total_ms_range.lo <= total && total <= p.total_ms_range.hi,
            "{}: {total:.0} ms outside {:?}",
            vm.name,
            p.total_ms_range
        );
        let actual = m.actual_downtime_ms.unwrap();
        assert!(
            (actual - p.downtime_ms).abs() <= (0.3 * actual).max(10.0),
            "{}: predicted downtime {:.1} ms, simulated {actual:.1} ms",
            vm.name,
            p.downtime_ms
        );
        assert!(
            p.downtime_ms_range.lo <= actual && actual <= p.downtime_ms_range.hi,
            "{}: {actual:.1} ms outside {:?}",
            vm.name,
            p.downtime_ms_range
        );
        // Live: a quarter into the first pass's data, the ETA's total
        // within 10 %.
        let quarter = m.rounds[0].bytes_sent / 4;
        if let Some(&(_, eta_total)) = live.iter().find(|(data, _)| *data >= quarter) {
            assert!(
                (eta_total - total).abs() <= 0.10 * total,
                "{}: live total {eta_total:.0} ms a quarter in, real {total:.0} ms",
                vm.name
            );
            with_live += 1;
        }
    }
    assert_eq!(
        checked,
        snap.vms.len() - 2,
        "all but the two VMs on lun-legacy can go somewhere"
    );
    assert!(with_live >= checked / 2, "live ETAs checked: {with_live}");
}

#[test]
fn postcopy_now_skips_precopy_rounds() {
    let mut s = sim();
    let options = MigrationOptions {
        postcopy: PostcopyMode::Now,
        ..Default::default()
    };
    let id = start(&mut s, "db-replica", "hv-01", options);
    let m = run_to_end(&mut s, id);
    assert_eq!(m.outcome, Some(Outcome::Completed));
    assert!(m.rounds.is_empty() && m.postcopy_active);
    // The fixed cost and the device state only: no memory is left to copy.
    assert!(m.actual_downtime_ms.unwrap() < 40.0);
}

#[test]
fn a_disk_copy_is_its_own_phase_with_bytes_rate_and_eta_before_the_rounds() {
    let mut s = sim();
    let id = start(
        &mut s,
        "build-runner",
        "hv-01",
        MigrationOptions {
            copy_storage: true,
            ..Default::default()
        },
    );
    let m = s.migration(id).unwrap();
    let total = m.disk_copy.as_ref().expect("a disk copy").total_bytes;
    assert_eq!(total, m.storage_bytes);
    assert!(total > 0);
    // A few seconds in: copying, no round yet, the ETA falls as it goes.
    s.wait(Duration::from_secs(5));
    let a = s.migration(id).unwrap();
    let d = a.disk_copy.clone().unwrap();
    assert!(d.started_ms.is_some() && d.done_ms.is_none(), "{d:?}");
    assert!(d.copied_bytes > 0 && d.copied_bytes < total, "{d:?}");
    assert!(d.bps > 0);
    assert!(a.rounds.is_empty(), "memory waits for the disks");
    let eta = d.eta_ms().unwrap();
    s.wait(Duration::from_secs(5));
    let b = s.migration(id).unwrap().disk_copy.unwrap();
    assert!(b.copied_bytes > d.copied_bytes);
    assert!(b.eta_ms().unwrap() < eta);
    let done = run_to_end(&mut s, id);
    assert_eq!(done.outcome, Some(Outcome::Completed));
    let d = done.disk_copy.unwrap();
    assert_eq!(d.copied_bytes, total);
    let copy_ms = d.done_ms.unwrap() - d.started_ms.unwrap();
    let first_round_ms: f64 = done.rounds[0].duration_ms;
    assert!(
        d.done_ms.unwrap() + first_round_ms <= done.elapsed_ms,
        "the rounds come after the copy"
    );
    // The copy is in the prediction of the whole move.
    let f = done.forecast.unwrap();
    assert!(f.total_ms.value >= copy_ms, "{f:?} vs {copy_ms}");
    assert!(d.line().contains("done in"), "{}", d.line());
}

#[test]
fn storage_moves_are_in_the_snapshot_while_they_run_and_after() {
    let mut s = sim();
    let id = s.move_disk("erp-app", "lun-legacy", "csv-gold").unwrap();
    s.advance(Duration::from_secs(10));
    let snap = s.snapshot().unwrap();
    let m = snap.active_storage_move_of("erp-app").expect("running");
    assert_eq!(
        (m.id, m.from.as_str(), m.to.as_str()),
        (id, "lun-legacy", "csv-gold")
    );
    assert!(m.copied_bytes > 0 && m.copied_bytes < m.total_bytes);
    // One move per VM at a time: the planner says so, for every backend.
    let err = s
        .move_disk("erp-app", "lun-legacy", "csv-silver")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("erp-app's disk lun-legacy is already moving to csv-gold"),
        "{err}"
    );
    s.advance(Duration::from_secs(600));
    let snap = s.snapshot().unwrap();
    assert!(snap.active_storage_move_of("erp-app").is_none());
    let m = &snap.storage_moves[0];
    assert!(m.pivoted && m.outcome == Some(Outcome::Completed));
    assert_eq!(snap.vm("erp-app").unwrap().disks[0].volume, "csv-gold");
    let texts: Vec<&str> = snap.events.iter().map(|e| e.text.as_str()).collect();
    assert!(
        texts.contains(&m.start_sentence().as_str())
            && texts.contains(&m.outcome_sentence().unwrap().as_str()),
        "{texts:?}"
    );
}

/// An HA restart keeps the placement rules: db-main's node fails while the
/// only other node that reaches its LUN is cordoned, so the one node left
/// holds db-replica: db-main stays down, with an alarm naming the rule,
/// rather than run beside its replica.
#[test]
fn an_ha_restart_never_breaks_a_must_rule() {
    let mut s = sim();
    s.set_cordon("hv-01", true).unwrap();
    s.fail_node("hv-02");
    s.advance(Duration::from_secs(60));
    let snap = s.snapshot().unwrap();
    let db = snap.vm("db-main").unwrap();
    assert_eq!(db.state, VmState::Stopped, "{db:?}");
    assert!(
        snap.alarms
            .iter()
            .any(|a| a.starts_with("db-main is down") && a.contains("rule db-pair")),
        "{:?}",
        snap.alarms
    );
    assert!(plan::rules::broken_now(&snap).is_empty());
    // Without the cordon, it restarts on hv-01.
    let mut s = sim();
    s.fail_node("hv-02");
    s.advance(Duration::from_secs(60));
    let snap = s.snapshot().unwrap();
    let db = snap.vm("db-main").unwrap();
    assert_eq!((db.state, db.node.as_str()), (VmState::Running, "hv-01"));
}

/// A scenario's rules that cannot hold are refused at load, at the rule.
#[test]
fn a_scenario_rule_that_cannot_hold_is_refused_at_load() {
    let text = vmshift::backends::sim::scenario::BUILTIN[0].1.to_string()
        + "\n[[rule]]\nname = \"erp-apart\"\nkind = \"apart\"\nvms = [\"erp-app\", \"erp-report\"]\n";
    let e = vmshift::backends::sim::scenario::parse(&text, "t.toml").unwrap_err();
    assert!(
        e.to_string()
            .contains("contradict each other: erp-app, erp-report must be together and apart"),
        "{e}"
    );
    assert!(e.line > 200, "at the rule: {e}");
    let text = vmshift::backends::sim::scenario::BUILTIN[0].1.to_string()
        + "\n[[rule]]\nname = \"x\"\nkind = \"apart\"\nvms = [\"db-main\", \"db-mian\"]\n";
    let e = vmshift::backends::sim::scenario::parse(&text, "t.toml").unwrap_err();
    assert!(e.to_string().contains("\"db-mian\" names no VM"), "{e}");
}
