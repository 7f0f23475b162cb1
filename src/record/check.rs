//! What a figure read back from the state dir may be. A state file is
//! input like any other: a record whose durations, rates or sizes are
//! beyond anything a migration can have (a downtime of 1e308 ms) is
//! damaged, skipped and counted, and never reaches a prediction or a
//! screen.

use crate::cluster::{Estimate, Forecast, Migration, MigrationInputs};

use super::{MAX_DATE_MS, Record};

/// The longest a migration (or any of its phases) may have taken: a year.
pub const MAX_DURATION_MS: f64 = 366.0 * 86_400_000.0;
/// The longest a switchover may have paused a guest: an hour.
pub const MAX_DOWNTIME_MS: f64 = 3_600_000.0;
/// The fastest rate (transfer, dirtying, copy): 1 PiB/s, beyond any link
/// (a round timed over a fraction of a millisecond may read faster than
/// its link, so the bound is far above it).
pub const MAX_RATE_BPS: u64 = 1 << 50;
/// The largest size (memory, disks, bytes sent): 1 EiB, so that sums of a
/// few stay within 64 bits.
pub const MAX_BYTES: u64 = 1 << 60;
/// The most rounds a migration may have had.
pub const MAX_ROUNDS: usize = 100_000;
/// The largest figure of a stored prediction or model input (any unit):
/// these only show what was expected, so the bound only keeps them finite
/// and printable.
pub const MAX_FIGURE: f64 = 1e18;

/// A figure as a sentence shows it: 1e308, not its 309 digits.
pub fn num(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e9 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

fn ms(what: &str, v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "{what} {} ms is out of range (0 to {max} ms)",
            num(v)
        ))
    }
}

fn rate(what: &str, v: u64) -> Result<(), String> {
    if v <= MAX_RATE_BPS {
        Ok(())
    } else {
        Err(format!(
            "{what} {v} bytes/s is out of range (at most {MAX_RATE_BPS})"
        ))
    }
}

fn bytes(what: &str, v: u64) -> Result<(), String> {
    if v <= MAX_BYTES {
        Ok(())
    } else {
        Err(format!(
            "{what} {v} bytes is out of range (at most {MAX_BYTES})"
        ))
    }
}

fn figure(what: &str, v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {} is out of range (0 to {max})", num(v)))
    }
}

fn estimate(what: &str, e: &Estimate, max: f64) -> Result<(), String> {
    figure(what, e.value, max)?;
    figure(what, e.lo, max)?;
    figure(what, e.hi, max)
}

/// `Err` names the first figure of `m` out of range.
pub fn migration(m: &Migration) -> Result<(), String> {
    if m.started_at_ms > MAX_DATE_MS {
        return Err("its start is dated after year 9999".into());
    }
    bytes("memory", m.memory)?;
    bytes("storage", m.storage_bytes)?;
    bytes("bytes moved", m.transferred_bytes)?;
    bytes("bytes left", m.remaining_bytes)?;
    bytes("bytes sent this round", m.current_round_sent)?;
    bytes("bytes scanned", m.scanned_bytes)?;
    bytes("data bytes", m.data_bytes)?;
    rate("dirty rate", m.dirty_bps)?;
    rate("bandwidth", m.bandwidth_bps)?;
    if m.throttle_pct > 100 {
        return Err(format!("throttle {}% is above 100%", m.throttle_pct));
    }
    ms("elapsed time", m.elapsed_ms, MAX_DURATION_MS)?;
    ms("expected downtime", m.expected_downtime_ms, MAX_FIGURE)?;
    if let Some(d) = m.actual_downtime_ms {
        ms("downtime", d, MAX_DOWNTIME_MS)?;
    }
    for s in m.step_started_ms.iter().flatten() {
        ms("step start", *s, MAX_DURATION_MS)?;
    }
    if m.rounds.len() > MAX_ROUNDS {
        return Err(format!(
            "{} rounds is more than the {MAX_ROUNDS} a migration may have",
            m.rounds.len()
        ));
    }
    for r in &m.rounds {
        bytes("round bytes sent", r.bytes_sent)?;
        bytes("round bytes dirtied", r.bytes_dirty)?;
        rate("round dirty rate", r.dirty_bps)?;
        rate("round bandwidth", r.bandwidth_bps)?;
        ms("round duration", r.duration_ms, MAX_DURATION_MS)?;
        if r.throttle_pct > 100 {
            return Err(format!("round throttle {}% is above 100%", r.throttle_pct));
        }
    }
    let o = &m.options;
    ms("max downtime", o.max_downtime_ms as f64, MAX_DURATION_MS)?;
    if let Some(b) = o.bandwidth_bps {
        rate("bandwidth limit", b)?;
    }
    if o.parallel_connections > 1024 {
        return Err(format!(
            "{} parallel connections is more than 1024",
            o.parallel_connections
        ));
    }
    if let Some(d) = &m.disk_copy {
        bytes("disk copy size", d.total_bytes)?;
        bytes("disk bytes copied", d.copied_bytes)?;
        rate("disk copy rate", d.bps)?;
        for t in [d.started_ms, d.done_ms].into_iter().flatten() {
            ms("disk copy time", t, MAX_DURATION_MS)?;
        }
    }
    if let Some(i) = &m.inputs {
        inputs(i)?;
    }
    for f in [&m.forecast, &m.live].into_iter().flatten() {
        forecast(f)?;
    }
    Ok(())
}

