//! Property tests of the rules that keep guests safe, on generated
//! clusters: nodes up, in maintenance, lost or unreachable, some cordoned,
//! some full; local volumes, plain LUNs and cluster-shared volumes; VMs in
//! every state, some with a cluster manager, some migrating.
//!
//! - placement (`plan::check` and the target list of a move) never accepts
//!   a cordoned node, a node that is not up, or one without the memory;
//! - a drain plan never puts more on a node than it holds, counting the
//!   moves planned before, never goes to a cordoned or lost node, and
//!   moves each VM at most once;
//! - a recovery plan restarts only VMs of a lost node, each once, never
//!   one that also runs on a node that answers, never onto a cordoned,
//!   lost or full node.
//!
//! 10,000 cases each. A failing case is kept in
//! `tests/props_safety.proptest-regressions` and tried first on every
//! later run.

use std::cell::Cell;
use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestError, TestRunner,
};
use vmshift::app::Drag;
use vmshift::cluster::{
    ClusterSnapshot, Cordon, Disk, GIB, MIB, ManagedNode, ManagedVm, ManagerView, Migration,
    MigrationOptions, Node, NodeState, Vm, VmState, Volume, VolumeKind, Workload,
};
use vmshift::plan::{self, cpu};

const CASES: u32 = 10_000;

/// Runs `test` on `CASES` values of `strategy`, failing cases persisted
/// and replayed first; panics with the smallest failing value.
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: CASES,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/props_safety.proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..Config::default()
    };
    let ran = Cell::new(0u32);
    let counted = |v: S::Value| {
        ran.set(ran.get() + 1);
        test(v)
    };
    match TestRunner::new(config).run(&strategy, counted) {
        Ok(()) => assert!(ran.get() >= CASES, "{} cases ran", ran.get()),
        Err(TestError::Fail(why, value)) => {
            panic!("{why}\nminimal failing input: {value:#?}")
        }
        Err(TestError::Abort(why)) => panic!("aborted: {why}"),
    }
}

const CPUS: [&str; 5] = [
    "Skylake-Server",
    "Cascadelake-Server",
    "EPYC",
    "EPYC-Milan",
    "",
];

#[derive(Debug, Clone)]
struct NodeGen {
    state: NodeState,
    cordon: bool,
    total_gib: u64,
    used_gib: u64,
    cpu: usize,
    /// In the cluster manager: (online, standby).
    managed: (bool, bool),
}

#[derive(Debug, Clone)]
struct VolGen {
    kind: VolumeKind,
    /// Which nodes reach it, one bit each.
    reach: u8,
    owner: usize,
    capacity_gib: u64,
    used_gib: u64,
}

#[derive(Debug, Clone)]
struct VmGen {
    node: usize,
    state: VmState,
    /// In 256 MiB steps.
    memory_q: u64,
    disks: Vec<(usize, u64)>,
    cpu: usize,
    /// A cluster manager's resource: (managed, allow-migrate).
    managed: Option<(bool, bool)>,
    /// Also listed under the name of the VM before it (on another node).
    twin: bool,
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (
        prop_oneof![
            12 => Just(NodeState::Up),
            1 => Just(NodeState::Maintenance),
            2 => Just(NodeState::Down),
            1 => Just(NodeState::Unreachable),
        ],
        prop::bool::weighted(0.2),
        prop::sample::select(vec![8u64, 16, 32, 64]),
        0u64..=9,
        prop_oneof![3 => 0usize..2, 1 => 2usize..4],
        (prop::bool::weighted(0.9), prop::bool::weighted(0.1)),
    )
        .prop_map(|(state, cordon, total_gib, used, cpu, managed)| NodeGen {
            state,
            cordon,
            total_gib,
            // In eighths of what it has; sometimes more than it has (a
            // reading taken mid-migration).
            used_gib: total_gib * used / 8,
            cpu,
            managed,
        })
}

fn vol_gen() -> impl Strategy<Value = VolGen> {
    (
        prop_oneof![
            1 => Just(VolumeKind::ClusterShared),
            1 => Just(VolumeKind::SharedLun),
            2 => Just(VolumeKind::Local),
        ],
        any::<u8>(),
        0usize..8,
        prop::sample::select(vec![20u64, 100, 500]),
        0u64..=500,
    )
        .prop_map(|(kind, reach, owner, capacity_gib, used)| VolGen {
            kind,
            reach,
            owner,
            capacity_gib,
            used_gib: used.min(capacity_gib),
        })
}

