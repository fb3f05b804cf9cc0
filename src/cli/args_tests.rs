//! The parser's behaviour, one sentence per test.

use super::args::*;
use crate::queue::Selection;
use std::path::PathBuf;
use std::time::Duration;

fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
    parse(words.iter().copied(), None)
}

fn problem(words: &[&str]) -> Problem {
    parse_words(words).expect_err("a usage error").problem
}

fn board(path: &str) -> PathBuf {
    PathBuf::from(path)
}

#[test]
fn board_is_taken_as_separate_word_with_equals_or_short() {
    for words in [
        &["check", "--board", "b.toml"][..],
        &["check", "--board=b.toml"],
        &["check", "-b", "b.toml"],
        &["check", "-b=b.toml"],
    ] {
        assert_eq!(
            parse_words(words).unwrap(),
            Command::Check {
                board: board("b.toml")
            },
            "{words:?}"
        );
    }
}

#[test]
fn board_defaults_to_the_installed_file_then_the_environment_then_the_option() {
    let status = |words: &[&str], env: Option<&str>| {
        parse(words.iter().copied(), env.map(Into::into)).unwrap()
    };
    let text = Format::Text;
    assert_eq!(
        status(&["status"], None),
        Command::Status {
            board: board(DEFAULT_BOARD),
            format: text
        }
    );
    assert_eq!(
        status(&["status"], Some("/srv/b.toml")),
        Command::Status {
            board: board("/srv/b.toml"),
            format: text
        }
    );
    assert_eq!(
        status(&["status", "--board", "mine.toml"], Some("/srv/b.toml")),
        Command::Status {
            board: board("mine.toml"),
            format: text
        }
    );
    assert_eq!(
        status(&["status"], Some("")),
        Command::Status {
            board: board(DEFAULT_BOARD),
            format: text
        }
    );
}

#[test]
fn each_command_gets_its_own_options() {
    assert_eq!(
        parse_words(&["status", "-b", "b", "--format", "json"]).unwrap(),
        Command::Status {
            board: board("b"),
            format: Format::Json
        }
    );
    assert_eq!(
        parse_words(&["read", "--json", "-b", "b"]).unwrap(),
        Command::Read {
            board: board("b"),
            format: Format::Json
        }
    );
    assert_eq!(
        parse_words(&["sync", "-b", "b", "--timeout=5m"]).unwrap(),
        Command::Sync {
            board: board("b"),
            timeout: Duration::from_secs(300)
        }
    );
    assert_eq!(
        parse_words(&["sync", "-b", "b"]).unwrap(),
        Command::Sync {
            board: board("b"),
            timeout: Duration::from_secs(60)
        }
    );
    assert_eq!(
        parse_words(&["scan"]).unwrap(),
        Command::Scan {
            bus: board("/dev/i2c-1")
        }
    );
    assert_eq!(
        parse_words(&["scan", "--bus", "/dev/i2c-3"]).unwrap(),
        Command::Scan {
            bus: board("/dev/i2c-3")
        }
    );
}

#[test]
fn dead_letter_actions_carry_their_own_options() {
    let dead = |words: &[&str]| match parse_words(words).unwrap() {
        Command::DeadLetter { action, .. } => action,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        dead(&["dead-letter", "retry", "7", "-b", "b"]),
        DeadLetter::Retry(Selection::One(7))
    );
    assert_eq!(
        dead(&["dead-letter", "retry", "--id", "8"]),
        DeadLetter::Retry(Selection::One(8))
    );
    assert_eq!(
        dead(&["dead-letter", "retry", "--all"]),
        DeadLetter::Retry(Selection::All)
    );
    assert_eq!(
        dead(&["dead-letter", "purge", "--older-than", "7d"]),
        DeadLetter::Purge {
            older_than: Duration::from_secs(7 * 86400)
        }
    );
    assert_eq!(
        dead(&["dead-letter", "purge"]),
        DeadLetter::Purge {
            older_than: Duration::ZERO
        }
    );
    assert_eq!(
        dead(&["dead-letter", "--format", "json", "list"]),
        DeadLetter::List {
            format: Format::Json
        }
    );
}

