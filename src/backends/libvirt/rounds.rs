//! libvirt's job stats and domain events turned into steps and rounds.
//!
//! Pure: every input carries its time (ms since the migration started), so
//! a sequence recorded from a real migration replays here exactly
//! (`VMSHIFT_RECORD_ROUNDS=DIR` writes one JSON-lines file per migration;
//! the unit tests below replay three of them from the lab).
//!
//! A migration-iteration event starts an iteration (a dirty-bitmap sync):
//! round i spans iteration i+1's start to the next start, or to the pause
//! once the job completes. The first job stats read after an event give
//! the memory processed and remaining at that sync. The job-completed
//! event's stats close the rounds and bring the actual downtime;
//! iterations whose events were never seen still count as rounds.

use serde::{Deserialize, Serialize};

use crate::cluster::{Migration, Round, Step};
use crate::plan;

/// The job-stats fields vmshift reads (libvirt `virDomainGetJobStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// `VIR_DOMAIN_JOB_*`: 0 none, 1 bounded, 2 unbounded, 3 completed...
    pub job_type: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_iteration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_total: Option<u64>,
    /// Pages per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_dirty_rate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_page_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_normal: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_normal_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_constant: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_elapsed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_converge_throttle: Option<i32>,
}

impl From<&virt::domain::JobStats> for Stats {
    fn from(j: &virt::domain::JobStats) -> Stats {
        Stats {
            job_type: j.r#type,
            mem_iteration: j.mem_iteration,
            mem_processed: j.mem_processed,
            mem_remaining: j.mem_remaining,
            mem_total: j.mem_total,
            mem_dirty_rate: j.mem_dirty_rate,
            mem_page_size: j.mem_page_size,
            mem_bps: j.mem_bps,
            mem_normal: j.mem_normal,
            mem_normal_bytes: j.mem_normal_bytes,
            mem_constant: j.mem_constant,
            data_processed: j.data_processed,
            disk_total: j.disk_total,
            disk_processed: j.disk_processed,
            disk_remaining: j.disk_remaining,
            disk_bps: j.disk_bps,
            downtime: j.downtime,
            time_elapsed: j.time_elapsed,
            auto_converge_throttle: j.auto_converge_throttle,
        }
    }
}

/// What happened, when (ms since the migration started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// The source's migration-iteration event.
    Iteration { at_ms: f64, iteration: i32 },
    /// Job stats read from the source while the job runs.
    Stats { at_ms: f64, stats: Stats },
    /// The source paused the domain for the switchover (or post-copy).
    Paused { at_ms: f64, postcopy: bool },
    /// The domain resumed on the target.
    Resumed { at_ms: f64, postcopy: bool },
    /// The source's domain stopped, migrated away.
    StoppedOnSource { at_ms: f64 },
    /// The job-completed event's stats (source or target).
    Completed { at_ms: f64, stats: Stats },
}

impl Input {
    pub fn at_ms(&self) -> f64 {
        match self {
            Input::Iteration { at_ms, .. }
            | Input::Stats { at_ms, .. }
            | Input::Paused { at_ms, .. }
            | Input::Resumed { at_ms, .. }
            | Input::StoppedOnSource { at_ms }
            | Input::Completed { at_ms, .. } => *at_ms,
        }
    }
}

/// libvirt's totals of a completed job on a migration whose rounds were not
/// all seen (it ended while no vmshift watched): the rounds seen stay as
/// they were; the count, downtime, time and bytes are libvirt's.
pub fn apply_totals(v: &mut Migration, c: &Stats) {
    if let Some(n) = c.mem_iteration {
        v.rounds_total = Some(n.min(u32::MAX as u64) as u32);
    }
    if let Some(d) = c.downtime {
        v.actual_downtime_ms = Some(d as f64);
    }
    if let Some(t) = c.time_elapsed {
        v.elapsed_ms = t as f64;
    }
    if let Some(b) = c.data_processed.or(c.mem_processed) {
        v.transferred_bytes = b;
    }
    v.remaining_bytes = 0;
}

