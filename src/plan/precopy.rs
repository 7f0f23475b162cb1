//! QEMU's pre-copy as it really runs (QEMU 7.2 `migration/migration.c` and
//! `migration/ram.c`), one rate-limiter window at a time. The predictor runs
//! it with expected inputs, the simulator with noise on its virtual clock,
//! and the live re-prediction from where a running migration stands: this
//! is the one model of pre-copy in vmshift.
//!
//! What it follows, and where QEMU does it:
//! - the rate limiter gives each 100 ms window (`BUFFER_DELAY`) a budget of
//!   `max-bandwidth / 10` bytes; once spent, the thread sleeps to the end of
//!   the window (`migration_rate_limit`);
//! - after each window the threshold is re-measured: bytes sent in the
//!   window / its length × max downtime (`migration_update_counters`); it
//!   is 0 before the first window ends. A window carries its whole budget
//!   whether or not a sync falls in it: when a pass runs out of marked
//!   pages mid-window (`ram_save_iterate` returns with `done`), the
//!   migration thread's `migration_rate_limit` neither re-measures (less
//!   than `BUFFER_DELAY` since `iteration_start_time`, so
//!   `migration_update_counters` returns early and keeps
//!   `iteration_initial_bytes`) nor sleeps (the budget is not spent), so
//!   `migration_iteration_run` runs again at once: the sync in
//!   `ram_save_pending`, then `ram_save_iterate` spends the rest of the
//!   same budget. The sync itself is quick next to the window (the lab's
//!   rounds last whole windows of 100.0–100.2 ms, each 2 MiB and a page);
//! - before each burst, `ram_save_pending` syncs the dirty bitmap when what
//!   is still marked is below the threshold; the migration completes when
//!   nothing is marked or what is marked after that is below the threshold
//!   (`migration_iteration_run`);
//! - never-written (zero) pages go as a 9-byte marker: the first pass costs
//!   what the guest has touched, not its size;
//! - completion pauses the guest, syncs once more (`ram_save_complete`) and
//!   sends the rest at line speed, not rate-limited; the downtime is a fixed
//!   cost plus those bytes at line speed;
//! - every sync is one of libvirt's `memory_iteration`s (one at start, one
//!   per pass, one at completion): the model's rounds are the intervals
//!   between syncs, the last one being the final copy;
//! - the dirty rate QEMU reports, and auto-converge's decision, are updated
//!   at syncs at least a second apart (`migration_bitmap_sync`,
//!   `migration_trigger_throttle`): throttle 20 %, then +10 % each time a
//!   period dirtied more than half of what it sent for the second time.

use super::stall;
use crate::cluster::Round;

/// The rate limiter's window (QEMU's `BUFFER_DELAY`).
pub const WINDOW_MS: f64 = 100.0;
pub const PAGE_BYTES: f64 = 4096.0;
/// What a zero page costs on the wire (header and one byte).
pub const ZERO_PAGE_WIRE_BYTES: f64 = 9.0;
/// Device state sent with the final copy of a small VM.
pub const DEVICE_STATE_BYTES: f64 = 256.0 * 1024.0;
/// Rounds are closed as the model runs; a run longer than this (virtual
/// time) is cut off as not converging.
pub const MAX_PRECOPY_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// The guest's memory as the model needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guest {
    pub memory: f64,
    /// Bytes that hold data; the rest are zero pages.
    pub touched: f64,
    /// Writable working set: the most that one sync interval can dirty.
    pub wws: f64,
    /// Rate at which the guest writes pages, bytes/s.
    pub dirty_bps: f64,
}

/// Costs that do not depend on memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Begin + Prepare: from the start of the job to the first byte.
    pub setup_ms: f64,
    /// Stopping the guest, device state and resuming it: the part of the
    /// downtime that does not depend on the dirty memory left.
    pub switchover_ms: f64,
    /// Line speed of the final copy (not rate-limited), bytes/s.
    pub final_bps: f64,
    /// After the guest resumed, until the job is over.
    pub cleanup_ms: f64,
}

