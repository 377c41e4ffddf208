//! Thin entry point: parse flags, run the command, turn the outcome into an exit status
//! (0 ok, 1 a breach with --fail-on, 2 an error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match headroom::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match headroom::commands::execute(cli.command) {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
