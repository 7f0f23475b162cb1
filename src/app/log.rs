//! The event log and the one clock it is kept in.
//!
//! Everything worth keeping goes here with a time: the backend's own
//! events (node failures, HA restarts, migration outcomes) and what the
//! app decided or was told (refusals, failed commands, stalls with their
//! advice, drain summaries). Times are the cluster's clock: the simulated
//! time on the simulator, Unix wall time (shown in UTC) on a real cluster.

use super::App;
use super::nodes::{Level, event_level};
use crate::cluster::{ClusterSnapshot, Migration};

/// Entries kept; older ones are dropped.
pub const LOG_MAX: usize = 2000;

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// On the cluster's clock (see [`Clock`]).
    pub at_ms: u64,
    pub text: String,
    pub level: Level,
}

/// Which clock the cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The simulator's virtual time, ms since it started.
    Simulated,
    /// Unix time in ms.
    Wall,
}

impl Clock {
    /// The clock of the cluster a snapshot comes from. The simulator
    /// stamps its snapshots and events with its virtual time; a real
    /// backend's times are the wall clock.
    pub fn of(snap: &ClusterSnapshot) -> Clock {
        if snap.backend == "sim" {
            Clock::Simulated
        } else {
            Clock::Wall
        }
    }

    /// `HH:MM:SS`: time since the simulation started, or UTC.
    pub fn text(self, at_ms: u64) -> String {
        let s = at_ms / 1000;
        let h = match self {
            Clock::Simulated => s / 3600,
            Clock::Wall => (s / 3600) % 24,
        };
        format!("{h:02}:{:02}:{:02}", (s / 60) % 60, s % 60)
    }
}

impl App {
    /// The clock the cluster on screen runs on (wall time before the
    /// first snapshot).
    pub fn clock(&self) -> Clock {
        self.snap.as_ref().map_or(Clock::Wall, Clock::of)
    }

    /// The cluster's time now: the last snapshot's simulated time plus
    /// what passed since it came, or the wall clock.
    pub fn cluster_now_ms(&self) -> u64 {
        match (self.clock(), &self.snap) {
            (Clock::Simulated, Some(s)) => {
                let since = self
                    .now_ms
                    .saturating_sub(self.last_poll_ms.unwrap_or(self.now_ms));
                s.at_ms + since
            }
            _ => self.started_unix_ms + self.now_ms,
        }
    }

    /// When the cluster was last polled, on its clock.
    pub fn polled_at_ms(&self) -> Option<u64> {
        let t = self.last_poll_ms?;
        Some(match (self.clock(), &self.snap) {
            (Clock::Simulated, Some(s)) => s.at_ms,
            _ => self.started_unix_ms + t,
        })
    }

    /// Adds a line to the event log, stamped with the cluster's time.
    pub fn log_event(&mut self, text: impl Into<String>, level: Level) {
        let at_ms = self.cluster_now_ms();
        self.push_log(LogEntry {
            at_ms,
            text: text.into(),
            level,
        });
    }

    /// A result the operator must see now and find later: flashed, and in
    /// the event log (a warning when `bad`).
    pub(super) fn report(&mut self, text: String, bad: bool) {
        self.log_event(text.clone(), if bad { Level::Warn } else { Level::Ok });
        self.flash(text, bad);
    }

    fn push_log(&mut self, e: LogEntry) {
        if self.log.len() >= LOG_MAX {
            self.log.remove(0);
        }
        self.log.push(e);
    }

    /// Takes the backend's events that are new in `snap` into the log.
    /// The simulator's carry their simulated time; a real backend's are
    /// stamped with the wall clock as they arrive (its own stamps count
    /// from when it started). Returns how many it took.
    pub(super) fn take_backend_events(&mut self, snap: &ClusterSnapshot) -> usize {
        let new_from = self
            .last_backend_event
            .as_ref()
            .and_then(|last| snap.events.iter().rposition(|e| e == last))
            .map_or(0, |i| i + 1);
        if new_from >= snap.events.len() {
            return 0;
        }
        let clock = Clock::of(snap);
        let wall = self.started_unix_ms + self.now_ms;
        for e in &snap.events[new_from..] {
            let at_ms = match clock {
                Clock::Simulated => e.at_ms,
                Clock::Wall => wall,
            };
            self.push_log(LogEntry {
                at_ms,
                text: e.text.clone(),
                level: event_level(&e.text),
            });
        }
        self.last_backend_event = snap.events.last().cloned();
        snap.events.len() - new_from
    }

    /// Indices into the log shown in the events view, newest first (with
    /// `!`, only warnings and worse).
    pub fn events_shown(&self) -> Vec<usize> {
        (0..self.log.len())
            .rev()
            .filter(|&i| !self.problems || self.log[i].level > Level::Ok)
            .collect()
    }

    /// The selected entry of the events view.
    pub fn selected_event(&self) -> Option<&LogEntry> {
        let shown = self.events_shown();
        let i = *shown.get(self.sel_event.min(shown.len().saturating_sub(1)))?;
        self.log.get(i)
    }
}

/// What is worth a log line when a migration changes from `old` (not
/// seen before: `None`) to `new`: a stall, with the advice.
pub fn migration_news(old: Option<&Migration>, new: &Migration) -> Vec<(String, Level)> {
    let mut news = Vec::new();
    if new.stalled && !new.is_finished() && !old.is_some_and(|o| o.stalled) {
        news.push((
            format!(
                "migration of {} {} → {} stalled in round {}: rounds no longer shrink. {}",
                new.vm,
                new.from,
                new.to,
                new.rounds.len(),
                stall_advice(new)
            ),
            Level::Warn,
        ));
    }
    news
}

/// What would make a stalled migration finish, in one sentence.
pub fn stall_advice(m: &Migration) -> String {
    match m.live.as_ref().map(|f| &f.advice) {
        Some(a) if !a.is_empty() => format!("To converge: {}.", a.join(" · ")),
        _ => "Switch to post-copy or abort.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_is_time_since_start_or_utc() {
        assert_eq!(Clock::Simulated.text(0), "00:00:00");
        assert_eq!(Clock::Simulated.text(90_061_000), "25:01:01");
        // 2025-11-24 16:00:00 UTC
        assert_eq!(Clock::Wall.text(1_764_000_000_000), "16:00:00");
    }
}
