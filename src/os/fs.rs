//! File system capacity: statvfs(3), so `status` can say "disk full" even though the agent
//! cannot write that down while it is full; and the umask the agent creates files with.

use std::io;
use std::path::{Path, PathBuf};

/// Why the free space of a file system is unknown.
#[derive(Debug, thiserror::Error)]
pub enum StatvfsError {
    /// The path holds a NUL byte, which no C path can.
    #[error("{}: path contains a NUL byte", .0.display())]
    NulInPath(PathBuf),
    /// statvfs(3) failed: the directory is missing or not readable.
    #[error("cannot read the free space of {}", path.display())]
    Statvfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
#[allow(unsafe_code)]
pub fn available_bytes(dir: &Path) -> Result<u64, StatvfsError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| StatvfsError::NulInPath(dir.to_path_buf()))?;
    // SAFETY: a zeroed statvfs is a valid value; statvfs fills the struct we own from a
    // NUL-terminated path that outlives the call.
    let mut info: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut info) } != 0 {
        return Err(StatvfsError::Statvfs {
            path: dir.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    #[allow(clippy::useless_conversion)] // the field types differ between 32- and 64-bit targets
    Ok(u64::from(info.f_bavail) * u64::from(info.f_frsize))
}

/// Make every file and directory this process creates from now on private to its user
/// (umask 077): the queue, its WAL and shared-memory files, sensor state files. Whatever umask
/// the agent was started with (a shell's 022, a unit without `UMask=`), readings and their
/// tags are nobody else's to read.
#[allow(unsafe_code)]
pub fn keep_new_files_private() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_missing_directory_is_an_error_that_keeps_the_os_cause() {
        let err = available_bytes(Path::new("/no/such/dir")).unwrap_err();
        let cause = err.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(cause.map(io::Error::kind), Some(io::ErrorKind::NotFound));
        assert!(available_bytes(Path::new("/tmp")).unwrap() > 0);
    }
}
