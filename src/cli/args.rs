//! The command line, parsed once into a [`Command`] whose variants carry only their own
//! options, so a command cannot silently accept an option meant for another. lexopt does the
//! splitting: `--board FILE`, `--board=FILE` and `-b FILE` are the same option.

use crate::config::units::parse_duration;
use crate::queue::Selection;
use lexopt::{Arg, Parser};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use super::help::{Action, Name, Opt};

/// Where the package installs the board file.
pub const DEFAULT_BOARD: &str = "/etc/fieldlink/board.toml";
/// The environment variable that names another board file; an explicit `--board` wins.
pub const BOARD_ENV: &str = "FIELDLINK_BOARD";
/// The bus `scan` probes unless told otherwise.
const DEFAULT_BUS: &str = "/dev/i2c-1";
/// How long `sync` keeps trying unless told otherwise.
const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// What the user asked for, with everything that command needs and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `fieldlink`, `fieldlink help` or `fieldlink --help`.
    Overview,
    /// `fieldlink help CMD` or `fieldlink CMD --help`.
    Help(Name),
    Version,
    Run {
        board: PathBuf,
    },
    Check {
        board: PathBuf,
    },
    Read {
        board: PathBuf,
        format: Format,
    },
    Scan {
        bus: PathBuf,
    },
    Status {
        board: PathBuf,
        format: Format,
    },
    Sync {
        board: PathBuf,
        timeout: Duration,
    },
    DeadLetter {
        board: PathBuf,
        action: DeadLetter,
    },
}

impl Command {
    /// `run` and `sync` keep working when their reader goes away; everything else just prints.
    pub fn keeps_running(&self) -> bool {
        matches!(self, Command::Run { .. } | Command::Sync { .. })
    }
}

/// How a command that prints data prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// The exact lines that would be queued (`read` only), like `telegraf --test`.
    LineProtocol,
}

/// What `dead-letter` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetter {
    List { format: Format },
    Retry(Selection),
    Purge { older_than: Duration },
}

/// Why the command line could not be understood; always exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
pub struct UsageError {
    /// The command whose help is worth showing, if the command was understood.
    pub topic: Option<Name>,
    pub problem: Problem,
}

/// What exactly is wrong with the command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Problem {
    #[error("unknown command `{0}` (try `fieldlink help`)")]
    UnknownCommand(String),
    #[error("`{command}` does not take the option {option}")]
    NotAnOptionOf { command: String, option: String },
    #[error("{option} needs a value")]
    MissingValue { option: String },
    #[error("{option} takes no value, got `{value}`")]
    UnexpectedValue { option: String, value: String },
    #[error("`{command}` takes no argument `{argument}`")]
    UnexpectedArgument { command: String, argument: String },
    #[error("{option} {value}: {reason}")]
    BadValue {
        option: String,
        value: String,
        reason: String,
    },
    #[error("option {0} comes before any command (try `fieldlink help`)")]
    NoCommand(String),
    #[error("dead-letter needs an action: list, retry or purge")]
    MissingAction,
    #[error("dead-letter: unknown action `{0}`: expected list, retry or purge")]
    UnknownAction(String),
    #[error("dead-letter retry needs --all or an id")]
    MissingSelection,
    #[error("{0}")]
    Other(String),
}

/// Parse the arguments after the program name. `board_from_env` is `FIELDLINK_BOARD`'s value.
pub fn parse<I>(args: I, board_from_env: Option<OsString>) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = Parser::from_args(args);
    let word = match parser.next().map_err(|e| usage(None, e.into()))? {
        None | Some(Arg::Long("help") | Arg::Short('h')) => return Ok(Command::Overview),
        Some(Arg::Long("version") | Arg::Short('V')) => return Ok(Command::Version),
        Some(Arg::Value(word)) => word.to_string_lossy().into_owned(),
        Some(option) => return Err(usage(None, Problem::NoCommand(written(&option)))),
    };
    if word == "help" {
        return help_topic(&mut parser);
    }
    let Some(name) = Name::from_word(&word) else {
        return Err(usage(None, Problem::UnknownCommand(word)));
    };
    let mut given = Given::default();
    while let Some(arg) = parser.next().map_err(|e| usage(Some(name), e.into()))? {
        let result = match arg {
            Arg::Long("help") | Arg::Short('h') => return Ok(Command::Help(name)),
            Arg::Value(value) => given.positional(name, value),
            option => {
                let (opt, text) = (Opt::of(&option), written(&option));
                given.option(name, opt, text, &mut parser)
            }
        };
        result.map_err(|problem| usage(Some(name), problem))?;
    }
    given
        .into_command(name, board_from_env)
        .map_err(|problem| usage(Some(name), problem))
}