/// The end of pre-copy: the guest pauses and the rest goes at line speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Switchover {
    /// Pre-copy time, from the first sync to the pause, ms.
    pub at_ms: f64,
    /// Bytes sent while the guest is paused (memory left and device state).
    pub final_bytes: f64,
    pub downtime_ms: f64,
}

/// The bytes sent and dirtied since the last sync.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Open {
    start_ms: f64,
    wire: f64,
    throttle_pct: u32,
}

/// QEMU's migration thread during pre-copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Precopy {
    guest: Guest,
    pub max_downtime_ms: f64,
    pub auto_converge: bool,
    switchover_ms: f64,
    final_bps: f64,
    /// Data bytes still marked dirty in this pass.
    marked_data: f64,
    /// Zero-page bytes still marked (the first pass only).
    marked_zero: f64,
    /// Distinct bytes the guest dirtied since the last sync.
    dirtied: f64,
    /// How much of what is still marked at a sync the guest wrote again
    /// since the last one, relative to writes spread evenly over its
    /// working set (1). A guest that sweeps its set writes little of what
    /// is left marked again (towards 0): more is new at each sync.
    overlap: f64,
    /// QEMU's `threshold_size`, bytes.
    pub threshold: f64,
    /// Pre-copy time so far, ms (0 at the first sync).
    pub now_ms: f64,
    pub syncs: u32,
    open: Open,
    /// Closed rounds, one per interval between syncs.
    pub rounds: Vec<Round>,
    /// Bytes still marked right after each pass's sync (the stall rule's input).
    pub dirty_after: Vec<f64>,
    pub throttle_pct: u32,
    high_count: u32,
    period_start_ms: f64,
    period_dirtied: f64,
    period_wire: f64,
    /// The dirty rate QEMU reports (0 until a period of a second has passed).
    pub reported_dirty_bps: f64,
    /// Memory scanned and data bytes sent in the first pass.
    pub scanned: f64,
    pub first_pass_data: f64,
    pub wire_total: f64,
    pub switchover: Option<Switchover>,
}

impl Precopy {
    /// Pre-copy right after its first sync: every page marked.
    pub fn new(guest: Guest, max_downtime_ms: f64, auto_converge: bool, costs: &Costs) -> Self {
        let touched = guest.touched.clamp(0.0, guest.memory);
        Self {
            guest: Guest {
                touched,
                wws: guest.wws.clamp(0.0, guest.memory),
                dirty_bps: guest.dirty_bps.max(0.0),
                ..guest
            },
            max_downtime_ms,
            auto_converge,
            switchover_ms: costs.switchover_ms.max(0.0),
            final_bps: costs.final_bps.max(1.0),
            marked_data: touched,
            marked_zero: guest.memory - touched,
            dirtied: 0.0,
            overlap: 1.0,
            threshold: 0.0,
            now_ms: 0.0,
            syncs: 1,
            open: Open::default(),
            rounds: Vec::new(),
            dirty_after: Vec::new(),
            throttle_pct: 0,
            high_count: 0,
            period_start_ms: 0.0,
            period_dirtied: 0.0,
            period_wire: 0.0,
            reported_dirty_bps: 0.0,
            scanned: 0.0,
            first_pass_data: 0.0,
            wire_total: 0.0,
            switchover: None,
        }
    }

    /// With `overlap` (0–1) in place of writes spread evenly over the
    /// working set (see the field).
    pub fn with_overlap(mut self, overlap: f64) -> Self {
        self.overlap = overlap.clamp(0.0, 1.0);
        self
    }

    /// The state at a sync seen on a running migration: `marked` bytes
    /// left to send in the pass that begins, `syncs` syncs so far, at
    /// `now_ms` of pre-copy, with the threshold QEMU would have measured.
    #[allow(clippy::too_many_arguments)]
    pub fn at_sync(
        guest: Guest,
        max_downtime_ms: f64,
        auto_converge: bool,
        costs: &Costs,
        syncs: u32,
        marked: f64,
        now_ms: f64,
        threshold: f64,
    ) -> Self {
        let mut m = Self::new(guest, max_downtime_ms, auto_converge, costs);
        m.marked_data = marked.max(0.0);
        m.marked_zero = 0.0;
        m.scanned = guest.memory;
        m.syncs = syncs.max(2);
        m.now_ms = now_ms;
        m.open.start_ms = now_ms;
        m.period_start_ms = now_ms;
        m.threshold = threshold.max(0.0);
        m
    }

