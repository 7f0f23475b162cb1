//! vmshift's own rules on top of QEMU's: auto-converge's steps (as vmshift
//! asks libvirt for them) and the stall rule; its sentence, with the
//! advice of the predictor, is in [`super::advice`]. The predictor, the
//! simulator and the libvirt backend all call these.

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

/// Auto-converge's next throttle: 20 % first, then 10 % more, at most 99 %.
pub fn throttle_up(current_pct: u32) -> u32 {
    if current_pct == 0 {
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
    fn throttle_starts_at_20_then_steps_by_10_up_to_99() {
        assert_eq!(throttle_up(0), 20);
        assert_eq!(throttle_up(20), 30);
        assert_eq!(throttle_up(90), 99);
        assert_eq!(throttle_up(99), 99);
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
