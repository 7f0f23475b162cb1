//! `vmshift history [--json]`: one line per migration (the latest record of
//! each), oldest first; damaged lines are skipped, counted and kept.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use super::{CliError, exit};
use crate::cluster::text::escape as c;
use crate::cluster::{Outcome, units};
use crate::output as out;
use crate::record::{MAX_DATE_MS, Record, Recorder};

pub fn run(json: bool) -> Result<ExitCode, CliError> {
    let rec = Recorder::open_default().map_err(|e| CliError::new(exit::INPUT, e))?;
    let h = rec.read().map_err(|e| CliError::new(exit::INPUT, e))?;
    if let Some(s) = h.damage_sentence(rec.path()) {
        out::error(&s);
    }
    let latest = h.latest();
    if latest.is_empty() && !json {
        out::println(&c(&format!(
            "no migrations recorded yet in {}",
            rec.path().display()
        )));
    }
    for r in latest {
        let more = if json {
            serde_json::to_value(r).is_ok_and(|v| out::print_json(&v))
        } else {
            out::println(&line(r))
        };
        if !more {
            break; // stdout is gone
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A record's date, or a placeholder beyond what a date can show.
fn date(ms: u64) -> String {
    if ms > MAX_DATE_MS {
        return "(date out of range)".into();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// One history line, every outside string escaped.
pub fn line(r: &Record) -> String {
    let m = &r.migration;
    let rounds = m.rounds_total.map_or(m.rounds.len(), |n| n as usize);
    let result = match (&r.detached_on, &m.outcome) {
        (Some(node), _) => format!("detached: still running on {}", c(node)),
        (None, Some(Outcome::Completed)) => format!(
            "completed, downtime {}",
            m.actual_downtime_ms
                .map_or("not seen".into(), units::millis)
        ),
        (None, Some(o)) => format!(
            "{}: {}",
            if matches!(o, Outcome::Aborted { .. }) {
                "aborted"
            } else {
                "failed"
            },
            c(o.reason().unwrap_or(""))
        ),
        (None, None) => match &r.running_by {
            Some(o) if o.alive() => format!("running, followed by vmshift {}", c(&o.describe())),
            Some(o) => format!(
                "running or ended unseen: the vmshift that started it ({}) is gone; the next vmshift that reaches the cluster records how it ended",
                c(&o.describe())
            ),
            None => "unfinished".into(),
        },
    };
    let result = if r.orphaned {
        format!("{result} (orphaned: its vmshift ended before it)")
    } else {
        result
    };
    format!(
        "{}  {:<10} {:<14} {} → {}  {} round{}, {}  {}{}{}",
        date(r.started_at_ms),
        c(&r.operator),
        c(&m.vm),
        c(&m.from),
        c(&m.to),
        rounds,
        crate::app::plural(rounds),
        units::millis(m.elapsed_ms),
        result,
        if r.found {
            " (found running, not started by this vmshift)"
        } else {
            ""
        },
        r.note
            .as_ref()
            .map_or(String::new(), |n| format!(" ({})", c(n))),
    ) + &rules_broken(m)
}

/// The placement rules the migration broke knowingly, with the reason of
/// each override: `; broke rule db-pair (must, config), reason: …`.
fn rules_broken(m: &crate::cluster::Migration) -> String {
    m.options
        .broken_rules
        .iter()
        .map(|b| {
            format!(
                "; broke rule {} ({}, {}){}",
                c(&b.rule),
                b.strength.label(),
                c(&b.origin.label()),
                b.reason
                    .as_deref()
                    .map_or(", confirmed".to_string(), |r| format!(", reason: {}", c(r)))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Migration, Outcome, Round};

    #[test]
    fn one_round_is_not_rounds() {
        let mut m = Migration {
            vm: "web-01".into(),
            from: "hv-01".into(),
            to: "hv-02".into(),
            outcome: Some(Outcome::Completed),
            rounds: vec![Round::default()],
            ..Default::default()
        };
        let mut r = Record {
            schema: 1,
            id: "x".into(),
            started_at_ms: 0,
            ended_at_ms: None,
            recorded_at_ms: 0,
            operator: "op".into(),
            backend: "sim".into(),
            cluster: "c".into(),
            found: false,
            detached_on: None,
            prediction: None,
            note: None,
            running_by: None,
            orphaned: false,
            migration: m.clone(),
        };
        assert!(line(&r).contains(" 1 round, "), "{}", line(&r));
        m.rounds.push(Round::default());
        r.migration = m;
        assert!(line(&r).contains(" 2 rounds, "), "{}", line(&r));
    }
}
