use std::process::ExitCode;

use clap::Parser;
use vmshift::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match cli::settings(&cli) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match cli::run(&cli, &cfg) {
        Some(Ok(code)) => code,
        Some(Err(e)) => fail(e),
        None => {
            println!(
                "The interactive view is coming; for now use `vmshift status` or `vmshift migrate VM NODE` (see --help)."
            );
            ExitCode::SUCCESS
        }
    }
}

fn fail(e: cli::CliError) -> ExitCode {
    eprintln!("vmshift: {}", e.message);
    ExitCode::from(e.code)
}
