//! An advisory lock on a file, flock(2): the running agent holds one beside its queue so
//! `sync` knows not to drain the same queue at the same time. The kernel drops the lock when
//! the holder exits, even on SIGKILL, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock file could not be opened or locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be opened, created or written.
    #[error("lock file {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Take the lock at `path` (created 0600 if missing) without waiting, and write this
/// process's id into it. `Ok(None)` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<FileLock>, LockError> {
    let fail = |source| LockError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    if !flock_exclusive_now(&file).map_err(fail)? {
        return Ok(None);
    }
    let pid = std::process::id();
    file.set_len(0).map_err(fail)?;
    file.rewind().map_err(fail)?;
    file.write_all(format!("{pid}\n").as_bytes())
        .map_err(fail)?;
    Ok(Some(FileLock { _file: file }))
}

/// The process id the holder of the lock at `path` wrote, if any can be read.
pub fn holder(path: &Path) -> Option<i32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|pid: &i32| *pid > 0)
}

/// flock(LOCK_EX | LOCK_NB): true when taken, false when another open file holds it.
#[allow(unsafe_code)]
fn flock_exclusive_now(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_until_the_first_lets_go_and_the_holder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db.lock");
        let first = try_lock(&path).unwrap().expect("free at first");
        assert!(try_lock(&path).unwrap().is_none());
        assert_eq!(holder(&path), Some(std::process::id() as i32));
        drop(first);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
