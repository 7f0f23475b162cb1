//! What the model is given for one migration, and how sure each input is:
//! the workload as the backend measured it, narrowed by the VM's own past
//! migrations (what its first pass really sent, the dirty rate QEMU itself
//! reported, the fixed downtime seen) and by past migrations to the same
//! node (setup time).

use crate::cluster::{
    ClusterSnapshot, Estimate, Migration, MigrationInputs, MigrationOptions, Node, Outcome, Step,
    Vm, units,
};

use super::precopy::DEVICE_STATE_BYTES;

/// How far a figure learnt from one past migration may be off today.
const HISTORY_TOUCHED: (f64, f64) = (0.95, 1.10);
const HISTORY_DIRTY: (f64, f64) = (0.8, 1.25);
const HISTORY_SETUP: (f64, f64) = (0.7, 1.6);
/// Fewer rounds than this say nothing about how a guest writes.
const OVERLAP_MIN_ROUNDS: i64 = 4;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What a completed migration showed about its guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Learnt {
    /// Bytes its first pass sent: the memory in use then.
    pub touched: f64,
    /// Its threshold then: the first pass ends with up to that much still
    /// marked, and on a small guest a late read of libvirt's statistics
    /// can count up to that much of the final copy in the first pass.
    pub threshold: f64,
    /// The dirty rate QEMU reported from the second pass on.
    pub dirty_bps: Option<f64>,
    /// The most any later pass sent: pages the guest dirtied within one
    /// interval between syncs, so its working set is at least that.
    pub wws_at_least: f64,
}

/// What `m` shows, if it completed with rounds.
pub fn learn(m: &Migration) -> Option<Learnt> {
    if m.outcome != Some(Outcome::Completed) || m.postcopy_active || m.rounds.len() < 2 {
        return None;
    }
    let n = m.rounds.len();
    let dirty = median(
        m.rounds[1..n - 1]
            .iter()
            .filter(|r| r.dirty_bps > 0)
            .map(|r| r.dirty_bps as f64)
            .collect(),
    );
    Some(Learnt {
        touched: m.rounds[0].bytes_sent as f64,
        threshold: m.rounds[0].bandwidth_bps as f64 * m.options.max_downtime_ms as f64 / 1000.0,
        dirty_bps: dirty,
        wws_at_least: m.rounds[1..]
            .iter()
            .map(|r| r.bytes_sent as f64)
            .fold(0.0, f64::max),
    })
}

