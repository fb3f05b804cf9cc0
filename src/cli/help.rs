//! The command line's words: the commands by name, the options and `dead-letter` actions,
//! which options each command takes, and the help text each prints. Parsing (`args`) builds on
//! these words; nothing here depends on it.

use lexopt::Arg;

/// One of fieldlink's commands, as typed after `fieldlink`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Run,
    Check,
    Read,
    Scan,
    Status,
    Sync,
    DeadLetter,
}

impl Name {
    const ALL: [Name; 7] = [
        Name::Run,
        Name::Check,
        Name::Read,
        Name::Scan,
        Name::Status,
        Name::Sync,
        Name::DeadLetter,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Name::Run => "run",
            Name::Check => "check",
            Name::Read => "read",
            Name::Scan => "scan",
            Name::Status => "status",
            Name::Sync => "sync",
            Name::DeadLetter => "dead-letter",
        }
    }

    pub fn from_word(word: &str) -> Option<Name> {
        Self::ALL.into_iter().find(|name| name.word() == word)
    }

    /// Whether this command (and, for `dead-letter`, its action once known) takes `opt`.
    pub fn takes(self, action: Option<Action>, opt: Opt) -> bool {
        use Opt::*;
        match self {
            Name::Run | Name::Check => opt == Board,
            Name::Read | Name::Status => matches!(opt, Board | Format | Json),
            Name::Scan => opt == Bus,
            Name::Sync => matches!(opt, Board | Timeout),
            Name::DeadLetter => match action {
                None => matches!(opt, Board | Format | Json | All | Id | OlderThan),
                Some(Action::List) => matches!(opt, Board | Format | Json),
                Some(Action::Retry) => matches!(opt, Board | All | Id),
                Some(Action::Purge) => matches!(opt, Board | OlderThan),
            },
        }
    }

    /// What `fieldlink help CMD` and `fieldlink CMD --help` print.
    pub fn help(self) -> &'static str {
        match self {
            Name::Run => RUN,
            Name::Check => CHECK,
            Name::Read => READ,
            Name::Scan => SCAN,
            Name::Status => STATUS,
            Name::Sync => SYNC,
            Name::DeadLetter => DEAD_LETTER,
        }
    }
}

/// Every option a command can take; which command takes which is [`Name::takes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    Board,
    Format,
    Json,
    Bus,
    Timeout,
    All,
    Id,
    OlderThan,
}

impl Opt {
    pub(super) fn of(arg: &Arg) -> Option<Opt> {
        Some(match arg {
            Arg::Long("board") | Arg::Short('b') => Opt::Board,
            Arg::Long("format") => Opt::Format,
            Arg::Long("json") => Opt::Json,
            Arg::Long("bus") => Opt::Bus,
            Arg::Long("timeout") => Opt::Timeout,
            Arg::Long("all") => Opt::All,
            Arg::Long("id") => Opt::Id,
            Arg::Long("older-than") => Opt::OlderThan,
            _ => return None,
        })
    }
}

/// The action word after `dead-letter`, before its options are known to fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Retry,
    Purge,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Retry => "retry",
            Action::Purge => "purge",
        }
    }
}

/// What `fieldlink help` and `fieldlink --help` print.
pub const OVERVIEW: &str = "fieldlink — offline-first sensor agent for Raspberry Pi fleets

usage:
  fieldlink run [--board FILE]          sample and upload until SIGTERM/SIGINT
  fieldlink check [--board FILE]        validate the board file and print the resolved config
  fieldlink read [--board FILE] [--format json|lp]
                                        read every sensor once and print the values
  fieldlink scan [--bus /dev/i2c-1]     probe an I2C bus and name the known chips found
  fieldlink status [--board FILE] [--format json]
                                        queue depth and age, counters, last upload, clock
  fieldlink sync [--board FILE] [--timeout 60s]
                                        upload everything queued now; exit 0 when empty
  fieldlink dead-letter list|retry|purge [--board FILE] ...
                                        inspect, re-queue or delete lines the server refused
  fieldlink help COMMAND | COMMAND --help
                                        what one command does and which options it takes
  fieldlink --help | --version

--board FILE (or --board=FILE, -b FILE) defaults to $FIELDLINK_BOARD, else
/etc/fieldlink/board.toml.
exit codes: 0 done, 1 the work failed, 2 the command line or board file is wrong.
environment: FIELDLINK_LOG=error|warn|info|debug (default info), FIELDLINK_BOARD=FILE";

const RUN: &str = concat!(
    "usage: fieldlink run [--board FILE]\n\n",
    "Sample every sensor of the board and upload what is queued, until SIGTERM or SIGINT;\n",
    "then commit what is pending and exit 0.\n\noptions:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)"
);

const CHECK: &str = concat!(
    "usage: fieldlink check [--board FILE]\n\n",
    "Validate the board file (and its overlay) and print the resolved configuration: device id,\n",
    "series keys, queue limits, write URL and where the token comes from (never the token).\n",
    "Exit 2 naming file, line and key when the board is wrong. Touches no sensor.\n\noptions:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)"
);

const READ: &str = concat!(
    "usage: fieldlink read [--board FILE] [--format json|table|lp]\n\n",
    "Read every sensor once and print the values; exit 1 if any sensor could not be read.\n",
    "`--format lp` prints the exact line protocol that would be queued (tags, escaping,\n",
    "types) and queues nothing.\n\n",
    "options:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)\n",
    "  --format FORMAT    table (default), json or lp; --json is short for --format json"
);

const SCAN: &str = concat!(
    "usage: fieldlink scan [--bus /dev/i2c-1]\n\n",
    "Probe addresses 0x08-0x77 of an I2C bus and name the chips fieldlink knows at each\n",
    "address that answers.\n\noptions:\n",
    "  --bus PATH         the I2C bus device (default /dev/i2c-1)"
);

const STATUS: &str = concat!(
    "usage: fieldlink status [--board FILE] [--format json|table]\n\n",
    "Show the queue (depth, oldest reading's age, held readings, dead letters, size), free\n",
    "disk, whether the clock is trusted, the last upload and every counter.\n\noptions:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)\n",
    "  --format FORMAT    table (default) or json; --json is short for --format json"
);

const SYNC: &str = concat!(
    "usage: fieldlink sync [--board FILE] [--timeout 60s]\n\n",
    "Upload everything queued now (with progress on a terminal); exit 0 when the queue is\n",
    "empty, 1 when the server keeps failing past the timeout. What was not sent stays queued.\n\n",
    "options:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)\n",
    "  --timeout DURATION how long to keep trying (default 60s)"
);

const DEAD_LETTER: &str = concat!(
    "usage: fieldlink dead-letter list  [--board FILE] [--format json|table]\n",
    "       fieldlink dead-letter retry [--board FILE] (--all | --id N | N)\n",
    "       fieldlink dead-letter purge [--board FILE] [--older-than 7d]\n\n",
    "Manage lines the server refused or whose time could not be known: list them with the\n",
    "server's message, move them back into the queue, or delete those recorded more than\n",
    "--older-than ago (all of them without it).\n\noptions:\n",
    "  -b, --board FILE   the board file (default $FIELDLINK_BOARD, else /etc/fieldlink/board.toml)\n",
    "  --format FORMAT    list: table (default) or json; --json is short for --format json\n",
    "  --all, --id N      retry: every dead letter, or the one with this id\n",
    "  --older-than DURATION\n",
    "                     purge: only those recorded longer ago than this"
);
