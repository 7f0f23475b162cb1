//! The simulator's migration engine: the six steps of DESIGN §1 around the
//! pre-copy model of [`crate::plan::precopy`] (the same model the predictor
//! runs), with the stall policy, post-copy, abort and limits changed
//! mid-flight.
//!
//! The engine is driven by [`SimMigration::step`] with a slice of virtual
//! time, the bandwidth it gets during that slice and the guest's dirty-rate
//! multiplier; pre-copy advances one 100 ms rate-limiter window at a time.

use crate::cluster::{
    Migration, MigrationId, MigrationOptions, OnStall, Outcome, PostcopyMode, Step,
};
use crate::plan::advice;
use crate::plan::precopy::{self, Costs, Guest, Precopy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    /// Shared-nothing: disks copy before memory.
    Storage,
    PreCopy,
    /// Paused: the final copy, then the guest resumes on the target.
    Downtime,
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

pub struct SimMigration {
    pub view: Migration,
    model: Precopy,
    costs: Costs,
    phase: Phase,
    /// Seconds left in a timed phase (setup, downtime, cleanup).
    phase_left: f64,
    /// Seconds until the next rate-limiter window begins.
    window_left: f64,
    storage_left: f64,
    pull_left: f64,
    paused_at: f64,
    postcopy_requested: bool,
    elapsed: f64,
    transferred: f64,
}

const EPS: f64 = 1e-9;

impl SimMigration {
    pub fn new(
        id: MigrationId,
        (vm, from, to): (&str, &str, &str),
        options: MigrationOptions,
        guest: Guest,
        storage_bytes: u64,
        costs: Costs,
        now_ms: u64,
    ) -> Self {
        let view = Migration::starting(
            id,
            vm,
            from,
            to,
            options.clone(),
            guest.memory as u64,
            storage_bytes,
            now_ms,
        );
        let model = Precopy::new(
            guest,
            options.max_downtime_ms as f64,
            options.auto_converge,
            &costs,
        );
        Self {
            view,
            model,
            costs,
            phase: Phase::Setup,
            phase_left: costs.setup_ms / 1000.0,
            window_left: 0.0,
            storage_left: storage_bytes as f64,
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
            Phase::Storage | Phase::PreCopy | Phase::Downtime | Phase::PostcopyPull
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
            if self.phase == Phase::PreCopy && self.window_left <= EPS {
                self.window(bw, mult, &mut signals);
                continue;
            }
            let take = match self.phase {
                Phase::Setup | Phase::Downtime | Phase::Cleanup => dt.min(self.phase_left),
                Phase::Storage => dt.min(self.storage_left / bw),
                Phase::PreCopy => dt.min(self.window_left),
                Phase::PostcopyPull => dt.min(self.pull_left / bw),
                Phase::Done => 0.0,
            };
            dt -= take;
            self.elapsed += take;
            match self.phase {
                Phase::Setup => {
                    self.phase_left -= take;
                    if self.phase_left <= EPS {
                        self.mark(Step::PreCopy);
                        self.phase = if self.storage_left > 0.0 {
                            Phase::Storage
                        } else {
                            Phase::PreCopy
                        };
                        if let Some(dc) = &mut self.view.disk_copy {
                            dc.started_ms.get_or_insert(self.elapsed * 1000.0);
                        }
                        if self.view.options.postcopy == PostcopyMode::Now
                            || self.postcopy_requested
                        {
                            self.switch_to_postcopy();
                        }
                    }
                }
                Phase::Storage => {
                    self.storage_left -= take * bw;
                    self.transferred += take * bw;
                    if self.storage_left < 1.0 {
                        self.storage_left = 0.0;
                        self.phase = Phase::PreCopy;
                        if let Some(dc) = &mut self.view.disk_copy {
                            dc.done_ms.get_or_insert(self.elapsed * 1000.0);
                        }
                        if self.postcopy_requested {
                            self.switch_to_postcopy();
                        }
                    }
                }
                Phase::PreCopy => self.window_left -= take,
                Phase::Downtime => {
                    self.phase_left -= take;
                    if self.phase_left <= EPS {
                        self.mark(Step::ResumeOnTarget);
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
                    self.transferred += take * bw;
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
        }
        if self.view.outcome.is_some() && !signals.contains(&Signal::Finished) {
            signals.push(Signal::Finished);
        }
        self.refresh_view(bw);
        signals
    }

    /// One rate-limiter window of the model, then the stall policy.
    fn window(&mut self, bw: f64, mult: f64, signals: &mut Vec<Signal>) {
        let (syncs, before_ms, before_wire) =
            (self.model.syncs, self.model.now_ms, self.model.wire_total);
        let done = self.model.window(bw, mult);
        self.transferred += self.model.wire_total - before_wire;
        self.view.rounds = self.model.rounds.clone();
        if let Some(s) = done {
            self.paused_at = self.elapsed + (s.at_ms - before_ms) / 1000.0;
            self.enter_downtime(s.downtime_ms);
            return;
        }
        self.window_left = (self.model.now_ms - before_ms) / 1000.0;
        if self.postcopy_requested {
            self.switch_to_postcopy();
            return;
        }
        if self.model.syncs == syncs || !self.model.stalled() {
            return;
        }
        self.view.stalled = true;
        let policy = if self.view.options.postcopy == PostcopyMode::Auto {
            OnStall::Postcopy
        } else {
            self.view.options.on_stall
        };
        match policy {
            OnStall::Postcopy => self.switch_to_postcopy(),
            OnStall::Abort => {
                let reason = self.stall_reason();
                self.finish(Outcome::Aborted { reason });
                signals.push(Signal::Finished);
            }
            OnStall::Wait => {}
        }
    }

    /// The stall sentence, with what would have made it converge.
    fn stall_reason(&self) -> String {
        advice::stall_sentence(
            &self.view,
            self.model.syncs as usize,
            self.model.dirty_after.last().copied().unwrap_or(0.0) as u64,
            self.model.threshold as u64,
        )
    }

    fn enter_downtime(&mut self, downtime_ms: f64) {
        self.mark(Step::Pause);
        self.mark(Step::FinalCopy);
        self.phase = Phase::Downtime;
        // The pause began at the switchover inside the window.
        self.phase_left = (downtime_ms / 1000.0 - (self.elapsed - self.paused_at)).max(EPS);
    }

    fn start_cleanup(&mut self) {
        self.mark(Step::CleanUpSource);
        self.phase = Phase::Cleanup;
        self.phase_left = self.costs.cleanup_ms / 1000.0;
        if self.phase_left <= EPS {
            self.phase_left = EPS;
        }
    }

    fn switch_to_postcopy(&mut self) {
        self.postcopy_requested = false;
        self.view.postcopy_active = true;
        self.pull_left = self.model.postcopy_bytes() + self.storage_left;
        self.storage_left = 0.0;
        self.paused_at = self.elapsed;
        let downtime =
            self.costs.switchover_ms + precopy::DEVICE_STATE_BYTES / self.costs.final_bps * 1000.0;
        self.enter_downtime(downtime);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.view.outcome = Some(outcome);
        self.view.live = None;
    }

    fn refresh_view(&mut self, bw: f64) {
        let uses_link = self.uses_link();
        let memory = self.view.memory as f64;
        let m = &self.model;
        let v = &mut self.view;
        v.elapsed_ms = self.elapsed * 1000.0;
        v.transferred_bytes = self.transferred as u64;
        v.bandwidth_bps = if uses_link { bw as u64 } else { 0 };
        v.throttle_pct = m.throttle_pct;
        v.dirty_bps = m.reported_dirty_bps as u64;
        v.scanned_bytes = m.scanned as u64;
        v.data_bytes = m.first_pass_data as u64;
        v.current_round_sent = if self.phase == Phase::PreCopy {
            m.open_round_wire() as u64
        } else {
            0
        };
        if let Some(dc) = &mut v.disk_copy {
            dc.copied_bytes = dc
                .total_bytes
                .saturating_sub(self.storage_left.max(0.0) as u64);
            dc.bps = if self.phase == Phase::Storage && uses_link {
                bw as u64
            } else {
                0
            };
        }
        v.remaining_bytes = match self.phase {
            Phase::Setup => (memory + self.storage_left) as u64,
            Phase::Storage => (self.storage_left + m.marked()) as u64,
            Phase::PreCopy => m.marked() as u64,
            Phase::Downtime | Phase::PostcopyPull => self.pull_left.max(0.0) as u64,
            Phase::Cleanup | Phase::Done => 0,
        };
        v.expected_downtime_ms = if v.postcopy_active {
            self.costs.switchover_ms
        } else {
            m.downtime_now_ms()
        };
    }

    /// Operator or stall policy asks for post-copy. Applied at once.
    pub fn request_postcopy(&mut self) -> Result<(), String> {
        match self.phase {
            Phase::Setup | Phase::Storage | Phase::PreCopy => {
                if self.view.postcopy_active {
                    return Err("the migration is already in post-copy".into());
                }
                self.postcopy_requested = true;
                if self.phase == Phase::PreCopy {
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
            Phase::Setup | Phase::Storage | Phase::PreCopy if !self.view.postcopy_active => {
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
        self.model.max_downtime_ms = ms as f64;
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
            ("vm", "a", "b"),
            options,
            guest,
            0,
            Costs {
                setup_ms: 800.0,
                switchover_ms: 20.0,
                final_bps: 1100.0 * MIB as f64,
                cleanup_ms: 200.0,
            },
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

    fn guest(memory: u64, touched: u64, wws: u64, dirty: u64) -> Guest {
        Guest {
            memory: memory as f64,
            touched: touched as f64,
            wws: wws as f64,
            dirty_bps: dirty as f64,
        }
    }

    #[test]
    fn converging_guest_goes_through_all_six_steps() {
        let g = guest(4 * GIB, 3 * GIB, 512 * MIB, 150 * MIB);
        let mut m = migration(g, MigrationOptions::default());
        run(&mut m, (1000 * MIB) as f64);
        let v = &m.view;
        assert_eq!(v.outcome, Some(Outcome::Completed));
        let times: Vec<f64> = v
            .step_started_ms
            .iter()
            .map(|s| s.expect("every step"))
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "steps in order: {times:?}"
        );
        assert!(v.rounds.len() >= 3);
        let downtime = v.actual_downtime_ms.unwrap();
        // Unlimited bandwidth: QEMU measures the link, so what is left at
        // the switchover fits in the limit at line speed.
        assert!((20.0..330.0).contains(&downtime), "downtime {downtime}");
        // The first pass sends what the guest touched, not all its memory,
        // in whole 100 ms windows at 1000 MiB/s.
        assert!(
            (2700.0..3200.0).contains(&v.rounds[0].duration_ms),
            "{:?}",
            v.rounds[0]
        );
        // Each closed round ends on a window edge (a multiple of 100 ms).
        for r in &v.rounds[..v.rounds.len() - 1] {
            let w = r.duration_ms / precopy::WINDOW_MS;
            assert!((w - w.round()).abs() < 1e-6, "{r:?}");
        }
    }

    #[test]
    fn a_stall_aborts_with_the_reason_and_advice() {
        let g = guest(8 * GIB, 8 * GIB, 6 * GIB, 2 * GIB);
        let mut m = migration(g, MigrationOptions::default());
        m.view.inputs = Some(crate::cluster::MigrationInputs {
            memory: 8 * GIB,
            touched: crate::cluster::Estimate::exact((8 * GIB) as f64),
            wws: crate::cluster::Estimate::exact((6 * GIB) as f64),
            dirty_bps: crate::cluster::Estimate::exact((2 * GIB) as f64),
            bandwidth_bps: 1000 * MIB,
            link_bps: 1000 * MIB,
            line_bps: 0,
            setup_ms: crate::cluster::Estimate::exact(800.0),
            switchover_ms: crate::cluster::Estimate::exact(20.0),
            cleanup_ms: 200.0,
            storage_bytes: 0,
            write_overlap: 1.0,
            basis: vec![],
        });
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
        assert!(m.view.live.is_none());
    }

    #[test]
    fn postcopy_auto_finishes_a_stalled_migration_with_a_short_pause() {
        let g = guest(8 * GIB, 8 * GIB, 6 * GIB, 2 * GIB);
        let options = MigrationOptions {
            postcopy: PostcopyMode::Auto,
            ..Default::default()
        };
        let mut m = migration(g, options);
        run(&mut m, (1000 * MIB) as f64);
        assert_eq!(m.view.outcome, Some(Outcome::Completed));
        assert!(m.view.postcopy_active && m.view.stalled);
        assert!(m.view.actual_downtime_ms.unwrap() < 50.0);
        assert!(m.abort("x").is_err());
    }

    #[test]
    fn abort_is_refused_once_postcopy_runs() {
        let g = guest(4 * GIB, 4 * GIB, 4 * GIB, 100 * MIB);
        let mut m = migration(
            g,
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
        let g = guest(8 * GIB, 8 * GIB, 2 * GIB, 2 * GIB);
        let options = MigrationOptions {
            on_stall: OnStall::Wait,
            ..Default::default()
        };
        let mut m = migration(g, options);
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
