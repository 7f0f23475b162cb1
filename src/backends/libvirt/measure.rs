//! How a real guest uses its memory, from measurements that cannot harm it:
//! QEMU's page-sampling dirty-rate calculation (`virDomainStartDirtyRateCalc`
//! with flags 0) over windows of different lengths, and the QEMU process's
//! resident memory.
//!
//! Page sampling hashes a few hundred random pages before and after the
//! window, so it is noisy (a guest writing a steady 8 MB/s read 4–14 MB/s
//! in six 1 s windows) and reports whole MB/s: repeated measurements give
//! the range. A longer window that reads a lower rate than the short ones
//! has run out of new pages to dirty: the guest rewrites a working set of
//! about rate × window. The resident memory bounds what the guest ever
//! wrote (QEMU itself takes about 40 MB under TCG). Where the guest has a
//! balloon driver that reports its memory statistics, what it has in use
//! (available less unused) tells how much of that holds data now.
//!
//! QEMU's dirty-bitmap and dirty-ring modes count every page, but the
//! bitmap mode crashed the guest on QEMU 7.2 under TCG in 2 of 2 tries on
//! the lab: vmshift never asks for either. [`SAFE_CALC_FLAGS`] is the only
//! mode this backend uses.

use crate::cluster::{Estimate, Measured, units};

/// `virDomainStartDirtyRateCalc` flags: 0 = page sampling, the one mode
/// that reads guest pages without touching the dirty log.
pub const SAFE_CALC_FLAGS: u32 = 0;
/// The least share of what the guest reports in use that holds data.
const GUEST_IN_USE_LOW: f64 = 0.9;
/// Samples kept per VM.
pub const KEPT: usize = 8;

/// What libvirt's memory statistics tell of a guest's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MemStats {
    /// The QEMU process's resident memory, bytes.
    pub rss: Option<u64>,
    /// Memory the guest itself has in use (caches included), bytes, from
    /// its balloon driver's statistics (available less unused).
    pub guest_in_use: Option<u64>,
}

impl MemStats {
    /// From `virDomainMemoryStats` (tag, value in KiB) pairs.
    pub fn from_tags(stats: impl IntoIterator<Item = (i32, u64)>) -> Self {
        let (mut rss, mut available, mut unused) = (None, None, None);
        for (tag, kib) in stats {
            let bytes = kib.saturating_mul(1024);
            match tag as u32 {
                virt::sys::VIR_DOMAIN_MEMORY_STAT_RSS => rss = Some(bytes),
                virt::sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE => available = Some(bytes),
                virt::sys::VIR_DOMAIN_MEMORY_STAT_UNUSED => unused = Some(bytes),
                _ => {}
            }
        }
        Self {
            rss,
            guest_in_use: available
                .zip(unused)
                .filter(|(a, u)| a > u)
                .map(|(a, u)| a - u),
        }
    }
}

/// One finished page-sampling measurement.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// When QEMU started it (its own clock, seconds): identifies it.
    pub start: i64,
    pub period_s: f64,
    pub bps: f64,
}

/// Page sampling reports whole MB/s.
const RESOLUTION_BPS: f64 = 1e6;