    /// With auto-converge's throttle already at `pct`.
    pub fn throttled(mut self, pct: u32) -> Self {
        self.throttle_pct = pct;
        self.open.throttle_pct = pct;
        self
    }

    /// Bytes still marked dirty (zero pages counted at their size, as QEMU does).
    pub fn marked(&self) -> f64 {
        self.marked_data + self.marked_zero
    }

    /// What a switch to post-copy would still have to pull, bytes.
    pub fn postcopy_bytes(&self) -> f64 {
        self.marked_data
            + self.marked_zero * ZERO_PAGE_WIRE_BYTES / PAGE_BYTES
            + self.newly_marked()
    }

    /// Bytes sent in the round that is open.
    pub fn open_round_wire(&self) -> f64 {
        self.open.wire
    }

    /// Downtime if the guest were paused now, ms.
    pub fn downtime_now_ms(&self) -> f64 {
        self.downtime_for(self.marked_data + self.newly_marked())
    }

    fn downtime_for(&self, data: f64) -> f64 {
        self.switchover_ms + (data + DEVICE_STATE_BYTES) / self.final_bps * 1000.0
    }

    /// Whether pre-copy has stalled by the stall rule, after the last sync.
    pub fn stalled(&self) -> bool {
        stall::stalled(
            &self.dirty_after,
            self.throttle_pct,
            self.auto_converge,
            self.threshold,
        )
    }

    fn dirty_rate(&self, mult: f64) -> f64 {
        self.guest.dirty_bps * mult * (1.0 - self.throttle_pct as f64 / 100.0)
    }

    /// The guest writes for `ms`: new distinct pages up to the working set.
    fn dirty_for(&mut self, ms: f64, rate: f64) {
        if ms > 0.0 {
            self.dirtied = (self.dirtied + rate * ms / 1000.0).min(self.guest.wws);
        }
    }

    /// What the bytes dirtied since the last sync add to what is marked
    /// (what a sync now would add). Dirtied pages that are still marked
    /// count once. In later passes everything marked is in the working
    /// set; in the first pass only its share of the touched memory is.
    fn newly_marked(&self) -> f64 {
        let hot_marked = if self.marked_zero > 0.0 && self.guest.touched > 0.0 {
            self.marked_data * (self.guest.wws / self.guest.touched).min(1.0)
        } else {
            self.marked_data
        };
        let overlap = if self.guest.wws > 0.0 {
            self.overlap * hot_marked.min(self.guest.wws) * self.dirtied / self.guest.wws
        } else {
            0.0
        };
        (self.dirtied - overlap).max(0.0)
    }

    /// `migration_bitmap_sync`: the pages dirtied since the last sync join
    /// the bitmap; a round closes.
    fn sync(&mut self, at_ms: f64) {
        let added = self.newly_marked();
        self.marked_data += added;
        self.period_dirtied += added;
        self.dirtied = 0.0;
        self.syncs += 1;
        if at_ms - self.period_start_ms >= 1000.0 {
            let secs = (at_ms - self.period_start_ms) / 1000.0;
            self.reported_dirty_bps = self.period_dirtied / secs;
            if self.auto_converge && self.period_dirtied > self.period_wire * 0.5 {
                self.high_count += 1;
                if self.high_count >= 2 {
                    self.high_count = 0;
                    self.throttle_pct = stall::throttle_up(self.throttle_pct);
                }
            }
            self.period_start_ms = at_ms;
            self.period_dirtied = 0.0;
            self.period_wire = 0.0;
        }
        self.close_round(at_ms, self.marked());
    }

