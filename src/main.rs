use std::io::IsTerminal;
use std::process::ExitCode;

use vmshift::app::{KeyMap, Settings};
use vmshift::backends::sim::clock::Speed;
use vmshift::cli::{self, CliError, exit};
use vmshift::output;
use vmshift::record::Journal;

fn main() -> ExitCode {
    if let Some(result) = cli::assets::run_internal() {
        return result.unwrap_or_else(fail);
    }
    let cli = cli::parse();
    if let Some(result) = cli::run_standalone(&cli) {
        return result.unwrap_or_else(fail);
    }
    let _log = match vmshift::logging::init() {
        Ok(g) => g,
        Err(e) => return fail(CliError::new(exit::INPUT, e)),
    };
    let mut cfg = match cli::settings(&cli) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(result) = cli::run(&cli, &cfg) {
        return result.unwrap_or_else(fail);
    }
    // The interactive view. Everything a user can get wrong is reported
    // before the screen switches.
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return fail(CliError::new(
            exit::INPUT,
            "the interactive view needs a terminal; in scripts use `vmshift status` or `vmshift migrate VM NODE`",
        ));
    }
    let keys = match KeyMap::with_overrides(&cfg.keys) {
        Ok(k) => k,
        Err(e) => return fail(CliError::new(exit::INPUT, e)),
    };
    if cfg.speed == Speed::Max {
        cfg.speed = Speed::Times(1000.0);
    }
    let mut backend = match cli::open_backend(&cfg) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let journal = Journal::open_default();
    backend.set_journal(journal.clone());
    *backend.cordons() = vmshift::record::Cordons::open_default();
    if let Err(e) = color_eyre::install() {
        output::error(&e.to_string());
    }
    let settings = Settings {
        read_only: cfg.read_only,
        mouse: cfg.mouse,
        defaults: cfg.migration.clone(),
        keys,
        poll_interval_ms: cfg.poll_interval_ms,
        thresholds: cfg.thresholds,
        operator: vmshift::record::operator(),
    };
    let result = match vmshift::tui::run(backend, settings, &journal) {
        // Ended by a signal: 128 + its number, as shells expect.
        Ok(Some(sig)) => Err(CliError::new(exit::signal(sig), String::new())),
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(CliError::new(1, e.to_string())),
    };
    let failures = journal.flush(cli::RECORD_FLUSH);
    cli::not_recorded(result, &failures).unwrap_or_else(fail)
}

fn fail(e: CliError) -> ExitCode {
    if !e.message.is_empty() {
        output::error(&e.message);
    }
    ExitCode::from(e.code)
}
