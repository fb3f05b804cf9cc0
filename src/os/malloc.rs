//! glibc's allocator tuning (mallopt(3)).

/// mallopt refused a setting.
#[derive(Debug, thiserror::Error)]
#[error("mallopt refused M_ARENA_MAX = 1")]
pub struct MalloptError;

/// glibc gives each thread that allocates its own malloc arena, and keeps each one's freed
/// memory; with a sampler, a recorder, an uploader and its gzip helper that is several hundred
/// KiB of RSS for nothing on a 512 MB Pi. One shared arena is plenty for a few threads. Call it
/// before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn one_arena() -> Result<(), MalloptError> {
    // SAFETY: mallopt only changes allocator tuning.
    let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    if ok == 1 {
        Ok(())
    } else {
        Err(MalloptError)
    }
}

/// Other C libraries have no arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_arena() -> Result<(), MalloptError> {
    Ok(())
}