/// The start of one libvirt iteration (a dirty-bitmap sync).
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    iteration: i32,
    at_ms: f64,
    /// Memory processed and remaining right after the sync (first job
    /// stats read after the event).
    processed: Option<u64>,
    remaining: Option<u64>,
    dirty_bps: u64,
    bandwidth_bps: u64,
    throttle: u32,
}

/// One migration's iterations, as far as they have been seen.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    marks: Vec<Mark>,
    last_stats: Option<Stats>,
    completed: Option<Stats>,
    paused_ms: Option<f64>,
    /// Every input, when recording (`VMSHIFT_RECORD_ROUNDS`).
    recorded: Option<Vec<Input>>,
}

impl Tracker {
    /// A tracker that keeps every input for the recording.
    pub fn recording() -> Tracker {
        Tracker {
            recorded: Some(Vec::new()),
            ..Default::default()
        }
    }

    /// Iterations seen so far (events, or synthesised on completion).
    pub fn iterations_seen(&self) -> usize {
        self.marks.len()
    }

    pub fn has_stats(&self) -> bool {
        self.last_stats.is_some()
    }

    pub fn completed(&self) -> bool {
        self.completed.is_some()
    }

    /// The inputs recorded so far, if recording.
    pub fn recorded(&self) -> Option<&[Input]> {
        self.recorded.as_deref()
    }

    /// Applies one input to the tracker and the migration's view.
    pub fn apply(&mut self, v: &mut Migration, input: Input) {
        if let Some(r) = &mut self.recorded {
            r.push(input.clone());
        }
        let at = input.at_ms();
        match input {
            Input::Iteration { iteration, .. } => {
                self.marks.push(Mark {
                    iteration,
                    at_ms: at,
                    processed: None,
                    remaining: None,
                    dirty_bps: 0,
                    bandwidth_bps: 0,
                    throttle: 0,
                });
                mark_step(v, Step::PreCopy, at);
                // The memory rounds begin once the copied disks are in sync.
                let prepared = v.step_started_ms[Step::PrepareTarget.index()].unwrap_or(0.0);
                if let Some(dc) = &mut v.disk_copy {
                    // A copy done before any poll saw it began with the
                    // target's preparation, as far as anyone can tell.
                    dc.started_ms.get_or_insert(prepared.min(at));
                    dc.done_ms.get_or_insert(at);
                    dc.copied_bytes = dc.copied_bytes.max(dc.total_bytes);
                    dc.bps = 0;
                }
            }
            Input::Stats { stats, .. } => self.stats(v, &stats, at),
            Input::Paused { postcopy, .. } => {
                self.paused_ms.get_or_insert(at);
                mark_step(v, Step::Pause, at);
                mark_step(v, Step::FinalCopy, at);
                v.postcopy_active |= postcopy;
            }
            Input::Resumed { postcopy, .. } => {
                mark_step(v, Step::Pause, at);
                mark_step(v, Step::FinalCopy, at);
                mark_step(v, Step::ResumeOnTarget, at);
                v.postcopy_active |= postcopy;
            }
            Input::StoppedOnSource { .. } => {
                for s in [
                    Step::Pause,
                    Step::FinalCopy,
                    Step::ResumeOnTarget,
                    Step::CleanUpSource,
                ] {
                    mark_step(v, s, at);
                }
            }
            Input::Completed { stats, .. } => {
                if self.completed.is_none() {
                    self.completed = Some(stats);
                    self.close(v, at);
                }
            }
        }
    }

