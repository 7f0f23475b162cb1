//! Live re-prediction: the model re-run from where a running migration
//! stands. While the first pass runs, what it has scanned narrows how much
//! memory is in use; from the second pass on, the dirty rate QEMU measured
//! replaces the guess, and the model continues from the last sync.

use super::precopy::DEVICE_STATE_BYTES;
use super::predict::{AtSync, predict_from};
use crate::cluster::{Estimate, Forecast, Migration, Step};

/// What the model expects of `m` now; `None` once it is over, or when the
/// migration carries no model inputs.
pub fn live(m: &Migration) -> Option<Forecast> {
    if m.outcome.is_some() {
        return None;
    }
    let base = m.inputs.as_ref()?;
    let o = &m.options;
    let link = base.link_bps.max(1);
    let limit = o.bandwidth_bps.map_or(link, |b| b.min(link)).max(1);
    let mut i = base.clone();
    i.bandwidth_bps = limit;
    let downtime_now = i.switchover_ms.value
        + (m.remaining_bytes as f64 + DEVICE_STATE_BYTES) / i.line().max(1) as f64 * 1000.0;
    let settled = |rounds: f64, total: f64, downtime: f64| Forecast {
        rounds: Estimate::exact(rounds),
        total_ms: Estimate::exact(total),
        downtime_ms: Estimate::exact(downtime),
        converges: true,
        may_not_converge: false,
        downtime_now_ms: None,
        advice: Vec::new(),
    };
    if m.postcopy_active {
        let left = m.remaining_bytes as f64 / limit as f64 * 1000.0;
        return Some(settled(
            m.rounds.len().max(1) as f64,
            m.elapsed_ms + left + i.cleanup_ms,
            m.actual_downtime_ms.unwrap_or(i.switchover_ms.value),
        ));
    }
    let precopy_start = m.step_started_ms[Step::PreCopy.index()];
    let mut from = None;
    match (m.step, precopy_start) {
        (Step::PrepareTarget, _) | (Step::PreCopy, None) => {
            // Still preparing: setup lasts at least as long as it has.
            let e = m.elapsed_ms;
            let s = i.setup_ms;
            i.setup_ms = Estimate::new(s.value.max(e), s.lo.max(e), s.hi.max(e));
        }
        (Step::PreCopy, Some(t0)) if m.rounds.is_empty() => {
            i.setup_ms = Estimate::exact(t0);
            if m.scanned_bytes == 0 && m.storage_bytes > 0 {
                // Disks still copying.
                i.setup_ms = Estimate::exact(m.elapsed_ms);
                i.storage_bytes = m.storage_bytes.saturating_sub(m.transferred_bytes);
            } else {
                i.storage_bytes = 0;
                // Memory in use: the guess, within what the pass has shown.
                let data = m.data_bytes as f64;
                let unseen = (m.memory as f64 - m.scanned_bytes as f64).max(0.0);
                let lo = i.touched.lo.max(data);
                let hi = i.touched.hi.min(data + unseen).max(lo);
                i.touched = Estimate::new(i.touched.value, lo, hi);
            }
        }
        (Step::PreCopy, Some(t0)) => {
            i.setup_ms = Estimate::exact(t0);
            i.storage_bytes = 0;
            // QEMU's rate (new pages per second, its throttle applied)
            // replaces the guess, unless a pass saturated the working set:
            // then it only shows the set, not how fast it is rewritten.
            let last_ms = m.rounds.last().map_or(0.0, |r| r.duration_ms);
            let saturated = m.dirty_bps as f64 * last_ms / 1000.0 >= 0.8 * i.wws.lo;
            if m.dirty_bps > 0 && !saturated {
                let unthrottled =
                    m.dirty_bps as f64 / (1.0 - m.throttle_pct as f64 / 100.0).max(0.01);
                i.dirty_bps = Estimate::spread(unthrottled, 0.15);
            }
            let first = m.rounds[0].bytes_sent as f64;
            i.touched = Estimate::exact(first.min(m.memory as f64));
            let last = m.rounds.last().expect("not empty");
            let at_ms: f64 = m.rounds.iter().map(|r| r.duration_ms).sum();
            from = Some(AtSync {
                syncs: m.rounds.len() as u32 + 1,
                marked: last.bytes_dirty as f64,
                at_ms,
                throttle_pct: m.throttle_pct,
            });
        }
        _ => {
            // Paused: the final copy is under way.
            let downtime = m.actual_downtime_ms.unwrap_or(downtime_now);
            return Some(Forecast {
                downtime_now_ms: None,
                ..settled(
                    m.rounds.len().max(1) as f64,
                    m.elapsed_ms + i.cleanup_ms,
                    downtime,
                )
            });
        }
    }
    let p = predict_from(&i, o, from);
    let mut f = p.forecast();
    if m.stalled {
        f.advice = super::advice::advice_for(m)
            .iter()
            .map(super::Advice::short)
            .collect();
    }
    // Never less than what already passed.
    let e = m.elapsed_ms;
    f.total_ms = Estimate::new(
        f.total_ms.value.max(e),
        f.total_ms.lo.max(e),
        f.total_ms.hi.max(e),
    );
    f.downtime_now_ms = Some(downtime_now);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MIB, MigrationInputs, MigrationOptions, Outcome, Round};

    fn migration() -> Migration {
        let mut m = Migration::starting(
            1,
            "g",
            "a",
            "b",
            MigrationOptions::default(),
            256 * MIB,
            0,
            0,
        );
        m.inputs = Some(MigrationInputs {
            memory: 256 * MIB,
            touched: Estimate::new((70 * MIB) as f64, (30 * MIB) as f64, (200 * MIB) as f64),
            wws: Estimate::exact((64 * MIB) as f64),
            dirty_bps: Estimate::new((16 * MIB) as f64, (8 * MIB) as f64, (24 * MIB) as f64),
            bandwidth_bps: 40 * MIB,
            link_bps: 1000 * MIB,
            line_bps: 0,
            setup_ms: Estimate::new(300.0, 150.0, 4000.0),
            switchover_ms: Estimate::exact(15.0),
            cleanup_ms: 0.0,
            storage_bytes: 0,
            write_overlap: 1.0,
            basis: vec![],
        });
        m.options.bandwidth_bps = Some(40 * MIB);
        m
    }

    #[test]
    fn what_the_first_pass_scanned_narrows_the_range() {
        let mut m = migration();
        let before = live(&m).unwrap();
        m.step = Step::PreCopy;
        m.step_started_ms[Step::PreCopy.index()] = Some(280.0);
        m.elapsed_ms = 1000.0;
        // 240 of 256 MiB scanned, 60 MiB of data: at most 76 MiB in use.
        m.scanned_bytes = 240 * MIB;
        m.data_bytes = 60 * MIB;
        m.remaining_bytes = 16 * MIB;
        let now = live(&m).unwrap();
        let width = |f: &Forecast| f.total_ms.hi - f.total_ms.lo;
        assert!(width(&now) < width(&before) / 3.0, "{now:?} vs {before:?}");
        assert!(now.downtime_now_ms.is_some());
    }

    #[test]
    fn after_the_first_pass_the_model_goes_on_from_the_last_sync() {
        let mut m = migration();
        m.step = Step::PreCopy;
        m.step_started_ms[Step::PreCopy.index()] = Some(300.0);
        m.rounds.push(Round {
            index: 0,
            bytes_sent: 68 * MIB,
            bytes_dirty: 26 * MIB,
            dirty_bps: 0,
            bandwidth_bps: 40 * MIB,
            duration_ms: 1700.0,
            throttle_pct: 0,
        });
        m.dirty_bps = 16 * MIB;
        m.elapsed_ms = 2100.0;
        let f = live(&m).unwrap();
        // 26 MiB left at 40 MiB/s with 16 MiB/s dirtying: a few hundred ms more.
        assert!(
            (2300.0..3300.0).contains(&f.total_ms.value),
            "{:?}",
            f.total_ms
        );
        assert!(f.rounds.value >= 3.0);
        m.outcome = Some(Outcome::Aborted {
            reason: "operator".into(),
        });
        assert_eq!(live(&m), None, "no prediction after an abort");
    }
}
