//! The simulator's clock: virtual time that tests advance by hand, or that
//! follows the wall clock at some speed for people.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Virtual time moves only when `advance` (or `wait`) is called; `wait`
    /// advances it at once, so runs finish as fast as the CPU allows.
    Max,
    /// Virtual seconds per real second; 0 freezes the clock.
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && (0.0..=10_000.0).contains(&x) => Ok(Speed::Times(x)),
            _ => Err(format!(
                "speed must be a number from 0 (frozen) to 10000, or \"max\", not {s:?}"
            )),
        }
    }
}

/// Maps real time to virtual time.
#[derive(Debug, Clone)]
pub struct Clock {
    speed: Speed,
    anchor_real: Instant,
    anchor_virtual: f64,
}

impl Clock {
    pub fn new(speed: Speed, now_virtual: f64) -> Self {
        Self {
            speed,
            anchor_real: Instant::now(),
            anchor_virtual: now_virtual,
        }
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// Virtual time the clock says it is now (for `Max`: `current`).
    pub fn target(&self, current: f64) -> f64 {
        match self.speed {
            Speed::Max => current,
            Speed::Times(x) => {
                (self.anchor_virtual + self.anchor_real.elapsed().as_secs_f64() * x).max(current)
            }
        }
    }
}
