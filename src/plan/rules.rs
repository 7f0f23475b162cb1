//! QEMU's migration rules, shared by the simulator (which obeys them) and the
//! predictor (which forecasts them).

/// Device state sent with the final copy (CPU registers, virtio rings...).
pub const DEVICE_STATE_BYTES: u64 = 2 * 1024 * 1024;
/// Time to start the guest on the target once the last byte arrived.
pub const RESUME_MS: f64 = 3.0;
/// Typical time to create the paused target VM (Begin + Prepare).
pub const TYPICAL_SETUP_MS: f64 = 800.0;
/// Time to remove the VM from the source (Confirm).
pub const CLEANUP_MS: f64 = 200.0;

/// Rounds whose remaining bytes stay above this share of the previous
/// round's count as not shrinking.
pub const STALL_RATIO: f64 = 0.9;
/// Consecutive non-shrinking rounds that make a stall.
pub const STALL_ROUNDS: usize = 2;
/// A migration still in pre-copy after this many rounds has stalled.
pub const MAX_ROUNDS: usize = 30;

pub const THROTTLE_INITIAL_PCT: u32 = 20;
pub const THROTTLE_STEP_PCT: u32 = 10;
pub const THROTTLE_MAX_PCT: u32 = 99;

/// QEMU switches over once what is still pending can be sent within the
/// allowed downtime.
pub fn switchover_ready(pending_bytes: f64, bandwidth_bps: f64, max_downtime_ms: u64) -> bool {
    pending_bytes <= bandwidth_bps * max_downtime_ms as f64 / 1000.0
}

/// Downtime of a switchover with `dirty_bytes` still dirty.
pub fn downtime_ms(dirty_bytes: f64, bandwidth_bps: f64) -> f64 {
    (dirty_bytes + DEVICE_STATE_BYTES as f64) / bandwidth_bps.max(1.0) * 1000.0 + RESUME_MS
}

/// Auto-converge: when a round dirtied more than half of what it sent, the
/// guest is throttled (20 % first, then 10 % more per round, at most 99 %).
pub fn next_throttle(current_pct: u32, dirtied: f64, sent: f64) -> u32 {
    if dirtied <= 0.5 * sent {
        current_pct
    } else if current_pct == 0 {
        THROTTLE_INITIAL_PCT
    } else {
        (current_pct + THROTTLE_STEP_PCT).min(THROTTLE_MAX_PCT)
    }
}

/// Whether pre-copy has stalled, from the dirty bytes left after each round
/// so far. With auto-converge, a stall is only declared once the throttle
/// is at its maximum. Rounds that hover within twice `switchover_bytes`
/// (what the downtime limit lets through) are close enough for QEMU's own
/// bandwidth estimate to let them through: no stall yet.
pub fn stalled(
    dirty_after_rounds: &[f64],
    throttle_pct: u32,
    auto_converge: bool,
    switchover_bytes: f64,
) -> bool {
    if dirty_after_rounds.len() >= MAX_ROUNDS {
        return true;
    }
    if auto_converge && throttle_pct < THROTTLE_MAX_PCT {
        return false;
    }
    if dirty_after_rounds
        .last()
        .is_some_and(|&d| d <= 2.0 * switchover_bytes)
    {
        return false;
    }
    let n = dirty_after_rounds.len();
    if n < STALL_ROUNDS + 1 {
        return false;
    }
    dirty_after_rounds[n - STALL_ROUNDS - 1..]
        .windows(2)
        .all(|w| w[1] >= STALL_RATIO * w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switchover_when_pending_fits_in_the_downtime() {
        // 1000 B/s for 300 ms carries 300 B.
        assert!(switchover_ready(300.0, 1000.0, 300));
        assert!(!switchover_ready(301.0, 1000.0, 300));
    }

    #[test]
    fn throttle_starts_at_20_then_steps_by_10_up_to_99() {
        assert_eq!(next_throttle(0, 10.0, 100.0), 0);
        assert_eq!(next_throttle(0, 60.0, 100.0), 20);
        assert_eq!(next_throttle(20, 60.0, 100.0), 30);
        assert_eq!(next_throttle(90, 60.0, 100.0), 99);
        assert_eq!(next_throttle(99, 60.0, 100.0), 99);
    }

    #[test]
    fn stall_needs_consecutive_rounds_that_do_not_shrink() {
        assert!(!stalled(&[100.0, 100.0], 0, false, 10.0));
        assert!(stalled(&[100.0, 100.0, 95.0], 0, false, 10.0));
        assert!(!stalled(&[100.0, 50.0, 49.0], 0, false, 10.0));
        // Auto-converge still has room to throttle: not stalled yet.
        assert!(!stalled(&[100.0, 100.0, 100.0], 40, true, 10.0));
        assert!(stalled(&[100.0, 100.0, 100.0], 99, true, 10.0));
        // Hovering just above the switchover amount is not a stall.
        assert!(!stalled(&[100.0, 100.0, 100.0], 0, false, 60.0));
        assert!(stalled(&[1.0; MAX_ROUNDS], 0, false, 10.0));
    }
}
