//! The simulator's migration engine: the six steps of DESIGN §1, pre-copy
//! rounds over a writable-working-set dirty model, QEMU's switchover rule,
//! auto-converge, post-copy, the stall policy and limits changed mid-flight.
//!
//! The engine is driven by [`SimMigration::step`] with a slice of virtual
//! time, the bandwidth it gets during that slice and the guest's dirty-rate
//! multiplier; phase boundaries inside a slice are handled exactly.

use crate::cluster::{
    Migration, MigrationId, MigrationOptions, OnStall, Outcome, PostcopyMode, Round, Step, units,
};
use crate::plan::{PredictInput, predict, rules};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    PreCopy,
    FinalCopy,
    Resume,
    PostcopyPull,
    Cleanup,
    Done,
}

/// What happened during a step that the cluster around the engine must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The VM now runs on the target.
    Resumed,
    /// The migration ended (see the view's outcome).
    Finished,
}

/// The guest's memory behaviour as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct Guest {
    pub memory: f64,
    pub wws: f64,
    pub dirty_bps: f64,
}

pub struct SimMigration {
    pub view: Migration,
    guest: Guest,
    /// Link speed between the two nodes (for advice), bytes/s.
    link_bps: f64,
    phase: Phase,
    /// Seconds left in a timed phase (setup, resume, cleanup).
    phase_left: f64,
    storage_left: f64,
    to_send: f64,
    sent: f64,
    dirty: f64,
    round_time: f64,
    round_dirtied: f64,
    dirty_history: Vec<f64>,
    final_left: f64,
    pull_left: f64,
    paused_at: f64,
    postcopy_requested: bool,
    elapsed: f64,
    transferred: f64,
}

const EPS: f64 = 1e-9;

