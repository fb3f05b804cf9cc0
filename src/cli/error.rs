//! One error type for every command, carrying its exit code: 1 when the work failed, 2 when
//! the command line or the board file is wrong.

use super::args::UsageError;
use super::sync::Tally;
use crate::agent::AgentError;
use crate::config::units::format_duration;
use crate::config::ConfigError;
use crate::queue::QueueError;
use crate::upload::endpoint::EndpointError;
use crate::upload::ConnectError;
use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

/// Why a command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line could not be understood.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The board file is missing or wrong.
    #[error(transparent)]
    Board(#[from] ConfigError),
    /// `run` could not start (or stopped on an error).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The queue file could not be opened, read or changed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The uploader for the board's `[upload]` section could not be built.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The board's `[upload]` endpoint or token is unusable (`check`): exit 2, like a board
    /// error, since the fix is in the configuration.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// `status`, `sync` or `dead-letter` on a board whose agent has never run.
    #[error("no queue at {} yet: has `fieldlink run` started with this board?", .0.display())]
    NoQueue(PathBuf),
    /// `status`, `sync` or `dead-letter` on a queue file this user may not open.
    #[error("cannot open the queue at {} (run as the agent's user, or as a member of its group)", .path.display())]
    QueueUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `dead-letter retry` found nothing to move back.
    #[error("{0}: nothing moved")]
    NothingToRetry(String),
    /// `sync` on a board that uploads nowhere.
    #[error("the board has no [upload] section")]
    NoUpload,
    /// `scan` could not open the bus.
    #[error("{}: cannot open the I2C bus (is I2C enabled? dtparam=i2c_arm=on, and are you in the i2c group?)", bus.display())]
    Bus {
        bus: PathBuf,
        #[source]
        source: linux_embedded_hal::i2cdev::linux::LinuxI2CError,
    },
    /// `read` could not read some sensors; each one's reason is in the printed table.
    #[error("{failed} of {total} sensor(s) could not be read")]
    Unreadable { failed: usize, total: usize },
    /// `sync` met an answer that will not change before its timeout.
    #[error("sync gave up: {reason} ({tally})")]
    SyncGaveUp { reason: String, tally: Tally },
    /// `sync` ran out of time while the server was still accepting.
    #[error("sync timed out after {}: {tally}", format_duration(*.timeout))]
    SyncTimedOut { timeout: Duration, tally: Tally },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Board(_) | CliError::Endpoint(_) => 2,
            _ => 1,
        }
    }

    /// The message and every cause below it, each said once: causes whose text the message
    /// already contains (errors that print their source themselves) are not repeated.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            let said = error.to_string();
            if !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = error.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let error = CliError::Bus {
            bus: "/dev/i2c-7".into(),
            source: io.into(),
        };
        let chain = error.chain();
        assert!(
            chain.starts_with("/dev/i2c-7: cannot open the I2C bus"),
            "{chain}"
        );
        assert_eq!(chain.matches("permission denied").count(), 1, "{chain}");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let sqlite = rusqlite::Connection::open_in_memory()
            .and_then(|c| c.execute("not sql", []))
            .expect_err("not sql fails");
        let said = sqlite.to_string();
        let error = CliError::Queue(QueueError::Sqlite {
            path: "q.db".into(),
            source: sqlite,
        });
        assert_eq!(error.chain().matches(&said).count(), 1, "{}", error.chain());
        assert_eq!(error.exit_code(), 1);
    }
}
