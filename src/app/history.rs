//! The history tab: past migrations from the flight recorder and those
//! that finished in this session; any of them opens in the migration view
//! as it ran (read-only).

use super::{App, Mode, View};
use crate::cluster::{Migration, Outcome, units};
use crate::record::{MAX_DATE_MS, Record};

/// One past migration as the history tab lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    /// Who ran it (the recorder's operator).
    pub who: String,
    /// When it started, Unix ms (0: not known).
    pub started_unix_ms: u64,
    /// Left running when a vmshift stopped, on this node.
    pub detached_on: Option<String>,
    pub migration: Migration,
}

impl Past {
    pub fn from_record(r: &Record) -> Past {
        Past {
            who: if r.found {
                format!("{} (found running)", r.operator)
            } else {
                r.operator.clone()
            },
            started_unix_ms: if r.started_at_ms > 0 {
                r.started_at_ms
            } else {
                // Schema 1 had no start: when it was recorded, less its length.
                r.recorded_at_ms
                    .saturating_sub(r.migration.elapsed_ms as u64)
            },
            detached_on: r.detached_on.clone(),
            migration: r.migration.clone(),
        }
    }

    /// `2026-11-28 14:03` (UTC).
    pub fn when(&self) -> String {
        if self.started_unix_ms == 0 || self.started_unix_ms > MAX_DATE_MS {
            return "—".into();
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.started_unix_ms);
        let s = humantime::format_rfc3339_seconds(t).to_string();
        // 2026-11-28T14:03:00Z → 2026-11-28 14:03
        s.get(..16).map_or(s.clone(), |d| d.replacen('T', " ", 1))
    }

    /// `completed`, `aborted: …`, `failed: …`, `detached on hv-01`.
    pub fn outcome(&self) -> String {
        match (&self.detached_on, &self.migration.outcome) {
            (Some(n), _) => format!("detached on {n}"),
            (None, Some(Outcome::Completed)) => "completed".into(),
            (None, Some(Outcome::Aborted { reason })) => format!("aborted: {reason}"),
            (None, Some(Outcome::Failed { reason })) => format!("failed: {reason}"),
            (None, None) => "not finished".into(),
        }
    }

    /// The actual downtime, or a dash.
    pub fn downtime(&self) -> String {
        self.migration
            .actual_downtime_ms
            .map_or("—".into(), units::millis)
    }
}

impl App {
    /// Past migrations, newest first.
    pub fn past_newest_first(&self) -> Vec<&Past> {
        let mut v: Vec<&Past> = self.past.iter().collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.started_unix_ms));
        v
    }

    /// The selected past migration.
    pub fn selected_past(&self) -> Option<&Past> {
        let all = self.past_newest_first();
        all.get(self.sel_past.min(all.len().saturating_sub(1)))
            .copied()
    }

    /// Takes the flight recorder's records of this cluster.
    pub(super) fn take_records(&mut self, records: Vec<Record>) {
        let mut past: Vec<Past> = records.iter().map(Past::from_record).collect();
        past.append(&mut self.past);
        self.past = past;
    }

    /// A migration of this session that has ended joins the history (once).
    pub(super) fn note_finished(&mut self, m: &Migration) {
        if !m.is_finished() {
            return;
        }
        let seen = self.past.iter().any(|p| {
            p.migration.id == m.id
                && p.migration.vm == m.vm
                && p.migration.started_at_ms == m.started_at_ms
        });
        if !seen {
            let now_unix = self.started_unix_ms + self.now_ms;
            self.past.push(Past {
                who: if self.settings.operator.is_empty() {
                    "this vmshift".into()
                } else {
                    self.settings.operator.clone()
                },
                started_unix_ms: now_unix.saturating_sub(m.elapsed_ms as u64),
                detached_on: None,
                migration: m.clone(),
            });
        }
    }

    /// Enter in the history tab: the selected migration as it ran.
    pub(super) fn open_past(&mut self) {
        if self.selected_past().is_some() {
            self.past_open = true;
        }
    }

    /// Whether the history tab shows one past migration (Esc goes back).
    pub fn showing_past(&self) -> bool {
        self.view == View::History && self.past_open && self.mode == Mode::Normal
    }
}
