//! Disks that move while their VM runs: a storage move (block copy, then
//! pivot) and the disks a shared-nothing migration copies.

use serde::{Deserialize, Serialize};

use super::migration::Outcome;

pub type StorageMoveId = u64;

/// A running VM's disk moved to another volume while it runs (libvirt
/// block copy, then pivot): `vmshift move-disk`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageMove {
    pub id: StorageMoveId,
    pub vm: String,
    /// The volume the disk is on (it names the disk), and where it goes.
    pub from: String,
    pub to: String,
    pub total_bytes: u64,
    pub copied_bytes: u64,
    /// Copy rate now, bytes/s.
    pub bps: u64,
    pub elapsed_ms: f64,
    /// The VM switched to the copy (it now runs from `to`).
    pub pivoted: bool,
    pub outcome: Option<Outcome>,
}

impl StorageMove {
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Share of the disk copied, 0..=1.
    pub fn ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            return if self.pivoted { 1.0 } else { 0.0 };
        }
        (self.copied_bytes as f64 / self.total_bytes as f64).clamp(0.0, 1.0)
    }

    /// Its start, in one sentence.
    pub fn start_sentence(&self) -> String {
        format!(
            "storage move of {}'s disk {} → {} started: {}, block copy, then pivot",
            self.vm,
            self.from,
            self.to,
            super::units::bytes(self.total_bytes)
        )
    }

    /// How it ended, in one sentence; `None` while it runs.
    pub fn outcome_sentence(&self) -> Option<String> {
        Some(match self.outcome.as_ref()? {
            Outcome::Completed => format!(
                "storage move of {}'s disk {} → {} done: copied {}, pivoted; it runs from {} now",
                self.vm,
                self.from,
                self.to,
                super::units::bytes(self.total_bytes),
                self.to
            ),
            Outcome::Aborted { reason } => format!(
                "storage move of {}'s disk {} → {} aborted: {reason}; it stays on {}",
                self.vm, self.from, self.to, self.from
            ),
            Outcome::Failed { reason } => format!(
                "storage move of {}'s disk {} → {} failed: {reason}; it stays on {}",
                self.vm, self.from, self.to, self.from
            ),
        })
    }

    /// Time left at the current rate, ms.
    pub fn eta_ms(&self) -> Option<f64> {
        (self.bps > 0).then(|| {
            self.total_bytes.saturating_sub(self.copied_bytes) as f64 / self.bps as f64 * 1000.0
        })
    }

    /// "erp-app: disk lun-legacy → csv-01, 60.0 GiB of 120.0 GiB at 400 MiB/s, 2m30s left".
    pub fn line(&self) -> String {
        use super::units::{bytes, millis, rate};
        let mut t = format!(
            "{}: disk {} → {}, {} of {}",
            self.vm,
            self.from,
            self.to,
            bytes(self.copied_bytes),
            bytes(self.total_bytes)
        );
        if self.bps > 0 && !self.is_finished() {
            t += &format!(" at {}", rate(self.bps));
        }
        if let Some(eta) = self.eta_ms().filter(|_| !self.is_finished()) {
            t += &format!(", {} left", millis(eta));
        }
        t
    }
}

/// The disks a shared-nothing migration copies, as the copy goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskCopy {
    pub total_bytes: u64,
    pub copied_bytes: u64,
    /// Copy rate now, bytes/s.
    pub bps: u64,
    /// When the copy began and ended (the disks in sync, memory next), ms
    /// since the start of the migration.
    pub started_ms: Option<f64>,
    pub done_ms: Option<f64>,
}

impl DiskCopy {
    /// Time left at the current rate, ms; `None` before a rate is known.
    pub fn eta_ms(&self) -> Option<f64> {
        if self.done_ms.is_some() {
            return Some(0.0);
        }
        (self.bps > 0).then(|| {
            self.total_bytes.saturating_sub(self.copied_bytes) as f64 / self.bps as f64 * 1000.0
        })
    }

    /// "disk copy 8.0 MiB of 16.0 MiB at 40.0 MiB/s, 0.2 s left" (or "done in 0.4 s").
    pub fn line(&self) -> String {
        use super::units::bytes;
        match (self.started_ms, self.done_ms) {
            (Some(s), Some(d)) => format!(
                "disk copy {} done in {}",
                bytes(self.total_bytes),
                super::units::millis((d - s).max(0.0))
            ),
            _ => {
                let mut t = format!(
                    "disk copy {} of {}",
                    bytes(self.copied_bytes),
                    bytes(self.total_bytes)
                );
                if self.bps > 0 {
                    t += &format!(" at {}/s", bytes(self.bps));
                }
                if let Some(eta) = self.eta_ms().filter(|_| self.bps > 0) {
                    t += &format!(", {:.1} s left", eta / 1000.0);
                }
                t
            }
        }
    }
}
