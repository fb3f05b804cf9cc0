//! Readers of `/proc`: this process's disk writes and this boot's id.

use std::io;
use std::path::{Path, PathBuf};

/// A `/proc` file that could not be read or did not say what we looked for.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: no `{key}` line", path.display())]
    Missing { path: PathBuf, key: &'static str },
}

const SELF_IO: &str = "/proc/self/io";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

fn read(path: &Path) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Bytes this process caused to be written to storage (`write_bytes` of /proc/self/io).
pub fn write_bytes() -> Result<u64, ProcError> {
    let path = Path::new(SELF_IO);
    read(path)?
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ProcError::Missing {
            path: path.to_path_buf(),
            key: "write_bytes",
        })
}

/// This boot's id: a UUID the kernel draws at boot, so readings held across a reboot can be
/// told apart from this boot's.
pub fn boot_id() -> Result<String, ProcError> {
    Ok(read(Path::new(BOOT_ID))?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_id_is_a_uuid_and_write_bytes_is_readable() {
        assert_eq!(boot_id().unwrap().len(), 36);
        assert!(write_bytes().is_ok());
    }
}