/// The fixed downtime and the final copy's speed between two nodes, from
/// past switchovers there: the speed from the final rounds (bytes over
/// their time), the fixed cost from each downtime less its last bytes at
/// that speed. `None` without a past switchover between them.
pub fn switchover_fit(
    history: &[Migration],
    vm: &str,
    a: &str,
    b: &str,
    link_bps: u64,
) -> Option<(Estimate, u64)> {
    let past: Vec<&Migration> = history
        .iter()
        .rev()
        .filter(|m| (m.from == a && m.to == b) || (m.from == b && m.to == a))
        .filter(|m| m.outcome == Some(Outcome::Completed) && !m.postcopy_active)
        .filter(|m| m.actual_downtime_ms.is_some() && !m.rounds.is_empty())
        .take(20)
        .collect();
    if past.is_empty() {
        return None;
    }
    // The final copy is the one round after the first that moves its
    // bytes at line speed, far faster than any rate-limited pass.
    // Only a round that clearly ran unthrottled tells the speed: a few MiB
    // at ten times the first pass's rate (libvirt's statistics are read a
    // little late, so short or small rounds mislead).
    let timed = |m: &Migration| {
        let pass = m.rounds.first().map_or(0.0, |r| r.bandwidth_bps as f64);
        m.rounds
            .iter()
            .skip(1)
            .filter(|r| r.bytes_sent >= 4 << 20 && r.duration_ms >= 2.0)
            .filter(|r| r.bytes_sent as f64 / r.duration_ms * 1000.0 >= 10.0 * pass)
            .max_by(|a, b| {
                (a.bytes_sent as f64 / a.duration_ms)
                    .total_cmp(&(b.bytes_sent as f64 / b.duration_ms))
            })
            .cloned()
    };
    // Without its time, the last round after the first that carried bytes.
    let last = |m: &Migration| {
        timed(m).or_else(|| {
            m.rounds
                .iter()
                .skip(1)
                .rev()
                .find(|r| r.bytes_sent > 0)
                .cloned()
        })
    };
    let speeds: Vec<f64> = past
        .iter()
        .filter_map(|m| timed(m))
        .map(|r| r.bytes_sent as f64 / r.duration_ms * 1000.0)
        .collect();
    let line = median(speeds).map_or(link_bps as f64, |v| v.clamp(100e6, 20e9));
    // The fixed cost varies with the guest (its devices, how busy it is):
    // its own past switchovers when it has some, else the pair's.
    let own: Vec<&Migration> = past.iter().copied().filter(|m| m.vm == vm).collect();
    let fixed: Vec<f64> = (if own.is_empty() { &past } else { &own })
        .iter()
        .map(|m| {
            let bytes = last(m).map_or(0.0, |r| r.bytes_sent as f64) + DEVICE_STATE_BYTES;
            (m.actual_downtime_ms.unwrap_or(0.0) - bytes / line * 1000.0).max(1.0)
        })
        .collect();
    // Its mean (switchovers have a long tail: a pause now and then takes
    // twice the usual), and the range seen, widened by half.
    let s = fixed.iter().sum::<f64>() / fixed.len().max(1) as f64;
    let (min, max) = fixed
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &f| (a.min(f), b.max(f)));
    // A switchover varies by ±8 ms or so from one to the next on a busy
    // host: never a narrower range than that, however few were seen.
    let spread = (max - min).max(16.0);
    Some((
        Estimate::new(s, (min - spread / 2.0).max(1.0), max + spread / 2.0),
        line as u64,
    ))
}

