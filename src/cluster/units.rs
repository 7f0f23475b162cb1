//! Human-readable sizes, rates and durations for the CLI and the UI.

use super::model::{GIB, KIB, MIB};

/// `4.0 GiB`, `512 MiB`, `12 KiB`, `800 B`.
pub fn bytes(b: u64) -> String {
    let f = b as f64;
    if b >= 1024 * GIB {
        format!("{:.1} TiB", f / (1024 * GIB) as f64)
    } else if b >= GIB {
        format!("{:.1} GiB", f / GIB as f64)
    } else if b >= MIB {
        format!("{:.0} MiB", f / MIB as f64)
    } else if b >= KIB {
        format!("{:.0} KiB", f / KIB as f64)
    } else {
        format!("{b} B")
    }
}

/// A rate in bytes/s as `1.1 GiB/s`.
pub fn rate(bps: u64) -> String {
    format!("{}/s", bytes(bps))
}

/// Milliseconds as `80 ms`, `4.2 s`, `3m05s`.
pub fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// `▕████░░░░▏` — a bar readable without colour.
pub fn bar(ratio: f64, width: usize) -> String {
    let r = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = (r * width as f64).round() as usize;
    format!("▕{}{}▏", "█".repeat(filled), "░".repeat(width - filled))
}

/// The last millisecond of year 9999: later dates cannot be shown.
pub const MAX_DATE_MS: u64 = 253_402_300_799_999;

/// A Unix time in ms as `2026-11-28 10:02 UTC`; a time past year 9999
/// (which no date can show) as "after year 9999".
pub fn utc_minute(ms: u64) -> String {
    if ms > MAX_DATE_MS {
        return "after year 9999".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    // 2026-11-28T10:02:03Z -> 2026-11-28 10:02 UTC
    match (s.get(..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_pick_the_largest_unit_that_fits() {
        assert_eq!(bytes(800), "800 B");
        assert_eq!(bytes(12 * KIB), "12 KiB");
        assert_eq!(bytes(512 * MIB), "512 MiB");
        assert_eq!(bytes(4 * GIB), "4.0 GiB");
        assert_eq!(bytes(8192 * GIB), "8.0 TiB");
        assert_eq!(rate(1100 * MIB), "1.1 GiB/s");
    }

    #[test]
    fn durations_switch_unit_at_a_second_and_a_minute() {
        assert_eq!(millis(80.4), "80 ms");
        assert_eq!(millis(4200.0), "4.2 s");
        assert_eq!(millis(185_000.0), "3m05s");
    }
}
