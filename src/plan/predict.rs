//! Convergence prediction: the pre-copy arithmetic of DESIGN §1 with a
//! writable-working-set cap, QEMU's switchover rule, auto-converge and the
//! stall policy.

use std::fmt;

use serde::Serialize;

use super::rules;
use crate::cluster::{ClusterSnapshot, MigrationOptions, Node, OnStall, PostcopyMode, Vm, units};

#[derive(Debug, Clone, PartialEq)]
pub struct PredictInput {
    pub memory: u64,
    /// Writable working set: the most one round can dirty.
    pub wws: u64,
    pub dirty_bps: u64,
    /// Bandwidth the migration will get, bytes/s.
    pub bandwidth_bps: u64,
    /// The most the link could carry (for advice), bytes/s.
    pub link_bps: u64,
    pub max_downtime_ms: u64,
    pub auto_converge: bool,
    pub postcopy: PostcopyMode,
    pub on_stall: OnStall,
    /// Disk bytes copied first (shared-nothing).
    pub storage_bytes: u64,
}

/// What would make a non-converging migration converge.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "fix", rename_all = "snake_case")]
pub enum Advice {
    RaiseMaxDowntime { ms: u64 },
    RaiseBandwidth { bps: u64 },
    AutoConverge,
    Postcopy,
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Advice::RaiseMaxDowntime { ms } => write!(f, "raise max downtime to {ms} ms"),
            Advice::RaiseBandwidth { bps } => {
                write!(f, "raise the bandwidth limit to {}", units::rate(*bps))
            }
            Advice::AutoConverge => {
                write!(f, "turn on auto-converge (throttles the guest's vCPUs)")
            }
            Advice::Postcopy => write!(
                f,
                "use post-copy (--postcopy auto): it always finishes, but cannot be aborted once it starts and a network loss then loses the VM"
            ),
        }
    }
}