fn inputs(i: &MigrationInputs) -> Result<(), String> {
    bytes("model memory", i.memory)?;
    bytes("model storage", i.storage_bytes)?;
    rate("model bandwidth", i.bandwidth_bps)?;
    rate("model link", i.link_bps)?;
    rate("model line", i.line_bps)?;
    for (what, e) in [
        ("model touched memory", &i.touched),
        ("model working set", &i.wws),
        ("model dirty rate", &i.dirty_bps),
        ("model setup", &i.setup_ms),
        ("model switchover", &i.switchover_ms),
    ] {
        estimate(what, e, MAX_FIGURE)?;
    }
    figure("model clean-up", i.cleanup_ms, MAX_FIGURE)?;
    figure("model write overlap", i.write_overlap, 1.0)
}

fn forecast(f: &Forecast) -> Result<(), String> {
    estimate("forecast rounds", &f.rounds, MAX_FIGURE)?;
    estimate("forecast time", &f.total_ms, MAX_FIGURE)?;
    estimate("forecast downtime", &f.downtime_ms, MAX_FIGURE)?;
    if let Some(d) = f.downtime_now_ms {
        figure("forecast downtime now", d, MAX_FIGURE)?;
    }
    Ok(())
}

/// `Err` names the first figure of `r` out of range: its dates, its
/// migration's figures, and every number of its stored prediction.
pub fn record(r: &Record) -> Result<(), String> {
    let dates = [
        r.recorded_at_ms,
        r.started_at_ms,
        r.ended_at_ms.unwrap_or(0),
    ];
    if dates.iter().any(|d| *d > MAX_DATE_MS) {
        return Err("dated after year 9999".into());
    }
    migration(&r.migration)?;
    if let Some(p) = &r.prediction {
        json_figures("prediction", p)?;
    }
    Ok(())
}

fn json_figures(what: &str, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() && x.abs() <= MAX_FIGURE => Ok(()),
            _ => Err(format!("{what} figure {n} is out of range")),
        },
        Value::Array(a) => a.iter().try_for_each(|x| json_figures(what, x)),
        Value::Object(o) => o.values().try_for_each(|x| json_figures(what, x)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MigrationOptions, Outcome, Round};
    use crate::record::Meta;

    fn record() -> Record {
        let mut m = Migration::starting(
            1,
            "vm",
            "a",
            "b",
            MigrationOptions::default(),
            1 << 30,
            0,
            0,
        );
        m.rounds.push(Round {
            index: 0,
            bytes_sent: 1 << 30,
            bytes_dirty: 1 << 20,
            dirty_bps: 1 << 27,
            bandwidth_bps: 1 << 30,
            duration_ms: 900.0,
            throttle_pct: 0,
        });
        m.outcome = Some(Outcome::Completed);
        m.actual_downtime_ms = Some(42.0);
        m.elapsed_ms = 1000.0;
        Record::finished(&Meta::new(false, None), "sim", "c", &m)
    }

    #[test]
    fn a_record_as_written_passes_and_each_absurd_figure_is_named() {
        assert_eq!(super::record(&record()), Ok(()));
        type Spoil = fn(&mut Record);
        let cases: [(Spoil, &str); 8] = [
            (
                |r| r.migration.actual_downtime_ms = Some(1e308),
                "downtime 1e308 ms is out of range",
            ),
            (
                |r| r.migration.actual_downtime_ms = Some(MAX_DOWNTIME_MS + 1.0),
                "downtime 3600001 ms",
            ),
            (|r| r.migration.elapsed_ms = -1.0, "elapsed time -1 ms"),
            (|r| r.migration.elapsed_ms = f64::NAN, "elapsed time NaN ms"),
            (
                |r| r.migration.rounds[0].duration_ms = f64::INFINITY,
                "round duration inf ms",
            ),
            (
                |r| r.migration.rounds[0].bandwidth_bps = MAX_RATE_BPS + 1,
                "round bandwidth",
            ),
            (|r| r.migration.throttle_pct = 101, "throttle 101%"),
            (|r| r.ended_at_ms = Some(MAX_DATE_MS + 1), "after year 9999"),
        ];
        for (spoil, said) in cases {
            let mut r = record();
            spoil(&mut r);
            let e = super::record(&r).unwrap_err();
            assert!(e.contains(said), "{e} does not say {said}");
        }
        let mut r = record();
        r.migration.actual_downtime_ms = Some(MAX_DOWNTIME_MS);
        r.prediction = Some(serde_json::json!({"downtime_ms": {"value": 1e17}}));
        assert_eq!(super::record(&r), Ok(()), "the bounds themselves pass");
        r.prediction = Some(serde_json::json!([1, {"x": 1e300}]));
        assert!(super::record(&r).unwrap_err().contains("prediction figure"));
    }
}
