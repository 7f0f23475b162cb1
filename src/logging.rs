//! Logs, only when `VMSHIFT_LOG` is set (to a level: error, warn, info,
//! debug, trace), to `vmshift.log` in the state dir — never to the
//! terminal, which the interactive view owns.

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;

/// Starts logging if asked; keep the guard alive until the program ends.
pub fn init() -> Result<Option<WorkerGuard>, String> {
    let Some(value) = std::env::var_os("VMSHIFT_LOG").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let value = value.to_string_lossy().to_lowercase();
    let level: Level = match value.as_str() {
        "1" | "true" | "on" => Level::INFO,
        v => v.parse().map_err(|_| {
            format!("VMSHIFT_LOG={v:?} is not a log level; use error, warn, info, debug or trace")
        })?,
    };
    let dir = crate::record::state_dir()
        .ok_or("cannot find a state dir for the log; set VMSHIFT_STATE_DIR")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(&dir, "vmshift.log"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .with_thread_names(true)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "vmshift started");
    Ok(Some(guard))
}
