//! The command line as a user meets it: the real binary, its exit codes and what it prints.

mod emulator;

use std::process::{Command, Output};

const BOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/boards/simulated.toml");

/// The binary with a clean environment for the variables that change its behaviour.
fn fieldlink(args: &[&str]) -> Command {
    let mut command = emulator::fieldlink_command();
    command
        .args(args)
        .env_remove("FIELDLINK_BOARD")
        .env_remove("JOURNAL_STREAM")
        .env_remove("STATE_DIRECTORY");
    command
}

fn output(mut command: Command) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (status.code(), text(stdout), text(stderr))
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    output(fieldlink(args))
}

#[test]
fn board_equals_file_is_the_same_as_board_file() {
    let (code, stdout, stderr) = run(&["check", &format!("--board={BOARD}")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("board OK"), "{stdout}");
    let (code, stdout, stderr) = run(&["check", "-b", BOARD]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sim-pi-01"), "{stdout}");
}

#[test]
fn help_run_and_run_help_print_runs_help_and_exit_0() {
    let (code, by_help, _) = run(&["help", "run"]);
    assert_eq!(code, Some(0));
    assert!(by_help.starts_with("usage: fieldlink run"), "{by_help}");
    assert!(by_help.contains("--board FILE"), "{by_help}");
    let (code, by_flag, _) = run(&["run", "--help"]);
    assert_eq!(code, Some(0));
    assert_eq!(by_flag, by_help);
    let (code, overview, _) = run(&["help"]);
    assert_eq!(code, Some(0));
    assert!(overview.contains("fieldlink dead-letter"), "{overview}");
}

#[test]
fn an_option_the_command_does_not_take_exits_2_naming_it() {
    let (code, stdout, stderr) = run(&["run", "--older-than", "7d", "--board", BOARD]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("`run` does not take the option --older-than"),
        "{stderr}"
    );
    assert!(
        stderr.contains("usage: fieldlink run"),
        "run's help follows: {stderr}"
    );
}

#[test]
fn an_unknown_command_exits_2_saying_so() {
    let (code, _, stderr) = run(&["bogus"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown command `bogus`"), "{stderr}");
    assert!(!stderr.contains("is required"), "{stderr}");
}

#[test]
fn a_missing_value_exits_2_naming_the_option() {
    let (code, _, stderr) = run(&["check", "--board"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--board needs a value"), "{stderr}");
    let (code, _, stderr) = run(&["sync", "--timeout"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--timeout needs a value"), "{stderr}");
}

#[test]
fn fieldlink_board_names_the_board_and_an_explicit_board_wins() {
    let mut command = fieldlink(&["check"]);
    command.env("FIELDLINK_BOARD", BOARD);
    let (code, stdout, stderr) = output(command);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sim-pi-01"), "{stdout}");

    let missing = concat!(env!("CARGO_MANIFEST_DIR"), "/boards/no-such-board.toml");
    let mut command = fieldlink(&["check", "--board", missing]);
    command.env("FIELDLINK_BOARD", BOARD);
    let (code, _, stderr) = output(command);
    assert_eq!(code, Some(2), "the explicit board is read: {stderr}");
    assert!(stderr.contains("no-such-board.toml"), "{stderr}");
}

#[test]
fn without_board_or_environment_the_installed_board_is_read() {
    let installed = "/etc/fieldlink/board.toml";
    let (code, _, stderr) = run(&["check"]);
    if std::path::Path::new(installed).exists() {
        // A package is installed here: its board is read, valid or not.
        assert!(code == Some(0) || stderr.contains(installed), "{stderr}");
    } else {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(installed), "{stderr}");
    }
}

#[test]
fn failed_work_exits_1_and_says_why_once() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut command = fieldlink(&["status", "--board", BOARD]);
    command.env("STATE_DIRECTORY", state.path());
    let (code, _, stderr) = output(command);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches("no queue at").count(), 1, "{stderr}");
}
