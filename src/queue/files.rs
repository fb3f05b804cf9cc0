//! The queue's place on disk: its directory made (only the last level, 0700) and checked
//! writable, the file created 0600 before SQLite opens it (SQLite gives the WAL and
//! shared-memory files the database file's mode), and a corrupt file moved aside so a fresh
//! queue can start.

use super::QueueError;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Create the queue's own directory if only it is missing; a missing parent is a
/// configuration mistake worth a clear error rather than a tree of new directories.
pub(super) fn ensure_directory(path: &Path) -> Result<(), QueueError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |action: &'static str| {
        move |source: std::io::Error| QueueError::Directory {
            path: dir.to_path_buf(),
            action,
            source,
        }
    };
    if !dir.exists() {
        let parent_exists = dir
            .parent()
            .map(|p| p.as_os_str().is_empty() || p.exists())
            .unwrap_or(true);
        if !parent_exists {
            return Err(QueueError::NoDirectory {
                path: dir.to_path_buf(),
            });
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(fail("cannot create it"))?;
    }
    let probe = dir.join(".fieldlink-write-test");
    std::fs::write(&probe, b"").map_err(fail("is not writable"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The lock a process holds while it drains or writes the queue at `path` (the agent, or
/// `sync` when no agent runs): `<path>.lock`, holding the holder's process id.
pub fn lock_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", path.display()))
}

/// Who has the queue's lock after trying to take it.
#[derive(Debug)]
pub enum WriterLock {
    /// This process has it until the value is dropped.
    Ours(crate::os::lock::FileLock),
    /// Another process has it (its id, when it could be read): a running agent or `sync`.
    HeldBy(Option<i32>),
}

/// Try to take the queue's lock without waiting (making the queue's directory if needed).
pub fn take_writer_lock(path: &Path) -> Result<WriterLock, QueueError> {
    ensure_directory(path)?;
    let lock = lock_path(path);
    match crate::os::lock::try_lock(&lock) {
        Ok(Some(held)) => Ok(WriterLock::Ours(held)),
        Ok(None) => Ok(WriterLock::HeldBy(crate::os::lock::holder(&lock))),
        Err(crate::os::lock::LockError::File { source, .. }) => Err(QueueError::Directory {
            path: lock,
            action: "cannot take the queue's lock",
            source,
        }),
    }
}

/// Create the queue file empty and private (0600, whatever the umask) if it does not exist,
/// so SQLite never creates it with the umask's mode; an empty file is a valid new database.
pub(super) fn create_private(path: &Path) -> Result<(), QueueError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(QueueError::Directory {
            path: path.to_path_buf(),
            action: "cannot create the queue file",
            source,
        }),
    }
}

/// Rename a corrupt queue file (and its WAL and index) to `<path>.corrupt-<unix time>`.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf, QueueError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = PathBuf::from(format!("{}.corrupt-{secs}", path.display()));
    std::fs::rename(path, &aside).map_err(|source| QueueError::Directory {
        path: path.to_path_buf(),
        action: "cannot move the corrupt queue aside",
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
        }
    }
    Ok(aside)
}

/// Below this much free space the queue's next commits are likely to fail with SQLITE_FULL.
pub const DISK_NEARLY_FULL: u64 = 1 << 20;

/// Free bytes (for an unprivileged writer) on the file system holding `path`, so `status` can
/// say "disk full" even though the agent cannot write that down while it is full.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::os::fs::available_bytes(dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_missing_parent_is_named_and_an_unwritable_directory_keeps_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/q.db");
        assert!(matches!(
            ensure_directory(&deep),
            Err(QueueError::NoDirectory { path }) if path == dir.path().join("a/b")
        ));
        // A file where the directory should be: creating it fails with the OS's reason.
        std::fs::write(dir.path().join("a"), b"").unwrap();
        let err = ensure_directory(&dir.path().join("a/q.db")).unwrap_err();
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert!(source.is_some(), "{err:?}");
        assert!(matches!(err, QueueError::Directory { action, .. } if action == "is not writable"));
    }
}