/// QEMU's own resident memory, beyond the guest's pages: (likely, least, most).
fn qemu_overhead(tcg: bool) -> (f64, f64, f64) {
    if tcg {
        // 43–45 MB measured on the lab's 128 to 512 MiB guests with ACPI
        // and a pty serial (41–43 MB without them).
        (44e6, 40e6, 48e6)
    } else {
        (25e6, 10e6, 40e6)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// QEMU samples this many pages per GiB of guest memory (its default
/// `sample-pages`): a window that reads `r` bytes/s for `t` seconds saw
/// about `r · t · 512 / GiB` of its sampled pages change.
const SAMPLED_PAGES_PER_BYTE: f64 = 512.0 / (1u64 << 30) as f64;

/// Sampled pages seen dirty, and seconds measured, over `samples`.
fn counts<'a>(samples: impl Iterator<Item = &'a Sample>) -> (f64, f64) {
    samples.fold((0.0, 0.0), |(k, t), s| {
        (
            k + s.bps * s.period_s * SAMPLED_PAGES_PER_BYTE,
            t + s.period_s,
        )
    })
}

/// A rate from `k` dirty samples over `t` seconds, with a two-sigma
/// (Poisson) range.
fn rate(k: f64, t: f64) -> Estimate {
    let per = |k: f64| k / (SAMPLED_PAGES_PER_BYTE * t.max(1e-9));
    Estimate::new(
        per(k),
        per((k - 2.0 * k.sqrt()).max(0.0)),
        per(k + 2.0 * k.sqrt() + 1.0),
    )
}

/// The workload of a guest with `memory` bytes, from page-sampling
/// `samples`, the QEMU process's resident memory (`rss`) and whether it
/// runs under TCG; `None` without a single sample.
///
/// Each window counts the few sampled pages that changed, so the counts
/// of all windows pool into one rate with a Poisson range. A long window
/// that saw far fewer than the short windows' rate promises (beyond three
/// sigma) ran out of new pages: the guest rewrites a working set of about
/// what that window saw, and the short windows' rate is only a lower bound.
pub fn estimate(memory: u64, samples: &[Sample], stats: MemStats, tcg: bool) -> Option<Measured> {
    let mem = memory as f64;
    if samples.is_empty() {
        return None;
    }
    let rss = stats.rss;
    let short: Vec<&Sample> = samples.iter().filter(|s| s.period_s < 2.0).collect();
    let long: Vec<&Sample> = samples.iter().filter(|s| s.period_s >= 2.0).collect();
    // Memory in use, from the resident memory.
    let mut touched = match rss {
        Some(rss) => {
            let (o, o_lo, o_hi) = qemu_overhead(tcg);
            let rss = rss as f64;
            Estimate::new(
                (rss - o).clamp(0.0, mem),
                (rss - o_hi).clamp(0.0, mem),
                (rss - o_lo).clamp(0.0, mem),
            )
        }
        None => Estimate::new(mem, 0.0, mem),
    };
    // What the guest has in use holds data now (all but pages it zeroed
    // and has not written since): the likely figure and, less a tenth,
    // the least. Freed pages keep their data, so it is no upper bound.
    if let Some(used) = stats.guest_in_use.map(|u| (u as f64).min(mem)) {
        let hi = touched.hi;
        touched = Estimate::new(
            touched.value.max(used).min(hi),
            touched.lo.max(GUEST_IN_USE_LOW * used).min(hi),
            hi,
        );
    }
    let (ks, ts) = counts(short.iter().copied());
    let (kl, tl) = counts(long.iter().copied());
    let expected_long = if ts > 0.0 { ks / ts * tl } else { 0.0 };
    let saturated = !short.is_empty()
        && !long.is_empty()
        && kl < 0.5 * expected_long
        && kl < expected_long - 3.0 * expected_long.sqrt();
    let long_s = long.iter().map(|s| s.period_s).fold(0.0, f64::max);
    let (dirty, wws) = if saturated {
        let d = rate(ks, ts);
        let w = median(long.iter().map(|s| s.bps * s.period_s).collect());
        (
            Estimate::new(d.value, d.lo, d.hi.max(3.0 * d.value)),
            Estimate::new(w, w * 0.7, (w * 1.4).max(w + 2.0 * RESOLUTION_BPS * long_s)),
        )
    } else {
        let (k, t) = (ks + kl, ts + tl);
        let d = rate(k, t);
        let seen = d.value * long_s.max(1.0);
        (
            d,
            Estimate::new(
                touched.value.max(seen),
                seen.min(touched.hi),
                touched.hi.max(seen),
            ),
        )
    };
    let wws = Estimate::new(wws.value.min(mem), wws.lo.min(mem), wws.hi.min(mem));
    let count = |p: fn(f64) -> bool| samples.iter().filter(|s| p(s.period_s)).count();
    let reads = |v: &[&Sample]| {
        let r: Vec<f64> = v.iter().map(|s| s.bps).collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        format!("{}–{}", units::rate(lo as u64), units::rate(hi as u64))
    };
    let basis = format!(
        "{} page-sampling measurement{} ({} of 1 s{}, {} of 3 s{}): {} dirtied{}; {}",
        samples.len(),
        if samples.len() == 1 { "" } else { "s" },
        count(|p| p < 2.0),
        if short.is_empty() {
            String::new()
        } else {
            format!(" reading {}", reads(&short))
        },
        count(|p| p >= 2.0),
        if long.is_empty() {
            String::new()
        } else {
            format!(" reading {}", reads(&long))
        },
        format_args!(
            "{}–{}",
            units::rate(dirty.lo as u64),
            units::rate(dirty.hi as u64)
        ),
        if saturated {
            format!(
                " over a working set of about {}",
                units::bytes(wws.value as u64)
            )
        } else {
            String::new()
        },
        format_args!(
            "{}{}",
            match rss {
                Some(r) => format!(
                    "QEMU resident memory {} ({})",
                    units::bytes(r),
                    if tcg { "TCG" } else { "KVM" }
                ),
                None => "resident memory unknown".into(),
            },
            match stats.guest_in_use {
                Some(u) => format!(
                    "; the guest's balloon driver reports {} in use",
                    units::bytes(u)
                ),
                None => String::new(),
            }
        )
    );
    Some(Measured {
        dirty_bps: dirty,
        wws_bytes: wws,
        touched_bytes: touched,
        basis,
    })
}

/// The window lengths of a measurement of at most `budget_s` seconds:
/// three of 1 s, then 3 s ones.
pub fn schedule(budget_s: u64) -> Vec<i32> {
    let mut out = Vec::new();
    let mut used = 0;
    for w in [1, 1, 1].into_iter().chain(std::iter::repeat(3)) {
        if used + w as u64 > budget_s.max(6) {
            break;
        }
        used += w as u64;
        out.push(w);
    }
    out
}

/// Whether `samples` already tell enough: after at least one long window,
/// a saturated working set, a pooled count of 300 changed sampled pages
/// (a rate to about ±12 %), or a rate that stays below 2 MB/s.
pub fn settled(samples: &[Sample]) -> bool {
    if !samples.iter().any(|s| s.period_s >= 2.0) {
        return false;
    }
    let (k, t) = counts(samples.iter());
    let saturated = estimate(1 << 30, samples, MemStats::default(), false)
        .is_some_and(|m| m.basis.contains("working set"));
    saturated || k >= 300.0 || rate(k, t).hi < 2e6
}

/// Adds a finished measurement unless it is already there; keeps the newest.
pub fn push(samples: &mut Vec<Sample>, s: Sample) {
    if samples.iter().any(|x| x.start == s.start) {
        return;
    }
    samples.push(s);
    if samples.len() > KEPT {
        samples.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::MIB;

    fn rss(bytes: u64) -> MemStats {
        MemStats {
            rss: Some(bytes),
            guest_in_use: None,
        }
    }

    #[test]
    fn a_balloon_drivers_figures_narrow_the_memory_in_use_from_below() {
        use virt::sys::{
            VIR_DOMAIN_MEMORY_STAT_AVAILABLE as AVAILABLE, VIR_DOMAIN_MEMORY_STAT_RSS as RSS,
            VIR_DOMAIN_MEMORY_STAT_UNUSED as UNUSED,
        };
        // A 4 GiB KVM guest: 3 GiB resident, the guest says 3.5 GiB
        // available and 2 GiB unused: 1.5 GiB in use.
        let kib = |mib: u64| mib * 1024;
        let st = MemStats::from_tags([
            (RSS as i32, kib(3072)),
            (AVAILABLE as i32, kib(3584)),
            (UNUSED as i32, kib(2048)),
        ]);
        assert_eq!(st.rss, Some(3072 * MIB));
        assert_eq!(st.guest_in_use, Some(1536 * MIB));
        let samples = [s(1, 1.0, 8.0), s(2, 1.0, 8.0), s(3, 1.0, 8.0)];
        // Resident memory known: it stays the tighter figure (freed pages
        // keep their data), the guest's figure is said.
        let without = estimate(4096 * MIB, &samples, rss(3072 * MIB), false).unwrap();
        let with = estimate(4096 * MIB, &samples, st, false).unwrap();
        assert_eq!(with.touched_bytes, without.touched_bytes);
        assert!(
            with.basis.contains("balloon driver reports 1.5 GiB in use"),
            "{}",
            with.basis
        );
        // Without it, the guest's figure is the least that holds data.
        let blind = MemStats { rss: None, ..st };
        let m = estimate(4096 * MIB, &samples, blind, false).unwrap();
        assert_eq!(
            m.touched_bytes.lo,
            0.9 * (1536 * MIB) as f64,
            "{:?}",
            m.touched_bytes
        );
        assert_eq!(m.touched_bytes.hi, (4096 * MIB) as f64);
        // No balloon statistics: nothing changes.
        assert_eq!(MemStats::from_tags([(RSS as i32, 10)]).guest_in_use, None);
    }

    fn s(start: i64, period_s: f64, mbps: f64) -> Sample {
        Sample {
            start,
            period_s,
            bps: mbps * 1e6,
        }
    }

    #[test]
    fn noisy_short_windows_give_a_range_around_the_median() {
        // The six 1 s reads of a steady 8 MB/s writer.
        let samples: Vec<Sample> = [4.0, 4.0, 6.0, 8.0, 8.0, 14.0]
            .iter()
            .enumerate()
            .map(|(i, &m)| s(i as i64, 1.0, m))
            .collect();
        let m = estimate(256 * MIB, &samples, rss(108_000_000), true).unwrap();
        // Pooled: 44 MB over 6 s.
        assert!(
            (m.dirty_bps.value - 44e6 / 6.0).abs() < 1.0,
            "{:?}",
            m.dirty_bps
        );
        assert!(
            m.dirty_bps.lo <= 8e6 && 8e6 <= m.dirty_bps.hi,
            "{:?}",
            m.dirty_bps
        );
        assert!(m.dirty_bps.hi < 14e6, "narrower than one window's spread");
        // 108 MB resident under TCG: about 64 MB in use.
        assert!((m.touched_bytes.value - 64e6).abs() < 1.0);
        assert!(
            m.basis.contains("6 page-sampling measurements"),
            "{}",
            m.basis
        );
    }

    #[test]
    fn a_long_window_that_reads_lower_reveals_the_working_set() {
        // 64 MiB rewritten faster than once a second: 1 s reads 67 MB/s,
        // 3 s reads 22 MB/s.
        let samples = [s(1, 1.0, 67.0), s(2, 1.0, 67.0), s(3, 3.0, 22.0)];
        let m = estimate(256 * MIB, &samples, rss(110_000_000), true).unwrap();
        assert!((m.wws_bytes.value - 66e6).abs() < 1e6, "{:?}", m.wws_bytes);
        assert!(
            m.dirty_bps.hi >= 3.0 * 67e6,
            "only a lower bound: {:?}",
            m.dirty_bps
        );
        assert!(m.basis.contains("working set"));
    }

    #[test]
    fn a_long_window_within_the_noise_is_not_taken_for_saturation() {
        // cal-04 on the lab: 8.2 MB/s over 64 MiB read 6, 16, 15 and (3 s) 6 MB/s.
        let samples = [
            s(1, 1.0, 6.0),
            s(2, 1.0, 16.0),
            s(3, 1.0, 15.0),
            s(4, 3.0, 6.0),
        ];
        let m = estimate(256 * MIB, &samples, rss(108_000_000), true).unwrap();
        assert!(!m.basis.contains("working set"), "{}", m.basis);
        assert!(
            m.dirty_bps.lo <= 8.2e6 && 8.2e6 <= m.dirty_bps.hi,
            "{:?}",
            m.dirty_bps
        );
        assert!(m.wws_bytes.hi >= 64.0 * MIB as f64);
    }

    #[test]
    fn without_saturation_the_working_set_is_at_least_what_was_seen() {
        let samples = [s(1, 1.0, 16.0), s(2, 1.0, 17.0), s(3, 3.0, 16.0)];
        let m = estimate(256 * MIB, &samples, rss(110_000_000), true).unwrap();
        assert!(m.wws_bytes.lo >= 3.0 * 16e6 - 1.0, "{:?}", m.wws_bytes);
        assert!(m.wws_bytes.hi <= 256.0 * MIB as f64);
        assert!(estimate(256 * MIB, &[], MemStats::default(), true).is_none());
    }

    #[test]
    fn measurements_go_on_until_they_tell_enough_or_the_budget_ends() {
        assert_eq!(schedule(6), [1, 1, 1, 3]);
        assert_eq!(schedule(12), [1, 1, 1, 3, 3, 3]);
        // An idle guest: one long window shows it.
        let idle = [
            s(1, 1.0, 0.0),
            s(2, 1.0, 0.0),
            s(3, 1.0, 0.0),
            s(4, 3.0, 0.0),
        ];
        assert!(settled(&idle));
        assert!(!settled(&idle[..3]), "no long window yet");
        // 8 MB/s over 6 s is about 23 changed samples: go on.
        let slow = [
            s(1, 1.0, 6.0),
            s(2, 1.0, 16.0),
            s(3, 1.0, 15.0),
            s(4, 3.0, 6.0),
        ];
        assert!(!settled(&slow));
        let fast = [
            s(1, 1.0, 67.0),
            s(2, 1.0, 67.0),
            s(3, 1.0, 67.0),
            s(4, 3.0, 22.0),
        ];
        assert!(settled(&fast), "a saturated set is known");
    }

    #[test]
    fn samples_are_kept_once_and_only_the_newest() {
        let mut v = Vec::new();
        push(&mut v, s(1, 1.0, 1.0));
        push(&mut v, s(1, 1.0, 1.0));
        assert_eq!(v.len(), 1);
        for i in 2..20 {
            push(&mut v, s(i, 1.0, 1.0));
        }
        assert_eq!(v.len(), KEPT);
        assert_eq!(v[0].start, 20 - KEPT as i64);
    }
}