fn vm_gen() -> impl Strategy<Value = VmGen> {
    (
        0usize..8,
        prop_oneof![
            8 => Just(VmState::Running),
            1 => Just(VmState::Paused),
            1 => Just(VmState::Stopped),
            1 => Just(VmState::Migrating),
            1 => Just(VmState::Restarting),
        ],
        1u64..=64,
        prop::collection::vec((0usize..8, 1u64..=120), 0..3),
        // Mostly no named model; else one of either vendor.
        prop_oneof![3 => Just(CPUS.len() - 1), 1 => 0..CPUS.len() - 1],
        prop::option::weighted(0.15, (prop::bool::weighted(0.8), prop::bool::weighted(0.8))),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(node, state, memory_q, disks, cpu, managed, twin)| VmGen {
            node,
            state,
            memory_q,
            disks,
            cpu,
            managed,
            twin,
        })
}

/// A cluster as a backend could show it: every disk on a volume it lists,
/// a migration for every migrating VM, one VM per name unless `twins`
/// (then a VM may also be listed on a second node under the same name, as
/// a merge that went wrong would show it).
fn cluster(twins: bool) -> impl Strategy<Value = ClusterSnapshot> {
    (
        prop::collection::vec(node_gen(), 1..=6),
        prop::collection::vec(vol_gen(), 0..=5),
        prop::collection::vec(vm_gen(), 0..=10),
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(ns, vols, vms, manager)| build(&ns, &vols, &vms, manager, twins))
}