    /// Live job stats.
    fn stats(&mut self, v: &mut Migration, j: &Stats, at: f64) {
        let page = j.mem_page_size.unwrap_or(4096);
        let processed = j.mem_processed.unwrap_or(0);
        let remaining = j.mem_remaining.unwrap_or(0) + j.disk_remaining.unwrap_or(0);
        let dirty = j.mem_dirty_rate.unwrap_or(0) * page;
        let bw = j.mem_bps.unwrap_or(0);
        let throttle = j.auto_converge_throttle.unwrap_or(0).max(0) as u32;
        for m in self.marks.iter_mut().filter(|m| m.processed.is_none()) {
            m.processed = Some(processed);
            m.remaining = Some(j.mem_remaining.unwrap_or(0));
            m.dirty_bps = dirty;
            m.bandwidth_bps = bw;
            m.throttle = throttle;
        }
        if processed > 0 || j.mem_iteration.unwrap_or(0) > 0 {
            mark_step(v, Step::PreCopy, at);
        }
        if v.memory == 0 {
            // Found by its first event, before any poll saw the domain.
            v.memory = j.mem_total.unwrap_or(0);
        }
        v.remaining_bytes = remaining;
        if dirty > 0 {
            v.dirty_bps = dirty;
        }
        v.bandwidth_bps = bw;
        v.throttle_pct = throttle;
        v.transferred_bytes = v
            .transferred_bytes
            .max(j.data_processed.unwrap_or(processed));
        v.storage_bytes = v.storage_bytes.max(j.disk_total.unwrap_or(0));
        // The disk copy (copy storage over NBD) runs before the memory rounds.
        if let Some(total) = j.disk_total.filter(|t| *t > 0) {
            let dc = v.disk_copy.get_or_insert_with(Default::default);
            dc.total_bytes = dc.total_bytes.max(total);
            if dc.done_ms.is_none() {
                dc.started_ms.get_or_insert(at);
                dc.copied_bytes = j.disk_processed.unwrap_or(0).min(dc.total_bytes);
                dc.bps = j.disk_bps.unwrap_or(0);
            }
        }
        // The first pass: how much of memory it has scanned, and how much
        // of that held data (zero pages go as markers).
        if self.marks.len() <= 1 {
            let normal = j.mem_normal.unwrap_or(0) * page;
            v.data_bytes = j.mem_normal_bytes.unwrap_or(normal).max(normal);
            v.scanned_bytes = v.data_bytes + j.mem_constant.unwrap_or(0) * page;
        }
        self.last_stats = Some(j.clone());
        self.rebuild(v, processed, false, at);
        v.live = plan::live(v);
        // What a pause now would cost: QEMU's own figure divides by the
        // limited bandwidth, but the final copy goes at line speed.
        v.expected_downtime_ms = match &v.live {
            Some(f) => f.downtime_now_ms.unwrap_or(f.downtime_ms.value),
            None => j.downtime.unwrap_or(0) as f64,
        };
    }

    /// Closes the rounds with the completed job's stats and takes its
    /// downtime.
    fn close(&mut self, v: &mut Migration, at: f64) {
        let Some(c) = self.completed.clone() else {
            return;
        };
        let iterations = c.mem_iteration.unwrap_or(0) as i32;
        // Iterations whose events were not seen still count as rounds.
        let have = self.marks.last().map_or(0, |m| m.iteration);
        let end = self.paused_ms.unwrap_or(at);
        for it in have + 1..=iterations {
            self.marks.push(Mark {
                iteration: it,
                at_ms: end,
                processed: self.marks.last().and_then(|m| m.processed).or(Some(0)),
                remaining: Some(0),
                dirty_bps: 0,
                bandwidth_bps: 0,
                throttle: 0,
            });
        }
        let processed = c.mem_processed.unwrap_or(0);
        self.rebuild(v, processed, true, at);
        if let Some(d) = c.downtime {
            v.actual_downtime_ms = Some(d as f64);
        }
        v.transferred_bytes = c.data_processed.unwrap_or(processed);
        v.remaining_bytes = 0;
        v.elapsed_ms = c.time_elapsed.map_or(at, |t| t as f64);
    }

    /// Rounds from the iteration marks: round i spans iteration i+1's start
    /// to the next start (or the pause when `finished`).
    fn rebuild(&mut self, v: &mut Migration, processed_now: u64, finished: bool, at: f64) {
        let mut rounds = Vec::new();
        for (i, m) in self.marks.iter().enumerate() {
            let (end_processed, end_remaining, end_at) = match self.marks.get(i + 1) {
                Some(n) => (n.processed, n.remaining, n.at_ms),
                None if finished => (
                    Some(processed_now),
                    Some(0),
                    self.paused_ms.unwrap_or(at).max(m.at_ms),
                ),
                None => break,
            };
            let (Some(start), Some(end)) = (m.processed, end_processed) else {
                break;
            };
            let ms = (end_at - m.at_ms).max(0.0);
            let sent = end.saturating_sub(start);
            rounds.push(Round {
                index: (m.iteration.max(1) - 1) as u32,
                bytes_sent: sent,
                bytes_dirty: end_remaining.unwrap_or(0),
                dirty_bps: m.dirty_bps,
                bandwidth_bps: if ms > 0.0 {
                    (sent as f64 / ms * 1000.0) as u64
                } else {
                    m.bandwidth_bps
                },
                duration_ms: ms,
                throttle_pct: m.throttle,
            });
        }
        v.current_round_sent = self
            .marks
            .last()
            .and_then(|m| m.processed)
            .map_or(0, |p| processed_now.saturating_sub(p));
        v.rounds = rounds;
        v.elapsed_ms = v.elapsed_ms.max(at);
    }
}

