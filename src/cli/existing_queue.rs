//! The queue as `status`, `sync` and `dead-letter` see it: it must already be there. A
//! missing file is "no queue yet", a file the user may not open is said to be that, and
//! neither is ever created, moved or repaired by these commands.

use super::CliError;
use crate::config::Board;
use crate::queue::{Access, Queue};
use std::io::ErrorKind;
use std::path::Path;

/// Open the board's queue, which the agent must have created.
pub fn open(board: &Board, access: Access) -> Result<Queue, CliError> {
    let path = board.queue.resolved_path();
    ensure_present(&path)?;
    Ok(Queue::open_existing(&path, access)?)
}

/// Whether the queue file is there and this user may open it, said precisely.
fn ensure_present(path: &Path) -> Result<(), CliError> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) => Err(why_not(path, e)),
    }
}

fn why_not(path: &Path, error: std::io::Error) -> CliError {
    match error.kind() {
        ErrorKind::NotFound => CliError::NoQueue(path.to_path_buf()),
        _ => CliError::QueueUnreadable {
            path: path.to_path_buf(),
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_is_said_as_such_not_as_no_queue() {
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        let error = why_not(Path::new("/var/lib/fieldlink/queue.db"), denied);
        let chain = error.chain();
        assert!(matches!(error, CliError::QueueUnreadable { .. }), "{chain}");
        assert!(
            chain.to_lowercase().contains("permission denied"),
            "{chain}"
        );
        assert!(!chain.contains("no queue"), "{chain}");
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn a_missing_file_is_no_queue_yet() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("queue.db");
        let error = ensure_present(&path).expect_err("missing");
        assert!(matches!(error, CliError::NoQueue(_)), "{error}");
        assert!(!path.exists());
    }
}
