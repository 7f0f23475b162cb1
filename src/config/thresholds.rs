//! `[thresholds]`: the warning and critical levels of node CPU and memory
//! and of volume fill, and how far a figure is past them.

/// Warning and critical level of one figure, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub warn_pct: u8,
    pub crit_pct: u8,
}

impl Limits {
    pub fn level(self, pct: f64) -> Level {
        if pct >= self.crit_pct as f64 {
            Level::Crit
        } else if pct >= self.warn_pct as f64 {
            Level::Warn
        } else {
            Level::Ok
        }
    }
}

/// `[thresholds]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub cpu: Limits,
    pub memory: Limits,
    pub volume: Limits,
}

impl Default for Thresholds {
    fn default() -> Self {
        let l = Limits {
            warn_pct: 85,
            crit_pct: 95,
        };
        Self {
            cpu: l,
            memory: l,
            volume: l,
        }
    }
}

/// How far a figure is past its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    #[default]
    Ok,
    Warn,
    Crit,
}

impl Level {
    /// A mark readable without colour (two columns).
    pub fn glyph(self) -> &'static str {
        match self {
            Level::Ok => "  ",
            Level::Warn => "! ",
            Level::Crit => "!!",
        }
    }
}
