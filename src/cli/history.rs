//! `vmshift history [--json]`

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use super::{CliError, exit};
use crate::cluster::{Outcome, units};
use crate::record::Recorder;

pub fn run(json: bool) -> Result<ExitCode, CliError> {
    let rec = Recorder::open_default().map_err(|e| CliError::new(exit::INPUT, e))?;
    let h = rec.read().map_err(|e| CliError::new(exit::INPUT, e))?;
    for (line, e) in &h.damaged {
        eprintln!(
            "vmshift: skipped damaged line {line} of {} ({e})",
            rec.path().display()
        );
    }
    if h.records.is_empty() && !json {
        println!("no migrations recorded yet in {}", rec.path().display());
    }
    for r in &h.records {
        if json {
            println!("{}", serde_json::to_string(r).expect("record serializes"));
            continue;
        }
        let m = &r.migration;
        let when =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(r.recorded_at_ms));
        let result = match &m.outcome {
            Some(Outcome::Completed) => format!(
                "completed, downtime {}",
                units::millis(m.actual_downtime_ms.unwrap_or(0.0))
            ),
            Some(o) => format!(
                "{}: {}",
                if matches!(o, Outcome::Aborted { .. }) {
                    "aborted"
                } else {
                    "failed"
                },
                o.reason().unwrap_or("")
            ),
            None => "unfinished".into(),
        };
        println!(
            "{when}  {:<10} {:<14} {} → {}  {} rounds, {}  {}",
            r.operator,
            m.vm,
            m.from,
            m.to,
            m.rounds.len(),
            units::millis(m.elapsed_ms),
            result
        );
    }
    Ok(ExitCode::SUCCESS)
}
