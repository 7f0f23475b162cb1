//! The simulator's clock: virtual time that tests advance by hand, or that
//! follows the wall clock at some speed for people.

use std::time::Instant;

pub use crate::config::Speed;

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