impl SimMigration {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: MigrationId,
        vm: &str,
        from: &str,
        to: &str,
        options: MigrationOptions,
        guest: Guest,
        storage_bytes: u64,
        link_bps: f64,
        setup_s: f64,
        now_ms: u64,
    ) -> Self {
        let view = Migration::starting(
            id,
            vm,
            from,
            to,
            options,
            guest.memory as u64,
            storage_bytes,
            now_ms,
        );
        Self {
            view,
            guest,
            link_bps,
            phase: Phase::Setup,
            phase_left: setup_s,
            storage_left: storage_bytes as f64,
            to_send: guest.memory,
            sent: 0.0,
            dirty: 0.0,
            round_time: 0.0,
            round_dirtied: 0.0,
            dirty_history: Vec::new(),
            final_left: 0.0,
            pull_left: 0.0,
            paused_at: 0.0,
            postcopy_requested: false,
            elapsed: 0.0,
            transferred: 0.0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the migration is moving bytes over the link now.
    pub fn uses_link(&self) -> bool {
        matches!(
            self.phase,
            Phase::PreCopy | Phase::FinalCopy | Phase::PostcopyPull
        )
    }

    /// Whether the VM already runs on the target.
    pub fn resumed(&self) -> bool {
        matches!(
            self.phase,
            Phase::PostcopyPull | Phase::Cleanup | Phase::Done
        ) && self.view.actual_downtime_ms.is_some()
    }

    fn mark(&mut self, step: Step) {
        self.view.step = step;
        self.view.step_started_ms[step.index()].get_or_insert(self.elapsed * 1000.0);
    }

    /// Advances by `dt` seconds with bandwidth `bw` and dirty multiplier `mult`.
    pub fn step(&mut self, mut dt: f64, bw: f64, mult: f64) -> Vec<Signal> {
        let bw = bw.max(1.0);
        let mut signals = Vec::new();
        while dt > EPS && self.phase != Phase::Done {
            let take = match self.phase {
                Phase::Setup | Phase::Resume | Phase::Cleanup => dt.min(self.phase_left),
                Phase::PreCopy if self.storage_left > 0.0 => dt.min(self.storage_left / bw),
                Phase::PreCopy => dt.min((self.to_send - self.sent).max(0.0) / bw),
                Phase::FinalCopy => dt.min(self.final_left / bw),
                Phase::PostcopyPull => dt.min(self.pull_left / bw),
                Phase::Done => 0.0,
            };
            dt -= take;
            self.elapsed += take;
            if self.uses_link() {
                self.transferred += take * bw;
            }
            match self.phase {
                Phase::Setup => {
                    self.phase_left -= take;
                    if self.phase_left <= EPS {
                        self.mark(Step::PreCopy);
                        self.phase = Phase::PreCopy;
                        if self.view.options.postcopy == PostcopyMode::Now
                            || self.postcopy_requested
                        {
                            self.switch_to_postcopy();
                        }
                    }
                }
                Phase::PreCopy if self.storage_left > 0.0 => {
                    self.storage_left = (self.storage_left - take * bw).max(0.0);
                    if self.storage_left < 1.0 {
                        self.storage_left = 0.0;
                    }
                }
                Phase::PreCopy => {
                    let rate =
                        self.guest.dirty_bps * mult * (1.0 - self.view.throttle_pct as f64 / 100.0);
                    self.sent += take * bw;
                    self.dirty = (self.dirty + rate * take).min(self.guest.wws);
                    self.round_time += take;
                    self.round_dirtied += rate * take;
                    self.view.dirty_bps = rate as u64;
                    if self.sent >= self.to_send - 1.0 {
                        self.end_round(bw, &mut signals);
                    } else if self.postcopy_requested {
                        self.switch_to_postcopy();
                    }
                }
                Phase::FinalCopy => {
                    self.final_left -= take * bw;
                    if self.final_left < 1.0 {
                        self.mark(Step::ResumeOnTarget);
                        self.phase = Phase::Resume;
                        self.phase_left = rules::RESUME_MS / 1000.0;
                    }
                }
                Phase::Resume => {
                    self.phase_left -= take;
                    if self.phase_left <= EPS {
                        self.view.actual_downtime_ms =
                            Some((self.elapsed - self.paused_at) * 1000.0);
                        signals.push(Signal::Resumed);
                        if self.view.postcopy_active && self.pull_left > 0.0 {
                            self.phase = Phase::PostcopyPull;
                        } else {
                            self.start_cleanup();
                        }
                    }
                }
                Phase::PostcopyPull => {
                    self.pull_left -= take * bw;
                    if self.pull_left < 1.0 {
                        self.start_cleanup();
                    }
                }
                Phase::Cleanup => {
                    self.phase_left -= take;
                    if self.phase_left <= EPS {
                        self.finish(Outcome::Completed);
                        signals.push(Signal::Finished);
                    }
                }
                Phase::Done => {}
            }
            if take <= EPS && dt > EPS && self.phase == Phase::PreCopy && self.storage_left <= 0.0 {
                // Nothing left to send in this round: close it.
                self.end_round(bw, &mut signals);
            }
        }
        if self.view.outcome.is_some() && !signals.contains(&Signal::Finished) {
            signals.push(Signal::Finished);
        }
        self.refresh_view(bw);
        signals
    }

    fn start_cleanup(&mut self) {
        self.mark(Step::CleanUpSource);
        self.phase = Phase::Cleanup;
        self.phase_left = rules::CLEANUP_MS / 1000.0;
    }

    fn end_round(&mut self, bw: f64, signals: &mut Vec<Signal>) {
        let index = self.view.rounds.len() as u32;
        let secs = self.round_time.max(EPS);
        self.view.rounds.push(Round {
            index,
            bytes_sent: self.to_send as u64,
            bytes_dirty: self.dirty as u64,
            dirty_bps: (self.round_dirtied / secs) as u64,
            bandwidth_bps: (self.to_send / secs) as u64,
            duration_ms: self.round_time * 1000.0,
            throttle_pct: self.view.throttle_pct,
        });
        self.dirty_history.push(self.dirty);
        let pending = self.dirty + rules::DEVICE_STATE_BYTES as f64;
        if rules::switchover_ready(pending, bw, self.view.options.max_downtime_ms) {
            self.switchover(pending);
            return;
        }
        if self.view.options.auto_converge {
            self.view.throttle_pct =
                rules::next_throttle(self.view.throttle_pct, self.dirty, self.to_send);
        }
        self.to_send = self.dirty;
        self.sent = 0.0;
        self.dirty = 0.0;
        self.round_time = 0.0;
        self.round_dirtied = 0.0;
        if self.postcopy_requested {
            self.switch_to_postcopy();
            return;
        }
        let switchover = bw * self.view.options.max_downtime_ms as f64 / 1000.0;
        if rules::stalled(
            &self.dirty_history,
            self.view.throttle_pct,
            self.view.options.auto_converge,
            switchover,
        ) {
            self.view.stalled = true;
            let policy = if self.view.options.postcopy == PostcopyMode::Auto {
                OnStall::Postcopy
            } else {
                self.view.options.on_stall
            };
            match policy {
                OnStall::Postcopy => self.switch_to_postcopy(),
                OnStall::Abort => {
                    let reason = self.stall_reason(bw);
                    self.finish(Outcome::Aborted { reason });
                    signals.push(Signal::Finished);
                }
                OnStall::Wait => {}
            }
        }
    }

    /// "pre-copy stalled: ..." with what would have made it converge.
    fn stall_reason(&self, bw: f64) -> String {
        let last = self.dirty_history.last().copied().unwrap_or(0.0);
        let p = predict(&PredictInput {
            memory: self.guest.memory as u64,
            wws: self.guest.wws as u64,
            dirty_bps: self.guest.dirty_bps as u64,
            bandwidth_bps: bw as u64,
            link_bps: self.link_bps as u64,
            max_downtime_ms: self.view.options.max_downtime_ms,
            auto_converge: self.view.options.auto_converge,
            postcopy: PostcopyMode::Off,
            on_stall: OnStall::Abort,
            storage_bytes: 0,
        });
        let advice: Vec<String> = p.advice.iter().map(|a| a.to_string()).collect();
        format!(
            "pre-copy stalled: after {} rounds {} was still dirty, more than {} at {} lets through in the {} ms downtime limit; the VM keeps running on {}; to make it converge: {}",
            self.view.rounds.len(),
            units::bytes(last as u64),
            units::bytes((bw * self.view.options.max_downtime_ms as f64 / 1000.0) as u64),
            units::rate(bw as u64),
            self.view.options.max_downtime_ms,
            self.view.from,
            advice.join("; or ")
        )
    }

    fn switchover(&mut self, pending: f64) {
        self.paused_at = self.elapsed;
        self.mark(Step::Pause);
        self.mark(Step::FinalCopy);
        self.phase = Phase::FinalCopy;
        self.final_left = pending;
    }

    fn switch_to_postcopy(&mut self) {
        self.postcopy_requested = false;
        self.view.postcopy_active = true;
        self.pull_left = (self.to_send - self.sent).max(0.0) + self.dirty + self.storage_left;
        self.storage_left = 0.0;
        self.switchover(rules::DEVICE_STATE_BYTES as f64);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.view.outcome = Some(outcome);
    }

    fn refresh_view(&mut self, bw: f64) {
        let uses_link = self.uses_link();
        let v = &mut self.view;
        v.elapsed_ms = self.elapsed * 1000.0;
        v.transferred_bytes = self.transferred as u64;
        v.bandwidth_bps = if uses_link { bw as u64 } else { 0 };
        v.current_round_sent = if self.phase == Phase::PreCopy {
            self.sent as u64
        } else {
            0
        };
        v.remaining_bytes = match self.phase {
            Phase::Setup => (self.guest.memory + self.storage_left) as u64,
            Phase::PreCopy => ((self.to_send - self.sent).max(0.0) + self.storage_left) as u64,
            Phase::FinalCopy => (self.final_left.max(0.0) + self.pull_left) as u64,
            Phase::Resume | Phase::PostcopyPull => self.pull_left.max(0.0) as u64,
            Phase::Cleanup | Phase::Done => 0,
        };
        let dirty_now = self.dirty_history.last().copied().unwrap_or(self.dirty);
        v.expected_downtime_ms = if v.postcopy_active {
            rules::downtime_ms(0.0, bw)
        } else {
            rules::downtime_ms(dirty_now, bw)
        };
    }

    /// Operator or stall policy asks for post-copy. Applied at once.
    pub fn request_postcopy(&mut self) -> Result<(), String> {
        match self.phase {
            Phase::Setup | Phase::PreCopy => {
                if self.view.postcopy_active {
                    return Err("the migration is already in post-copy".into());
                }
                self.postcopy_requested = true;
                if self.phase == Phase::PreCopy && self.storage_left <= 0.0 {
                    self.switch_to_postcopy();
                }
                Ok(())
            }
            _ => Err(
                "the migration is already past its switchover; post-copy no longer applies".into(),
            ),
        }
    }

    /// Stops the migration; the VM keeps running on the source.
    pub fn abort(&mut self, reason: &str) -> Result<(), String> {
        match self.phase {
            Phase::Setup | Phase::PreCopy if !self.view.postcopy_active => {
                self.finish(Outcome::Aborted {
                    reason: reason.to_string(),
                });
                Ok(())
            }
            Phase::Done => Err("the migration has already finished".into()),
            _ if self.view.postcopy_active => Err(
                "the migration is in post-copy: the VM already runs on the target and the migration can no longer be aborted".into(),
            ),
            _ => Err("the migration is past its switchover and can no longer be aborted".into()),
        }
    }

    /// A link or node failure. Returns true when the VM is lost (post-copy
    /// had already moved it and the rest of its memory is gone with the link).
    pub fn fail(&mut self, reason: &str) -> bool {
        if self.phase == Phase::Done {
            return false;
        }
        let lost = self.view.postcopy_active && self.resumed() && self.phase == Phase::PostcopyPull;
        self.finish(Outcome::Failed {
            reason: reason.to_string(),
        });
        lost
    }

    pub fn set_max_downtime(&mut self, ms: u64) {
        self.view.options.max_downtime_ms = ms;
    }

    pub fn set_bandwidth(&mut self, bps: Option<u64>) {
        self.view.options.bandwidth_bps = bps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GIB, MIB};

    fn migration(guest: Guest, options: MigrationOptions) -> SimMigration {
        SimMigration::new(
            1,
            "vm",
            "a",
            "b",
            options,
            guest,
            0,
            1000.0 * MIB as f64,
            0.8,
            0,
        )
    }

    /// Runs to the end in 10 ms steps at a fixed bandwidth, no noise.
    fn run(m: &mut SimMigration, bw: f64) {
        for _ in 0..1_000_000 {
            if m.is_done() {
                return;
            }
            m.step(0.01, bw, 1.0);
        }
        panic!("migration did not finish");
    }

    #[test]
    fn converging_guest_goes_through_all_six_steps() {
        let guest = Guest {
            memory: (4 * GIB) as f64,
            wws: (512 * MIB) as f64,
            dirty_bps: (150 * MIB) as f64,
        };
        let mut m = migration(guest, MigrationOptions::default());
        run(&mut m, (1000 * MIB) as f64);
        let v = &m.view;
        assert_eq!(v.outcome, Some(Outcome::Completed));
        assert!(
            v.step_started_ms.iter().all(|s| s.is_some()),
            "{:?}",
            v.step_started_ms
        );
        let times: Vec<f64> = v.step_started_ms.iter().map(|s| s.unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "steps in order: {times:?}"
        );
        assert!(v.rounds.len() >= 2);
        assert!(
            v.rounds
                .windows(2)
                .all(|w| w[1].bytes_dirty < w[0].bytes_dirty)
        );
        let downtime = v.actual_downtime_ms.unwrap();
        assert!(downtime <= 300.0, "downtime {downtime}");
        // The round arithmetic: round 0 sends all memory at 1000 MiB/s.
        assert!((v.rounds[0].duration_ms - 4096.0).abs() < 1.0);
        assert_eq!(v.rounds[0].bytes_dirty, 512 * MIB);
    }

    #[test]
    fn a_stall_aborts_with_the_reason_and_advice() {
        let guest = Guest {
            memory: (8 * GIB) as f64,
            wws: (6 * GIB) as f64,
            dirty_bps: (2 * GIB) as f64,
        };
        let mut m = migration(guest, MigrationOptions::default());
        run(&mut m, (1000 * MIB) as f64);
        let Some(Outcome::Aborted { reason }) = &m.view.outcome else {
            panic!("expected an abort, got {:?}", m.view.outcome);
        };
        assert!(
            reason.contains("stalled") && reason.contains("auto-converge"),
            "{reason}"
        );
        assert!(m.view.stalled);
        assert!(m.view.actual_downtime_ms.is_none(), "never paused");
    }

    #[test]
    fn postcopy_auto_finishes_a_stalled_migration_with_a_short_pause() {
        let guest = Guest {
            memory: (8 * GIB) as f64,
            wws: (6 * GIB) as f64,
            dirty_bps: (2 * GIB) as f64,
        };
        let options = MigrationOptions {
            postcopy: PostcopyMode::Auto,
            ..Default::default()
        };
        let mut m = migration(guest, options);
        run(&mut m, (1000 * MIB) as f64);
        assert_eq!(m.view.outcome, Some(Outcome::Completed));
        assert!(m.view.postcopy_active && m.view.stalled);
        assert!(m.view.actual_downtime_ms.unwrap() < 50.0);
        assert!(m.abort("x").is_err());
    }

    #[test]
    fn abort_is_refused_once_postcopy_runs() {
        let guest = Guest {
            memory: (4 * GIB) as f64,
            wws: (4 * GIB) as f64,
            dirty_bps: (100 * MIB) as f64,
        };
        let mut m = migration(
            guest,
            MigrationOptions {
                postcopy: PostcopyMode::Now,
                ..Default::default()
            },
        );
        m.step(1.0, (1000 * MIB) as f64, 1.0);
        assert!(m.view.postcopy_active);
        assert!(m.view.rounds.is_empty());
        assert!(m.abort("operator").unwrap_err().contains("post-copy"));
    }

    #[test]
    fn raising_the_downtime_limit_mid_flight_lets_it_switch_over() {
        let guest = Guest {
            memory: (8 * GIB) as f64,
            wws: (2 * GIB) as f64,
            dirty_bps: (2 * GIB) as f64,
        };
        let options = MigrationOptions {
            on_stall: OnStall::Wait,
            ..Default::default()
        };
        let mut m = migration(guest, options);
        for _ in 0..2000 {
            m.step(0.01, (1000 * MIB) as f64, 1.0);
        }
        assert!(m.view.stalled && m.view.outcome.is_none());
        m.set_max_downtime(3000);
        run(&mut m, (1000 * MIB) as f64);
        assert_eq!(m.view.outcome, Some(Outcome::Completed));
        assert!(m.view.actual_downtime_ms.unwrap() > 300.0);
    }
}