fn usage(topic: Option<Name>, problem: Problem) -> UsageError {
    UsageError { topic, problem }
}

/// `fieldlink help [CMD]`.
fn help_topic(parser: &mut Parser) -> Result<Command, UsageError> {
    let topic = match parser.next().map_err(|e| usage(None, e.into()))? {
        None => return Ok(Command::Overview),
        Some(Arg::Value(word)) => word.to_string_lossy().into_owned(),
        Some(option) => return Err(usage(None, not_an_option_of("help", &option))),
    };
    let command = match Name::from_word(&topic) {
        Some(name) => Command::Help(name),
        None if topic == "help" => Command::Overview,
        None => return Err(usage(None, Problem::UnknownCommand(topic))),
    };
    match parser.next().map_err(|e| usage(None, e.into()))? {
        None => Ok(command),
        Some(Arg::Value(extra)) => Err(usage(
            None,
            Problem::UnexpectedArgument {
                command: "help".into(),
                argument: extra.to_string_lossy().into_owned(),
            },
        )),
        Some(option) => Err(usage(None, not_an_option_of("help", &option))),
    }
}

fn not_an_option_of(command: &str, option: &Arg) -> Problem {
    Problem::NotAnOptionOf {
        command: command.into(),
        option: written(option),
    }
}

/// An option as the user would recognise it in a message.
fn written(arg: &Arg) -> String {
    match arg {
        Arg::Short(c) => format!("-{c}"),
        Arg::Long(name) => format!("--{name}"),
        Arg::Value(value) => value.to_string_lossy().into_owned(),
    }
}

impl From<lexopt::Error> for Problem {
    fn from(error: lexopt::Error) -> Self {
        match error {
            lexopt::Error::MissingValue { option } => Problem::MissingValue {
                option: option.unwrap_or_default(),
            },
            lexopt::Error::UnexpectedValue { option, value } => Problem::UnexpectedValue {
                option,
                value: value.to_string_lossy().into_owned(),
            },
            other => Problem::Other(other.to_string()),
        }
    }
}

/// What the command line said, collected before it becomes a [`Command`].
#[derive(Debug, Default)]
struct Given {
    board: Option<PathBuf>,
    format: Format,
    bus: Option<PathBuf>,
    timeout: Option<Duration>,
    all: bool,
    id: Option<i64>,
    older_than: Option<Duration>,
    action: Option<Action>,
    /// Options in the order given, as written, to re-check once the action is known.
    seen: Vec<(Opt, String)>,
}

impl Given {
    fn option(
        &mut self,
        name: Name,
        opt: Option<Opt>,
        option: String,
        parser: &mut Parser,
    ) -> Result<(), Problem> {
        let Some(opt) = opt.filter(|opt| name.takes(self.action, *opt)) else {
            let command = match self.action {
                Some(action) => format!("{} {}", name.word(), action.word()),
                None => name.word().into(),
            };
            return Err(Problem::NotAnOptionOf { command, option });
        };
        let mut value = || {
            parser.value().map_err(|_| Problem::MissingValue {
                option: option.clone(),
            })
        };
        match opt {
            Opt::Board => self.board = Some(value()?.into()),
            Opt::Bus => self.bus = Some(value()?.into()),
            Opt::Format => self.format = parse_format(name, &option, value()?)?,
            Opt::Json => self.format = Format::Json,
            Opt::Timeout => self.timeout = Some(duration(&option, value()?)?),
            Opt::OlderThan => self.older_than = Some(duration(&option, value()?)?),
            Opt::All => self.all = true,
            Opt::Id => self.id = Some(dead_letter_id(&option, value()?)?),
        }
        self.seen.push((opt, option));
        Ok(())
    }