/// The inputs for moving `vm` to `node` with `options`; `history` holds
/// past migrations of this cluster, oldest first.
pub fn inputs_for(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    options: &MigrationOptions,
    storage_bytes: u64,
    history: &[Migration],
) -> MigrationInputs {
    let link = snap.link_bps(&vm.node, &node.name).max(1);
    let memory = vm.memory as f64;
    let w = &vm.workload;
    let mut basis = Vec::new();
    let (mut touched, mut wws, mut dirty) = match &w.measured {
        Some(m) => {
            basis.push(m.basis.clone());
            (m.touched_bytes, m.wws_bytes, m.dirty_bps)
        }
        None => (
            Estimate::exact(w.touched_bytes.unwrap_or(vm.memory) as f64),
            Estimate::exact(w.wws_bytes as f64),
            Estimate::exact(w.dirty_bps as f64),
        ),
    };
    let mut switchover = snap.costs.switchover_ms;

    // The VM's own last completed migration (same memory size).
    let own = history
        .iter()
        .rev()
        .filter(|m| m.vm == vm.name && m.memory == vm.memory)
        .find_map(|m| learn(m).map(|l| (m, l)));
    match &own {
        Some((m, l)) => {
            let t = l.touched.min(memory);
            // What the first pass sent, give or take what its end left
            // marked (its share of data) and what a late read added.
            let h_lo = (t - l.threshold).max(0.0) * HISTORY_TOUCHED.0;
            let h_hi = ((t + l.threshold * t / memory.max(1.0)) * HISTORY_TOUCHED.1).min(memory);
            touched = if touched.is_exact() && w.measured.is_some() {
                touched // the simulator knows
            } else if w.measured.is_some() && h_lo.max(touched.lo) <= h_hi.min(touched.hi) {
                // Both hold: memory in use only grows, and resident memory
                // bounds it now.
                let (lo, hi) = (h_lo.max(touched.lo), h_hi.min(touched.hi));
                Estimate::new(touched.value.clamp(lo, hi), lo, hi)
            } else {
                Estimate::new(t, h_lo, h_hi)
            };
            basis.push(format!(
                "its last migration ({} → {}) sent {} in its first pass",
                m.from,
                m.to,
                units::bytes(t as u64)
            ));
            if let Some(d) = l.dirty_bps {
                // Page sampling misses now and then by more than its range:
                // only a clear difference means the workload changed.
                let (lo, hi) = (
                    dirty.value - 1.5 * (dirty.value - dirty.lo),
                    dirty.value + 1.5 * (dirty.hi - dirty.value),
                );
                if w.measured.is_none() || (lo <= d * HISTORY_DIRTY.1 && d * HISTORY_DIRTY.0 <= hi)
                {
                    dirty = Estimate::new(d, d * HISTORY_DIRTY.0, d * HISTORY_DIRTY.1);
                    basis.push(format!(
                        "QEMU measured it dirtying {} during that migration",
                        units::rate(d as u64)
                    ));
                } else {
                    basis.push(format!(
                        "it dirtied {} during its last migration but measures {}–{} now: using today's measurement",
                        units::rate(d as u64),
                        units::rate(dirty.lo as u64),
                        units::rate(dirty.hi as u64)
                    ));
                }
            }
        }
        None if !touched.is_exact() => basis.push(format!(
            "first migration of {}: the time depends on how much of its {} is in use ({}–{})",
            vm.name,
            units::bytes(vm.memory),
            units::bytes(touched.lo as u64),
            units::bytes(touched.hi as u64)
        )),
        None => {}
    }
    // What its last migration's later passes sent, it dirtied between
    // two syncs: a working set measured smaller (page sampling taking a
    // noisy long window for saturation) is wrong by that much.
    if let Some((m, l)) = &own
        && !wws.is_exact()
        && l.wws_at_least > wws.lo
    {
        let least = l.wws_at_least.min(memory);
        wws = Estimate::new(wws.value.max(least), least, wws.hi.max(least));
        basis.push(format!(
            "its working set is at least the {} a later pass of that migration sent ({} → {})",
            units::bytes(least as u64),
            m.from,
            m.to
        ));
    }
    wws = Estimate::new(
        wws.value.min(touched.hi),
        wws.lo.min(touched.hi),
        wws.hi.min(memory),
    );

    // The fixed downtime and the final copy's speed: past switchovers
    // between these two nodes, else the backend's figures.
    let mut line = 0;
    if let Some((s, l)) = switchover_fit(history, &vm.name, &vm.node, &node.name, link) {
        // What this backend has seen of switchovers anywhere stays possible.
        switchover = Estimate::new(s.value, s.lo, s.hi.max(snap.costs.switchover_ms.hi));
        line = l;
    }

    // Setup: past migrations to this node, else the backend's figure.
    let setups: Vec<f64> = history
        .iter()
        .rev()
        .filter(|m| m.to == node.name && m.outcome == Some(Outcome::Completed))
        .filter_map(|m| m.step_started_ms[Step::PreCopy.index()])
        .take(5)
        .collect();
    let setup = match median(setups) {
        Some(s) => Estimate::new(s, s * HISTORY_SETUP.0, s * HISTORY_SETUP.1),
        None => snap.costs.setup_ms,
    };
    let mut inputs = MigrationInputs {
        memory: vm.memory,
        touched,
        wws,
        dirty_bps: dirty,
        bandwidth_bps: options.bandwidth_bps.map_or(link, |b| b.min(link)).max(1),
        link_bps: link,
        line_bps: line,
        setup_ms: setup,
        switchover_ms: switchover,
        cleanup_ms: snap.costs.cleanup_ms,
        storage_bytes,
        write_overlap: 1.0,
        basis,
    };
    if let Some((m, _)) = &own {
        learn_overlap(&mut inputs, m);
    }
    inputs
}

