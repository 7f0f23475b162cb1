//! Convergence prediction: the pre-copy model ([`super::precopy`]) run with
//! the likely inputs and with the ends of their ranges, so each figure comes
//! with the range it may really be in, and a no-go is said only when no
//! plausible input converges.

use std::fmt;

use serde::Serialize;

use super::precopy::{self, Costs, Guest, Precopy};
use crate::cluster::{
    Estimate, Forecast, MigrationInputs, MigrationOptions, OnStall, PostcopyMode, units,
};

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

/// A low–high range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub lo: f64,
    pub hi: f64,
}

impl Span {
    fn of(values: impl Iterator<Item = f64>) -> Option<Span> {
        values.fold(None, |acc: Option<Span>, v| {
            Some(acc.map_or(Span { lo: v, hi: v }, |s| Span {
                lo: s.lo.min(v),
                hi: s.hi.max(v),
            }))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Rounds as libvirt counts them (one per dirty-bitmap sync: at the
    /// start, after each pass, at the switchover).
    pub rounds: u32,
    /// Bytes still dirty after each pass.
    pub round_dirty: Vec<u64>,
    pub total_bytes: u64,
    /// From the start of the job to its end.
    pub total_ms: f64,
    /// Expected downtime, if it converges.
    pub downtime_ms: f64,
    /// Converges with the likely inputs, or with some plausible ones.
    pub converges: bool,
    /// Some plausible input does not converge (see `condition`).
    pub may_not_converge: bool,
    /// Pre-copy stops shrinking at some point.
    pub stalls: bool,
    /// Finishes by switching to post-copy.
    pub postcopy: bool,
    pub throttle_pct: u32,
    /// Ranges over the plausible inputs that converge.
    pub rounds_range: Span,
    pub total_ms_range: Span,
    pub downtime_ms_range: Span,
    /// When some plausible input does not converge: which, in words.
    pub condition: Option<String>,
    /// What the ranges rest on, one sentence each.
    pub basis: Vec<String>,
    /// Empty when it converges as asked with every plausible input.
    pub advice: Vec<Advice>,
}

/// " (3.5–3.9 s)": a range in the unit of its ends; empty when they agree.
pub fn range_text(lo: f64, hi: f64, f: impl Fn(f64) -> String) -> String {
    let (a, b) = (f(lo), f(hi));
    if a == b {
        return String::new();
    }
    match (a.rsplit_once(' '), b.rsplit_once(' ')) {
        (Some((x, ua)), Some((_, ub))) if ua == ub => format!(" ({x}–{b})"),
        _ => format!(" ({a}–{b})"),
    }
}

impl Prediction {
    /// One line for people: "converges in 5 rounds (4–6), 3.1 s (2.8–3.9 s),
    /// downtime ≈ 18 ms (12–31 ms; limit 300 ms)".
    pub fn summary(&self, max_downtime_ms: u64) -> String {
        let rounds = format!(
            "{} round{}{}",
            self.rounds,
            if self.rounds == 1 { "" } else { "s" },
            range_text(self.rounds_range.lo, self.rounds_range.hi, |v| format!(
                "{v:.0}"
            ))
        );
        let time = format!(
            "{}{}",
            units::millis(self.total_ms),
            range_text(
                self.total_ms_range.lo,
                self.total_ms_range.hi,
                units::millis
            )
        );
        let downtime = format!(
            "downtime ≈ {}{}",
            units::millis(self.downtime_ms),
            range_text(
                self.downtime_ms_range.lo,
                self.downtime_ms_range.hi,
                units::millis
            )
        );
        if !self.converges {
            let last = self.round_dirty.last().copied().unwrap_or(0);
            return format!(
                "will not converge: after {} passes {} stays dirty, more than the {max_downtime_ms} ms downtime limit lets through, with every plausible input",
                self.round_dirty.len(),
                units::bytes(last)
            );
        }
        // Above the limit: said first (a cut line keeps it), never shown
        // as if within it.
        let above = self.above_limit(max_downtime_ms);
        let limit = if above || self.postcopy {
            String::new()
        } else {
            format!(" (limit {max_downtime_ms} ms)")
        };
        let body = if self.postcopy {
            format!("finishes by switching to post-copy after {rounds}, {time}, {downtime}{limit}")
        } else {
            format!(
                "converges in {rounds}, {time}, {downtime}{limit}{}",
                if self.throttle_pct > 0 {
                    format!(", guest throttled up to {} %", self.throttle_pct)
                } else {
                    String::new()
                }
            )
        };
        let body = if above {
            format!("⚠ downtime above the {max_downtime_ms} ms limit: {body}")
        } else {
            body
        };
        match &self.condition {
            Some(c) if self.may_not_converge => format!("may not converge: {c}; otherwise {body}"),
            _ => body,
        }
    }

    /// Whether it converges with an expected downtime above the limit.
    pub fn above_limit(&self, max_downtime_ms: u64) -> bool {
        self.converges && self.downtime_ms > max_downtime_ms as f64
    }

    /// The prediction as the migration keeps it.
    pub fn forecast(&self) -> Forecast {
        Forecast {
            rounds: Estimate::new(
                self.rounds as f64,
                self.rounds_range.lo,
                self.rounds_range.hi,
            ),
            total_ms: Estimate::new(
                self.total_ms,
                self.total_ms_range.lo,
                self.total_ms_range.hi,
            ),
            downtime_ms: Estimate::new(
                self.downtime_ms,
                self.downtime_ms_range.lo,
                self.downtime_ms_range.hi,
            ),
            converges: self.converges,
            may_not_converge: self.may_not_converge,
            downtime_now_ms: None,
            advice: self.advice.iter().map(Advice::short).collect(),
        }
    }
}

/// One set of inputs, picked from the ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    touched: f64,
    wws: f64,
    dirty: f64,
}

/// One run of the model.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    syncs: u32,
    round_dirty: Vec<u64>,
    total_bytes: f64,
    /// Setup excluded.
    ms: f64,
    /// Memory-dependent part of the downtime (switchover cost excluded).
    final_ms: f64,
    /// The most that part can be: what the threshold lets through.
    final_bound_ms: f64,
    converges: bool,
    stalls: bool,
    postcopy: bool,
    throttle_pct: u32,
}

fn costs(i: &MigrationInputs) -> Costs {
    Costs {
        setup_ms: i.setup_ms.value,
        switchover_ms: 0.0,
        final_bps: i.line().max(1) as f64,
        cleanup_ms: i.cleanup_ms,
    }
}

/// Where a running migration stands at its last sync (live re-prediction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtSync {
    pub syncs: u32,
    /// Bytes marked right after the sync.
    pub marked: f64,
    /// Pre-copy time at the sync, ms.
    pub at_ms: f64,
    /// Auto-converge's throttle in force.
    pub throttle_pct: u32,
}

fn run(i: &MigrationInputs, o: &MigrationOptions, p: Point, from: Option<AtSync>) -> Run {
    let bw = i.bandwidth_bps.max(1) as f64;
    let link = i.line().max(1) as f64;
    let storage_ms = i.storage_bytes as f64 / bw * 1000.0;
    let guest = Guest {
        memory: i.memory as f64,
        touched: p.touched,
        wws: p.wws,
        dirty_bps: p.dirty,
    };
    let mut r = Run {
        syncs: 0,
        round_dirty: Vec::new(),
        total_bytes: i.storage_bytes as f64,
        ms: storage_ms,
        final_ms: 0.0,
        final_bound_ms: 0.0,
        converges: false,
        stalls: false,
        postcopy: false,
        throttle_pct: 0,
    };
    let postcopy_final_ms = precopy::DEVICE_STATE_BYTES / link * 1000.0;
    let mut m = match from {
        None => Precopy::new(guest, o.max_downtime_ms as f64, o.auto_converge, &costs(i))
            .with_overlap(i.write_overlap),
        Some(s) => Precopy::at_sync(
            guest,
            o.max_downtime_ms as f64,
            o.auto_converge,
            &costs(i),
            s.syncs,
            s.marked,
            s.at_ms,
            bw * o.max_downtime_ms as f64 / 1000.0,
        )
        .with_overlap(i.write_overlap)
        .throttled(s.throttle_pct),
    };
    if o.postcopy == PostcopyMode::Now {
        let pull = m.postcopy_bytes();
        r.syncs = 1;
        r.converges = true;
        r.postcopy = true;
        r.final_ms = postcopy_final_ms;
        r.final_bound_ms = postcopy_final_ms;
        r.ms += postcopy_final_ms + pull / bw * 1000.0 + i.cleanup_ms;
        r.total_bytes += pull + precopy::DEVICE_STATE_BYTES;
        return r;
    }
    loop {
        m.quiet_windows(u64::MAX, bw, 1.0);
        let syncs = m.syncs;
        let done = m.window(bw, 1.0);
        r.syncs = m.syncs;
        r.throttle_pct = m.throttle_pct;
        if let Some(s) = done {
            r.converges = true;
            r.round_dirty = m.dirty_after.iter().map(|&d| d as u64).collect();
            r.final_ms = s.downtime_ms;
            // Which window the pass ends in shifts what is left by up to
            // the threshold: the most the final copy can carry.
            r.final_bound_ms = s
                .downtime_ms
                .max((m.threshold + precopy::DEVICE_STATE_BYTES) / link * 1000.0);
            r.ms += s.at_ms + s.downtime_ms + i.cleanup_ms;
            r.total_bytes += m.wire_total;
            return r;
        }
        let stalled = m.syncs > syncs && m.stalled();
        if stalled || m.now_ms > precopy::MAX_PRECOPY_MS {
            r.stalls = true;
            r.round_dirty = m.dirty_after.iter().map(|&d| d as u64).collect();
            if o.postcopy == PostcopyMode::Auto || o.on_stall == OnStall::Postcopy {
                let pull = m.postcopy_bytes();
                r.converges = true;
                r.postcopy = true;
                r.final_ms = postcopy_final_ms;
                r.final_bound_ms = postcopy_final_ms;
                r.ms += m.now_ms + postcopy_final_ms + pull / bw * 1000.0 + i.cleanup_ms;
                r.total_bytes += m.wire_total + pull + precopy::DEVICE_STATE_BYTES;
            } else {
                r.ms += m.now_ms;
                r.total_bytes += m.wire_total;
            }
            return r;
        }
    }
}

fn point(i: &MigrationInputs) -> Point {
    Point {
        touched: i.touched.value,
        wws: i.wws.value,
        dirty: i.dirty_bps.value,
    }
}

/// The ends of the ranges: every combination of low and high.
fn corners(i: &MigrationInputs) -> Vec<Point> {
    let mut out = Vec::new();
    for t in [i.touched.lo, i.touched.hi] {
        for w in [i.wws.lo, i.wws.hi] {
            for d in [i.dirty_bps.lo, i.dirty_bps.hi] {
                out.push(Point {
                    touched: t,
                    wws: w,
                    dirty: d,
                });
            }
        }
    }
    out.dedup();
    out
}

fn converges_plain(i: &MigrationInputs, o: &MigrationOptions, p: Point) -> bool {
    let r = run(i, o, p, None);
    r.converges && !r.postcopy
}

/// Syncs (libvirt's iterations) the model expects with the likely inputs,
/// if that converges by pre-copy.
pub fn likely_rounds(inputs: &MigrationInputs, options: &MigrationOptions) -> Option<u32> {
    let r = run(inputs, options, point(inputs), None);
    (r.converges && !r.postcopy).then_some(r.syncs)
}

/// Predicts the migration with `options` from `inputs`: the likely figures,
/// their ranges, and, when it may not converge, what would fix it.
pub fn predict(inputs: &MigrationInputs, options: &MigrationOptions) -> Prediction {
    predict_from(inputs, options, None)
}

/// As [`predict`], for a migration that stands at `from` (its setup time
/// in `inputs` is then the time pre-copy began).
pub fn predict_from(
    inputs: &MigrationInputs,
    options: &MigrationOptions,
    from: Option<AtSync>,
) -> Prediction {
    let likely = point(inputs);
    let main = run(inputs, options, likely, from);
    let runs: Vec<(Point, Run)> = corners(inputs)
        .into_iter()
        .map(|p| (p, run(inputs, options, p, from)))
        .chain(std::iter::once((likely, main.clone())))
        .collect();
    let failing: Vec<&(Point, Run)> = runs.iter().filter(|(_, r)| !r.converges).collect();
    // Where some plausible input stalls, the slowest one that still
    // converges (just below the stall) bounds how long it can take.
    // The plausible input that fails with the fastest dirtying.
    let worst: Option<Point> = failing
        .iter()
        .max_by(|a, b| a.0.dirty.total_cmp(&b.0.dirty))
        .map(|(p, _)| *p);
    let slowest = worst
        .filter(|_| runs.iter().any(|(_, r)| r.converges))
        .and_then(|w| {
            edge(inputs, w, |p| run(inputs, options, p, from).converges)
                .map(|(d, _)| run(inputs, options, Point { dirty: d, ..w }, from))
        });
    let good: Vec<&Run> = runs
        .iter()
        .map(|(_, r)| r)
        .chain(slowest.iter())
        .filter(|r| r.converges)
        .collect();
    let converges = !good.is_empty();
    let setup = inputs.setup_ms;
    let sw = inputs.switchover_ms;
    // The figures: the likely run where it converges, else the nearest one that does.
    let shown = if main.converges {
        &main
    } else {
        good.iter()
            .min_by(|a, b| a.ms.total_cmp(&b.ms).reverse())
            .copied()
            .unwrap_or(&main)
    };
    let span = |f: &dyn Fn(&Run) -> f64, lo_add: f64, hi_add: f64| {
        Span::of(good.iter().map(|r| f(r)))
            .map(|s| Span {
                lo: s.lo + lo_add,
                hi: s.hi + hi_add,
            })
            .unwrap_or(Span { lo: 0.0, hi: 0.0 })
    };
    let mut p = Prediction {
        rounds: shown.syncs,
        round_dirty: shown.round_dirty.clone(),
        total_bytes: shown.total_bytes as u64,
        total_ms: setup.value + shown.ms + if shown.converges { sw.value } else { 0.0 },
        downtime_ms: if shown.converges {
            sw.value + shown.final_ms
        } else {
            0.0
        },
        converges,
        may_not_converge: converges && !failing.is_empty(),
        stalls: shown.stalls,
        postcopy: shown.postcopy,
        throttle_pct: shown.throttle_pct,
        // The window a pass ends in is a matter of bytes either side of
        // the threshold: a sync more or less, a window or two of time.
        rounds_range: span(&|r| r.syncs as f64, 0.0, 0.0),
        total_ms_range: span(
            &|r| r.ms,
            setup.lo + sw.lo - 2.0 * precopy::WINDOW_MS,
            setup.hi + sw.hi + 2.0 * precopy::WINDOW_MS,
        ),
        downtime_ms_range: Span {
            // Where the last pass ends shifts what is left by up to a
            // window's worth either way.
            lo: sw.lo + 0.75 * span(&|r| r.final_ms, 0.0, 0.0).lo,
            hi: span(&|r| r.final_bound_ms, 0.0, sw.hi).hi,
        },
        condition: None,
        basis: inputs.basis.clone(),
        advice: Vec::new(),
    };
    // A sync either side where a pass ends near the threshold, more over
    // many rounds.
    let slack = |r: f64| (0.1 * r).max(1.0).round();
    p.rounds_range.lo = (p.rounds_range.lo - slack(p.rounds_range.lo))
        .max(2.0)
        .min(p.rounds as f64);
    p.rounds_range.hi += slack(p.rounds_range.hi);
    p.total_ms_range.lo = p.total_ms_range.lo.max(0.0);
    if !converges {
        p.round_dirty = main.round_dirty.clone();
        p.rounds = main.syncs;
        p.total_ms = setup.value + main.ms;
        p.stalls = main.stalls;
        // No run converges: the figures are where it stalls, not a range
        // of outcomes, and there is no downtime.
        p.rounds_range = Span {
            lo: p.rounds as f64,
            hi: p.rounds as f64,
        };
        p.total_ms_range = Span {
            lo: p.total_ms,
            hi: p.total_ms,
        };
        p.downtime_ms_range = Span { lo: 0.0, hi: 0.0 };
    }
    if let Some(worst) = worst.filter(|_| from.is_none()) {
        if p.may_not_converge {
            p.condition = Some(condition(inputs, options, worst));
        }
        p.advice = advise(inputs, options, worst);
    }
    p
}

/// In words, the plausible inputs under which it does not converge: the
/// dirty rate above which it stalls with the rest at its worst.
/// The highest dirty rate, with `worst`'s other inputs, at which it still
/// converges (by `converges`), and the lowest at which it does not;
/// `None` when even the lowest measured rate does not converge.
fn edge(
    i: &MigrationInputs,
    worst: Point,
    converges: impl Fn(Point) -> bool,
) -> Option<(f64, f64)> {
    let at = |d: f64| converges(Point { dirty: d, ..worst });
    let (mut lo, mut hi) = (i.dirty_bps.lo, worst.dirty);
    if !at(lo) || at(hi) {
        return None;
    }
    while hi - lo > hi / 50.0 {
        let mid = (lo + hi) / 2.0;
        if at(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((lo, hi))
}

fn condition(i: &MigrationInputs, o: &MigrationOptions, worst: Point) -> String {
    let plain = MigrationOptions {
        postcopy: PostcopyMode::Off,
        on_stall: OnStall::Abort,
        ..o.clone()
    };
    if let Some((_, hi)) = edge(i, worst, |p| converges_plain(i, &plain, p)) {
        format!(
            "it stalls if the guest dirties more than {} (measured {}–{}) over a {} working set",
            units::rate(hi as u64),
            units::rate(i.dirty_bps.lo as u64),
            units::rate(i.dirty_bps.hi as u64),
            units::bytes(worst.wws as u64)
        )
    } else {
        format!(
            "it stalls with a dirty rate of {} over a {} working set, the top of what was measured",
            units::rate(worst.dirty as u64),
            units::bytes(worst.wws as u64)
        )
    }
}

fn advise(i: &MigrationInputs, o: &MigrationOptions, worst: Point) -> Vec<Advice> {
    // Advice is about pre-copy converging on its own, so post-copy is off
    // and a stall means "does not converge" while trying the fixes.
    let base = MigrationOptions {
        postcopy: PostcopyMode::Off,
        on_stall: OnStall::Abort,
        ..o.clone()
    };
    let ok = |i: &MigrationInputs, o: &MigrationOptions| converges_plain(i, o, worst);
    let mut advice = Vec::new();

    // Smallest max downtime (10 ms steps, at most a minute) that converges.
    let with_downtime = |ms: u64| MigrationOptions {
        max_downtime_ms: ms,
        ..base.clone()
    };
    let mut hi = base.max_downtime_ms.max(10);
    while hi <= 60_000 && !ok(i, &with_downtime(hi)) {
        hi *= 2;
    }
    if hi <= 60_000 {
        let mut lo = base.max_downtime_ms;
        while hi - lo > 10 {
            let mid = (lo + hi) / 2;
            if ok(i, &with_downtime(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // Near the edge the rounds are discrete: step up to a value that
        // really converges.
        let mut ms = hi.div_ceil(10) * 10;
        while ms < 60_000 && !ok(i, &with_downtime(ms)) {
            ms += 10;
        }
        advice.push(Advice::RaiseMaxDowntime { ms });
    }

    // Bandwidth up to the link's, if the limit is below it.
    let with_bw = |bps: u64| MigrationInputs {
        bandwidth_bps: bps,
        ..i.clone()
    };
    if i.bandwidth_bps < i.link_bps && ok(&with_bw(i.link_bps), &base) {
        let (mut lo, mut hi) = (i.bandwidth_bps, i.link_bps);
        while hi - lo > hi / 100 {
            let mid = lo + (hi - lo) / 2;
            if ok(&with_bw(mid), &base) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        advice.push(Advice::RaiseBandwidth { bps: hi });
    }

    if !base.auto_converge
        && ok(
            i,
            &MigrationOptions {
                auto_converge: true,
                ..base.clone()
            },
        )
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

    fn inputs(memory: u64, wws: u64, dirty: u64, bw: u64) -> MigrationInputs {
        MigrationInputs {
            memory,
            touched: Estimate::exact(memory as f64),
            wws: Estimate::exact(wws as f64),
            dirty_bps: Estimate::exact(dirty as f64),
            bandwidth_bps: bw,
            link_bps: bw,
            line_bps: 0,
            setup_ms: Estimate::exact(800.0),
            switchover_ms: Estimate::exact(20.0),
            cleanup_ms: 0.0,
            storage_bytes: 0,
            write_overlap: 1.0,
            basis: Vec::new(),
        }
    }

    fn opts() -> MigrationOptions {
        MigrationOptions::default()
    }

    #[test]
    fn untouched_memory_costs_almost_nothing() {
        let mut i = inputs(256 * MIB, 0, 0, 40 * MIB);
        let full = predict(&i, &opts());
        i.touched = Estimate::exact((32 * MIB) as f64);
        let p = predict(&i, &opts());
        assert!(p.converges && full.converges);
        assert!(
            p.total_bytes < 34 * MIB,
            "sends about what was touched: {}",
            p.total_bytes
        );
        assert!(
            p.total_ms < full.total_ms / 4.0,
            "{} vs {}",
            p.total_ms,
            full.total_ms
        );
        // A sync at the start, at the end of the pass, at the switchover.
        assert_eq!(p.rounds, 3);
    }

    #[test]
    fn the_final_copy_goes_at_line_speed_so_downtime_is_far_below_the_limit() {
        // 20 MiB/s limit, 10 GbE link: what is left at the switchover is
        // up to 6 MiB, which the link carries in ~5 ms.
        let mut i = inputs(256 * MIB, 64 * MIB, 8 * MIB, 20 * MIB);
        i.link_bps = 1100 * MIB;
        i.touched = Estimate::exact((80 * MIB) as f64);
        let p = predict(&i, &opts());
        assert!(p.converges);
        assert!(p.downtime_ms < 30.0, "downtime {}", p.downtime_ms);
    }

    #[test]
    fn dirtying_faster_than_the_link_does_not_converge_and_gets_advice() {
        let i = inputs(32 * GIB, 24 * GIB, 3 * GIB, 1100 * MIB);
        let p = predict(&i, &opts());
        assert!(!p.converges);
        assert!(p.stalls);
        // Where it stalls, not a range of outcomes (never a low above the high).
        assert_eq!(
            (p.rounds_range.lo, p.rounds_range.hi),
            (p.rounds as f64, p.rounds as f64)
        );
        assert_eq!(p.total_ms_range.lo, p.total_ms);
        assert_eq!((p.downtime_ms_range.lo, p.downtime_ms_range.hi), (0.0, 0.0));
        assert!(p.advice.contains(&Advice::AutoConverge));
        assert!(p.advice.contains(&Advice::Postcopy));
        let ms = p
            .advice
            .iter()
            .find_map(|a| match a {
                Advice::RaiseMaxDowntime { ms } => Some(*ms),
                _ => None,
            })
            .expect("a downtime that works within a minute");
        let at = |ms| {
            converges_plain(
                &i,
                &MigrationOptions {
                    max_downtime_ms: ms,
                    ..opts()
                },
                point(&i),
            )
        };
        assert!(at(ms));
        assert!(!at(ms * 9 / 10));
        assert!(p.summary(300).contains("will not converge"));
    }

    #[test]
    fn a_range_that_straddles_the_edge_may_not_converge_and_says_when() {
        let mut i = inputs(8 * GIB, 2 * GIB, 200 * MIB, 1000 * MIB);
        i.dirty_bps = Estimate::new((200 * MIB) as f64, (100 * MIB) as f64, (1500 * MIB) as f64);
        let p = predict(&i, &opts());
        assert!(p.converges && p.may_not_converge);
        let c = p.condition.clone().expect("a condition");
        assert!(c.contains("dirties more than"), "{c}");
        assert!(p.summary(300).starts_with("may not converge"));
        assert!(!p.advice.is_empty());
        // The ranges cover the likely figures.
        assert!(p.total_ms_range.lo <= p.total_ms && p.total_ms <= p.total_ms_range.hi);
        assert!(p.rounds_range.lo <= p.rounds as f64 && p.rounds as f64 <= p.rounds_range.hi);
    }

    #[test]
    fn auto_converge_and_postcopy_make_it_finish() {
        let mut i = inputs(32 * GIB, 24 * GIB, 3 * GIB, 1100 * MIB);
        let mut o = opts();
        o.auto_converge = true;
        let p = predict(&i, &o);
        assert!(p.converges && !p.postcopy, "{p:?}");
        assert!(p.throttle_pct >= 60, "throttled to {} %", p.throttle_pct);
        o.auto_converge = false;
        o.postcopy = PostcopyMode::Auto;
        let p = predict(&i, &o);
        assert!(p.converges && p.postcopy && p.stalls);
        i.dirty_bps = Estimate::exact(0.0);
        assert!(predict(&i, &opts()).converges);
    }

    #[test]
    fn bandwidth_advice_only_when_the_limit_is_below_the_link() {
        let mut i = inputs(8 * GIB, 2 * GIB, 300 * MIB, 200 * MIB);
        i.link_bps = 2000 * MIB;
        let p = predict(&i, &opts());
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
        let faster = MigrationInputs {
            bandwidth_bps: bps,
            ..i.clone()
        };
        assert!(converges_plain(&faster, &opts(), point(&faster)));
        i.link_bps = 200 * MIB;
        assert!(
            !predict(&i, &opts())
                .advice
                .iter()
                .any(|a| matches!(a, Advice::RaiseBandwidth { .. }))
        );
    }
}
