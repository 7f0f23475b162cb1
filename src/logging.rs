//! Logs, only when `VMSHIFT_LOG` is set (to a level: error, warn, info,
//! debug, trace), to `vmshift.log` in the state dir — never to the
//! terminal, which the interactive view owns.

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;

/// Starts logging if asked; keep the guard alive until the program ends.
/// A log that cannot be written is a warning, never a reason not to run.
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
    let Some(dir) = crate::record::state_dir() else {
        crate::output::error(
            "VMSHIFT_LOG is set but there is no state dir for the log; set VMSHIFT_STATE_DIR (going on without a log)",
        );
        return Ok(None);
    };
    let path = dir.join("vmshift.log");
    // O_NONBLOCK: a FIFO in its place must not make vmshift wait.
    let file = std::fs::create_dir_all(&dir).and_then(|()| {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        if f.metadata()?.is_file() {
            Ok(f)
        } else {
            Err(std::io::Error::other(
                "it is not a regular file (a folder, FIFO or device)",
            ))
        }
    });
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            crate::output::error(&format!(
                "VMSHIFT_LOG is set but the log {} cannot be written ({e}); going on without a log",
                path.display()
            ));
            return Ok(None);
        }
    };
    let (writer, guard) = tracing_appender::non_blocking(file);
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
