//! Where queue files go: a directory on a disk-backed file system, or the disk-write figure
//! means nothing.

use std::path::{Path, PathBuf};

pub struct WorkDir {
    pub path: PathBuf,
    pub fs_note: String,
}

impl WorkDir {
    pub fn create() -> WorkDir {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os("FIELDLINK_BENCH_DIR") {
            candidates.push(dir.into());
        }
        candidates.push("/var/tmp".into());
        if let Some(target) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent()?.parent()?.parent().map(Path::to_path_buf))
        {
            candidates.push(target);
        }
        for base in candidates {
            match fs_type(&base) {
                Some(TMPFS_MAGIC) | None => continue,
                Some(magic) => {
                    let path = base.join(format!("fieldlink-bench-{}", std::process::id()));
                    if std::fs::create_dir_all(&path).is_ok() {
                        return WorkDir {
                            path,
                            fs_note: format!("file system magic {magic:#x}, not tmpfs"),
                        };
                    }
                }
            }
        }
        panic!("no disk-backed directory for the queue files; set FIELDLINK_BENCH_DIR");
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Remove a queue file and its WAL and shared-memory files.
    pub fn remove_queue(&self, path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub const TMPFS_MAGIC: i64 = 0x0102_1994;

#[allow(unsafe_code)]
pub fn fs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs fills the struct we own from a NUL-terminated path.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then_some(stat.f_type as i64)
}