fn build(
    ns: &[NodeGen],
    vols: &[VolGen],
    vms: &[VmGen],
    manager: bool,
    twins: bool,
) -> ClusterSnapshot {
    let name = |i: usize| format!("n{}", i % ns.len());
    let nodes: Vec<Node> = ns
        .iter()
        .enumerate()
        .map(|(i, g)| Node {
            name: name(i),
            state: g.state,
            cpus: 16,
            cpu_used_pct: 10.0,
            mem_total: g.total_gib * GIB,
            mem_used: g.used_gib * GIB,
            cpu_model: CPUS[g.cpu].into(),
            nic_bps: 1250 * MIB,
            error: None,
            labels: Vec::new(),
            cordon: g.cordon.then(|| Cordon::local(1_700_000_000_000)),
        })
        .collect();
    let volumes: Vec<Volume> = vols
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let owner = name(g.owner);
            let mut reach: Vec<String> = (0..ns.len())
                .filter(|b| g.reach & (1 << b) != 0)
                .map(name)
                .collect();
            match g.kind {
                VolumeKind::Local => reach = vec![owner.clone()],
                VolumeKind::SharedLun if !reach.contains(&owner) => reach.push(owner.clone()),
                _ => {}
            }
            Volume {
                name: format!("v{i}"),
                kind: g.kind,
                owner: (g.kind != VolumeKind::ClusterShared).then_some(owner),
                capacity: g.capacity_gib * GIB,
                used: g.used_gib * GIB,
                reachable_from: reach,
            }
        })
        .collect();
    let mut out: Vec<Vm> = Vec::new();
    let mut migrations = Vec::new();
    for (i, g) in vms.iter().enumerate() {
        let node = name(g.node);
        let mut vm_name = format!("m{i}");
        if twins
            && g.twin
            && i > 0
            && !out
                .iter()
                .any(|o| o.name == out[i - 1].name && o.node == node)
        {
            vm_name = out[i - 1].name.clone();
        }
        let memory = g.memory_q * 256 * MIB;
        let disks = if volumes.is_empty() {
            Vec::new()
        } else {
            let mut d: Vec<Disk> = Vec::new();
            for &(v, gib) in &g.disks {
                let volume = volumes[v % volumes.len()].name.clone();
                if d.iter().all(|x| x.volume != volume) {
                    d.push(Disk {
                        volume,
                        size: gib * GIB,
                    });
                }
            }
            d
        };
        if g.state == VmState::Migrating {
            let to = name(g.node + 1);
            migrations.push(Migration::starting(
                i as u64 + 1,
                &vm_name,
                &node,
                &to,
                MigrationOptions::default(),
                memory,
                0,
                0,
            ));
        }
        out.push(Vm {
            name: vm_name,
            node,
            state: g.state,
            vcpus: 2,
            memory,
            disks,
            workload: Workload {
                kind: "web".into(),
                dirty_bps: 20 * MIB,
                wws_bytes: memory.min(256 * MIB),
                cpu_load: 0.3,
                touched_bytes: None,
                measured: None,
            },
            ha: g.managed.is_some(),
            cpu_model: CPUS[g.cpu].into(),
            cpu_used_pct: 20.0,
            lost: None,
        });
    }
    let manager = manager.then(|| ManagerView {
        kind: "pacemaker".into(),
        known: true,
        quorate: true,
        fencing: true,
        nodes: ns
            .iter()
            .enumerate()
            .map(|(i, g)| ManagedNode {
                name: name(i),
                online: g.managed.0,
                standby: g.managed.1,
                ..Default::default()
            })
            .collect(),
        vms: vms
            .iter()
            .zip(&out)
            .filter_map(|(g, vm)| {
                g.managed.map(|(managed, allow_migrate)| ManagedVm {
                    resource: format!("vm-{}", vm.name),
                    domain: vm.name.clone(),
                    managed,
                    allow_migrate,
                    running_on: vec![vm.node.clone()],
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    });
    ClusterSnapshot {
        cluster: "p".into(),
        backend: "sim".into(),
        at_ms: 0,
        nodes,
        volumes,
        vms: out,
        migrations,
        events: Vec::new(),
        costs: Default::default(),
        manager,
        recoveries: Vec::new(),
        alarms: Vec::new(),
        storage_moves: Vec::new(),
        marks: Vec::new(),
        stale_copies: Vec::new(),
        rules: Vec::new(),
        cordons_unreadable: None,
    }
}

/// Why `node` may not take `memory` more (counting `used` on it now), if
/// it may not: a node that is not up, a cordoned node, a full node.
fn unfit(node: &Node, used: u64, memory: u64) -> Option<String> {
    if node.state != NodeState::Up {
        return Some(format!("{} is {}", node.name, node.state.label()));
    }
    if node.cordon.is_some() {
        return Some(format!("{} is cordoned", node.name));
    }
    if used as u128 + memory as u128 > node.mem_total as u128 {
        return Some(format!(
            "{} would hold {} MiB of {} MiB",
            node.name,
            (used + memory) / MIB,
            node.mem_total / MIB
        ));
    }
    None
}

fn fail(why: String) -> TestCaseResult {
    Err(TestCaseError::fail(why))
}

/// What an accepted placement of `vm` on `node` must hold.
fn check_placement(
    s: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    copy: bool,
    p: &plan::Placement,
) -> TestCaseResult {
    if let Some(why) = unfit(node, node.mem_used, vm.memory) {
        return fail(format!("{} accepted on {}: {why}", vm.name, node.name));
    }
    prop_assert_ne!(&vm.node, &node.name);
    prop_assert_eq!(vm.state, VmState::Running, "{}", vm.name);
    prop_assert!(
        s.active_migration_of(&vm.name).is_none(),
        "{} migrates",
        vm.name
    );
    prop_assert!(cpu::compatible(&vm.cpu_model, &node.cpu_model));
    if let (Some(m), Some(view)) = (s.managed_vm(&vm.name), &s.manager) {
        prop_assert!(m.managed && m.allow_migrate, "{m:?}");
        let n = view.nodes.iter().find(|n| n.name == node.name);
        prop_assert!(n.is_some_and(|n| n.out_of_service().is_none()), "{n:?}");
    }
    // Every disk reachable from the target, or copied there with room.
    let mut promised: HashMap<&str, u64> = HashMap::new();
    for d in &vm.disks {
        let v = s.volume(&d.volume).expect("generated with its volume");
        if v.reachable_from(&node.name) {
            if v.kind == VolumeKind::SharedLun {
                prop_assert!(p.lun_moves.contains(&v.name), "{p:?}");
                let others = s
                    .vms
                    .iter()
                    .filter(|o| o.name != vm.name && o.disks.iter().any(|x| x.volume == v.name))
                    .count();
                prop_assert_eq!(
                    others,
                    0,
                    "{} moves off LUN {} that others use",
                    vm.name,
                    v.name
                );
            }
            continue;
        }
        prop_assert!(copy, "{} not reachable from {}", v.name, node.name);
        let Some((_, to, bytes)) = p.copies.iter().find(|c| c.0 == v.name) else {
            return fail(format!("{} neither reachable nor copied: {p:?}", v.name));
        };
        prop_assert_eq!(*bytes, d.size);
        let dest = s.volume(to).expect("a volume of the snapshot");
        prop_assert!(dest.kind == VolumeKind::Local && dest.reachable_from(&node.name));
        *promised.entry(&dest.name).or_default() += d.size;
        prop_assert!(
            promised[dest.name.as_str()] <= dest.free(),
            "{to} over its space"
        );
    }
    Ok(())
}

#[test]
fn placement_never_accepts_a_cordoned_lost_or_full_node() {
    let accepted = Cell::new(0u64);
    let refused_unfit = Cell::new(0u64);
    run(cluster(false), |s| {
        for vm in &s.vms {
            for node in &s.nodes {
                for copy in [false, true] {
                    match plan::check(&s, vm, node, copy) {
                        Ok(p) => {
                            accepted.set(accepted.get() + 1);
                            check_placement(&s, vm, node, copy, &p)?;
                        }
                        Err(_) => {
                            if vm.state == VmState::Running
                                && unfit(node, node.mem_used, vm.memory).is_some()
                            {
                                refused_unfit.set(refused_unfit.get() + 1);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    });
    // The cases reached both sides: accepted moves, and unfit nodes refused.
    assert!(accepted.get() > 10_000, "{} accepted", accepted.get());
    assert!(
        refused_unfit.get() > 10_000,
        "{} refused",
        refused_unfit.get()
    );
}

#[test]
fn the_target_list_of_a_move_allows_no_cordoned_lost_or_full_node() {
    let allowed = Cell::new(0u64);
    run(
        (cluster(false), any::<prop::sample::Index>(), any::<bool>()),
        |(s, pick, copy)| {
            if s.vms.is_empty() {
                return Ok(());
            }
            let vm = &s.vms[pick.index(s.vms.len())];
            let mut d = Drag::new(&s, &vm.name, copy).expect("the VM is in the snapshot");
            prop_assert_eq!(d.verdicts.len(), s.nodes.len());
            for ((name, verdict), node) in d.verdicts.iter().zip(&s.nodes) {
                prop_assert_eq!(name, &node.name);
                if let Ok(p) = verdict {
                    allowed.set(allowed.get() + 1);
                    // A node that cannot reach a disk is offered with the
                    // disk copied.
                    check_placement(&s, vm, node, true, p)?;
                }
            }
            // Ranked: the allowed ones first, each with its prediction;
            // refused ones after, none with one.
            d.rank(&s, &MigrationOptions::default(), &[]);
            prop_assert_eq!(d.ranked.len(), s.nodes.len());
            let ok: Vec<bool> = d
                .ranked
                .iter()
                .map(|c| d.verdicts[c.node].1.is_ok())
                .collect();
            for (c, &is_ok) in d.ranked.iter().zip(&ok) {
                prop_assert_eq!(c.prediction.is_some(), is_ok);
            }
            prop_assert!(
                ok.windows(2).all(|w| w[0] || !w[1]),
                "refused before allowed: {ok:?}"
            );
            Ok(())
        },
    );
    assert!(allowed.get() > 1_000, "{} allowed", allowed.get());
}

#[test]
fn a_drain_plan_stays_within_capacity_and_moves_each_vm_once() {
    let moves = Cell::new(0u64);
    run(
        (
            cluster(false),
            any::<prop::sample::Index>(),
            any::<bool>(),
            any::<bool>(),
        ),
        |(s, pick, copy_storage, storage_moves)| {
            let drained = s.nodes[pick.index(s.nodes.len())].name.clone();
            let options = MigrationOptions {
                copy_storage,
                ..Default::default()
            };
            let p = plan::plan_drain_with(
                &s,
                &drained,
                &options,
                &[],
                storage_moves,
                &Default::default(),
            );
            moves.set(moves.get() + p.moves.len() as u64);
            // Every VM of the node once: moved, stuck or left.
            let mut listed: Vec<&str> = p
                .moves
                .iter()
                .map(|m| m.vm.as_str())
                .chain(p.stuck.iter().map(|st| st.vm.as_str()))
                .chain(p.left.iter().map(String::as_str))
                .collect();
            listed.sort_unstable();
            let mut on: Vec<&str> = s.vms_on(&drained).map(|v| v.name.as_str()).collect();
            on.sort_unstable();
            prop_assert_eq!(listed, on, "{:?}", p);
            for l in &p.left {
                prop_assert_ne!(s.vm(l).unwrap().state, VmState::Running, "{} left", l);
            }
            // Replay the moves in order, counting each on its target (and
            // every disk copy or disk move on its volume).
            let mut used: HashMap<&str, u64> = s
                .nodes
                .iter()
                .map(|n| (n.name.as_str(), n.mem_used))
                .collect();
            let mut vol_used: HashMap<String, u64> =
                s.volumes.iter().map(|v| (v.name.clone(), v.used)).collect();
            let mut at: HashMap<&str, &str> = s
                .vms
                .iter()
                .map(|v| (v.name.as_str(), v.node.as_str()))
                .collect();
            for m in &p.moves {
                let vm = s.vm(&m.vm).unwrap();
                prop_assert_eq!(vm.state, VmState::Running, "{} moved", m.vm);
                prop_assert_eq!(at[m.vm.as_str()], drained.as_str(), "{} moved twice", m.vm);
                let to = s.node(&m.to).expect("a node of the cluster");
                prop_assert_ne!(&to.name, &drained);
                if let Some(why) = unfit(to, used[to.name.as_str()], vm.memory) {
                    return fail(format!(
                        "{} → {}: {why} (moves: {:?})",
                        m.vm,
                        m.to,
                        names(&p)
                    ));
                }
                *used.get_mut(to.name.as_str()).unwrap() += vm.memory;
                at.insert(&m.vm, &to.name);
                let mut disks: Vec<Disk> = vm.disks.clone();
                for dm in &m.disk_moves {
                    prop_assert!(storage_moves && dm.vm == m.vm, "{dm:?}");
                    let csv = s.volume(&dm.to).unwrap();
                    prop_assert_eq!(csv.kind, VolumeKind::ClusterShared);
                    // Moved while the VM still runs on the drained node.
                    prop_assert!(csv.reachable_from(&drained));
                    let d = disks.iter_mut().find(|d| d.volume == dm.from).unwrap();
                    d.volume = dm.to.clone();
                    let u = vol_used.get_mut(&dm.to).unwrap();
                    *u += dm.bytes;
                    prop_assert!(*u <= csv.capacity, "{} over its space: {dm:?}", csv.name);
                }
                // Each disk out of reach has its own copy (two disks on one
                // volume are two copies).
                let mut copied = vec![false; m.placement.copies.len()];
                for d in &disks {
                    let v = s.volume(&d.volume).unwrap();
                    if v.reachable_from(&to.name) {
                        continue;
                    }
                    let Some(ci) = (0..copied.len()).find(|&i| {
                        let c = &m.placement.copies[i];
                        !copied[i] && c.0 == v.name && c.2 == d.size
                    }) else {
                        return fail(format!("{}'s disk on {} stays out of reach", m.vm, v.name));
                    };
                    copied[ci] = true;
                    let (_, dest, bytes) = &m.placement.copies[ci];
                    prop_assert!(copy_storage);
                    let dv = s.volume(dest).unwrap();
                    prop_assert!(dv.kind == VolumeKind::Local && dv.reachable_from(&to.name));
                    let u = vol_used.get_mut(dest).unwrap();
                    *u += bytes;
                    prop_assert!(
                        *u <= dv.capacity,
                        "{dest} over its space after copying {}'s disk (moves: {:?})",
                        m.vm,
                        names(&p)
                    );
                }
            }
            // A plain LUN used by one node before is used by one node after.
            for lun in s.volumes.iter().filter(|v| v.kind == VolumeKind::SharedLun) {
                let users = |at: &dyn Fn(&Vm) -> String| {
                    let mut n: Vec<String> = s
                        .vms
                        .iter()
                        .filter(|v| v.state != VmState::Stopped)
                        .filter(|v| v.disks.iter().any(|d| d.volume == lun.name))
                        .filter(|v| {
                            // A disk moved off the LUN no longer uses it.
                            !p.moves.iter().any(|m| {
                                m.vm == v.name && m.disk_moves.iter().any(|d| d.from == lun.name)
                            })
                        })
                        .map(at)
                        .collect();
                    n.sort();
                    n.dedup();
                    n.len()
                };
                let before = users(&|v: &Vm| v.node.clone());
                let after = users(&|v: &Vm| at[v.name.as_str()].to_string());
                prop_assert!(
                    before > 1 || after <= 1,
                    "LUN {} used by {after} nodes",
                    lun.name
                );
            }
            Ok(())
        },
    );
    assert!(moves.get() > 2_000, "{} moves planned", moves.get());
}

fn names(p: &plan::DrainPlan) -> Vec<(&str, &str)> {
    p.moves
        .iter()
        .map(|m| (m.vm.as_str(), m.to.as_str()))
        .collect()
}

#[test]
fn a_recovery_restarts_only_what_runs_nowhere_and_never_onto_a_cordoned_lost_or_full_node() {
    let restarts = Cell::new(0u64);
    run(
        (
            cluster(true),
            any::<prop::sample::Index>(),
            prop::bool::weighted(0.6),
        ),
        |(mut s, pick, lose)| {
            let i = pick.index(s.nodes.len());
            if lose {
                s.nodes[i].state = NodeState::Down;
            }
            let lost = s.nodes[i].clone();
            let p = match plan::plan_recover(&s, &lost.name) {
                Ok(p) => p,
                Err(e) => {
                    prop_assert!(!e.is_empty());
                    // Only a node that answers or is not lost yet is refused.
                    prop_assert_ne!(lost.state, NodeState::Down, "{}", e);
                    return Ok(());
                }
            };
            prop_assert_eq!(
                lost.state,
                NodeState::Down,
                "recovered a node that is not lost"
            );
            restarts.set(restarts.get() + p.restarts.len() as u64);
            let mut listed: Vec<&str> = p
                .restarts
                .iter()
                .map(|r| r.vm.as_str())
                .chain(p.cannot.iter().map(|c| c.vm.as_str()))
                .collect();
            listed.sort_unstable();
            let mut on: Vec<&str> = s.vms_on(&lost.name).map(|v| v.name.as_str()).collect();
            on.sort_unstable();
            prop_assert_eq!(listed, on, "{:?}", p);
            let mut used: HashMap<&str, u64> = s
                .nodes
                .iter()
                .map(|n| (n.name.as_str(), n.mem_used))
                .collect();
            for r in &p.restarts {
                let vm = s.vms_on(&lost.name).find(|v| v.name == r.vm).unwrap();
                prop_assert!(
                    matches!(
                        vm.state,
                        VmState::Running | VmState::Paused | VmState::Migrating
                    ),
                    "{} was {:?}",
                    vm.name,
                    vm.state
                );
                prop_assert!(
                    s.managed_vm(&vm.name).is_none(),
                    "{} is the manager's",
                    vm.name
                );
                prop_assert_eq!(r.memory, vm.memory);
                // Never a second copy of a VM that runs where a node answers
                // (or may still answer).
                let elsewhere = s.vms.iter().find(|o| {
                    o.name == vm.name
                        && o.node != lost.name
                        && o.state != VmState::Stopped
                        && s.node(&o.node).is_some_and(|n| n.state != NodeState::Down)
                });
                prop_assert!(
                    elsewhere.is_none(),
                    "{} restarted though it runs on {}",
                    vm.name,
                    elsewhere.map_or("", |o| o.node.as_str())
                );
                let to = s.node(&r.to).expect("a node of the cluster");
                prop_assert_ne!(&to.name, &lost.name);
                if let Some(why) = unfit(to, used[to.name.as_str()], vm.memory) {
                    return fail(format!("{} restarted on {}: {why}", vm.name, r.to));
                }
                *used.get_mut(to.name.as_str()).unwrap() += vm.memory;
                prop_assert!(cpu::compatible(&vm.cpu_model, &to.cpu_model));
                for d in &vm.disks {
                    prop_assert!(s.volume(&d.volume).unwrap().reachable_from(&to.name));
                }
            }
            Ok(())
        },
    );
    assert!(
        restarts.get() > 1_000,
        "{} restarts planned",
        restarts.get()
    );
}