    fn close_round(&mut self, at_ms: f64, dirty_after: f64) {
        let secs = ((at_ms - self.open.start_ms) / 1000.0).max(0.0);
        self.rounds.push(Round {
            index: self.rounds.len() as u32,
            bytes_sent: self.open.wire as u64,
            bytes_dirty: dirty_after as u64,
            dirty_bps: self.reported_dirty_bps as u64,
            bandwidth_bps: if secs > 0.0 {
                (self.open.wire / secs) as u64
            } else {
                0
            },
            duration_ms: secs * 1000.0,
            throttle_pct: self.open.throttle_pct,
        });
        self.open = Open {
            start_ms: at_ms,
            wire: 0.0,
            throttle_pct: self.throttle_pct,
        };
    }

    /// Sends up to `room` wire bytes of what is marked; returns the wire
    /// bytes sent.
    fn send(&mut self, room: f64) -> f64 {
        let marked = self.marked();
        if marked <= 0.0 || room <= 0.0 {
            return 0.0;
        }
        // Pages go in address order, data and zero pages mixed evenly.
        let wire_marked = self.marked_data + self.marked_zero * ZERO_PAGE_WIRE_BYTES / PAGE_BYTES;
        let wire = self.take((room / wire_marked).min(1.0));
        if self.marked() < 1.0 {
            self.marked_data = 0.0;
            self.marked_zero = 0.0;
        }
        wire
    }

    /// Sends `share` of what is marked (data and zero pages alike);
    /// returns the wire bytes.
    fn take(&mut self, share: f64) -> f64 {
        let data = self.marked_data * share;
        let zero = self.marked_zero * share;
        self.marked_data -= data;
        self.marked_zero -= zero;
        let wire = data + zero * ZERO_PAGE_WIRE_BYTES / PAGE_BYTES;
        if self.rounds.is_empty() {
            self.scanned += data + zero;
            self.first_pass_data += data;
        }
        self.open.wire += wire;
        self.period_wire += wire;
        self.wire_total += wire;
        wire
    }

    /// One rate-limiter window at bandwidth `bw` (bytes/s) with the guest
    /// dirtying at `mult` times its rate. Returns the switchover when
    /// pre-copy completes in this window.
    pub fn window(&mut self, bw: f64, mult: f64) -> Option<Switchover> {
        if self.switchover.is_some() {
            return self.switchover;
        }
        let rate = self.dirty_rate(mult);
        let budget = bw.max(1.0) * WINDOW_MS / 1000.0;
        let final_bps = self.final_bps;
        let line_ms = |wire: f64| wire / final_bps * 1000.0;
        let mut used = 0.0;
        let mut t = 0.0;
        let mut dirtied_to = 0.0;
        loop {
            // migration_iteration_run: the pending check (with its sync).
            if self.marked() < self.threshold {
                self.dirty_for(t - dirtied_to, rate);
                dirtied_to = t;
                self.sync(self.now_ms + t);
                self.dirty_after.push(self.marked());
            }
            let marked = self.marked();
            if marked <= 0.0 || marked < self.threshold {
                self.dirty_for(t - dirtied_to, rate);
                return Some(self.complete(self.now_ms + t));
            }
            // ram_save_iterate: until the budget is spent or nothing is marked.
            let wire = self.send(budget - used);
            used += wire;
            t += line_ms(wire);
            if self.marked() > 0.0 || used >= budget - 1e-6 {
                break;
            }
        }
        let len = WINDOW_MS.max(t);
        self.dirty_for(len - dirtied_to, rate);
        self.now_ms += len;
        // migration_update_counters
        self.threshold = used / len * self.max_downtime_ms;
        None
    }

    /// Runs `n` windows at once when nothing can happen in them but sending
    /// (no sync, no completion): the same result as `n` calls of
    /// [`Precopy::window`] with a steady threshold. Returns how many it ran.
    pub fn quiet_windows(&mut self, n: u64, bw: f64, mult: f64) -> u64 {
        if self.switchover.is_some() || self.threshold <= 0.0 || n == 0 {
            return 0;
        }
        let budget = bw.max(1.0) * WINDOW_MS / 1000.0;
        let wire_marked = self.marked_data + self.marked_zero * ZERO_PAGE_WIRE_BYTES / PAGE_BYTES;
        if wire_marked <= 0.0 {
            return 0;
        }
        // Bitmap bytes one full window takes, and the windows that keep
        // what is marked at or above the threshold (next one's check
        // included) with the threshold this budget gives.
        let per_window = self.marked() * budget / wire_marked;
        let steady = budget / WINDOW_MS * self.max_downtime_ms;
        if (self.threshold - steady).abs() > steady * 1e-9 + 1.0 {
            return 0;
        }
        let k = ((self.marked() - steady) / per_window - 1.0).floor();
        if k < 1.0 {
            return 0;
        }
        let k = (k as u64).min(n);
        self.take((k as f64 * per_window / self.marked()).min(1.0));
        let ms = k as f64 * WINDOW_MS;
        let rate = self.dirty_rate(mult);
        self.dirty_for(ms, rate);
        self.now_ms += ms;
        k
    }