/// Marks step `s` begun at `at_ms` (once) and makes it the current step if later.
pub fn mark_step(v: &mut Migration, s: Step, at_ms: f64) {
    if v.step_started_ms[s.index()].is_none() {
        v.step_started_ms[s.index()] = Some(at_ms);
    }
    if s > v.step {
        v.step = s;
    }
}

/// Parses a recorded sequence (one [`Input`] per line).
#[cfg(test)]
pub fn parse_recording(text: &str) -> Result<Vec<Input>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Writes a recording as JSON lines to `dir/<vm>-<from>-<to>-<unix ms>.jsonl`.
pub fn write_recording(dir: &std::path::Path, v: &Migration, inputs: &[Input]) {
    let mut text = String::new();
    for i in inputs {
        if let Ok(l) = serde_json::to_string(i) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    let _ = std::fs::create_dir_all(dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = dir.join(format!("{}-{}-{}-{now}.jsonl", v.vm, v.from, v.to));
    if let Err(e) = std::fs::write(&path, text) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the rounds recording");
    }
}

#[cfg(test)]
mod tests {
    //! Replays of sequences recorded from real migrations on the lab
    //! (`VMSHIFT_RECORD_ROUNDS`, DESIGN §8), next to the rounds the live
    //! run reported (`vmshift migrate --json`).
    use super::*;
    use crate::cluster::{MIB, Outcome};

    struct Fixture {
        name: &'static str,
        inputs: &'static str,
        live: &'static str,
    }

    const MODERATE_A_B_40: Fixture = Fixture {
        name: "moderate a→b 40 MiB/s",
        inputs: include_str!("fixtures/moderate-a-b-bw40.jsonl"),
        live: include_str!("fixtures/moderate-a-b-bw40.live.jsonl"),
    };
    const MODERATE_B_A_20: Fixture = Fixture {
        name: "moderate b→a 20 MiB/s",
        inputs: include_str!("fixtures/moderate-b-a-bw20.jsonl"),
        live: include_str!("fixtures/moderate-b-a-bw20.live.jsonl"),
    };
    const FAST_POSTCOPY: Fixture = Fixture {
        name: "fast b→a 20 MiB/s, post-copy on stall",
        inputs: include_str!("fixtures/fast-b-a-bw20-postcopy.jsonl"),
        live: include_str!("fixtures/fast-b-a-bw20-postcopy.live.jsonl"),
    };
    const ALL: [Fixture; 3] = [MODERATE_A_B_40, MODERATE_B_A_20, FAST_POSTCOPY];

    fn inputs(f: &Fixture) -> Vec<Input> {
        parse_recording(f.inputs).unwrap_or_else(|e| panic!("{}: {e}", f.name))
    }

    fn replay(inputs: &[Input]) -> (Tracker, Migration) {
        let mut v = Migration::starting(1, "vm", "a", "b", Default::default(), 256 * MIB, 0, 0);
        let mut t = Tracker::default();
        for i in inputs {
            t.apply(&mut v, i.clone());
        }
        (t, v)
    }

    fn live(f: &Fixture) -> (Vec<Round>, serde_json::Value) {
        let lines: Vec<serde_json::Value> = f
            .live
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let rounds = lines
            .iter()
            .filter(|l| l["event"] == "round")
            .map(|l| serde_json::from_value(l["round"].clone()).unwrap())
            .collect();
        (rounds, lines.last().unwrap().clone())
    }

    fn completed(inputs: &[Input]) -> Stats {
        inputs
            .iter()
            .find_map(|i| match i {
                Input::Completed { stats, .. } => Some(stats.clone()),
                _ => None,
            })
            .expect("a completed job in the recording")
    }

    #[test]
    fn replaying_a_recording_gives_the_rounds_the_live_run_showed() {
        for f in ALL {
            let (_, v) = replay(&inputs(&f));
            let (rounds, done) = live(&f);
            assert_eq!(v.rounds, rounds, "{}", f.name);
            assert_eq!(
                v.actual_downtime_ms,
                done["actual_downtime_ms"].as_f64(),
                "{}",
                f.name
            );
            assert_eq!(v.elapsed_ms, done["elapsed_ms"].as_f64().unwrap());
            assert_eq!(v.transferred_bytes, done["bytes_sent"].as_u64().unwrap());
        }
    }

    #[test]
    fn one_round_per_libvirt_iteration_and_every_byte_in_exactly_one_round() {
        for f in ALL {
            let inputs = inputs(&f);
            let c = completed(&inputs);
            let (_, v) = replay(&inputs);
            let n = c.mem_iteration.unwrap() as usize;
            assert_eq!(v.rounds.len(), n, "{}", f.name);
            let idx: Vec<u32> = v.rounds.iter().map(|r| r.index).collect();
            assert_eq!(idx, (0..n as u32).collect::<Vec<_>>(), "{}", f.name);
            // Round 0 starts at the first sync, whose stats showed what was
            // already processed (setup); the rest adds up to the total.
            let first = inputs
                .iter()
                .skip_while(|i| !matches!(i, Input::Iteration { .. }))
                .find_map(|i| match i {
                    Input::Stats { stats, .. } => stats.mem_processed,
                    _ => None,
                })
                .unwrap();
            let sent: u64 = v.rounds.iter().map(|r| r.bytes_sent).sum();
            assert_eq!(sent + first, c.mem_processed.unwrap(), "{}", f.name);
            assert_eq!(v.actual_downtime_ms, Some(c.downtime.unwrap() as f64));
            assert!(v.rounds.iter().all(|r| r.duration_ms >= 0.0), "{}", f.name);
        }
    }

    #[test]
    fn the_switchover_sync_is_a_round_of_zero_bytes() {
        // QEMU syncs the dirty bitmap once more at switchover: libvirt
        // counts it as an iteration, and it sends nothing of its own.
        for f in [MODERATE_A_B_40, MODERATE_B_A_20] {
            let (_, v) = replay(&inputs(&f));
            let last = v.rounds.last().unwrap();
            assert_eq!(last.bytes_sent, 0, "{}: {last:?}", f.name);
            assert_eq!(last.bytes_dirty, 0, "{}", f.name);
            assert_eq!(last.duration_ms, 0.0, "{}", f.name);
            // The round before it is the final copy: all that was still
            // dirty, at line speed, well above the 40 MiB/s limit.
            let final_copy = &v.rounds[v.rounds.len() - 2];
            assert!(final_copy.bytes_sent > 5_000_000, "{final_copy:?}");
            assert!(final_copy.bandwidth_bps > 200 * MIB, "{final_copy:?}");
        }
        // A sync inside pre-copy can send nothing too (the limiter's slot
        // was spent): round 3 of the 40 MiB/s run.
        let (_, v) = replay(&inputs(&MODERATE_A_B_40));
        assert!(
            v.rounds[..v.rounds.len() - 2]
                .iter()
                .any(|r| r.bytes_sent == 0 && r.duration_ms > 50.0),
            "{:?}",
            v.rounds
        );
    }

    #[test]
    fn rounds_whose_events_were_missed_still_count() {
        // Iterations 3, 4 and 5 came within ~110 ms of each other: drop
        // their events, as a slow event thread would.
        let all = inputs(&MODERATE_A_B_40);
        let kept: Vec<Input> = all
            .iter()
            .filter(|i| !matches!(i, Input::Iteration { iteration, .. } if *iteration >= 3))
            .cloned()
            .collect();
        assert!(kept.len() < all.len());
        let c = completed(&all);
        let (_, v) = replay(&kept);
        assert_eq!(v.rounds.len(), c.mem_iteration.unwrap() as usize);
        let sent: u64 = v.rounds.iter().map(|r| r.bytes_sent).sum();
        let (_, full) = replay(&all);
        let full_sent: u64 = full.rounds.iter().map(|r| r.bytes_sent).sum();
        assert_eq!(sent, full_sent, "no byte lost or counted twice");
        assert_eq!(v.actual_downtime_ms, full.actual_downtime_ms);
    }

    #[test]
    fn steps_follow_the_events_in_order_and_postcopy_is_seen() {
        for f in ALL {
            let inputs = inputs(&f);
            let (_, v) = replay(&inputs);
            let at: Vec<f64> = v
                .step_started_ms
                .iter()
                .map(|s| s.unwrap_or_else(|| panic!("{}: every step seen", f.name)))
                .collect();
            assert!(at.windows(2).all(|w| w[0] <= w[1]), "{}: {at:?}", f.name);
            let paused = inputs
                .iter()
                .find_map(|i| match i {
                    Input::Paused { at_ms, .. } => Some(*at_ms),
                    _ => None,
                })
                .unwrap();
            assert_eq!(at[Step::Pause.index()], paused, "{}", f.name);
            assert_eq!(v.step, Step::CleanUpSource);
            assert_eq!(v.outcome, None::<Outcome>, "the outcome is the caller's");
        }
        assert!(replay(&inputs(&FAST_POSTCOPY)).1.postcopy_active);
        assert!(!replay(&inputs(&MODERATE_B_A_20)).1.postcopy_active);
    }

    #[test]
    fn while_running_only_finished_rounds_show_and_the_current_one_grows() {
        let all = inputs(&MODERATE_B_A_20);
        // Up to the stats read right after iteration 3's event.
        let cut = all
            .iter()
            .position(|i| matches!(i, Input::Iteration { iteration: 3, .. }))
            .unwrap()
            + 2;
        let (t, v) = replay(&all[..cut]);
        assert_eq!(t.iterations_seen(), 3);
        assert_eq!(v.rounds.len(), 2, "rounds 0 and 1 are over");
        assert!(!t.completed());
        assert_eq!(v.actual_downtime_ms, None);
        let (_, more) = replay(&all[..cut + 2]);
        assert!(more.current_round_sent > v.current_round_sent);
        assert!(v.remaining_bytes > 0);
    }

    #[test]
    fn a_recording_round_trips_through_json_lines() {
        let inputs = inputs(&MODERATE_A_B_40);
        let mut t = Tracker::recording();
        let mut v = Migration::starting(1, "vm", "a", "b", Default::default(), 0, 0, 0);
        for i in &inputs {
            t.apply(&mut v, i.clone());
        }
        assert_eq!(t.recorded().unwrap(), &inputs[..]);
        assert_eq!(v.memory, 268_828_672, "memory from the job when unknown");
        let dir = tempfile::tempdir().unwrap();
        write_recording(dir.path(), &v, t.recorded().unwrap());
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(parse_recording(&text).unwrap(), inputs);
        assert!(parse_recording("{\"input\":\"nonsense\"}").is_err());
    }

    #[test]
    fn a_disk_copy_over_before_any_poll_never_ends_before_it_began() {
        // A 16 MiB copy at link speed: the first iteration event comes
        // before a job-stats read has seen the disk.
        let all = inputs(&MODERATE_A_B_40);
        let mut v = Migration::starting(1, "vm", "a", "b", Default::default(), 256 * MIB, 0, 0);
        v.disk_copy = Some(crate::cluster::DiskCopy {
            total_bytes: 16 * MIB,
            ..Default::default()
        });
        let mut t = Tracker::default();
        for i in &all {
            t.apply(&mut v, i.clone());
        }
        let d = v.disk_copy.as_ref().unwrap();
        let (s, e) = (d.started_ms.unwrap(), d.done_ms.unwrap());
        assert!(s <= e, "began {s}, done {e}");
        assert_eq!(d.copied_bytes, 16 * MIB);
        assert!(!d.line().contains('-'), "{}", d.line());
    }
}
