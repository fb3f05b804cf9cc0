//! The command line: `run`, `check`, `read`, `scan`, `status`, `sync` and `dead-letter`.
//! The arguments are parsed once into a typed [`Command`] ([`args`]); each command lives in
//! its own file and fails with one [`CliError`], whose exit code is 0 done, 1 the work
//! failed, 2 the command line or board file is wrong.

pub mod args;
#[cfg(test)]
mod args_tests;
mod check;
mod dead_letter;
mod error;
mod existing_queue;
pub mod help;
mod read;
pub mod status;
mod sync;
mod sync_beside_agent;
mod when;

pub use args::{parse, Command, UsageError};
pub use error::CliError;

use crate::config::Board;
use std::ffi::OsString;
use std::process::ExitCode;

/// Run the command line (the arguments after the program name) and return the exit code.
pub fn main<I>(argv: I) -> ExitCode
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    crate::logging::init();
    match run(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(error.exit_code())
        }
    }
}

fn run<I>(argv: I) -> Result<(), CliError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let command = parse(argv, std::env::var_os(args::BOARD_ENV))?;
    if !command.keeps_running() {
        end_quietly_on_a_closed_pipe();
    }
    match command {
        Command::Overview => println!("{}", help::OVERVIEW),
        Command::Help(name) => println!("{}", name.help()),
        Command::Version => println!("fieldlink {}", env!("CARGO_PKG_VERSION")),
        Command::Scan { bus } => read::scan(&bus)?,
        Command::Run { board } => crate::agent::run(&board, &Board::load(&board)?)?,
        Command::Check { board } => check::check(&Board::load(&board)?)?,
        Command::Read { board, format } => read::read(&Board::load(&board)?, format)?,
        Command::Status { board, format } => {
            let report = status::StatusReport::gather(&Board::load(&board)?)?;
            match format {
                args::Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
                ),
                // Only `read` accepts `--format lp`.
                args::Format::Text | args::Format::LineProtocol => print!("{}", report.to_text()),
            }
        }
        Command::Sync { board, timeout } => sync::sync(&Board::load(&board)?, timeout)?,
        Command::DeadLetter { board, action } => {
            dead_letter::dead_letter(&Board::load(&board)?, action)?
        }
    }
    Ok(())
}

/// Say what went wrong, once, with the error priority when stderr is the journal: a usage
/// error with the help of the command it concerns, any other error with its chain of causes.
fn report(error: &CliError) {
    match error {
        CliError::Usage(usage) => {
            let help = usage.topic.map_or(help::OVERVIEW, |name| name.help());
            crate::logging::print_fatal(&usage.to_string());
            eprintln!("\n{help}");
        }
        _ => crate::logging::print_fatal(&error.chain()),
    }
}

/// Commands that print and end behave like any Unix tool when their reader goes away
/// (`fieldlink status | head -3`): SIGPIPE ends them, where Rust's default (SIGPIPE ignored)
/// makes the next print panic. `run` and `sync` keep it ignored: the agent must never die of
/// a log reader that went away.
fn end_quietly_on_a_closed_pipe() {
    if let Err(e) = crate::os::signals::end_on_a_closed_pipe() {
        log::debug!("{e}");
    }
}