    /// `migration_completion`: pause, the last sync, the rest at line speed.
    fn complete(&mut self, at_ms: f64) -> Switchover {
        self.sync(at_ms);
        let final_bytes = self.marked_data
            + self.marked_zero * ZERO_PAGE_WIRE_BYTES / PAGE_BYTES
            + DEVICE_STATE_BYTES;
        let downtime_ms = self.switchover_ms + final_bytes / self.final_bps * 1000.0;
        self.open.wire = final_bytes;
        self.wire_total += final_bytes;
        self.marked_data = 0.0;
        self.marked_zero = 0.0;
        self.now_ms = at_ms;
        let end = at_ms + (final_bytes / self.final_bps * 1000.0);
        self.close_round(end, 0.0);
        let s = Switchover {
            at_ms,
            final_bytes,
            downtime_ms,
        };
        self.switchover = Some(s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::MIB;

    const MB: f64 = MIB as f64;

    fn lab_costs() -> Costs {
        Costs {
            setup_ms: 300.0,
            switchover_ms: 15.0,
            final_bps: 1000.0 * MB,
            cleanup_ms: 0.0,
        }
    }

    fn run(g: Guest, bw: f64) -> Precopy {
        let mut m = Precopy::new(g, 300.0, false, &lab_costs());
        for _ in 0..100_000 {
            if m.window(bw, 1.0).is_some() {
                return m;
            }
        }
        panic!("did not complete");
    }

    /// A guest that writes nothing migrates in libvirt's 2 iterations:
    /// the sync at start and the one at completion; the first pass is
    /// over before the threshold is ever measured.
    #[test]
    fn an_idle_guest_takes_two_iterations_and_sends_only_its_data() {
        let g = Guest {
            memory: 256.0 * MB,
            touched: 1.0 * MB,
            wws: 0.0,
            dirty_bps: 0.0,
        };
        let m = run(g, 40.0 * MB);
        assert_eq!(m.syncs, 2);
        assert_eq!(m.rounds.len(), 2);
        // 1 MiB of data and 64 Ki zero markers, far from 256 MiB.
        assert!(m.wire_total < 2.0 * MB, "{}", m.wire_total);
        assert!(m.switchover.unwrap().downtime_ms < 20.0);
    }

    /// The lab's moderate guest at 40 MiB/s (16 MiB/s over a 64 MiB region,
    /// 68 MiB touched): libvirt counted 6 iterations and 2.2 s of
    /// pre-copy, the first pass 1.6 s.
    #[test]
    fn the_moderate_lab_guest_matches_a_real_run() {
        let g = Guest {
            memory: 256.0 * MB,
            touched: 68.0 * MB,
            wws: 64.0 * MB,
            dirty_bps: 16.4e6,
        };
        let m = run(g, 40.0 * MB);
        let s = m.switchover.unwrap();
        assert!((5..=7).contains(&m.syncs), "{} syncs", m.syncs);
        assert!((1.9e3..2.6e3).contains(&s.at_ms), "pre-copy {} ms", s.at_ms);
        assert!(
            (1500.0..1800.0).contains(&m.rounds[0].duration_ms),
            "first pass {} ms",
            m.rounds[0].duration_ms
        );
        assert!(s.downtime_ms < 40.0, "downtime {}", s.downtime_ms);
    }

    /// Pages dirtied during the first pass that are still marked count once:
    /// what post-copy still has to pull, and what a pause now would copy,
    /// never exceed the guest's memory.
    #[test]
    fn a_long_pass_over_a_hot_guest_never_marks_more_than_its_memory() {
        let g = Guest {
            memory: 256.0 * MB,
            touched: 256.0 * MB,
            wws: 128.0 * MB,
            dirty_bps: 400.0 * MB,
        };
        let mut m = Precopy::new(g, 300.0, false, &lab_costs());
        // One second into a 10 MiB/s first pass: most of memory is still
        // marked, and the whole set has been rewritten meanwhile.
        for _ in 0..10 {
            if m.window(10.0 * MB, 1.0).is_some() {
                break;
            }
        }
        assert!(m.postcopy_bytes() <= g.memory, "{}", m.postcopy_bytes());
        let copy_all_ms = (g.memory + DEVICE_STATE_BYTES) / m.final_bps * 1000.0 + m.switchover_ms;
        assert!(
            m.downtime_now_ms() <= copy_all_ms,
            "{}",
            m.downtime_now_ms()
        );
    }

    #[test]
    fn short_rounds_last_whole_windows() {
        let g = Guest {
            memory: 256.0 * MB,
            touched: 68.0 * MB,
            wws: 64.0 * MB,
            dirty_bps: 16.4e6,
        };
        let m = run(g, 40.0 * MB);
        for r in &m.rounds[1..m.rounds.len() - 1] {
            let slots = r.duration_ms / WINDOW_MS;
            assert!((slots - slots.round()).abs() < 0.1, "{r:?}");
        }
    }

    #[test]
    fn a_guest_dirtying_its_whole_set_each_pass_never_gets_below_the_threshold() {
        let g = Guest {
            memory: 256.0 * MB,
            touched: 68.0 * MB,
            wws: 64.0 * MB,
            dirty_bps: 196e6,
        };
        let mut m = Precopy::new(g, 300.0, false, &lab_costs());
        let mut stalled = false;
        for _ in 0..2000 {
            assert!(m.window(40.0 * MB, 1.0).is_none());
            if m.stalled() {
                stalled = true;
                break;
            }
        }
        assert!(stalled, "{:?}", m.dirty_after);
        assert!(m.reported_dirty_bps > 0.0);
    }

    #[test]
    fn quiet_windows_equal_single_windows() {
        let g = Guest {
            memory: 4096.0 * MB,
            touched: 3000.0 * MB,
            wws: 256.0 * MB,
            dirty_bps: 20.0 * MB,
        };
        let mut a = Precopy::new(g, 300.0, false, &lab_costs());
        let mut b = a.clone();
        a.window(100.0 * MB, 1.0);
        b.window(100.0 * MB, 1.0);
        let k = b.quiet_windows(1000, 100.0 * MB, 1.0);
        assert!(k > 10, "{k}");
        for _ in 0..k {
            assert!(a.window(100.0 * MB, 1.0).is_none());
        }
        assert_eq!(a.syncs, b.syncs);
        assert!((a.marked() - b.marked()).abs() < 1.0);
        assert!((a.now_ms - b.now_ms).abs() < 1e-6);
        assert!((a.wire_total - b.wire_total).abs() < 1.0);
    }

    #[test]
    fn auto_converge_throttles_after_two_hot_periods() {
        let g = Guest {
            memory: 1024.0 * MB,
            touched: 1024.0 * MB,
            wws: 900.0 * MB,
            dirty_bps: 80.0 * MB,
        };
        let mut m = Precopy::new(g, 300.0, true, &lab_costs());
        for _ in 0..20_000 {
            if m.window(50.0 * MB, 1.0).is_some() {
                break;
            }
        }
        assert!(m.switchover.is_some(), "auto-converge makes it finish");
        assert!(m.throttle_pct >= 20, "{}", m.throttle_pct);
    }
}

/// Replays the lab's real migrations (`tests/fixtures/precopy_replay.json`,
/// libvirt's rounds as vmshift recorded them) with the lab guest's true
/// parameters, and compares libvirt's iteration counts with the model's.
#[cfg(test)]
mod replay {
    use super::*;
    use serde_json::Value;

    const MIB: f64 = 1024.0 * 1024.0;
    /// What a guest of the lab has touched besides its region (firmware,
    /// kernel): the first pass of an idle guest.
    const BASE_TOUCHED: f64 = 0.5 * MIB;

    struct Replayed {
        run: String,
        real: i64,
        model: i64,
        completed: bool,
        model_completed: bool,
        real_windows: Vec<f64>,
        model_windows: Vec<f64>,
    }

    /// The lab's runs through the model, with writes spread over the
    /// working set (`overlap` 1) or sweeping it (0).
    fn replay(overlap: f64) -> Vec<Replayed> {
        let text = include_str!("../../tests/fixtures/precopy_replay.json");
        let v: Value = serde_json::from_str(text).expect("fixture");
        let costs = Costs {
            setup_ms: 0.0,
            switchover_ms: 10.0,
            final_bps: 1000.0 * MIB,
            cleanup_ms: 0.0,
        };
        let mut out = Vec::new();
        for r in v["runs"].as_array().expect("runs") {
            let f = |k: &str| r[k].as_f64().expect(k);
            let memory = f("memory_mib") * MIB;
            let wws = (f("region_pages") * PAGE_BYTES).min(memory - 16.0 * MIB);
            let g = Guest {
                memory,
                touched: (wws + BASE_TOUCHED).min(memory),
                wws,
                dirty_bps: f("pages_per_ms") * PAGE_BYTES * 1000.0,
            };
            let bw = f("bandwidth_mib") * MIB;
            let mut m = Precopy::new(g, 300.0, false, &costs).with_overlap(overlap);
            let mut done = false;
            for _ in 0..100_000 {
                let syncs = m.syncs;
                if m.window(bw, 1.0).is_some() {
                    done = true;
                    break;
                }
                if m.syncs > syncs && m.stalled() {
                    break;
                }
            }
            let ms = |d: f64| (d / WINDOW_MS * 100.0).round() / 100.0;
            out.push(Replayed {
                run: r["run"].as_str().unwrap_or("").to_string(),
                real: r["iterations"].as_i64().unwrap_or(0),
                model: m.syncs as i64,
                completed: r["completed"].as_bool().unwrap_or(false),
                model_completed: done,
                real_windows: r["round_ms"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).map(ms).collect())
                    .unwrap_or_default(),
                model_windows: m.rounds.iter().map(|r| ms(r.duration_ms)).collect(),
            });
        }
        out
    }

    /// libvirt's iteration counts of the lab's migrations (syncs, the
    /// completion's included) within one, and the same outcome: completed,
    /// or stalled by the stall rule.
    #[test]
    fn the_lab_runs_replay_within_one_iteration() {
        let runs = replay(1.0);
        assert!(runs.len() >= 19, "{} runs", runs.len());
        let mut misses = Vec::new();
        for r in &runs {
            println!(
                "{:16} real {:2} model {:2}\n  real  {:?}\n  model {:?}",
                r.run, r.real, r.model, r.real_windows, r.model_windows
            );
            assert_eq!(r.completed, r.model_completed, "{}", r.run);
            // cal-08 (16 MB/s round-robin over 160 MiB at 20 MiB/s) does two
            // syncs more than the model: the lab's guest sweeps its set, so
            // what is left at a sync is not written again in the next
            // interval, where `sync` takes writes as spread over the set.
            let slack = if r.run.starts_with("cal-08") { 2 } else { 1 };
            if r.completed && (r.real - r.model).abs() > slack {
                misses.push(format!("{}: real {}, model {}", r.run, r.real, r.model));
            }
        }
        assert!(misses.is_empty(), "{misses:?}");
    }

    /// The lab's guest sweeps its set: as a sweeping writer, the model
    /// gives every completed run's iteration count exactly (what a VM's
    /// past migration lets the prediction learn, see `plan::inputs`).
    #[test]
    fn the_lab_runs_replay_exactly_as_sweeping_writers() {
        let runs = replay(0.0);
        let misses: Vec<String> = runs
            .iter()
            .filter(|r| r.completed != r.model_completed || (r.completed && r.real != r.model))
            .map(|r| format!("{}: real {}, model {}", r.run, r.real, r.model))
            .collect();
        assert!(misses.is_empty(), "{misses:?}");
    }
}