#[test]
fn help_and_version_in_every_spelling() {
    assert_eq!(parse_words(&[]).unwrap(), Command::Overview);
    assert_eq!(parse_words(&["help"]).unwrap(), Command::Overview);
    assert_eq!(parse_words(&["--help"]).unwrap(), Command::Overview);
    assert_eq!(parse_words(&["-h"]).unwrap(), Command::Overview);
    assert_eq!(parse_words(&["--version"]).unwrap(), Command::Version);
    assert_eq!(
        parse_words(&["help", "run"]).unwrap(),
        Command::Help(Name::Run)
    );
    assert_eq!(
        parse_words(&["run", "--help"]).unwrap(),
        Command::Help(Name::Run)
    );
    assert_eq!(
        parse_words(&["dead-letter", "purge", "-h"]).unwrap(),
        Command::Help(Name::DeadLetter)
    );
}

#[test]
fn an_option_of_another_command_is_refused_by_name() {
    assert_eq!(
        problem(&["run", "--older-than", "7d"]),
        Problem::NotAnOptionOf {
            command: "run".into(),
            option: "--older-than".into()
        }
    );
    assert_eq!(
        problem(&["check", "--format", "json"]),
        Problem::NotAnOptionOf {
            command: "check".into(),
            option: "--format".into()
        }
    );
    assert_eq!(
        problem(&["run", "--frobnicate"]),
        Problem::NotAnOptionOf {
            command: "run".into(),
            option: "--frobnicate".into()
        }
    );
    assert_eq!(
        problem(&["dead-letter", "list", "--older-than", "7d"]),
        Problem::NotAnOptionOf {
            command: "dead-letter list".into(),
            option: "--older-than".into()
        }
    );
    // Given before the action, it is checked once the action is known.
    assert_eq!(
        problem(&["dead-letter", "--all", "purge"]),
        Problem::NotAnOptionOf {
            command: "dead-letter purge".into(),
            option: "--all".into()
        }
    );
}

#[test]
fn unknown_commands_missing_values_and_bad_values_say_which() {
    assert_eq!(problem(&["bogus"]), Problem::UnknownCommand("bogus".into()));
    assert_eq!(
        problem(&["help", "bogus"]),
        Problem::UnknownCommand("bogus".into())
    );
    assert_eq!(
        problem(&["check", "--board"]),
        Problem::MissingValue {
            option: "--board".into()
        }
    );
    assert_eq!(
        problem(&["check", "-b"]),
        Problem::MissingValue {
            option: "-b".into()
        }
    );
    assert!(matches!(
        problem(&["sync", "--timeout", "soon"]),
        Problem::BadValue { option, value, .. } if option == "--timeout" && value == "soon"
    ));
    assert!(matches!(
        problem(&["status", "--format", "xml"]),
        Problem::BadValue { value, .. } if value == "xml"
    ));
    assert_eq!(
        problem(&["dead-letter", "retry", "--all=yes"]),
        Problem::UnexpectedValue {
            option: "--all".into(),
            value: "yes".into()
        }
    );
    assert_eq!(
        problem(&["--board", "b", "run"]),
        Problem::NoCommand("--board".into())
    );
}

#[test]
fn stray_words_and_incomplete_dead_letter_commands_are_refused() {
    assert_eq!(
        problem(&["run", "extra"]),
        Problem::UnexpectedArgument {
            command: "run".into(),
            argument: "extra".into()
        }
    );
    assert_eq!(problem(&["dead-letter"]), Problem::MissingAction);
    assert_eq!(
        problem(&["dead-letter", "shred"]),
        Problem::UnknownAction("shred".into())
    );
    assert_eq!(
        problem(&["dead-letter", "retry"]),
        Problem::MissingSelection
    );
    assert!(matches!(
        problem(&["dead-letter", "retry", "seven"]),
        Problem::BadValue { value, .. } if value == "seven"
    ));
}

#[test]
fn usage_errors_know_whose_help_to_show() {
    let topic = |words: &[&str]| parse_words(words).expect_err("usage error").topic;
    assert_eq!(topic(&["run", "--older-than", "7d"]), Some(Name::Run));
    assert_eq!(topic(&["bogus"]), None);
}

#[test]
fn line_protocol_is_a_format_of_read_only() {
    assert_eq!(
        parse_words(&["read", "--format", "lp", "-b", "b"]).unwrap(),
        Command::Read {
            board: board("b"),
            format: Format::LineProtocol
        }
    );
    assert_eq!(
        problem(&["status", "--format", "lp"]),
        Problem::BadValue {
            option: "--format".into(),
            value: "lp".into(),
            reason: "expected json or table".into()
        }
    );
}