/// How the guest writes, from the VM's own last migration: spread over
/// its working set, or sweeping it (what is left marked at a sync is then
/// rarely written again before the next, so every sync finds more that is
/// new, and a migration takes more rounds). The one of the two with which
/// the model, given today's inputs and that migration's limits, comes
/// closest to the rounds it really took; spread where both are as close.
/// Only a migration of several rounds tells them apart.
fn learn_overlap(inputs: &mut MigrationInputs, past: &Migration) {
    let real = past.rounds.len() as i64;
    if real < OVERLAP_MIN_ROUNDS {
        return;
    }
    let then = MigrationInputs {
        bandwidth_bps: past
            .options
            .bandwidth_bps
            .map_or(inputs.link_bps, |b| b.min(inputs.link_bps))
            .max(1),
        ..inputs.clone()
    };
    let miss = |overlap: f64| {
        super::predict::likely_rounds(
            &MigrationInputs {
                write_overlap: overlap,
                ..then.clone()
            },
            &past.options,
        )
        .map_or(i64::MAX, |r| (r as i64 - real).abs())
    };
    let (spread, sweep) = (miss(1.0), miss(0.0));
    if sweep < spread {
        inputs.write_overlap = 0.0;
        inputs.basis.push(format!(
            "its last migration took {real} rounds: it writes its memory in sweeps, not spread (more of what it writes is new at each sync)"
        ));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn past_switchovers_give_the_line_speed_and_the_fixed_cost() {
        // 10 ms fixed, 2.5 GB/s: final rounds and downtimes of past
        // migrations a ↔ b.
        let mut ms = Vec::new();
        for (i, mib) in [5u64, 6, 11, 15].iter().enumerate() {
            let mut m = past();
            m.id = i as u64;
            let last = m.rounds.last_mut().unwrap();
            last.bytes_sent = mib * MIB;
            last.duration_ms = (mib * MIB) as f64 / 2.5e9 * 1000.0;
            let bytes = (mib * MIB) as f64 + DEVICE_STATE_BYTES;
            m.actual_downtime_ms = Some(10.0 + bytes / 2.5e9 * 1000.0);
            if i % 2 == 1 {
                std::mem::swap(&mut m.from, &mut m.to);
            }
            ms.push(m);
        }
        let (s, line) = switchover_fit(&ms, "other", "a", "b", 1000 * MIB).unwrap();
        assert!((s.value - 10.0).abs() < 0.5, "{s:?}");
        assert!((line as f64 - 2.5e9).abs() < 0.05e9, "{line}");
        assert!(switchover_fit(&ms, "g", "a", "c", 1000 * MIB).is_none());
        // A guest with its own past switchover: its own fixed cost.
        let mut mine = past();
        mine.vm = "mine".into();
        mine.actual_downtime_ms = Some(30.0);
        ms.push(mine);
        let (s, _) = switchover_fit(&ms, "mine", "a", "b", 1000 * MIB).unwrap();
        assert!(s.value > 25.0, "{s:?}");
    }

    use super::*;
    use crate::cluster::{MIB, Measured, MigrationOptions, Round, Workload};

    fn snap() -> ClusterSnapshot {
        let node = |n: &str| Node {
            name: n.into(),
            state: crate::cluster::NodeState::Up,
            cpus: 4,
            cpu_used_pct: 0.0,
            mem_total: 8192 * MIB,
            mem_used: 0,
            cpu_model: "x".into(),
            nic_bps: 1000 * MIB,
            error: None,
            cordon: None,
            labels: Vec::new(),
        };
        ClusterSnapshot {
            cluster: "c".into(),
            backend: "libvirt".into(),
            at_ms: 0,
            nodes: vec![node("a"), node("b")],
            volumes: vec![],
            vms: vec![],
            migrations: vec![],
            events: vec![],
            costs: Default::default(),
            manager: None,
            recoveries: Vec::new(),
            alarms: Vec::new(),
            cordons_unreadable: None,
            storage_moves: Vec::new(),
            marks: Vec::new(),
            stale_copies: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn vm() -> Vm {
        Vm {
            name: "g".into(),
            node: "a".into(),
            state: crate::cluster::VmState::Running,
            vcpus: 1,
            memory: 256 * MIB,
            disks: vec![],
            workload: Workload {
                kind: "measured".into(),
                dirty_bps: 8 * MIB,
                wws_bytes: 64 * MIB,
                cpu_load: 0.0,
                touched_bytes: None,
                measured: Some(Measured {
                    dirty_bps: Estimate::new((8 * MIB) as f64, (4 * MIB) as f64, (14 * MIB) as f64),
                    wws_bytes: Estimate::new(
                        (64 * MIB) as f64,
                        (24 * MIB) as f64,
                        (200 * MIB) as f64,
                    ),
                    touched_bytes: Estimate::new(
                        (70 * MIB) as f64,
                        (60 * MIB) as f64,
                        (90 * MIB) as f64,
                    ),
                    basis: "4 measurements".into(),
                }),
            },
            ha: false,
            cpu_model: "x".into(),
            cpu_used_pct: 0.0,
            lost: None,
        }
    }

    fn past() -> Migration {
        let mut m = Migration::starting(
            1,
            "g",
            "a",
            "b",
            MigrationOptions::default(),
            256 * MIB,
            0,
            0,
        );
        let round = |sent: u64, dirty_bps: u64| Round {
            index: 0,
            bytes_sent: sent,
            bytes_dirty: 0,
            dirty_bps,
            bandwidth_bps: 0,
            duration_ms: 0.0,
            throttle_pct: 0,
        };
        m.rounds = vec![
            round(68 * MIB, 0),
            round(16 * MIB, 15 * MIB),
            round(4 * MIB, 15 * MIB),
            round(11 * MIB, 15 * MIB),
        ];
        m.actual_downtime_ms = Some(30.0);
        m.step_started_ms[Step::PreCopy.index()] = Some(260.0);
        m.outcome = Some(Outcome::Completed);
        m
    }

    #[test]
    fn a_first_migration_keeps_the_measured_ranges_and_says_so() {
        let s = snap();
        let i = inputs_for(&s, &vm(), &s.nodes[1], &MigrationOptions::default(), 0, &[]);
        assert_eq!(i.touched.lo, (60 * MIB) as f64);
        assert_eq!(i.dirty_bps.hi, (14 * MIB) as f64);
        assert!(
            i.basis
                .iter()
                .any(|b| b.starts_with("first migration of g")),
            "{:?}",
            i.basis
        );
        assert_eq!(i.setup_ms, s.costs.setup_ms);
    }

    #[test]
    fn a_past_migration_narrows_touched_memory_dirty_rate_and_setup() {
        let s = snap();
        let i = inputs_for(
            &s,
            &vm(),
            &s.nodes[1],
            &MigrationOptions::default(),
            0,
            &[past()],
        );
        // 68 MiB sent (no bandwidth recorded, so nothing left for later):
        // the measured 70 MiB holds, within what that pass showed.
        assert_eq!(i.touched.value, (70 * MIB) as f64);
        assert!(i.touched.lo >= (64 * MIB) as f64 && i.touched.hi < (76 * MIB) as f64);
        assert_eq!(
            i.dirty_bps.value,
            (15 * MIB) as f64,
            "median of QEMU's rates"
        );
        assert_eq!(i.setup_ms.value, 260.0);
        // 30 ms minus 11.25 MiB at 1000 MiB/s.
        assert!(
            (i.switchover_ms.value - 18.5).abs() < 0.5,
            "{:?}",
            i.switchover_ms
        );
        assert!(i.basis.iter().any(|b| b.contains("last migration")));
    }

    #[test]
    fn a_past_migration_tells_a_guest_that_sweeps_its_memory_from_one_that_scatters() {
        // 16 MB/s over a 160 MiB set, 20 MiB/s: many rounds, where the two
        // ways of writing differ by a round or two.
        let s = snap();
        let mut g = vm();
        let m = g.workload.measured.as_mut().unwrap();
        m.dirty_bps = Estimate::new(16e6, 15e6, 17e6);
        m.wws_bytes = Estimate::new((160 * MIB) as f64, (150 * MIB) as f64, (170 * MIB) as f64);
        m.touched_bytes = Estimate::new((200 * MIB) as f64, (190 * MIB) as f64, (210 * MIB) as f64);
        let options = MigrationOptions {
            bandwidth_bps: Some(20 * MIB),
            ..Default::default()
        };
        let with_rounds = |n: u32| {
            let mut m = past();
            m.options = options.clone();
            m.rounds = (0..n)
                .map(|i| Round {
                    index: i,
                    bytes_sent: if i == 0 { 200 * MIB } else { 10 * MIB },
                    bytes_dirty: 0,
                    dirty_bps: 16_000_000,
                    bandwidth_bps: 20 * MIB,
                    duration_ms: 500.0,
                    throttle_pct: 0,
                })
                .collect();
            m
        };
        let first = inputs_for(&s, &g, &s.nodes[1], &options, 0, &[]);
        assert_eq!(
            first.write_overlap, 1.0,
            "spread until a migration shows otherwise"
        );
        let learnt = inputs_for(&s, &g, &s.nodes[1], &options, 0, &[with_rounds(4)]);
        let spread = crate::plan::predict::likely_rounds(&learnt, &options).unwrap();
        let sweep = crate::plan::predict::likely_rounds(
            &MigrationInputs {
                write_overlap: 0.0,
                ..learnt.clone()
            },
            &options,
        )
        .unwrap();
        assert!(
            sweep > spread,
            "sweeping takes more rounds: {sweep} vs {spread}"
        );
        let i = inputs_for(&s, &g, &s.nodes[1], &options, 0, &[with_rounds(sweep)]);
        assert_eq!(i.write_overlap, 0.0);
        assert!(
            i.basis.iter().any(|b| b.contains("sweeps")),
            "{:?}",
            i.basis
        );
        let i = inputs_for(&s, &g, &s.nodes[1], &options, 0, &[with_rounds(spread)]);
        assert_eq!(i.write_overlap, 1.0);
        // Three rounds say nothing about it.
        let i = inputs_for(&s, &g, &s.nodes[1], &options, 0, &[with_rounds(3)]);
        assert_eq!(i.write_overlap, 1.0);
    }

    #[test]
    fn a_past_migration_bounds_the_working_set_from_below() {
        // Measured: a 13 MiB working set (a noisy long window); its last
        // migration's second pass sent 20 MiB, dirtied in one interval.
        let s = snap();
        let mut g = vm();
        let m = g.workload.measured.as_mut().unwrap();
        m.wws_bytes = Estimate::new((13 * MIB) as f64, (9 * MIB) as f64, (18 * MIB) as f64);
        let mut p = past();
        p.rounds[1].bytes_sent = 20 * MIB;
        let i = inputs_for(&s, &g, &s.nodes[1], &MigrationOptions::default(), 0, &[p]);
        assert_eq!(i.wws.lo, (20 * MIB) as f64, "{:?}", i.wws);
        assert!(i.wws.value >= (20 * MIB) as f64 && i.wws.hi >= i.wws.value);
        assert!(
            i.basis
                .iter()
                .any(|b| b.contains("working set is at least")),
            "{:?}",
            i.basis
        );
        // A measured set above what the passes sent stays as it was.
        let i = inputs_for(
            &s,
            &vm(),
            &s.nodes[1],
            &MigrationOptions::default(),
            0,
            &[past()],
        );
        assert_eq!(i.wws.lo, (24 * MIB) as f64);
        assert!(
            !i.basis
                .iter()
                .any(|b| b.contains("working set is at least"))
        );
    }
}
