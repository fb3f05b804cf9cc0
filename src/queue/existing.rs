//! Opening a queue that must already be there, for the commands an operator runs beside the
//! agent (`status`, `sync`, `dead-letter`): unlike [`Queue::open`], nothing is created, moved
//! aside or repaired, and a read-only open writes nothing.

use super::{Queue, QueueError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// What a command may do to a queue it opens with [`Queue::open_existing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

impl Queue {
    /// Open the queue at `path`, which must exist; a missing file is an error, not a new queue.
    pub fn open_existing(path: &Path, access: Access) -> Result<Queue, QueueError> {
        let err = |source| QueueError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = match access {
            Access::ReadWrite => {
                Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)
            }
            Access::ReadOnly => Connection::open_with_flags(
                read_only_uri(path),
                flags | OpenFlags::SQLITE_OPEN_READ_ONLY,
            ),
        }
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        if access == Access::ReadWrite {
            // A file of an older release is migrated as `open` would do it.
            super::schema::migrate(&conn).map_err(err)?;
        }
        Ok(Queue::on(conn, path, None))
    }
}

/// A read-only connection to a WAL database creates its `-wal` and `-shm` files when they are
/// missing (no agent has the queue open) and leaves them behind. Then nothing else writes the
/// file and SQLite may read it as immutable, which opens no side files; while an agent runs,
/// its `-wal` exists and the ordinary read-only open sees its latest commits.
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if !Path::new(&wal).exists() {
        uri.push_str("?immutable=1");
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_queue_is_an_error_and_no_file_appears() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("queue.db");
        for access in [Access::ReadOnly, Access::ReadWrite] {
            assert!(Queue::open_existing(&path, access).is_err());
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_read_only_queue_reads_what_a_stopped_agent_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("queue.db");
        let mut writer = Queue::open(&path).expect("queue");
        writer.set_meta("last_upload", "ok").expect("meta");
        drop(writer);
        let files = || std::fs::read_dir(dir.path()).expect("dir").count();
        let before = files();
        let reader = Queue::open_existing(&path, Access::ReadOnly).expect("read-only");
        assert_eq!(
            reader.meta("last_upload").expect("meta").as_deref(),
            Some("ok")
        );
        assert!(reader.stats().is_ok());
        drop(reader);
        assert_eq!(files(), before, "a read-only open leaves no files behind");
    }
}