    fn positional(&mut self, name: Name, value: OsString) -> Result<(), Problem> {
        let text = value.to_string_lossy().into_owned();
        match (name, self.action) {
            (Name::DeadLetter, None) => {
                self.action = Some(match text.as_str() {
                    "list" => Action::List,
                    "retry" => Action::Retry,
                    "purge" => Action::Purge,
                    _ => return Err(Problem::UnknownAction(text)),
                });
                Ok(())
            }
            (Name::DeadLetter, Some(Action::Retry)) if self.id.is_none() => {
                self.id = Some(dead_letter_id("dead-letter retry", value)?);
                Ok(())
            }
            _ => Err(Problem::UnexpectedArgument {
                command: name.word().into(),
                argument: text,
            }),
        }
    }

    fn into_command(
        self,
        name: Name,
        board_from_env: Option<OsString>,
    ) -> Result<Command, Problem> {
        let board = self
            .board
            .clone()
            .or_else(|| board_from_env.filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BOARD));
        let format = self.format;
        Ok(match name {
            Name::Run => Command::Run { board },
            Name::Check => Command::Check { board },
            Name::Read => Command::Read { board, format },
            Name::Status => Command::Status { board, format },
            Name::Scan => Command::Scan {
                bus: self.bus.unwrap_or_else(|| PathBuf::from(DEFAULT_BUS)),
            },
            Name::Sync => Command::Sync {
                board,
                timeout: self.timeout.unwrap_or(DEFAULT_SYNC_TIMEOUT),
            },
            Name::DeadLetter => Command::DeadLetter {
                board,
                action: self.dead_letter(format)?,
            },
        })
    }

    /// The action decides which options fit; options given before it are checked here.
    fn dead_letter(&self, format: Format) -> Result<DeadLetter, Problem> {
        let action = self.action.ok_or(Problem::MissingAction)?;
        if let Some((_, option)) = self
            .seen
            .iter()
            .find(|(opt, _)| !Name::DeadLetter.takes(Some(action), *opt))
        {
            return Err(Problem::NotAnOptionOf {
                command: format!("dead-letter {}", action.word()),
                option: option.clone(),
            });
        }
        Ok(match action {
            Action::List => DeadLetter::List { format },
            Action::Retry => DeadLetter::Retry(match (self.all, self.id) {
                (true, _) => Selection::All,
                (false, Some(id)) => Selection::One(id),
                (false, None) => return Err(Problem::MissingSelection),
            }),
            Action::Purge => DeadLetter::Purge {
                older_than: self.older_than.unwrap_or(Duration::ZERO),
            },
        })
    }
}

fn text_value(option: &str, value: OsString) -> Result<String, Problem> {
    value.into_string().map_err(|raw| Problem::BadValue {
        option: option.into(),
        value: raw.to_string_lossy().into_owned(),
        reason: "not valid UTF-8".into(),
    })
}

fn parse_format(name: Name, option: &str, value: OsString) -> Result<Format, Problem> {
    let text = text_value(option, value)?;
    match text.as_str() {
        "json" => Ok(Format::Json),
        "table" | "text" => Ok(Format::Text),
        "lp" | "line-protocol" if name == Name::Read => Ok(Format::LineProtocol),
        _ => Err(Problem::BadValue {
            option: option.into(),
            value: text,
            reason: match name {
                Name::Read => "expected json, table or lp".into(),
                _ => "expected json or table".into(),
            },
        }),
    }
}

fn duration(option: &str, value: OsString) -> Result<Duration, Problem> {
    let text = text_value(option, value)?;
    parse_duration(&text).map_err(|reason| Problem::BadValue {
        option: option.into(),
        value: text,
        reason,
    })
}

fn dead_letter_id(option: &str, value: OsString) -> Result<i64, Problem> {
    let text = text_value(option, value)?;
    text.parse().map_err(|_| Problem::BadValue {
        option: option.into(),
        value: text,
        reason: "expected a dead-letter id (a number)".into(),
    })
}