impl Advice {
    /// A few words, for places with little room.
    pub fn short(&self) -> String {
        match self {
            Advice::RaiseMaxDowntime { ms } => format!("max downtime ≥ {ms} ms"),
            Advice::RaiseBandwidth { bps } => format!("bandwidth ≥ {}", units::rate(*bps)),
            Advice::AutoConverge => "auto-converge".into(),
            Advice::Postcopy => "post-copy (no abort once started)".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Pre-copy rounds (round 0 is the full pass).
    pub rounds: u32,
    /// Dirty bytes left after each predicted round.
    pub round_dirty: Vec<u64>,
    pub total_bytes: u64,
    pub total_ms: f64,
    /// Expected downtime, if it converges.
    pub downtime_ms: f64,
    pub converges: bool,
    /// Pre-copy stops shrinking at some point.
    pub stalls: bool,
    /// Finishes by switching to post-copy.
    pub postcopy: bool,
    pub throttle_pct: u32,
    /// Empty when it converges as asked.
    pub advice: Vec<Advice>,
}

impl Prediction {
    /// One line for people: "converges in 2 rounds, 4.9 s, downtime ≈ 80 ms".
    pub fn summary(&self, max_downtime_ms: u64) -> String {
        if self.converges && self.postcopy {
            format!(
                "finishes by switching to post-copy after {} rounds, {}, downtime ≈ {}",
                self.rounds,
                units::millis(self.total_ms),
                units::millis(self.downtime_ms)
            )
        } else if self.converges {
            format!(
                "converges in {} round{}, {}, downtime ≈ {} (limit {max_downtime_ms} ms){}",
                self.rounds,
                if self.rounds == 1 { "" } else { "s" },
                units::millis(self.total_ms),
                units::millis(self.downtime_ms),
                if self.throttle_pct > 0 {
                    format!(", guest throttled up to {} %", self.throttle_pct)
                } else {
                    String::new()
                }
            )
        } else {
            let last = self.round_dirty.last().copied().unwrap_or(0);
            format!(
                "will not converge: after {} rounds {} stays dirty, more than the {max_downtime_ms} ms downtime limit lets through",
                self.rounds,
                units::bytes(last)
            )
        }
    }
}

/// The prediction for moving `vm` to `node` with `options`.
pub fn predict_for(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    options: &MigrationOptions,
    storage_bytes: u64,
) -> Prediction {
    let link = snap
        .node(&vm.node)
        .map_or(node.nic_bps, |src| src.nic_bps.min(node.nic_bps));
    predict(&PredictInput {
        memory: vm.memory,
        wws: vm.workload.wws_bytes,
        dirty_bps: vm.workload.dirty_bps,
        bandwidth_bps: options.bandwidth_bps.map_or(link, |b| b.min(link)),
        link_bps: link,
        max_downtime_ms: options.max_downtime_ms,
        auto_converge: options.auto_converge,
        postcopy: options.postcopy,
        on_stall: options.on_stall,
        storage_bytes,
    })
}

/// Predicts the migration and, when it does not converge, what would fix it.
pub fn predict(input: &PredictInput) -> Prediction {
    let mut p = run(input);
    if !p.converges {
        p.advice = advise(input);
    }
    p
}

fn run(input: &PredictInput) -> Prediction {
    let b = input.bandwidth_bps.max(1) as f64;
    let w = input.wws.min(input.memory) as f64;
    let d = input.dirty_bps as f64;
    let storage = input.storage_bytes as f64;
    let mut p = Prediction {
        rounds: 0,
        round_dirty: Vec::new(),
        total_bytes: 0,
        total_ms: rules::TYPICAL_SETUP_MS + storage / b * 1000.0,
        downtime_ms: 0.0,
        converges: false,
        stalls: false,
        postcopy: false,
        throttle_pct: 0,
        advice: Vec::new(),
    };
    let mut total = storage;
    let postcopy_now = |p: &mut Prediction, pending: f64, total: f64| {
        p.postcopy = true;
        p.converges = true;
        p.downtime_ms = rules::downtime_ms(0.0, b);
        p.total_ms += p.downtime_ms + pending / b * 1000.0 + rules::CLEANUP_MS;
        p.total_bytes = (total + pending + rules::DEVICE_STATE_BYTES as f64) as u64;
    };
    if input.postcopy == PostcopyMode::Now {
        postcopy_now(&mut p, input.memory as f64, total);
        return p;
    }
    let mut to_send = input.memory as f64;
    let mut dirty_history = Vec::new();
    loop {
        let secs = to_send / b;
        let dirtied = (d * (1.0 - p.throttle_pct as f64 / 100.0) * secs).min(w);
        p.rounds += 1;
        p.total_ms += secs * 1000.0;
        total += to_send;
        p.round_dirty.push(dirtied as u64);
        dirty_history.push(dirtied);
        if rules::switchover_ready(
            dirtied + rules::DEVICE_STATE_BYTES as f64,
            b,
            input.max_downtime_ms,
        ) {
            p.converges = true;
            p.downtime_ms = rules::downtime_ms(dirtied, b);
            p.total_ms += p.downtime_ms + rules::CLEANUP_MS;
            p.total_bytes = (total + dirtied + rules::DEVICE_STATE_BYTES as f64) as u64;
            return p;
        }
        if input.auto_converge {
            p.throttle_pct = rules::next_throttle(p.throttle_pct, dirtied, to_send);
        }
        let switchover = b * input.max_downtime_ms as f64 / 1000.0;
        if rules::stalled(
            &dirty_history,
            p.throttle_pct,
            input.auto_converge,
            switchover,
        ) {
            p.stalls = true;
            if input.postcopy == PostcopyMode::Auto || input.on_stall == OnStall::Postcopy {
                postcopy_now(&mut p, dirtied, total);
            } else {
                p.total_bytes = total as u64;
            }
            return p;
        }
        to_send = dirtied;
    }
}

fn converges_plain(input: &PredictInput) -> bool {
    let p = run(input);
    p.converges && !p.postcopy
}

fn advise(input: &PredictInput) -> Vec<Advice> {
    // Advice is about pre-copy converging on its own, so post-copy is off
    // and a stall means "does not converge" while trying the fixes.
    let base = PredictInput {
        postcopy: PostcopyMode::Off,
        on_stall: OnStall::Abort,
        ..input.clone()
    };
    let mut advice = Vec::new();

    // Smallest max downtime (10 ms steps, at most a minute) that converges.
    let mut hi = base.max_downtime_ms.max(10);
    while hi <= 60_000
        && !converges_plain(&PredictInput {
            max_downtime_ms: hi,
            ..base.clone()
        })
    {
        hi *= 2;
    }
    if hi <= 60_000 {
        let mut lo = base.max_downtime_ms;
        while hi - lo > 10 {
            let mid = (lo + hi) / 2;
            if converges_plain(&PredictInput {
                max_downtime_ms: mid,
                ..base.clone()
            }) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        advice.push(Advice::RaiseMaxDowntime {
            ms: hi.div_ceil(10) * 10,
        });
    }

    // Bandwidth up to the link's, if the limit is below it.
    if base.bandwidth_bps < base.link_bps
        && converges_plain(&PredictInput {
            bandwidth_bps: base.link_bps,
            ..base.clone()
        })
    {
        let (mut lo, mut hi) = (base.bandwidth_bps, base.link_bps);
        while hi - lo > hi / 100 {
            let mid = lo + (hi - lo) / 2;
            if converges_plain(&PredictInput {
                bandwidth_bps: mid,
                ..base.clone()
            }) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        advice.push(Advice::RaiseBandwidth { bps: hi });
    }

    if !base.auto_converge
        && converges_plain(&PredictInput {
            auto_converge: true,
            ..base.clone()
        })
    {
        advice.push(Advice::AutoConverge);
    }
    advice.push(Advice::Postcopy);
    advice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GIB, MIB};

    fn input(memory: u64, wws: u64, dirty: u64, bw: u64) -> PredictInput {
        PredictInput {
            memory,
            wws,
            dirty_bps: dirty,
            bandwidth_bps: bw,
            link_bps: bw,
            max_downtime_ms: 300,
            auto_converge: false,
            postcopy: PostcopyMode::Off,
            on_stall: OnStall::Abort,
            storage_bytes: 0,
        }
    }

    /// With the working set being all of memory, round i sends M·λ^i: the
    /// closed-form pre-copy series.
    #[test]
    fn whole_memory_working_set_follows_the_geometric_series() {
        let (m, b) = (8 * GIB, 1000 * MIB);
        let lambda = 0.6;
        let d = (b as f64 * lambda) as u64;
        let p = predict(&input(m, m, d, b));
        assert!(p.converges);
        let threshold = b as f64 * 0.3;
        // First round whose dirty leftover fits the downtime (device state included).
        let expected_rounds = (1..)
            .find(|&i| m as f64 * lambda.powi(i) + rules::DEVICE_STATE_BYTES as f64 <= threshold)
            .unwrap();
        assert_eq!(p.rounds as i32, expected_rounds);
        for (i, &dirty) in p.round_dirty.iter().enumerate() {
            let closed = m as f64 * lambda.powi(i as i32 + 1);
            assert!(
                (dirty as f64 - closed).abs() / closed < 1e-6,
                "round {i}: {dirty} vs closed form {closed}"
            );
        }
        let sent: f64 = (0..p.rounds as i32)
            .map(|i| m as f64 * lambda.powi(i))
            .sum();
        let expected_total = sent + p.round_dirty[p.rounds as usize - 1] as f64;
        let total_no_device = (p.total_bytes - rules::DEVICE_STATE_BYTES) as f64;
        assert!((total_no_device - expected_total).abs() / expected_total < 1e-6);
        let expected_downtime =
            rules::downtime_ms(m as f64 * lambda.powi(p.rounds as i32), b as f64);
        assert!((p.downtime_ms - expected_downtime).abs() < 0.01);
    }

    #[test]
    fn a_small_hot_set_caps_what_a_round_dirties() {
        let p = predict(&input(4 * GIB, 256 * MIB, 400 * MIB, 1000 * MIB));
        assert_eq!(
            p.round_dirty[0],
            256 * MIB,
            "round 0 dirties the whole hot set"
        );
        assert!(p.converges);
    }

    #[test]
    fn dirtying_faster_than_the_link_does_not_converge_and_gets_advice() {
        let i = input(32 * GIB, 24 * GIB, 3 * GIB, 1100 * MIB);
        let p = predict(&i);
        assert!(!p.converges);
        assert!(p.stalls);
        assert!(p.advice.contains(&Advice::AutoConverge));
        assert!(p.advice.contains(&Advice::Postcopy));
        // The advised downtime really converges, and 10 ms less does not.
        let ms = p
            .advice
            .iter()
            .find_map(|a| match a {
                Advice::RaiseMaxDowntime { ms } => Some(*ms),
                _ => None,
            })
            .expect("a downtime that works within a minute");
        assert!(converges_plain(&PredictInput {
            max_downtime_ms: ms,
            ..i.clone()
        }));
        assert!(!converges_plain(&PredictInput {
            max_downtime_ms: ms - 20,
            ..i.clone()
        }));
        assert!(p.summary(300).contains("will not converge"));
    }

    #[test]
    fn auto_converge_and_postcopy_make_it_finish() {
        let mut i = input(32 * GIB, 24 * GIB, 3 * GIB, 1100 * MIB);
        i.auto_converge = true;
        let p = predict(&i);
        assert!(p.converges && !p.postcopy);
        assert!(p.throttle_pct >= 60, "throttled to {} %", p.throttle_pct);
        i.auto_converge = false;
        i.postcopy = PostcopyMode::Auto;
        let p = predict(&i);
        assert!(p.converges && p.postcopy && p.stalls);
    }

    #[test]
    fn bandwidth_advice_only_when_the_limit_is_below_the_link() {
        let mut i = input(8 * GIB, 2 * GIB, 300 * MIB, 200 * MIB);
        i.link_bps = 2000 * MIB;
        let p = predict(&i);
        assert!(!p.converges);
        let bps = p
            .advice
            .iter()
            .find_map(|a| match a {
                Advice::RaiseBandwidth { bps } => Some(*bps),
                _ => None,
            })
            .expect("bandwidth advice");
        assert!(bps > 300 * MIB && bps <= 2000 * MIB);
        assert!(converges_plain(&PredictInput {
            bandwidth_bps: bps,
            ..i
        }));
    }
}
